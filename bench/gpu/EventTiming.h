//===- EventTiming.h - Timing GPU work by events in the GPU bench -*- C++
//-*-===//

#ifndef FAIRKV_BENCH_GPU_EVENTTIMING_H
#define FAIRKV_BENCH_GPU_EVENTTIMING_H

#include "CudaCheck.h"

#include <cuda_runtime.h>

namespace fairkv::bench {

/// Seconds per call of `enqueue` (work put on the default stream) over
/// `repeats` back-to-back calls, timed by events on that stream.
template <typename Enqueue>
double secondsPerRepeat(int repeats, Enqueue enqueue) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaEventRecord(start));
  for (int r = 0; r < repeats; ++r)
    enqueue();
  CHECK_CUDA(cudaEventRecord(stop));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms / 1e3 / repeats;
}

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_GPU_EVENTTIMING_H
