//===- DecodeAttention.cu - Compressed variable-length decode attention ---===//
//
// Two split kernels (DecodeSplitKernel), one block of kWarps warps per
// chunk each; the online one (and its pipelined form, which only the GPU
// bench runs so far) is described where it is defined. The
// three-pass kernel: warp w takes tokens w, w + kWarps, ...; lane l holds
// dims [4l, 4l + 4) of every query of the group, so a warp reads one
// 256-byte K (then V) row per token, coalesced. Pass 1 scores the chunk's
// tokens into shared memory, pass 2 takes each head's max and
// exponentials, pass 3 accumulates V; the block writes its unnormalised
// accumulator with the chunk's max and sum. Combine kernel: per segment,
// rescales the chunks to a common max and normalises (exact softmax).
//
//===----------------------------------------------------------------------===//

#include "DecodeAttention.h"
#include "DecodeLoads.cuh"

#include <cfloat>

namespace fairkv::cuda {
namespace {

constexpr int kWarps = kDecodeWarps;
/// K or V rows a warp loads before it uses them.
constexpr int kUnroll = 4;

/// Two 16-bit values as floats.
__device__ __forceinline__ float2 toFloat2(unsigned raw, __nv_bfloat16) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&raw));
}
__device__ __forceinline__ float2 toFloat2(unsigned raw, __half) {
  return __half22float2(*reinterpret_cast<__half2 *>(&raw));
}

/// Loads a lane's PerLane 16-bit values in one vector load (8 or 4 bytes).
template <int PerLane, typename T>
__device__ __forceinline__ void loadRow(const T *src, float *dst) {
  if constexpr (PerLane == 4) {
    uint2 raw = *reinterpret_cast<const uint2 *>(src);
    float2 a = toFloat2(raw.x, T()), b = toFloat2(raw.y, T());
    dst[0] = a.x;
    dst[1] = a.y;
    dst[2] = b.x;
    dst[3] = b.y;
  } else {
    float2 a = toFloat2(*reinterpret_cast<const unsigned *>(src), T());
    dst[0] = a.x;
    dst[1] = a.y;
  }
}

/// Loads, for the kUnroll tokens t0, t0 + kWarps, ... below `count`, the
/// lane's slice of their rows of `rows` (the chunk's first K or V row).
template <int HeadDim, int PerLane, typename T>
__device__ __forceinline__ void loadRows(const T *rows, int t0, int count,
                                         int lane,
                                         float (&dst)[kUnroll][PerLane]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    int t = t0 + u * kWarps;
    if (t < count)
      loadRow<PerLane>(rows + t * HeadDim + lane * PerLane, dst[u]);
  }
}

/// Tokens in `chunk`: its table entry, clipped to the current decode
/// step's end when the table was planned over segments' capacity.
__device__ __forceinline__ int chunkTokens(const DecodeAttentionArgs &a,
                                           int chunk) {
  const int64_t begin = a.chunkBegin[chunk], end = a.chunkEnd[chunk];
  return clippedChunkTokens(
      begin, end,
      a.decodeStart ? segmentEndAt(a.decodeStart[a.chunkSegment[chunk]], *a.step)
                    : end);
}

// Group is a template parameter so the per-head arrays below stay in
// registers (a runtime bound would put them in local memory).
template <int HeadDim, int Group, typename T>
__global__ void __launch_bounds__(kWarps * 32)
    decodeSplit(DecodeAttentionArgs a) {
  const T *keys = static_cast<const T *>(a.keys);
  const T *values = static_cast<const T *>(a.values);
  constexpr int PerLane = HeadDim / 32; // 4 for 128, 2 for 64
  const int chunk = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int seg = a.chunkSegment[chunk];
  const int64_t begin = a.chunkBegin[chunk];
  const int count = chunkTokens(a, chunk);
  constexpr int group = Group;
  const float scale = rsqrtf(static_cast<float>(HeadDim));

  __shared__ float scores[Group][kChunkTokens];
  __shared__ float headMax[Group], headSum[Group];
  __shared__ float reduce[kWarps][Group][HeadDim];

  float q[Group][PerLane];
#pragma unroll
  for (int h = 0; h < group; ++h)
#pragma unroll
    for (int e = 0; e < PerLane; ++e)
      q[h][e] = a.queries[(static_cast<int64_t>(seg) * group + h) * HeadDim +
                          lane * PerLane + e] *
                scale;

  // Pass 1: scores. Each warp keeps kUnroll rows in flight before it
  // reduces, so the loads of a chunk overlap instead of queueing behind the
  // shuffles.
  for (int t0 = warp; t0 < count; t0 += kWarps * kUnroll) {
    float kv[kUnroll][PerLane];
    loadRows<HeadDim>(keys + begin * HeadDim, t0, count, lane, kv);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int t = t0 + u * kWarps;
      if (t >= count)
        break;
#pragma unroll
      for (int h = 0; h < group; ++h) {
        float s = 0;
#pragma unroll
        for (int e = 0; e < PerLane; ++e)
          s += q[h][e] * kv[u][e];
#pragma unroll
        for (int o = 16; o > 0; o /= 2)
          s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0)
          scores[h][t] = s;
      }
    }
  }
  __syncthreads();

  // Pass 2: per head, the chunk's max and the exponentials.
  for (int h = warp; h < group; h += kWarps) {
    float m = -FLT_MAX;
    for (int t = lane; t < count; t += 32)
      m = fmaxf(m, scores[h][t]);
    for (int o = 16; o > 0; o /= 2)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float l = 0;
    for (int t = lane; t < count; t += 32) {
      float p = __expf(scores[h][t] - m);
      scores[h][t] = p;
      l += p;
    }
    for (int o = 16; o > 0; o /= 2)
      l += __shfl_xor_sync(0xffffffffu, l, o);
    if (lane == 0) {
      headMax[h] = m;
      headSum[h] = l;
    }
  }
  __syncthreads();

  // Pass 3: V accumulation.
  float acc[Group][PerLane];
