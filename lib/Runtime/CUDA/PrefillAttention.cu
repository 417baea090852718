//===- PrefillAttention.cu - Causal prefill attention over padded prompts -===//
//
// See PrefillAttention.h.
//
//===----------------------------------------------------------------------===//

#include "PrefillAttention.h"

#include "BlockReduce.cuh"

#include <cfloat>

namespace fairkv::cuda {
namespace {

constexpr int kThreads = 128;
/// The tiled kernel: query positions per block (a warp each), and key
/// positions per tile (a lane each).
constexpr int kTileRows = 8, kTileKeys = 32;

/// Causal attention of one query row over its own prompt (left padding
/// skipped): block per (row, position, query head).
__global__ void __launch_bounds__(kThreads)
    prefillAttentionKernel(const float *q, const float *k, const float *v,
                           const int *lengths, int s, int nq, int nk, int d,
                           float *out) {
  extern __shared__ float shared[];
  const int64_t idx = blockIdx.x;
  const int h = static_cast<int>(idx % nq);
  const int t = static_cast<int>((idx / nq) % s);
  const int i = static_cast<int>(idx / (int64_t(nq) * s));
  const int pad = s - lengths[i];
  float *o = out + idx * d;
  if (t < pad) {
    for (int e = threadIdx.x; e < d; e += blockDim.x)
      o[e] = 0.0f;
    return;
  }
  const int j = h / (nq / nk), n = t - pad + 1;
  float *qs = shared, *p = shared + d;
  for (int e = threadIdx.x; e < d; e += blockDim.x)
    qs[e] = q[idx * d + e];
  __syncthreads();
  const float scale = rsqrtf(static_cast<float>(d));
  auto row = [&](const float *x, int u) {
    return x + ((int64_t(i) * s + pad + u) * nk + j) * d;
  };
  float mx = -FLT_MAX;
  for (int u = threadIdx.x; u < n; u += blockDim.x) {
    const float *kr = row(k, u);
    float dot = 0;
    for (int e = 0; e < d; ++e)
      dot += qs[e] * kr[e];
    p[u] = dot * scale;
    mx = fmaxf(mx, p[u]);
  }
  mx = blockReduce<kThreads, true>(mx);
  float sum = 0;
  for (int u = threadIdx.x; u < n; u += blockDim.x) {
    p[u] = __expf(p[u] - mx);
    sum += p[u];
  }
  sum = blockReduce<kThreads, false>(sum);
  __syncthreads();
  for (int e = threadIdx.x; e < d; e += blockDim.x) {
    float acc = 0;
    for (int u = 0; u < n; ++u)
      acc += p[u] * row(v, u)[e];
    o[e] = acc / sum;
  }
}

/// Causal attention of kTileRows query positions of one query head of one
/// request (a warp per position) over key and value tiles shared by the
/// block; an online softmax keeps each row's running max, sum and output.
template <int D>
__global__ void __launch_bounds__(kTileRows * 32)
    prefillAttentionTiledKernel(const float *q, const float *k, const float *v,
                                const int *lengths, int s, int nq, int nk,
                                float *out) {
  constexpr int kPerLane = D / 32;
  // Rows padded by one float: lane u reading key u's element e and lane w
  // reading value w's element e hit different banks.
  __shared__ float keys[kTileKeys][D + 1];
  __shared__ float values[kTileKeys][D + 1];
  __shared__ float queries[kTileRows][D];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int h = blockIdx.y, i = blockIdx.z, j = h / (nq / nk);
  const int pad = s - lengths[i];
  const int t0 = blockIdx.x * kTileRows, t = t0 + warp;
  // This row attends to prompt tokens 0 .. n - 1 (none when padding or past
  // the end); the block's rows together to 0 .. blockKeys - 1.
  const int n = t < s ? t - pad + 1 : 0;
  const int blockKeys = min(s, t0 + kTileRows) - pad;
  const float scale = rsqrtf(static_cast<float>(D));
  if (t < s)
    for (int e = lane; e < D; e += 32)
      queries[warp][e] = q[((int64_t(i) * s + t) * nq + h) * D + e] * scale;
  auto row = [&](const float *x, int u) {
    return x + ((int64_t(i) * s + pad + u) * nk + j) * D;
  };
  float acc[kPerLane];
  for (int x = 0; x < kPerLane; ++x)
    acc[x] = 0.0f;
  float rowMax = -FLT_MAX, rowSum = 0.0f;
  for (int tile = 0; tile < blockKeys; tile += kTileKeys) {
    __syncthreads(); // the last tile is consumed; the queries are stored
    for (int x = threadIdx.x; x < kTileKeys * D; x += blockDim.x) {
      const int u = x / D, e = x % D;
      const bool inside = tile + u < blockKeys;
      keys[u][e] = inside ? row(k, tile + u)[e] : 0.0f;
      values[u][e] = inside ? row(v, tile + u)[e] : 0.0f;
    }
    __syncthreads();
    if (tile >= n)
      continue; // this row's keys have ended (the whole warp alike)
    // Lane u scores key tile + u.
    const bool valid = tile + lane < n;
    float score = -FLT_MAX;
    if (valid) {
      float dot = 0.0f;
      for (int e = 0; e < D; ++e)
        dot += queries[warp][e] * keys[lane][e];
      score = dot;
    }
    float tileMax = score;
    for (int o = 16; o > 0; o /= 2)
      tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, o));
    // Lane 0's key is valid here, so tileMax is a real score.
    const float newMax = fmaxf(rowMax, tileMax);
    const float rescale = __expf(rowMax - newMax);
    const float p = valid ? __expf(score - newMax) : 0.0f;
    float tileSum = p;
    for (int o = 16; o > 0; o /= 2)
      tileSum += __shfl_xor_sync(0xffffffffu, tileSum, o);
    rowSum = rowSum * rescale + tileSum;
    for (int x = 0; x < kPerLane; ++x)
      acc[x] *= rescale;
    const int here = min(kTileKeys, n - tile);
    for (int w = 0; w < here; ++w) {
      const float pw = __shfl_sync(0xffffffffu, p, w);
      for (int x = 0; x < kPerLane; ++x)
        acc[x] += pw * values[w][lane + 32 * x];
    }
    rowMax = newMax;
  }
  if (t < s) {
    float *o = out + ((int64_t(i) * s + t) * nq + h) * D;
    for (int x = 0; x < kPerLane; ++x)
      o[lane + 32 * x] = n > 0 ? acc[x] / rowSum : 0.0f;
  }
}

} // namespace

