//===- DecodeStep.cu - One decode step of a whole model on one GPU --------===//

#include "DecodeStep.h"

#include <cfloat>
#include <cmath>

using namespace fairkv::cuda;

namespace {

std::string cudaText(cudaError_t e, const char *what) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

#define RETURN_IF_CUDA(call)                                                   \
  do {                                                                         \
    cudaError_t err_ = (call);                                                 \
    if (err_ != cudaSuccess)                                                   \
      return cudaText(err_, #call);                                            \
  } while (0)

#define RETURN_IF_CUBLAS(call)                                                 \
  do {                                                                         \
    cublasStatus_t st_ = (call);                                               \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                          \
      return std::string(#call) + ": cuBLAS status " + std::to_string(st_);   \
  } while (0)

__global__ void fillUniformKernel(__nv_bfloat16 *p, int64_t n, uint64_t seed,
                                  float scale, float offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = static_cast<float>(z >> 40) / float(1 << 23) - 1.0f; // [-1, 1)
    p[i] = __float2bfloat16(offset + scale * u);
  }
}

/// x[b] = embed[ids[b]] (fp32).
__global__ void embeddingKernel(const __nv_bfloat16 *table, const int *ids,
                                float *x, int hidden) {
  const int b = blockIdx.x;
  const __nv_bfloat16 *row = table + static_cast<int64_t>(ids[b]) * hidden;
  for (int e = threadIdx.x; e < hidden; e += blockDim.x)
    x[static_cast<int64_t>(b) * hidden + e] = __bfloat162float(row[e]);
}

/// Block-wide sum of one float per thread (blockDim.x a multiple of 32,
/// at most 1024).
__device__ float blockSum(float v) {
  __shared__ float warps[32];
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < (blockDim.x + 31) / 32; ++w)
    total += warps[w];
  __syncthreads();
  return total;
}

/// out[b] = bf16(x[b] / rms(x[b]) * w), one block per row.
__global__ void rmsNormKernel(const float *x, const __nv_bfloat16 *w,
                              __nv_bfloat16 *out, int hidden, float eps) {
  const float *row = x + static_cast<int64_t>(blockIdx.x) * hidden;
  float sq = 0;
  for (int e = threadIdx.x; e < hidden; e += blockDim.x)
    sq += row[e] * row[e];
  const float inv = rsqrtf(blockSum(sq) / hidden + eps);
  for (int e = threadIdx.x; e < hidden; e += blockDim.x)
    out[static_cast<int64_t>(blockIdx.x) * hidden + e] =
        __float2bfloat16(row[e] * inv * __bfloat162float(w[e]));
}

/// Rotates q and k of request blockIdx.x at its position, writes q to
/// `queries` [batch, heads, headDim] and appends k and v (bf16) to the
/// request's segment of every KV head.
__global__ void rotaryAppendKernel(const float *qkv, const int *positions0,
                                   const int *stepCounter, double theta, int heads,
                                   int kvHeads, int headDim, float *queries,
                                   __nv_bfloat16 *keys, __nv_bfloat16 *values,
                                   const int64_t *appendStart) {
  const int b = blockIdx.x;
  const int half = headDim / 2;
  const int step = *stepCounter;
  const double position = positions0[b] + step;
  const float *row = qkv + static_cast<int64_t>(b) * (heads + 2 * kvHeads) *
                               headDim;
  // Pairs (i, i + half) of every q head, then every k head.
  for (int p = threadIdx.x; p < (heads + kvHeads) * half; p += blockDim.x) {
    const int head = p / half, i = p % half;
    double angle = position * pow(theta, -2.0 * i / headDim);
    double s, c;
    sincos(angle, &s, &c);
    const float *in = row + head * headDim;
    float lo = in[i] * static_cast<float>(c) - in[i + half] * static_cast<float>(s);
    float hi = in[i + half] * static_cast<float>(c) + in[i] * static_cast<float>(s);
    if (head < heads) {
      float *q = queries + (static_cast<int64_t>(b) * heads + head) * headDim;
      q[i] = lo;
      q[i + half] = hi;
    } else {
      const int j = head - heads;
      int64_t slot = appendStart[b * kvHeads + j] + step;
      keys[slot * headDim + i] = __float2bfloat16(lo);
      keys[slot * headDim + i + half] = __float2bfloat16(hi);
    }
  }
  for (int e = threadIdx.x; e < kvHeads * headDim; e += blockDim.x) {
    const int j = e / headDim, k = e % headDim;
    int64_t slot = appendStart[b * kvHeads + j] + step;
    values[slot * headDim + k] =
        __float2bfloat16(row[(heads + kvHeads) * headDim + e]);
  }
}

__global__ void advanceStepKernel(int *stepCounter) { ++*stepCounter; }

__global__ void toBf16Kernel(const float *in, __nv_bfloat16 *out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

/// act[b, f] = bf16(silu(gate) * up) from gateUp [batch, 2 ffn].
__global__ void siluMulKernel(const float *gateUp, __nv_bfloat16 *act,
                              int ffn, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t b = i / ffn, f = i % ffn;
    float g = gateUp[b * 2 * ffn + f], u = gateUp[b * 2 * ffn + ffn + f];
    act[i] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
  }
}

/// next[b] = argmax of logits[b] (ties: the smallest id), one block per row.
__global__ void argmaxKernel(const float *logits, int vocab, int *next) {
  const float *row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float best = -FLT_MAX;
  int id = vocab;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x)
    if (row[v] > best) {
      best = row[v];
      id = v;
    }
  __shared__ float bestOf[1024];
  __shared__ int idOf[1024];
  bestOf[threadIdx.x] = best;
  idOf[threadIdx.x] = id;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      float ob = bestOf[threadIdx.x + stride];
      int oi = idOf[threadIdx.x + stride];
      if (ob > bestOf[threadIdx.x] ||
          (ob == bestOf[threadIdx.x] && oi < idOf[threadIdx.x])) {
        bestOf[threadIdx.x] = ob;
        idOf[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    next[blockIdx.x] = idOf[0];
}

/// y[M, N] (+)= x[M, K] * W[N, K]^T: bf16 inputs, fp32 output and
/// accumulation. Row-major y is column-major y^T = W x^T.
std::string gemm(cublasHandle_t blas, const __nv_bfloat16 *x,
                 const __nv_bfloat16 *w, float *y, int m, int n, int k,
                 bool accumulate) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  RETURN_IF_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k,
                                &alpha, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k,
                                &beta, y, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  return "";
}

int gridFor(int64_t n) {
  return static_cast<int>(std::min<int64_t>(4096, (n + 255) / 256));
}

} // namespace

