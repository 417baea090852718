//===- NoMpi.cpp - The runtime's MPI entry points without MPI -------------===//
//
// Built when CMake finds no MPI: an MPI session cannot start, so the
// collectives below are never reached.

#include "Runtime.h"
#include "Status.h"

#define FAIRKV_RT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace fairkv::rt;

std::vector<std::unique_ptr<Tensor>>
fairkv::rt::mpi::allgather(const std::vector<int64_t> &, const Tensor &) {
  fatal("FairKV was built without MPI");
}

void fairkv::rt::mpi::broadcast(void *, size_t, int) {
  fatal("FairKV was built without MPI");
}

std::string fairkv::rt::mpi::world(int64_t *, int64_t *) {
  return "FairKV was built without MPI";
}

FAIRKV_RT_EXPORT fairkv_status_t fairkv_rt_mpi_init(int *, char ***,
                                                    int64_t *, int64_t *) {
  return fail(FAIRKV_ERROR_UNAVAILABLE, "FairKV was built without MPI");
}

FAIRKV_RT_EXPORT void fairkv_rt_mpi_finalize(void) {}
