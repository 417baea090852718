//===- MpiBackend.cpp - The MPI plugin: collectives between ranks ---------===//
//
// See MpiBackend.h. A participant set gets its own
// communicator (MPI_Comm_create_group, collective over the set only, so a
// copied head's replicas build theirs without the others), and a tensor is
// exchanged as its shape and bytes by MPI_Allgatherv.
//
//===----------------------------------------------------------------------===//

#include "../MpiBackend.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

using namespace fairkv::rt;

namespace {

/// One communicator per participant set, made on first use.
MPI_Comm communicator(const std::vector<int64_t> &ranks) {
  static std::map<std::vector<int64_t>, MPI_Comm> comms;
  auto it = comms.find(ranks);
  if (it != comms.end())
    return it->second;
  MPI_Group world, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> members(ranks.begin(), ranks.end());
  MPI_Group_incl(world, static_cast<int>(members.size()), members.data(),
                 &group);
  MPI_Comm comm;
  if (MPI_Comm_create_group(MPI_COMM_WORLD, group, /*tag=*/0, &comm) !=
      MPI_SUCCESS)
    fatal("MPI: cannot make a communicator for a collective");
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return comms[ranks] = comm;
}

class MpiBackend final : public mpi::Backend {
public:
  std::string init(int *argc, char ***argv, int64_t *rank,
                   int64_t *size) override;
  void finalize() override;
  std::string world(int64_t *rank, int64_t *size) override;
  std::vector<std::unique_ptr<Tensor>>
  allgather(const std::vector<int64_t> &ranks, const Tensor &mine) override;
  void broadcast(void *data, size_t bytes, int root) override;
};

std::vector<std::unique_ptr<Tensor>>
MpiBackend::allgather(const std::vector<int64_t> &ranks, const Tensor &mine) {
  MPI_Comm comm = communicator(ranks);
  // [isInt, rank, dims..., ints, floats], then the int64 and the float
  // data (both: a tensor may carry either or, for the prefill's score
  // exchange, both).
  std::vector<int64_t> header = {mine.isInt ? 1 : 0,
                                 static_cast<int64_t>(mine.shape.size())};
  header.insert(header.end(), mine.shape.begin(), mine.shape.end());
  header.push_back(static_cast<int64_t>(mine.i.size()));
  header.push_back(static_cast<int64_t>(mine.f.size()));
  std::vector<char> bytes(header.size() * 8 + mine.i.size() * 8 +
                          mine.f.size() * 4);
  // std::copy, not memcpy: an empty vector's data() may be null, which
  // memcpy must not be given even for zero bytes.
  char *w = bytes.data();
  w = std::copy_n(reinterpret_cast<const char *>(header.data()),
                  header.size() * 8, w);
  w = std::copy_n(reinterpret_cast<const char *>(mine.i.data()),
                  mine.i.size() * 8, w);
  std::copy_n(reinterpret_cast<const char *>(mine.f.data()), mine.f.size() * 4,
              w);
  if (bytes.size() > INT_MAX)
    fatal("MPI: a collective's input exceeds 2 GB");
  const int n = static_cast<int>(ranks.size());
  int count = static_cast<int>(bytes.size());
  std::vector<int> counts(n), offsets(n, 0);
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  int64_t total = 0;
  for (int r = 0; r < n; ++r) {
    offsets[r] = static_cast<int>(total);
    total += counts[r];
  }
  if (total > INT_MAX)
    fatal("MPI: a collective exceeds 2 GB");
  std::vector<char> all(total);
  MPI_Allgatherv(bytes.data(), count, MPI_BYTE, all.data(), counts.data(),
                 offsets.data(), MPI_BYTE, comm);
  std::vector<std::unique_ptr<Tensor>> out;
  for (int r = 0; r < n; ++r) {
    const char *p = all.data() + offsets[r];
    auto t = std::make_unique<Tensor>();
    int64_t isInt, rank, ints, floats;
    std::memcpy(&isInt, p, 8);
    std::memcpy(&rank, p + 8, 8);
    t->isInt = isInt != 0;
    t->shape.resize(rank);
    std::copy_n(p + 16, rank * 8, reinterpret_cast<char *>(t->shape.data()));
    p += 16 + rank * 8;
    std::memcpy(&ints, p, 8);
    std::memcpy(&floats, p + 8, 8);
    p += 16;
    t->i.resize(ints);
    std::copy_n(p, ints * 8, reinterpret_cast<char *>(t->i.data()));
    t->f.resize(floats);
    std::copy_n(p + ints * 8, floats * 4, reinterpret_cast<char *>(t->f.data()));
    out.push_back(std::move(t));
  }
  return out;
}

void MpiBackend::broadcast(void *data, size_t bytes, int root) {
  MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
}

std::string MpiBackend::world(int64_t *rank, int64_t *size) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    return "MPI is not initialized (call fairkv_rt_mpi_init)";
  int r = 0, n = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  *rank = r;
  *size = n;
  return "";
}

std::string MpiBackend::init(int *argc, char ***argv, int64_t *rank,
                             int64_t *size) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  // Every MPI call comes from the thread that runs the process's device.
  if (!initialized &&
      MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) !=
          MPI_SUCCESS)
    return "MPI_Init_thread failed";
  return world(rank, size);
}

void MpiBackend::finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized)
    MPI_Finalize();
}

} // namespace

extern "C" __attribute__((visibility("default"))) mpi::Backend *
fairkv_rt_mpi_backend(int abi, char *error) {
  if (abi != mpi::kPluginAbi) {
    std::snprintf(error, 256, "the MPI plugin is of ABI %d, the runtime of %d",
                  mpi::kPluginAbi, abi);
    return nullptr;
  }
  static MpiBackend backend;
  return &backend;
}