void fairkv::cuda::fillUniform(__nv_bfloat16 *data, int64_t count,
                               uint64_t seed, float scale, float offset,
                               cudaStream_t stream) {
  fillUniformKernel<<<gridFor(count), 256, 0, stream>>>(data, count, seed,
                                                        scale, offset);
}

template <typename T> T *DecodeBatch::alloc(size_t count) {
  void *p = nullptr;
  if (cudaMalloc(&p, std::max<size_t>(1, count) * sizeof(T)) != cudaSuccess)
    return nullptr;
  owned.push_back(p);
  return static_cast<T *>(p);
}

DecodeBatch::~DecodeBatch() {
  for (void *p : owned)
    cudaFree(p);
}

std::string DecodeBatch::plan(const ModelDims &dims, int batchSize,
                              const std::vector<std::vector<int64_t>> &initial,
                              const std::vector<int> &startPositions,
                              int stepCount) {
  batch = batchSize;
  steps = stepCount;
  const int segments = batch * dims.kvHeads, d = dims.headDim;
  if (static_cast<int>(initial.size()) != dims.layers ||
      static_cast<int>(startPositions.size()) != batch)
    return "plan: one length list per layer and one position per request";
  if (d != 64 && d != 128)
    return "plan: head_dim must be 64 or 128";
  for (int l = 0; l < dims.layers; ++l) {
    if (static_cast<int>(initial[l].size()) != segments)
      return "plan: layer " + std::to_string(l) + " needs " +
             std::to_string(segments) + " segment lengths";
    std::vector<int64_t> base(segments), start(segments);
    int64_t capacity = 0;
    for (int s = 0; s < segments; ++s) {
      base[s] = capacity;
      start[s] = capacity + initial[l][s];
      capacity += initial[l][s] + steps;
    }
    bases.push_back(base);
    auto *k = alloc<__nv_bfloat16>(capacity * d);
    auto *v = alloc<__nv_bfloat16>(capacity * d);
    auto *startD = alloc<int64_t>(segments);
    if (!k || !v || !startD)
      return "plan: out of GPU memory for the KV cache of layer " +
             std::to_string(l);
    cacheBytes += 2 * capacity * d * sizeof(__nv_bfloat16);
    layerKeys.push_back(k);
    layerValues.push_back(v);
    appendStart.push_back(startD);
    RETURN_IF_CUDA(cudaMemcpy(startD, start.data(), segments * sizeof(int64_t),
                              cudaMemcpyHostToDevice));
  }
  // One chunk table per layer over each segment's room (initial + steps);
  // the kernel clips it to the step's length.
  std::vector<int> chunkSegment, firstChunk;
  std::vector<int64_t> chunkBegin, chunkEnd;
  struct Range {
    size_t chunk0, chunks, first0;
  };
  std::vector<Range> ranges(dims.layers);
  for (int l = 0; l < dims.layers; ++l) {
    Range r{chunkSegment.size(), 0, firstChunk.size()};
    for (int s = 0; s < segments; ++s) {
      firstChunk.push_back(static_cast<int>(chunkSegment.size() - r.chunk0));
      const int64_t room = initial[l][s] + steps;
      for (int64_t u = 0; u < room; u += kChunkTokens) {
        chunkSegment.push_back(s);
        chunkBegin.push_back(bases[l][s] + u);
        chunkEnd.push_back(bases[l][s] + std::min<int64_t>(room, u + kChunkTokens));
      }
    }
    firstChunk.push_back(static_cast<int>(chunkSegment.size() - r.chunk0));
    r.chunks = chunkSegment.size() - r.chunk0;
    ranges[l] = r;
  }
  auto *segD = alloc<int>(chunkSegment.size());
  auto *beginD = alloc<int64_t>(chunkBegin.size());
  auto *endD = alloc<int64_t>(chunkEnd.size());
  auto *firstD = alloc<int>(firstChunk.size());
  size_t maxChunks = 0;
  for (const Range &r : ranges)
    maxChunks = std::max(maxChunks, r.chunks);
  auto *partial = alloc<float>(partialFloats(static_cast<int>(maxChunks),
                                             dims.group(), d));
  x = alloc<float>(int64_t(batch) * dims.hidden);
  qkv = alloc<float>(int64_t(batch) * dims.qkvRows());
  queries = alloc<float>(int64_t(batch) * dims.heads * d);
  attnOut = alloc<float>(int64_t(batch) * dims.heads * d);
  gateUp = alloc<float>(int64_t(batch) * 2 * dims.ffn);
  logitsBuffer = alloc<float>(int64_t(batch) * dims.vocab);
  normed = alloc<__nv_bfloat16>(int64_t(batch) * dims.hidden);
  attnBf16 = alloc<__nv_bfloat16>(int64_t(batch) * dims.heads * d);
  act = alloc<__nv_bfloat16>(int64_t(batch) * dims.ffn);
  positions0 = alloc<int>(batch);
  stepCounter = alloc<int>(1);
  if (!segD || !beginD || !endD || !firstD || !partial || !x || !qkv ||
      !queries || !attnOut || !gateUp || !logitsBuffer || !normed ||
      !attnBf16 || !act || !positions0 || !stepCounter)
    return "plan: out of GPU memory for the step's buffers";
  RETURN_IF_CUDA(cudaMemcpy(segD, chunkSegment.data(),
                            chunkSegment.size() * sizeof(int),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(beginD, chunkBegin.data(),
                            chunkBegin.size() * sizeof(int64_t),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(endD, chunkEnd.data(),
                            chunkEnd.size() * sizeof(int64_t),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(firstD, firstChunk.data(),
                            firstChunk.size() * sizeof(int),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(positions0, startPositions.data(),
                            batch * sizeof(int), cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemset(stepCounter, 0, sizeof(int)));
  attention.assign(dims.layers, DecodeAttentionArgs());
  for (int l = 0; l < dims.layers; ++l) {
    const Range &r = ranges[l];
    DecodeAttentionArgs &a = attention[l];
    a.keys = layerKeys[l];
    a.values = layerValues[l];
    a.queries = queries;
    a.out = attnOut;
    a.segments = segments;
    a.group = dims.group();
    a.headDim = d;
    a.chunkSegment = segD + r.chunk0;
    a.chunkBegin = beginD + r.chunk0;
    a.chunkEnd = endD + r.chunk0;
    a.chunks = static_cast<int>(r.chunks);
    a.segmentFirstChunk = firstD + r.first0;
    a.partial = partial;
    a.decodeStart = appendStart[l];
    a.step = stepCounter;
  }
  return "";
}

std::string DecodeBatch::setStep(int t, cudaStream_t stream) {
  if (t < 0 || t >= steps)
    return "step " + std::to_string(t) + " was not planned";
  RETURN_IF_CUDA(cudaMemcpyAsync(stepCounter, &t, sizeof(int),
                                 cudaMemcpyHostToDevice, stream));
  RETURN_IF_CUDA(cudaStreamSynchronize(stream));
  return "";
}

std::string DecodeBatch::captureStep(const ModelDims &dims,
                                     const ModelWeights &weights,
                                     cublasHandle_t blas, int *ids, int *next,
                                     cudaStream_t stream,
                                     cudaGraphExec_t *graph) {
  RETURN_IF_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  std::string error = step(dims, weights, blas, ids, next, stream);
  cudaGraph_t captured = nullptr;
  cudaError_t ended = cudaStreamEndCapture(stream, &captured);
  if (!error.empty())
    return error;
  RETURN_IF_CUDA(ended);
  cudaError_t made = cudaGraphInstantiate(graph, captured, 0);
  cudaGraphDestroy(captured);
  RETURN_IF_CUDA(made);
  return "";
}

std::string DecodeBatch::step(const ModelDims &dims,
                              const ModelWeights &weights, cublasHandle_t blas,
                              int *ids, int *next, cudaStream_t stream) {
  RETURN_IF_CUBLAS(cublasSetStream(blas, stream));
  const int H = dims.hidden, d = dims.headDim;
  const int threads = 256;
  embeddingKernel<<<batch, threads, 0, stream>>>(weights.embed, ids, x, H);
  for (int l = 0; l < dims.layers; ++l) {
    const LayerWeights &w = weights.layers[l];
    rmsNormKernel<<<batch, threads, 0, stream>>>(x, w.attnNorm, normed, H,
                                                 static_cast<float>(dims.normEps));
    if (std::string e = gemm(blas, normed, w.qkv, qkv, batch, dims.qkvRows(),
                             H, false);
        !e.empty())
      return e;
    rotaryAppendKernel<<<batch, threads, 0, stream>>>(
        qkv, positions0, stepCounter, dims.ropeTheta, dims.heads, dims.kvHeads, d,
        queries, layerKeys[l], layerValues[l], appendStart[l]);
    RETURN_IF_CUDA(launchDecodeAttention(attention[l], stream));
    const int64_t attnElems = int64_t(batch) * dims.heads * d;
    toBf16Kernel<<<gridFor(attnElems), threads, 0, stream>>>(attnOut, attnBf16,
                                                             attnElems);
    // The residual add is the GEMM's beta = 1.
    if (std::string e = gemm(blas, attnBf16, w.o, x, batch, H,
                             dims.heads * d, true);
        !e.empty())
      return e;
    rmsNormKernel<<<batch, threads, 0, stream>>>(x, w.mlpNorm, normed, H,
                                                 static_cast<float>(dims.normEps));
    if (std::string e = gemm(blas, normed, w.gateUp, gateUp, batch,
                             2 * dims.ffn, H, false);
        !e.empty())
      return e;
    const int64_t actElems = int64_t(batch) * dims.ffn;
    siluMulKernel<<<gridFor(actElems), threads, 0, stream>>>(gateUp, act,
                                                             dims.ffn, actElems);
    if (std::string e = gemm(blas, act, w.down, x, batch, H, dims.ffn, true);
        !e.empty())
      return e;
  }
  rmsNormKernel<<<batch, threads, 0, stream>>>(x, weights.finalNorm, normed, H,
                                               static_cast<float>(dims.normEps));
  if (std::string e = gemm(blas, normed, weights.lmHead, logitsBuffer, batch,
                           dims.vocab, H, false);
      !e.empty())
    return e;
  argmaxKernel<<<batch, 1024, 0, stream>>>(logitsBuffer, dims.vocab, next);
  RETURN_IF_CUDA(cudaMemcpyAsync(ids, next, batch * sizeof(int),
                                 cudaMemcpyDeviceToDevice, stream));
  advanceStepKernel<<<1, 1, 0, stream>>>(stepCounter);
  RETURN_IF_CUDA(cudaGetLastError());
  return "";
}
