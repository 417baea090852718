//===- ModelConfig.h - The one description of a model ------------*- C++ -*-===//
//
// Everything about a decoder-only transformer that changes what it computes:
// its family, shapes, rotary embedding (with every Hugging Face rope type we
// implement), norms, biases, tied embeddings, sliding window and storage
// type. The importer, the planner, the compiler and the runtime's weight
// checks all read this one struct. Plain C++: no MLIR, no runtime.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_MODEL_MODELCONFIG_H
#define FAIRKV_MODEL_MODELCONFIG_H

#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fairkv::model {

using placement::Result;
using placement::Status;

/// How the rotary inverse frequencies are derived from `theta`, exactly as
/// transformers' modeling_rope_utils.py computes them.
struct RopeScaling {
  /// "default", "linear", "dynamic", "llama3" or "yarn".
  std::string type = "default";
  double factor = 1.0;
  /// llama3 and yarn: the pretraining context; dynamic: max_position_embeddings.
  int64_t originalMaxPositions = 0;
  /// llama3.
  double lowFreqFactor = 1.0, highFreqFactor = 4.0;
  /// yarn.
  double betaFast = 32.0, betaSlow = 1.0;
  bool truncate = true;
  /// yarn: the factor cos and sin are multiplied by (1 for the other types).
  double attentionFactor = 1.0;

  bool isDefault() const { return type == "default"; }
};

struct ModelConfig {
  std::string name;
  /// "llama", "mistral", "qwen2" or "qwen3" (Hugging Face model_type).
  std::string family = "llama";
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  double ropeTheta = 10000.0;
  RopeScaling rope;
  double normEps = 1e-5;
  /// max_position_embeddings (0: unknown, as for presets).
  int64_t maxPositions = 0;
  /// lm_head shares model.embed_tokens.weight.
  bool tiedEmbeddings = false;
  /// q_proj, k_proj and v_proj carry biases (qwen2).
  bool qkvBias = false;
  /// Per-head RMSNorm of q and k before rotary (qwen3).
  bool qkNorm = false;
  /// Mistral's sliding window (0: none): a query attends to the last
  /// `slidingWindow` positions only.
  int64_t slidingWindow = 0;
  /// "f32", "f16" or "bf16".
  std::string dtype = "bf16";

  /// A dense Llama of these sizes (the other fields at their defaults).
  static ModelConfig llama(std::string name, int64_t layers, int64_t hidden,
                           int64_t heads, int64_t kvHeads, int64_t headDim,
                           int64_t ffn, int64_t vocab);

  int64_t dtypeBytes() const { return dtype == "f32" ? 4 : 2; }
  int64_t queryGroup() const { return heads / kvHeads; }
  /// Weight bytes that travel with one KV head: its K and V columns, its
  /// query group's Q columns and O rows (and their biases). Also the price
  /// of one copy.
  double kvHeadWeightBytes() const { return kvHeadWeightBytes(queryGroup()); }
  /// The same for a replica that serves only `queries` of the group's query
  /// heads (tp with more devices than KV heads): all of K and V, that many
  /// Q columns and O rows.
  double kvHeadWeightBytes(int64_t queries) const;
  /// The query heads each device serves when tp replicates KV heads over
  /// more devices than there are (vLLM's layout), or 0 when `devices` does
  /// not split the query heads evenly that way.
  int64_t tpReplicatedQueries(int devices) const;
  /// KV cache bytes of one token of one KV head (K and V).
  double kvBytesPerToken() const { return 2.0 * headDim * dtypeBytes(); }
  /// Weight bytes of one device's MLP shard of one layer under TP.
  double mlpBytesPerDevice(int devices) const;
  /// Weight bytes a device holds outside the attention heads: its MLP shards,
  /// its vocab-parallel embedding and LM head slices, replicated norms.
  double nonAttentionBytesPerDevice(int devices) const;
  /// Attention weight bytes of one device under TP: its share of the KV
  /// heads, or, with more devices than KV heads, one KV head and its slice
  /// of the query group on every device.
  double tpAttentionBytesPerDevice(int devices) const;
  /// All weight bytes of one device under contiguous TP.
  double tpWeightBytesPerDevice(int devices) const;

  /// The rotary inverse frequencies, head_dim / 2 of them, as transformers
  /// computes them in float32 for a forward pass whose largest position is
  /// `seqLen - 1` (only "dynamic" depends on it: past
  /// `originalMaxPositions` it rescales the base, below it equals
  /// "default").
  std::vector<float> ropeInverseFrequencies(int64_t seqLen = 0) const;
  /// The first position the CUDA backend cannot compute as transformers
  /// does (0: none): its kernels neither mask a sliding window nor rescale
  /// dynamic frequencies (the CPU backend does both). `why` says which.
  int64_t cudaPositionLimit(std::string *why = nullptr) const;

  /// One line saying what the model is: family, shapes, rope, options.
  std::string describe() const;

  /// Checks every size is positive, heads divide into KV heads, the rope
  /// parameters are usable and the family's options are consistent.
  Status validate() const;
};

/// What a weight tensor is, for checks and for seeded random weights.
enum class TensorKind { Matrix, Norm, Bias };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorKind kind = TensorKind::Matrix;
};

/// Every tensor the model reads, with its Hugging Face name and shape, in
/// checkpoint order. A tied model has no lm_head.weight.
std::vector<TensorSpec> modelTensors(const ModelConfig &model);

/// Reads a Hugging Face config.json, in transformers 5's layout
/// (`rope_parameters`, `dtype`) or the older one (`rope_theta`,
/// `rope_scaling`, `torch_dtype`). Anything that would change the computed
/// function and is not implemented is refused with one line naming the key
/// and its value.
Result<ModelConfig> loadHFConfig(const std::string &path);
/// The same for config.json text; `path` names it in errors.
Result<ModelConfig> parseHFConfig(const std::string &text,
                                  const std::string &path);

} // namespace fairkv::model

#endif // FAIRKV_MODEL_MODELCONFIG_H
