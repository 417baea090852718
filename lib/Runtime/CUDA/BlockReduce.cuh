//===- BlockReduce.cuh - Block-wide reductions for the CUDA kernels -*- C++ -*-===//

#ifndef FAIRKV_RUNTIME_CUDA_BLOCKREDUCE_CUH
#define FAIRKV_RUNTIME_CUDA_BLOCKREDUCE_CUH

namespace fairkv::cuda {

/// Max (IsMax) or sum of one value per thread of a block of `Threads`
/// threads (a multiple of 32); every thread gets the result. Every thread
/// of the block must call it.
template <int Threads, bool IsMax, typename T> __device__ T blockReduce(T v) {
  __shared__ T scratch[Threads / 32];
  for (int o = 16; o > 0; o /= 2) {
    T other = __shfl_xor_sync(0xffffffffu, v, o);
    v = IsMax ? (other > v ? other : v) : v + other;
  }
  if (threadIdx.x % 32 == 0)
    scratch[threadIdx.x / 32] = v;
  __syncthreads();
  T r = scratch[0];
  for (int w = 1; w < Threads / 32; ++w)
    r = IsMax ? (scratch[w] > r ? scratch[w] : r) : r + scratch[w];
  __syncthreads();
  return r;
}

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_BLOCKREDUCE_CUH