#pragma unroll
  for (int h = 0; h < Group; ++h)
#pragma unroll
    for (int e = 0; e < PerLane; ++e)
      acc[h][e] = 0;
  for (int t0 = warp; t0 < count; t0 += kWarps * kUnroll) {
    float vv[kUnroll][PerLane];
    loadRows<HeadDim>(values + begin * HeadDim, t0, count, lane, vv);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      int t = t0 + u * kWarps;
      if (t >= count)
        break;
#pragma unroll
      for (int h = 0; h < group; ++h) {
        float p = scores[h][t];
#pragma unroll
        for (int e = 0; e < PerLane; ++e)
          acc[h][e] += p * vv[u][e];
      }
    }
  }
#pragma unroll
  for (int h = 0; h < group; ++h)
#pragma unroll
    for (int e = 0; e < PerLane; ++e)
      reduce[warp][h][lane * PerLane + e] = acc[h][e];
  __syncthreads();

  float *out = a.partial + static_cast<int64_t>(chunk) * group * (HeadDim + 2);
  for (int i = threadIdx.x; i < group * HeadDim; i += kWarps * 32) {
    int h = i / HeadDim, e = i % HeadDim;
    float s = 0;
    for (int w = 0; w < kWarps; ++w)
      s += reduce[w][h][e];
    out[h * (HeadDim + 2) + e] = s;
  }
  if (threadIdx.x < group) {
    out[threadIdx.x * (HeadDim + 2) + HeadDim] = headMax[threadIdx.x];
    out[threadIdx.x * (HeadDim + 2) + HeadDim + 1] = headSum[threadIdx.x];
  }
}

/// Eight 16-bit values (one 16-byte load) as floats.
template <typename T>
__device__ __forceinline__ void toFloat8(const uint4 &raw, float (&dst)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = toFloat2(words[i], T());
    dst[2 * i] = f.x;
    dst[2 * i + 1] = f.y;
  }
}

