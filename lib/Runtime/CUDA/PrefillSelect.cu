//===- PrefillSelect.cu - SnapKV scoring and per-head top-k at prefill ----===//
//
// One block per segment in both kernels. Scoring walks the window's queries
// one at a time (logits, block max, block sum, then each candidate's mean
// probability over the window and the group). Selection average-pools,
// then finds the k-th largest pooled score by a binary search over its bit
// pattern (scores are non-negative, so bit order is value order), keeps
// everything above it and the earliest tokens equal to it up to k.
//
//===----------------------------------------------------------------------===//

#include "PrefillSelect.h"
#include "BlockReduce.cuh"

#include <cfloat>

namespace fairkv::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) scoreKernel(PrefillSelectArgs a) {
  const int seg = blockIdx.x;
  const int64_t first = a.offsets[seg];
  const int length = static_cast<int>(a.offsets[seg + 1] - first);
  const int w = min(a.window, length), candidates = length - w;
  float *logits = a.logits + first, *scores = a.scores + first;
  for (int t = threadIdx.x; t < length; t += kThreads)
    scores[t] = 0.0f;
  const float scale = rsqrtf(static_cast<float>(a.headDim));
  for (int i = a.window - w; i < a.window; ++i) {
    const int position = length - a.window + i;
    for (int g = 0; g < a.group; ++g) {
      const float *q =
          a.queries +
          ((static_cast<int64_t>(seg) * a.window + i) * a.group + g) * a.headDim;
      float mx = -FLT_MAX;
      for (int t = threadIdx.x; t <= position; t += kThreads) {
        float s = 0;
        if (a.keysF32) {
          const float *k = a.keysF32 + (first + t) * a.headDim;
          for (int e = 0; e < a.headDim; ++e)
            s += q[e] * k[e];
        } else {
          const __nv_bfloat16 *k = a.keys + (first + t) * a.headDim;
          for (int e = 0; e < a.headDim; ++e)
            s += q[e] * __bfloat162float(k[e]);
        }
        logits[t] = s * scale;
        mx = fmaxf(mx, logits[t]);
      }
      mx = blockReduce<kThreads, true>(mx);
      float sum = 0;
      for (int t = threadIdx.x; t <= position; t += kThreads)
        sum += __expf(logits[t] - mx);
      sum = blockReduce<kThreads, false>(sum);
      // The mean over the window and the group: kvpress's mean over the
      // window, then (after a linear pool) over the group.
      const float weight = 1.0f / (sum * w * a.group);
      for (int t = threadIdx.x; t < candidates; t += kThreads)
        scores[t] += __expf(logits[t] - mx) * weight;
      __syncthreads();
    }
  }
}

/// pooled[t] = the zero-padded average of the scores within kernel / 2
/// tokens of t (kvpress's avg_pool1d), for the block's segment.
__device__ void avgPool(const float *scores, int candidates, int kernel,
                        float *pooled) {
  const int radius = kernel / 2;
  for (int t = threadIdx.x; t < candidates; t += kThreads) {
    float m = 0;
    for (int u = max(0, t - radius); u <= min(candidates - 1, t + radius); ++u)
      m += scores[u];
    pooled[t] = m / kernel;
  }
}

__global__ void __launch_bounds__(kThreads) selectKernel(PrefillSelectArgs a) {
  const int seg = blockIdx.x;
  const int64_t first = a.offsets[seg];
  const int length = static_cast<int>(a.offsets[seg + 1] - first);
  const int budget = a.budgets[seg];
  const int w = min(a.window, length), candidates = length - w;
  uint8_t *keep = a.keep + first;
  const float *scores = a.scores + first;
  float *pooled = a.pooled + first;
  if (a.poolOnly) {
    avgPool(scores, candidates, a.kernel, pooled);
    return;
  }
  if (length <= budget || budget <= w) {
    // Everything, or the prompt's last `budget` tokens.
    const int from = length <= budget ? 0 : length - budget;
    for (int t = threadIdx.x; t < length; t += kThreads)
      keep[t] = t >= from;
    if (threadIdx.x == 0)
      a.kept[seg] = length - from;
    return;
  }
  avgPool(scores, candidates, a.kernel, pooled);
  __syncthreads();
  const int k = budget - w;
  // The largest bit pattern T with count(pooled >= T) >= k.
  unsigned lo = 0, hi = 0x7f800000u;
  while (lo < hi) {
    const unsigned mid = lo + (hi - lo + 1) / 2;
    int count = 0;
    for (int t = threadIdx.x; t < candidates; t += kThreads)
      count += __float_as_uint(pooled[t]) >= mid;
    if (blockReduce<kThreads, false>(count) >= k)
      lo = mid;
    else
      hi = mid - 1;
  }
  int above = 0;
  for (int t = threadIdx.x; t < candidates; t += kThreads) {
    const bool over = __float_as_uint(pooled[t]) > lo;
    keep[t] = over;
    above += over;
  }
  above = blockReduce<kThreads, false>(above);
  for (int t = candidates + threadIdx.x; t < length; t += kThreads)
    keep[t] = 1;
  __syncthreads();
  if (threadIdx.x == 0) {
    // Ties at the threshold, earliest first.
    int room = k - above;
    for (int t = 0; t < candidates && room > 0; ++t)
      if (__float_as_uint(pooled[t]) == lo) {
        keep[t] = 1;
        --room;
      }
    a.kept[seg] = budget;
  }
}

} // namespace

cudaError_t launchPrefillSelect(const PrefillSelectArgs &a,
                                cudaStream_t stream) {
  if (a.segments == 0)
    return cudaSuccess;
  if (a.window <= 0 || a.group <= 0 || a.headDim <= 0)
    return cudaErrorInvalidValue;
  scoreKernel<<<a.segments, kThreads, 0, stream>>>(a);
  selectKernel<<<a.segments, kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

} // namespace fairkv::cuda