int rowKernelMaxSeq(int headDim) { return 48 * 1024 / 4 - headDim; }

cudaError_t launchPrefillAttention(const PrefillAttentionArgs &a, bool tiled,
                                   cudaStream_t stream) {
  if (a.batch == 0 || a.seq == 0)
    return cudaSuccess;
  if ((a.headDim != 64 && a.headDim != 128) || a.nk < 1 || a.nq % a.nk ||
      (!tiled && a.seq > rowKernelMaxSeq(a.headDim)))
    return cudaErrorInvalidValue;
  if (!tiled) {
    const size_t shared = (size_t(a.seq) + a.headDim) * sizeof(float);
    prefillAttentionKernel<<<
        static_cast<unsigned>(int64_t(a.batch) * a.seq * a.nq), kThreads,
        shared, stream>>>(a.queries, a.keys, a.values, a.lengths, a.seq, a.nq,
                          a.nk, a.headDim, a.out);
    return cudaGetLastError();
  }
  const dim3 grid((a.seq + kTileRows - 1) / kTileRows, a.nq, a.batch);
  if (a.headDim == 64)
    prefillAttentionTiledKernel<64><<<grid, kTileRows * 32, 0, stream>>>(
        a.queries, a.keys, a.values, a.lengths, a.seq, a.nq, a.nk, a.out);
  else
    prefillAttentionTiledKernel<128><<<grid, kTileRows * 32, 0, stream>>>(
        a.queries, a.keys, a.values, a.lengths, a.seq, a.nq, a.nk, a.out);
  return cudaGetLastError();
}

cudaError_t launchPrefillAttention(const PrefillAttentionArgs &a,
                                   cudaStream_t stream) {
  return launchPrefillAttention(a, a.seq > rowKernelMaxSeq(a.headDim), stream);
}

} // namespace fairkv::cuda