// The online split kernel. The three-pass kernel above reduces every
// (token, head) score across all 32 lanes (five shuffles each) and reads
// the chunk twice. Here a row is spread over HeadDim / 8 lanes (one 16-byte
// load each), so a warp loads 2 (or 4) rows at once and a score takes 4
// (or 3) shuffles for 2 (or 4) tokens.
// K and V of a batch are loaded together and consumed in one pass with a
// running max and sum per head (the scores never go to shared memory);
// each of the block's kWarps x Rows row slots keeps its own state, and the
// block merges them at the end into the same partial result as above.
// Pipelined: a warp's next batch is loaded before it computes on this one,
// so its loads overlap the math instead of following it.
template <int HeadDim, int Group, typename T, bool Pipelined>
__global__ void __launch_bounds__(kWarps * 32)
    decodeSplitOnline(DecodeAttentionArgs a) {
  using Layout = OnlineLayout<HeadDim>;
  constexpr int Lanes = Layout::Lanes, Rows = Layout::Rows;
  constexpr int Unroll = Layout::Unroll, BatchTokens = Layout::BatchTokens;
  constexpr int Slots = kWarps * Rows;
  const T *keys = static_cast<const T *>(a.keys);
  const T *values = static_cast<const T *>(a.values);
  const int chunk = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = lane / Lanes, dim0 = (lane % Lanes) * 8;
  const int seg = a.chunkSegment[chunk];
  const int64_t begin = a.chunkBegin[chunk];
  const int count = chunkTokens(a, chunk);
  const float scale = rsqrtf(static_cast<float>(HeadDim));

  float q[Group][8], acc[Group][8], runMax[Group], runSum[Group];
#pragma unroll
  for (int h = 0; h < Group; ++h) {
    runMax[h] = -FLT_MAX;
    runSum[h] = 0;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[h][e] = a.queries[(static_cast<int64_t>(seg) * Group + h) * HeadDim +
                          dim0 + e] *
                scale;
      acc[h][e] = 0;
    }
  }

  const T *kRows = keys + begin * HeadDim + dim0;
  const T *vRows = values + begin * HeadDim + dim0;
  // t0 is the same for the whole warp, so every lane reaches the shuffles.
  constexpr int Step = kWarps * BatchTokens;
  KvBatches<HeadDim, T, Pipelined> batches(kRows, vRows, warp * BatchTokens,
                                           row, count, Step);
  const uint4(&kRaw)[Unroll] = batches.k;
  const uint4(&vRaw)[Unroll] = batches.v;
  for (int t0 = warp * BatchTokens; t0 < count; t0 += Step) {
    batches.next(t0);
    float score[Unroll][Group];
#pragma unroll
    for (int u = 0; u < Unroll; ++u) {
      float k[8];
      toFloat8<T>(kRaw[u], k);
#pragma unroll
      for (int h = 0; h < Group; ++h) {
        float s = 0;
#pragma unroll
        for (int e = 0; e < 8; ++e)
          s += q[h][e] * k[e];
#pragma unroll
        for (int o = Lanes / 2; o > 0; o /= 2)
          s += __shfl_xor_sync(0xffffffffu, s, o);
        score[u][h] = t0 + u * Rows + row < count ? s : -FLT_MAX;
      }
    }
#pragma unroll
    for (int h = 0; h < Group; ++h) {
      float batchMax = score[0][h];
#pragma unroll
      for (int u = 1; u < Unroll; ++u)
        batchMax = fmaxf(batchMax, score[u][h]);
      const float newMax = fmaxf(runMax[h], batchMax);
      const float rescale = __expf(runMax[h] - newMax);
      runMax[h] = newMax;
      runSum[h] *= rescale;
#pragma unroll
      for (int e = 0; e < 8; ++e)
        acc[h][e] *= rescale;
    }
#pragma unroll
    for (int u = 0; u < Unroll; ++u) {
      float v[8];
      toFloat8<T>(vRaw[u], v);
      const bool valid = t0 + u * Rows + row < count;
#pragma unroll
      for (int h = 0; h < Group; ++h) {
        // Explicitly zero: a slot with no token yet has runMax -FLT_MAX,
        // where the exponential of a padding score would be 1.
        const float p = valid ? __expf(score[u][h] - runMax[h]) : 0.0f;
        runSum[h] += p;
#pragma unroll
        for (int e = 0; e < 8; ++e)
          acc[h][e] += p * v[e];
      }
    }
  }

  __shared__ float slotAcc[Slots][Group][HeadDim];
  __shared__ float slotMax[Slots][Group], slotSum[Slots][Group];
  const int slot = warp * Rows + row;
#pragma unroll
  for (int h = 0; h < Group; ++h) {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      slotAcc[slot][h][dim0 + e] = acc[h][e];
    if (lane % Lanes == 0) {
      slotMax[slot][h] = runMax[h];
      slotSum[slot][h] = runSum[h];
    }
  }
  __syncthreads();
  float *out = a.partial + static_cast<int64_t>(chunk) * Group * (HeadDim + 2);
  for (int i = threadIdx.x; i < Group * HeadDim; i += kWarps * 32) {
    const int h = i / HeadDim, e = i % HeadDim;
    float m = -FLT_MAX;
#pragma unroll
    for (int s = 0; s < Slots; ++s)
      m = fmaxf(m, slotMax[s][h]);
    float num = 0, sum = 0;
#pragma unroll
    for (int s = 0; s < Slots; ++s) {
      const float w = __expf(slotMax[s][h] - m);
      num += w * slotAcc[s][h][e];
      sum += w * slotSum[s][h];
    }
    out[h * (HeadDim + 2) + e] = num;
    if (e == 0) {
      out[h * (HeadDim + 2) + HeadDim] = m;
      out[h * (HeadDim + 2) + HeadDim + 1] = sum;
    }
  }
}

/// Block-wide reduction of one float per thread (max or sum).
template <bool IsMax>
__device__ float blockReduce(float v, float *scratch) {
  for (int o = 16; o > 0; o /= 2) {
    float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = IsMax ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? scratch[lane] : (IsMax ? -FLT_MAX : 0.0f);
    for (int o = 16; o > 0; o /= 2) {
      float other = __shfl_xor_sync(0xffffffffu, v, o);
      v = IsMax ? fmaxf(v, other) : v + other;
    }
    if (lane == 0)
      scratch[0] = v;
  }
  __syncthreads();
  float result = scratch[0];
  __syncthreads();
  return result;
}

