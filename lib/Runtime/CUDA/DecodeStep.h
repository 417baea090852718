//===- DecodeStep.h - One decode step of a whole model on one GPU -*- C++ -*-===//
//
// The CUDA decode step of a Llama/Mistral-style model: bf16 weights and KV,
// fp32 activations and accumulation, cuBLAS GEMMs (bf16 in, fp32 out), and
// kernels for the embedding, RMSNorm, rotary embedding with the KV append
// into the per-(request, KV head) segments, the compressed decode attention
// (DecodeAttention.h), the gated MLP activation and greedy argmax. A batch
// is planned once on the host: every segment gets room for the steps to
// come, and the attention chunk table covers that room, clipped on the
// device to each step's length. The step number lives in device memory, so
// a step is launches only and one captured CUDA graph replays every step.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_DECODESTEP_H
#define FAIRKV_RUNTIME_CUDA_DECODESTEP_H

#include "DecodeAttention.h"
#include "ModelKernels.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::cuda {

struct ModelDims {
  int layers = 0, hidden = 0, heads = 0, kvHeads = 0, headDim = 0, ffn = 0,
      vocab = 0;
  double ropeTheta = 10000.0, normEps = 1e-5;
  int group() const { return heads / kvHeads; }
  /// Rows of the fused q/k/v projection.
  int qkvRows() const { return (heads + 2 * kvHeads) * headDim; }
};

/// Device pointers of one layer's weights, Hugging Face layout [out, in].
struct LayerWeights {
  const __nv_bfloat16 *attnNorm = nullptr; ///< [hidden]
  const __nv_bfloat16 *qkv = nullptr;      ///< [q; k; v] rows, [qkvRows, hidden]
  const __nv_bfloat16 *o = nullptr;        ///< [hidden, heads * headDim]
  const __nv_bfloat16 *mlpNorm = nullptr;  ///< [hidden]
  const __nv_bfloat16 *gateUp = nullptr;   ///< [gate; up] rows, [2 ffn, hidden]
  const __nv_bfloat16 *down = nullptr;     ///< [hidden, ffn]
};

struct ModelWeights {
  const __nv_bfloat16 *embed = nullptr;     ///< [vocab, hidden]
  const __nv_bfloat16 *finalNorm = nullptr; ///< [hidden]
  const __nv_bfloat16 *lmHead = nullptr;    ///< [vocab, hidden]
  std::vector<LayerWeights> layers;
};

/// A batch's KV cache and step plan. Segment s = request * kvHeads + head of
/// a layer holds `initial[l][s]` tokens at `base[l][s]` and room for
/// `steps` more.
class DecodeBatch {
public:
  ~DecodeBatch();
  /// Allocates the cache and the per-step chunk tables for `batch` requests
  /// whose segments start with `initial[layer][segment]` tokens, for
  /// `steps` decode steps; positions of step t are startPositions[b] + t.
  std::string plan(const ModelDims &dims, int batch,
                   const std::vector<std::vector<int64_t>> &initial,
                   const std::vector<int> &startPositions, int steps);
  /// Layer l's keys and values ([capacity tokens, headDim] each).
  __nv_bfloat16 *keys(int layer) const { return layerKeys[layer]; }
  __nv_bfloat16 *values(int layer) const { return layerValues[layer]; }
  /// Where segment s of layer l starts in its layer's storage.
  int64_t base(int layer, int segment) const { return bases[layer][segment]; }
  int64_t kvBytes() const { return cacheBytes; }

  /// Sets the device's step counter (the next step() runs step `t`).
  std::string setStep(int t, cudaStream_t stream);
  /// Runs one decode step at the device's step counter: reads ids [batch]
  /// (int32), writes the greedy tokens to `next` and copies them back into
  /// `ids` for the following step, leaves the logits [batch, vocab] in
  /// logits(), and advances the counter. Launches only (capturable).
  std::string step(const ModelDims &dims, const ModelWeights &weights,
                   cublasHandle_t blas, int *ids, int *next,
                   cudaStream_t stream);
  /// Captures step() on `stream` into an executable graph.
  std::string captureStep(const ModelDims &dims, const ModelWeights &weights,
                          cublasHandle_t blas, int *ids, int *next,
                          cudaStream_t stream, cudaGraphExec_t *graph);
  const float *logits() const { return logitsBuffer; }

private:
  int batch = 0, steps = 0;
  std::vector<__nv_bfloat16 *> layerKeys, layerValues;
  std::vector<std::vector<int64_t>> bases;
  /// Per layer: where each segment's next token goes at step 0.
  std::vector<int64_t *> appendStart;
  int *positions0 = nullptr;
  /// Per layer: the attention launch's arguments.
  std::vector<DecodeAttentionArgs> attention;
  int *stepCounter = nullptr;
  std::vector<void *> owned;
  int64_t cacheBytes = 0;
  float *x = nullptr, *qkv = nullptr, *attnOut = nullptr, *gateUp = nullptr,
        *logitsBuffer = nullptr;
  __nv_bfloat16 *normed = nullptr, *attnBf16 = nullptr, *act = nullptr;
  float *queries = nullptr;
  template <typename T> T *alloc(size_t count);
};

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_DECODESTEP_H
