//===- MpiPlugin.cpp - Opening MPI, and the runtime's MPI entry points ----===//
//
// See MpiBackend.h. fairkv_rt_mpi_init opens the plugin; until it has, no
// MPI session can start (mpi::world says why), so the collectives are not
// reached.
//
//===----------------------------------------------------------------------===//

#include "MpiBackend.h"
#include "PluginLoader.h"
#include "Status.h"

#include <mutex>

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

namespace mpi = fairkv::rt::mpi;
using fairkv::rt::fail;
using fairkv::rt::ok;
using fairkv::rt::Tensor;

namespace {

mpi::Backend *loaded = nullptr;
constexpr const char *kNotInitialized =
    "MPI is not initialized (call fairkv_rt_mpi_init)";

mpi::Backend *load(std::string &error) {
  static std::once_flag once;
  static std::string loadError;
  std::call_once(once, [] {
#ifndef FAIRKV_RT_HAS_MPI
    loadError = "FairKV was built without MPI";
#else
    // Global: OpenMPI opens its components, which need libmpi's symbols.
    loaded = fairkv::rt::openBackend<mpi::Backend>(
        mpi::kPluginFile, mpi::kPluginEntryName, mpi::kPluginAbi,
        /*global=*/true, "MPI", loadError);
#endif
  });
  error = loadError;
  return loaded;
}

mpi::Backend &backend() {
  if (!loaded)
    fairkv::rt::fatal(kNotInitialized);
  return *loaded;
}

} // namespace

std::vector<std::unique_ptr<Tensor>>
mpi::allgather(const std::vector<int64_t> &ranks, const Tensor &mine) {
  return backend().allgather(ranks, mine);
}

void mpi::broadcast(void *data, size_t bytes, int root) {
  backend().broadcast(data, bytes, root);
}

std::string mpi::world(int64_t *rank, int64_t *size) {
  if (!loaded)
    return kNotInitialized;
  return loaded->world(rank, size);
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_mpi_init(int *argc, char ***argv,
                                                    int64_t *rank,
                                                    int64_t *size) {
  if (!rank || !size)
    return fail(FAIRKV_ERROR_INVALID_ARGUMENT, "null argument");
  std::string error;
  mpi::Backend *b = load(error);
  if (b)
    error = b->init(argc, argv, rank, size);
  if (!error.empty())
    return fail(FAIRKV_ERROR_UNAVAILABLE, error);
  return ok();
}

FAIRKV_RT_EXPORT void fairkv_rt_mpi_finalize(void) {
  if (loaded)
    loaded->finalize();
}
