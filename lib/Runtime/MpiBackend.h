//===- MpiBackend.h - Devices as MPI ranks: the runtime's MPI plugin -*- C++ -*-===//
//
// With `mpi_rank` set, each process of an MPI job runs one device (device d
// is rank d) and collectives go through MPI. MPI is a plugin,
// libFairKVRuntimeMPI.so beside the runtime library, opened by
// fairkv_rt_mpi_init only: a program run without --mpi loads no MPI
// library. Built from the same tree as the runtime (see GpuBackend.h).
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_MPIBACKEND_H
#define FAIRKV_RUNTIME_MPIBACKEND_H

#include "Runtime.h"

#include <memory>
#include <string>
#include <vector>

namespace fairkv::rt::mpi {

class Backend {
public:
  virtual ~Backend() = default;
  /// Initializes MPI (once; the calling thread makes every MPI call) and
  /// says this process's rank and the number of ranks; "" or a reason.
  virtual std::string init(int *argc, char ***argv, int64_t *rank,
                           int64_t *size) = 0;
  virtual void finalize() = 0;
  virtual std::string world(int64_t *rank, int64_t *size) = 0;
  virtual std::vector<std::unique_ptr<Tensor>>
  allgather(const std::vector<int64_t> &ranks, const Tensor &mine) = 0;
  virtual void broadcast(void *data, size_t bytes, int root) = 0;
};

constexpr int kPluginAbi = 1;
/// The plugin's entry point (see openBackend in PluginLoader.h).
constexpr const char *kPluginEntryName = "fairkv_rt_mpi_backend";
constexpr const char *kPluginFile = "libFairKVRuntimeMPI.so";

} // namespace fairkv::rt::mpi

#endif // FAIRKV_RUNTIME_MPIBACKEND_H
