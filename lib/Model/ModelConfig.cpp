//===- ModelConfig.cpp - Sizes, checks and tensors of a model -------------===//

#include "fairkv/Model/ModelConfig.h"

#include <iterator>
#include <sstream>

using namespace fairkv::model;
using fairkv::placement::makeError;

ModelConfig ModelConfig::llama(std::string name, int64_t layers,
                               int64_t hidden, int64_t heads, int64_t kvHeads,
                               int64_t headDim, int64_t ffn, int64_t vocab) {
  ModelConfig m;
  m.name = std::move(name);
  m.layers = layers;
  m.hidden = hidden;
  m.heads = heads;
  m.kvHeads = kvHeads;
  m.headDim = headDim;
  m.ffn = ffn;
  m.vocab = vocab;
  return m;
}

double ModelConfig::kvHeadWeightBytes(int64_t queries) const {
  // K and V: 2 * head_dim columns; Q: `queries` * head_dim columns; O: the
  // same number of rows; each is `hidden` long. Biases add one value per
  // K, V and Q column.
  double columns = static_cast<double>(2 + queries) * headDim;
  double bytes = (columns + static_cast<double>(queries) * headDim) * hidden;
  if (qkvBias)
    bytes += columns;
  return bytes * dtypeBytes();
}

int64_t ModelConfig::tpReplicatedQueries(int devices) const {
  if (devices <= kvHeads || kvHeads <= 0 || devices % kvHeads != 0 ||
      heads % devices != 0)
    return 0;
  return heads / devices;
}

double ModelConfig::mlpBytesPerDevice(int devices) const {
  return 3.0 * hidden * ffn * dtypeBytes() / devices;
}

double ModelConfig::nonAttentionBytesPerDevice(int devices) const {
  double embedAndHead =
      (tiedEmbeddings ? 1.0 : 2.0) * vocab * hidden * dtypeBytes() / devices;
  double norms = (2.0 * layers + 1) * hidden * dtypeBytes();
  if (qkNorm)
    norms += 2.0 * layers * headDim * dtypeBytes();
  return layers * mlpBytesPerDevice(devices) + embedAndHead + norms;
}

double ModelConfig::tpAttentionBytesPerDevice(int devices) const {
  if (int64_t queries = tpReplicatedQueries(devices))
    return static_cast<double>(layers) * kvHeadWeightBytes(queries);
  return static_cast<double>(layers) * kvHeads * kvHeadWeightBytes() / devices;
}

double ModelConfig::tpWeightBytesPerDevice(int devices) const {
  return nonAttentionBytesPerDevice(devices) +
         tpAttentionBytesPerDevice(devices);
}

int64_t ModelConfig::cudaPositionLimit(std::string *why) const {
  int64_t limit = 0;
  auto lower = [&](int64_t value, const std::string &reason) {
    if (value > 0 && (limit == 0 || value < limit)) {
      limit = value;
      if (why)
        *why = reason;
    }
  };
  if (rope.type == "dynamic")
    lower(rope.originalMaxPositions,
          "the CUDA backend does not rescale rope type 'dynamic' past "
          "max_position_embeddings = " +
              std::to_string(rope.originalMaxPositions) +
              " yet (the CPU backend does)");
  if (slidingWindow > 0)
    lower(slidingWindow,
          "the CUDA backend does not implement the model's sliding_window = " +
              std::to_string(slidingWindow) + " yet (the CPU backend does)");
  return limit;
}

