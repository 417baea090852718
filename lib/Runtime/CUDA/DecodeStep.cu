//===- DecodeStep.cu - One decode step of a whole model on one GPU --------===//

#include "DecodeStep.h"
#include "ModelKernels.h"

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
    float c, s;
    rotaryAngle(position, i, headDim, theta, c, s);
    const float *in = row + head * headDim;
    const float lo = in[i] * c - in[i + half] * s;
    const float hi = in[i + half] * c + in[i] * s;
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


} // namespace

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
  // the kernel clips it to the step's length. The layers' tables lie one
  // after another in one device buffer each.
  ChunkTable all;
  struct Range {
    size_t chunk0, chunks, first0;
  };
  std::vector<Range> ranges(dims.layers);
  for (int l = 0; l < dims.layers; ++l) {
    std::vector<int64_t> room(segments);
    for (int s = 0; s < segments; ++s)
      room[s] = initial[l][s] + steps;
    const ChunkTable t = planChunks(bases[l], room);
    ranges[l] = {all.segment.size(), t.segment.size(), all.firstChunk.size()};
    all.segment.insert(all.segment.end(), t.segment.begin(), t.segment.end());
    all.begin.insert(all.begin.end(), t.begin.begin(), t.begin.end());
    all.end.insert(all.end.end(), t.end.begin(), t.end.end());
    all.firstChunk.insert(all.firstChunk.end(), t.firstChunk.begin(),
                          t.firstChunk.end());
  }
  auto *segD = alloc<int>(all.segment.size());
  auto *beginD = alloc<int64_t>(all.begin.size());
  auto *endD = alloc<int64_t>(all.end.size());
  auto *firstD = alloc<int>(all.firstChunk.size());
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
  RETURN_IF_CUDA(cudaMemcpy(segD, all.segment.data(),
                            all.segment.size() * sizeof(int),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(beginD, all.begin.data(),
                            all.begin.size() * sizeof(int64_t),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(endD, all.end.data(),
                            all.end.size() * sizeof(int64_t),
                            cudaMemcpyHostToDevice));
  RETURN_IF_CUDA(cudaMemcpy(firstD, all.firstChunk.data(),
                            all.firstChunk.size() * sizeof(int),
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
  const float eps = static_cast<float>(dims.normEps);
  RETURN_IF_CUDA(embedding(weights.embed, ids, batch, H, x, stream));
  for (int l = 0; l < dims.layers; ++l) {
    const LayerWeights &w = weights.layers[l];
    RETURN_IF_CUDA(rmsNorm(x, w.attnNorm, batch, H, eps, normed, stream));
    RETURN_IF_CUBLAS(gemm(blas, normed, w.qkv, qkv, batch, dims.qkvRows(), H,
                          false));
    rotaryAppendKernel<<<batch, 256, 0, stream>>>(
        qkv, positions0, stepCounter, dims.ropeTheta, dims.heads, dims.kvHeads,
        d, queries, layerKeys[l], layerValues[l], appendStart[l]);
    RETURN_IF_CUDA(launchDecodeAttention(attention[l], stream));
    RETURN_IF_CUDA(toStorage(attnOut, attnBf16, int64_t(batch) * dims.heads * d,
                          stream));
    // The residual add is the GEMM's beta = 1.
    RETURN_IF_CUBLAS(gemm(blas, attnBf16, w.o, x, batch, H, dims.heads * d,
                          true));
    RETURN_IF_CUDA(rmsNorm(x, w.mlpNorm, batch, H, eps, normed, stream));
    RETURN_IF_CUBLAS(gemm(blas, normed, w.gateUp, gateUp, batch, 2 * dims.ffn,
                          H, false));
    RETURN_IF_CUDA(siluMul(gateUp, gateUp + dims.ffn, 2 * int64_t(dims.ffn),
                           batch, dims.ffn, act, stream));
    RETURN_IF_CUBLAS(gemm(blas, act, w.down, x, batch, H, dims.ffn, true));
  }
  RETURN_IF_CUDA(rmsNorm(x, weights.finalNorm, batch, H, eps, normed, stream));
  RETURN_IF_CUBLAS(gemm(blas, normed, weights.lmHead, logitsBuffer, batch,
                        dims.vocab, H, false));
  RETURN_IF_CUDA(argmax(logitsBuffer, dims.vocab, batch, dims.vocab, next,
                        stream));
  RETURN_IF_CUDA(cudaMemcpyAsync(ids, next, batch * sizeof(int),
                                 cudaMemcpyDeviceToDevice, stream));
  advanceStepKernel<<<1, 1, 0, stream>>>(stepCounter);
  RETURN_IF_CUDA(cudaGetLastError());
  return "";
}
