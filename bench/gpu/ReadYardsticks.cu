//===- ReadYardsticks.cu - What the GPU reads when nothing is computed ----===//

#include "ReadYardsticks.h"

#include "CudaCheck.h"
#include "DecodeLoads.cuh"
#include "EventTiming.h"

#include <algorithm>
#include <vector>

namespace fairkv::bench {
namespace {

constexpr int kStreamThreads = 256;
constexpr int kStreamUnroll = 4;

/// XOR of every word a block's threads hold, written by thread 0.
template <int Threads>
__device__ void writeBlockXor(uint32_t x, uint32_t *sink) {
  __shared__ uint32_t warps[Threads / 32];
  for (int o = 16; o > 0; o /= 2)
    x ^= __shfl_xor_sync(0xffffffffu, x, o);
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = x;
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t all = 0;
    for (int w = 0; w < Threads / 32; ++w)
      all ^= warps[w];
    sink[blockIdx.x] = all;
  }
}

__device__ __forceinline__ uint32_t fold(uint4 v) {
  return v.x ^ v.y ^ v.z ^ v.w;
}

__global__ void __launch_bounds__(kStreamThreads)
    streamRead(const uint4 *data, int64_t count, uint32_t *sink) {
  const int64_t stride = int64_t(gridDim.x) * kStreamThreads;
  uint32_t x = 0;
  int64_t i = blockIdx.x * int64_t(kStreamThreads) + threadIdx.x;
  for (; i + (kStreamUnroll - 1) * stride < count; i += kStreamUnroll * stride) {
    uint4 v[kStreamUnroll];
#pragma unroll
    for (int u = 0; u < kStreamUnroll; ++u)
      v[u] = data[i + u * stride];
#pragma unroll
    for (int u = 0; u < kStreamUnroll; ++u)
      x ^= fold(v[u]);
  }
  for (; i < count; i += stride)
    x ^= fold(data[i]);
  writeBlockXor<kStreamThreads>(x, sink);
}

// The online decode-attention kernel's loads (DecodeLoads.cuh) over its
// grid and block; nothing computed but an XOR, so the time is the access
// pattern's.
constexpr int kWarps = cuda::kDecodeWarps;

template <int HeadDim, bool Pipelined>
__global__ void __launch_bounds__(kWarps * 32)
    chunkLoads(cuda::DecodeAttentionArgs a, uint32_t *sink) {
  using Layout = cuda::OnlineLayout<HeadDim>;
  constexpr int Lanes = Layout::Lanes, Unroll = Layout::Unroll;
  constexpr int BatchTokens = Layout::BatchTokens;
  const uint16_t *keys = static_cast<const uint16_t *>(a.keys);
  const uint16_t *values = static_cast<const uint16_t *>(a.values);
  const int chunk = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = lane / Lanes, dim0 = (lane % Lanes) * 8;
  const int64_t begin = a.chunkBegin[chunk];
  const int count = static_cast<int>(a.chunkEnd[chunk] - begin);
  const uint16_t *kRows = keys + begin * HeadDim + dim0;
  const uint16_t *vRows = values + begin * HeadDim + dim0;
  uint32_t x = 0;
  constexpr int Step = kWarps * BatchTokens;
  cuda::KvBatches<HeadDim, uint16_t, Pipelined> batches(
      kRows, vRows, warp * BatchTokens, row, count, Step);
  for (int t0 = warp * BatchTokens; t0 < count; t0 += Step) {
    batches.next(t0);
#pragma unroll
    for (int u = 0; u < Unroll; ++u)
      x ^= fold(batches.k[u]) ^ fold(batches.v[u]);
  }
  writeBlockXor<kWarps * 32>(x, sink);
}

void launchChunkLoads(const cuda::DecodeAttentionArgs &a, uint32_t *sink,
                      bool pipelined = false) {
  if (a.chunks == 0)
    return;
  if (a.headDim == 128 && pipelined)
    chunkLoads<128, true><<<a.chunks, kWarps * 32>>>(a, sink);
  else if (a.headDim == 128)
    chunkLoads<128, false><<<a.chunks, kWarps * 32>>>(a, sink);
  else if (pipelined)
    chunkLoads<64, true><<<a.chunks, kWarps * 32>>>(a, sink);
  else
    chunkLoads<64, false><<<a.chunks, kWarps * 32>>>(a, sink);
  CHECK_CUDA(cudaGetLastError());
}

} // namespace

double streamReadBandwidth(size_t bytes) {
  void *data = nullptr;
  uint32_t *sink = nullptr;
  int device = 0, sms = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // Enough resident blocks to fill every SM several times over.
  const int blocks = sms * 8;
  CHECK_CUDA(cudaMalloc(&data, bytes));
  CHECK_CUDA(cudaMalloc(&sink, blocks * sizeof(uint32_t)));
  CHECK_CUDA(cudaMemset(data, 1, bytes));
  const int64_t count = static_cast<int64_t>(bytes / sizeof(uint4));
  auto launch = [&] {
    streamRead<<<blocks, kStreamThreads>>>(static_cast<const uint4 *>(data),
                                           count, sink);
    CHECK_CUDA(cudaGetLastError());
  };
  launch(); // warm up
  const double seconds = secondsPerRepeat(20, launch);
  CHECK_CUDA(cudaFree(data));
  CHECK_CUDA(cudaFree(sink));
  return count * double(sizeof(uint4)) / seconds;
}

double chunkLoadSeconds(const cuda::DecodeAttentionArgs &args, int repeats,
                        bool pipelined) {
  uint32_t *sink = nullptr;
  CHECK_CUDA(cudaMalloc(&sink, std::max(1, args.chunks) * sizeof(uint32_t)));
  launchChunkLoads(args, sink, pipelined); // warm up
  const double seconds = secondsPerRepeat(
      repeats, [&] { launchChunkLoads(args, sink, pipelined); });
  CHECK_CUDA(cudaFree(sink));
  return seconds;
}

uint32_t chunkLoadChecksum(const cuda::DecodeAttentionArgs &args,
                           bool pipelined) {
  std::vector<uint32_t> sinks(std::max(1, args.chunks), 0);
  uint32_t *sink = nullptr;
  CHECK_CUDA(cudaMalloc(&sink, sinks.size() * sizeof(uint32_t)));
  CHECK_CUDA(cudaMemset(sink, 0, sinks.size() * sizeof(uint32_t)));
  launchChunkLoads(args, sink, pipelined);
  CHECK_CUDA(cudaMemcpy(sinks.data(), sink, sinks.size() * sizeof(uint32_t),
                        cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaFree(sink));
  uint32_t all = 0;
  for (uint32_t s : sinks)
    all ^= s;
  return all;
}

} // namespace fairkv::bench