Status ModelConfig::validate() const {
  std::pair<const char *, int64_t> sizes[] = {
      {"layers", layers}, {"hidden", hidden},     {"heads", heads},
      {"kv_heads", kvHeads}, {"head_dim", headDim}, {"ffn", ffn},
      {"vocab", vocab}};
  for (auto [key, value] : sizes)
    if (value <= 0)
      return makeError("model '" + name + "': " + key +
                       " must be positive, got " + std::to_string(value));
  // Far above any published model, and low enough that no size computed
  // from them (weights, a layer's tensors, the KV of a token) overflows.
  std::pair<const char *, int64_t> limits[] = {
      {"layers", 4096},       {"hidden", 1 << 20},    {"heads", 1 << 14},
      {"kv_heads", 1 << 14},  {"head_dim", 1 << 14},  {"ffn", 1 << 22},
      {"vocab", 1 << 24}};
  for (size_t i = 0; i < std::size(limits); ++i)
    if (sizes[i].second > limits[i].second)
      return makeError("model '" + name + "': " + limits[i].first + " = " +
                       std::to_string(sizes[i].second) + " exceeds " +
                       std::to_string(limits[i].second));
  if (maxPositions < 0 || maxPositions > (int64_t(1) << 32) ||
      slidingWindow > (int64_t(1) << 32))
    return makeError("model '" + name +
                     "': max_position_embeddings and sliding_window must be "
                     "in [0, 2^32]");
  if (heads % kvHeads != 0)
    return makeError("model '" + name + "': heads (" + std::to_string(heads) +
                     ") must be divisible by kv_heads (" +
                     std::to_string(kvHeads) + ")");
  if (headDim % 2 != 0)
    return makeError("model '" + name + "': head_dim (" +
                     std::to_string(headDim) +
                     ") must be even (rotary embedding rotates pairs)");
  if (!(ropeTheta > 0) || !(normEps > 0))
    return makeError("model '" + name +
                     "': rope_theta and rms_norm_eps must be positive");
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16")
    return makeError("model '" + name + "': dtype must be f32, f16 or bf16");
  if (family != "llama" && family != "mistral" && family != "qwen2" &&
      family != "qwen3")
    return makeError("model '" + name + "': unsupported family '" + family +
                     "'");
  const std::string &t = rope.type;
  if (t != "default" && t != "linear" && t != "dynamic" && t != "llama3" &&
      t != "yarn")
    return makeError("model '" + name + "': unsupported rope type '" + t +
                     "'");
  if (!rope.isDefault() && !(rope.factor > 0 && rope.factor < 1e6) )
    return makeError("model '" + name +
                     "': rope factor must be positive and below 1e6");
  if ((t == "llama3" || t == "yarn" || t == "dynamic") &&
      rope.originalMaxPositions <= 0)
    return makeError("model '" + name + "': rope type '" + t +
                     "' needs original_max_position_embeddings");
  if (t == "llama3" && !(rope.highFreqFactor > rope.lowFreqFactor))
    return makeError("model '" + name +
                     "': rope high_freq_factor must exceed low_freq_factor");
  if (slidingWindow < 0)
    return makeError("model '" + name + "': sliding_window must be positive");
  return Status::ok();
}

std::string ModelConfig::describe() const {
  std::ostringstream o;
  o << family << ": " << layers << " layers, hidden " << hidden << ", "
    << heads << " query / " << kvHeads << " KV heads of " << headDim
    << ", ffn " << ffn << ", vocab " << vocab << ", rope " << rope.type
    << " theta " << ropeTheta;
  if (!rope.isDefault())
    o << " factor " << rope.factor;
  if (rope.type == "llama3" || rope.type == "yarn")
    o << " over " << rope.originalMaxPositions << " positions";
  if (maxPositions > 0)
    o << ", " << maxPositions << " positions";
  if (tiedEmbeddings)
    o << ", tied embeddings";
  if (qkvBias)
    o << ", q/k/v biases";
  if (qkNorm)
    o << ", q/k norms";
  if (slidingWindow > 0)
    o << ", sliding window " << slidingWindow;
  o << ", " << dtype;
  return o.str();
}

std::vector<TensorSpec> fairkv::model::modelTensors(const ModelConfig &m) {
  const int64_t H = m.hidden, D = m.headDim;
  std::vector<TensorSpec> t = {
      {"model.embed_tokens.weight", {m.vocab, H}, TensorKind::Matrix}};
  for (int64_t l = 0; l < m.layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {H}, TensorKind::Norm});
    for (auto [proj, rows] : {std::pair<const char *, int64_t>{"q", m.heads},
                              {"k", m.kvHeads},
                              {"v", m.kvHeads}}) {
      std::string base = p + "self_attn." + proj + "_proj.";
      t.push_back({base + "weight", {rows * D, H}, TensorKind::Matrix});
      if (m.qkvBias)
        t.push_back({base + "bias", {rows * D}, TensorKind::Bias});
    }
    if (m.qkNorm) {
      t.push_back({p + "self_attn.q_norm.weight", {D}, TensorKind::Norm});
      t.push_back({p + "self_attn.k_norm.weight", {D}, TensorKind::Norm});
    }
    t.push_back(
        {p + "self_attn.o_proj.weight", {H, m.heads * D}, TensorKind::Matrix});
    t.push_back({p + "post_attention_layernorm.weight", {H}, TensorKind::Norm});
    t.push_back({p + "mlp.gate_proj.weight", {m.ffn, H}, TensorKind::Matrix});
    t.push_back({p + "mlp.up_proj.weight", {m.ffn, H}, TensorKind::Matrix});
    t.push_back({p + "mlp.down_proj.weight", {H, m.ffn}, TensorKind::Matrix});
  }
  t.push_back({"model.norm.weight", {H}, TensorKind::Norm});
  if (!m.tiedEmbeddings)
    t.push_back({"lm_head.weight", {m.vocab, H}, TensorKind::Matrix});
  return t;
}