// One block per segment. The chunks' maxima and sums are reduced across the
// block first (a long segment has hundreds of chunks: a loop per thread
// would serialise their loads); then each thread combines one output
// element over the chunks with several loads in flight.
template <int HeadDim>
__global__ void decodeCombine(DecodeAttentionArgs a) {
  constexpr int Stride = HeadDim + 2;
  __shared__ float scratch[32];
  __shared__ float headMax[8], headSum[8];
  const int seg = blockIdx.x;
  const int first = a.segmentFirstChunk[seg], last = a.segmentFirstChunk[seg + 1];
  const float *partial = a.partial;
  for (int h = 0; h < a.group; ++h) {
    float m = -FLT_MAX;
    for (int c = first + threadIdx.x; c < last; c += blockDim.x)
      m = fmaxf(m, partial[(static_cast<int64_t>(c) * a.group + h) * Stride +
                           HeadDim]);
    m = blockReduce<true>(m, scratch);
    float l = 0;
    for (int c = first + threadIdx.x; c < last; c += blockDim.x) {
      const float *p = partial + (static_cast<int64_t>(c) * a.group + h) * Stride;
      l += __expf(p[HeadDim] - m) * p[HeadDim + 1];
    }
    l = blockReduce<false>(l, scratch);
    if (threadIdx.x == 0) {
      headMax[h] = m;
      headSum[h] = l;
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < a.group * HeadDim; i += blockDim.x) {
    const int h = i / HeadDim, e = i % HeadDim;
    const float m = headMax[h];
    float num = 0;
#pragma unroll 8
    for (int c = first; c < last; ++c) {
      const float *p = partial + (static_cast<int64_t>(c) * a.group + h) * Stride;
      num += __expf(p[HeadDim] - m) * p[e];
    }
    a.out[(static_cast<int64_t>(seg) * a.group + h) * HeadDim + e] =
        headSum[h] > 0 ? num / headSum[h] : 0.0f;
  }
}

} // namespace

cudaError_t launchDecodeAttention(const DecodeAttentionArgs &args,
                                  cudaStream_t stream) {
  if (args.headDim != 128 && args.headDim != 64)
    return cudaErrorInvalidValue;
  if (args.chunks == 0)
    return cudaSuccess;
  const dim3 grid(args.chunks), block(kWarps * 32);
  const DecodeSplitKernel kernel = splitKernel(args);
  const bool online = kernel == DecodeSplitKernel::Online;
  const bool pipelined = kernel == DecodeSplitKernel::OnlinePipelined;
#define FAIRKV_SPLIT(D, G)                                                     \
  case G:                                                                      \
    if (pipelined && args.halfKV)                                              \
      decodeSplitOnline<D, G, __half, true><<<grid, block, 0, stream>>>(args); \
    else if (pipelined)                                                        \
      decodeSplitOnline<D, G, __nv_bfloat16, true>                             \
          <<<grid, block, 0, stream>>>(args);                                  \
    else if (online && args.halfKV)                                            \
      decodeSplitOnline<D, G, __half, false><<<grid, block, 0, stream>>>(args);\
    else if (online)                                                           \
      decodeSplitOnline<D, G, __nv_bfloat16, false>                            \
          <<<grid, block, 0, stream>>>(args);                                  \
    else if (args.halfKV)                                                      \
      decodeSplit<D, G, __half><<<grid, block, 0, stream>>>(args);             \
    else                                                                       \
      decodeSplit<D, G, __nv_bfloat16><<<grid, block, 0, stream>>>(args);      \
    break;
  if (args.headDim == 128) {
    switch (args.group) {
      FAIRKV_SPLIT(128, 1)
      FAIRKV_SPLIT(128, 2)
      FAIRKV_SPLIT(128, 4)
      FAIRKV_SPLIT(128, 8)
    default:
      return cudaErrorInvalidValue;
    }
    decodeCombine<128><<<args.segments, 256, 0, stream>>>(args);
  } else {
    switch (args.group) {
      FAIRKV_SPLIT(64, 1)
      FAIRKV_SPLIT(64, 2)
      FAIRKV_SPLIT(64, 4)
      FAIRKV_SPLIT(64, 8)
    default:
      return cudaErrorInvalidValue;
    }
    decodeCombine<64><<<args.segments, 256, 0, stream>>>(args);
  }
#undef FAIRKV_SPLIT
  return cudaGetLastError();
}

} // namespace fairkv::cuda
