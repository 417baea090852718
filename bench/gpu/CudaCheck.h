//===- CudaCheck.h - Exit on a failed CUDA call in the GPU bench -*- C++ -*-===//

#ifndef FAIRKV_BENCH_GPU_CUDACHECK_H
#define FAIRKV_BENCH_GPU_CUDACHECK_H

#include <cublas_api.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

/// The bench has nothing to recover: a failed CUDA call ends it, naming the
/// call and where.
#define CHECK_CUDA(call)                                                       \
  do {                                                                         \
    cudaError_t err_ = (call);                                                 \
    if (err_ != cudaSuccess) {                                                 \
      std::fprintf(stderr, "CUDA error: %s at %s:%d: %s\n", #call, __FILE__,   \
                   __LINE__, cudaGetErrorString(err_));                        \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

/// The same for a cuBLAS or cuBLASLt call.
#define CHECK_BLAS(call)                                                       \
  do {                                                                         \
    cublasStatus_t s_ = (call);                                                \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                         \
      std::fprintf(stderr, "cuBLAS error: %s at %s:%d: %d\n", #call,          \
                   __FILE__, __LINE__, static_cast<int>(s_));                  \
      std::exit(2);                                                            \
    }                                                                          \
  } while (0)

#endif // FAIRKV_BENCH_GPU_CUDACHECK_H
