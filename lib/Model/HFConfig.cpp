//===- HFConfig.cpp - Read a Hugging Face config.json ---------------------===//
//
// Every key of a config.json is either read (it changes the function and is
// implemented), knowingly ignored (it cannot change the logits; the README
// says why for each), or refused in one line naming the key and its value.
// Both layouts are read: transformers 5 writes `rope_parameters` and
// `dtype`, older versions `rope_theta`, `rope_scaling` and `torch_dtype`.
// Defaults are those of transformers' config classes.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Model/ModelConfig.h"
#include "fairkv/Placement/Profile.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <set>

using namespace fairkv::model;
using fairkv::placement::makeError;
using nlohmann::json;

namespace {

/// Keys that cannot change what the model computes at inference.
const std::set<std::string> &ignoredKeys() {
  static const std::set<std::string> keys = {
      // Token ids used to stop or pad generation, not by the forward pass.
      "bos_token_id", "eos_token_id", "pad_token_id",
      // Training-only: dropout is off at inference, init is overwritten.
      "attention_dropout", "initializer_range",
      // Bookkeeping and output switches of transformers.
      "transformers_version", "use_cache", "output_attentions",
      "output_hidden_states", "return_dict", "id2label", "label2id",
      "problem_type", "is_encoder_decoder", "chunk_size_feed_forward",
      "_name_or_path", "architectures",
      // Llama's pretraining_tp: transformers 5 no longer reads it (its
      // sliced matmuls computed the same product).
      "pretraining_tp"};
  return keys;
}

/// Keys read below, family by family (anything else is refused).
const std::set<std::string> &readKeys() {
  static const std::set<std::string> keys = {
      "model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
      "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size",
      "rms_norm_eps", "max_position_embeddings", "hidden_act",
      "tie_word_embeddings", "rope_theta", "rope_scaling", "rope_parameters",
      "partial_rotary_factor", "original_max_position_embeddings",
      "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window",
      "max_window_layers", "layer_types", "dtype", "torch_dtype"};
  return keys;
}

std::string valueText(const json &v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

class Reader {
public:
  Reader(const json &j, std::string path) : j(j), path(std::move(path)) {}

  std::string error;
  bool failed() const { return !error.empty(); }

  void refuse(const std::string &key, const json &value,
              const std::string &why) {
    if (error.empty())
      error = path + ": '" + key + "' = " + valueText(value) + ": " + why;
  }
  void refuse(const std::string &message) {
    if (error.empty())
      error = path + ": " + message;
  }
  const json *find(const json &object, const std::string &key) const {
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t integer(const std::string &key, int64_t fallback, bool required) {
    const json *v = find(j, key);
    if (!v) {
      if (required)
        refuse("missing '" + key + "'");
      return fallback;
    }
    if (!v->is_number_integer()) {
      refuse(key, *v, "must be an integer");
      return fallback;
    }
    return v->get<int64_t>();
  }
  double number(const json &object, const std::string &key, double fallback,
                const std::string &where = "") {
    const json *v = find(object, key);
    if (!v)
      return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      refuse(where + key, *v, "must be a number");
      return fallback;
    }
    return v->get<double>();
  }
  bool boolean(const std::string &key, bool fallback) {
    const json *v = find(j, key);
    if (!v)
      return fallback;
    if (!v->is_boolean()) {
      refuse(key, *v, "must be true or false");
      return fallback;
    }
    return v->get<bool>();
  }
  /// A key whose only implemented value is `expected`.
  void require(const std::string &key, const json &expected,
               const std::string &why) {
    const json *v = find(j, key);
    if (v && *v != expected)
      refuse(key, *v, why);
  }

  const json &j;
  std::string path;
};

void readRope(Reader &r, ModelConfig &m) {
  const json &j = r.j;
  // transformers: rope_scaling (old name) wins over rope_parameters, and a
  // rope_theta inside the dictionary over the top-level one.
  const json *params = r.find(j, "rope_scaling");
  std::string where = "rope_scaling.";
  if (!params || params->empty()) {
    params = r.find(j, "rope_parameters");
    where = "rope_parameters.";
  }
  static const json empty = json::object();
  if (!params)
    params = &empty;
  if (!params->is_object())
    return r.refuse(where.substr(0, where.size() - 1), *params,
                    "must be an object");
  if (params->contains("layer_types") || params->contains("full_attention") ||
      params->contains("sliding_attention"))
    return r.refuse(where.substr(0, where.size() - 1), *params,
                    "per-layer rope parameters are not implemented");
  m.ropeTheta = r.number(*params, "rope_theta", r.number(j, "rope_theta", 1e4),
                         where);
  std::string type = "default";
  for (const char *key : {"rope_type", "type"})
    if (const json *t = r.find(*params, key)) {
      if (!t->is_string())
        return r.refuse(where + key, *t, "must be a string");
      type = t->get<std::string>();
      break;
    }
  RopeScaling &rope = m.rope;
  rope.type = type;
  std::set<std::string> allowed = {"rope_type", "type", "rope_theta",
                                   "partial_rotary_factor"};
  if (type == "default") {
  } else if (type == "linear" || type == "dynamic") {
    allowed.insert("factor");
    rope.factor = r.number(*params, "factor", 0, where);
    if (!r.find(*params, "factor"))
      return r.refuse("rope type '" + type + "' needs " + where + "factor");
    // dynamic rescales relative to max_position_embeddings.
    if (type == "dynamic")
      rope.originalMaxPositions = m.maxPositions;
  } else if (type == "llama3" || type == "yarn") {
    allowed.insert({"factor", "original_max_position_embeddings"});
    // Phi-3-style configs keep the pretraining length at the top level;
    // transformers then prefers it.
    int64_t original = m.maxPositions;
    if (const json *v = r.find(*params, "original_max_position_embeddings"))
      original = v->is_number_integer() ? v->get<int64_t>() : 0;
    if (const json *v = r.find(j, "original_max_position_embeddings"))
      original = v->is_number_integer() ? v->get<int64_t>() : 0;
    rope.originalMaxPositions = original;
    if (type == "llama3") {
      allowed.insert({"low_freq_factor", "high_freq_factor"});
      for (const char *key : {"factor", "low_freq_factor", "high_freq_factor"})
        if (!r.find(*params, key))
          return r.refuse("rope type 'llama3' needs " + where + key);
      rope.factor = r.number(*params, "factor", 1, where);
      rope.lowFreqFactor = r.number(*params, "low_freq_factor", 1, where);
      rope.highFreqFactor = r.number(*params, "high_freq_factor", 4, where);
    } else {
      allowed.insert({"attention_factor", "beta_fast", "beta_slow", "mscale",
                      "mscale_all_dim", "truncate"});
      rope.factor = r.find(*params, "factor")
                        ? r.number(*params, "factor", 1, where)
                        : static_cast<double>(m.maxPositions) /
                              std::max<int64_t>(1, original);
      // `or 32` / `or 1` in transformers: 0 means the default too.
      rope.betaFast = r.number(*params, "beta_fast", 0, where);
      rope.betaSlow = r.number(*params, "beta_slow", 0, where);
      if (rope.betaFast == 0)
        rope.betaFast = 32;
      if (rope.betaSlow == 0)
        rope.betaSlow = 1;
      if (const json *t = r.find(*params, "truncate")) {
        if (!t->is_boolean())
          return r.refuse(where + "truncate", *t, "must be true or false");
        rope.truncate = t->get<bool>();
      }
      auto mscaleOf = [](double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
      };
      double mscale = r.number(*params, "mscale", 0, where);
      double mscaleAll = r.number(*params, "mscale_all_dim", 0, where);
      if (r.find(*params, "attention_factor"))
        rope.attentionFactor = r.number(*params, "attention_factor", 1, where);
      else if (mscale != 0 && mscaleAll != 0)
        rope.attentionFactor =
            mscaleOf(rope.factor, mscale) / mscaleOf(rope.factor, mscaleAll);
      else
        rope.attentionFactor = mscaleOf(rope.factor, 1);
    }
  } else {
    return r.refuse(where + "rope_type", type,
                    "not implemented (FairKV implements default, linear, "
                    "dynamic, llama3 and yarn)");
  }
  for (const auto &[key, value] : params->items())
    if (!allowed.count(key))
      return r.refuse(where + key, value,
                      "not read by rope type '" + type + "'");
  double partial = r.number(*params, "partial_rotary_factor",
                            r.number(j, "partial_rotary_factor", 1.0), where);
  if (partial != 1.0)
    r.refuse("partial_rotary_factor", partial,
             "partial rotary embedding is not implemented");
}

} // namespace

Result<ModelConfig> fairkv::model::parseHFConfig(const std::string &text,
                                                 const std::string &path) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return makeError(path + ": not a JSON object");
  Reader r(j, path);
  ModelConfig m;
  m.name = path;
  if (const json *n = r.find(j, "_name_or_path");
      n && n->is_string() && !n->get<std::string>().empty())
    m.name = n->get<std::string>();

  // The family first: nothing is ever read as something it is not.
  // Configs without a model_type (FairKV's own tests write them) are Llama.
  if (const json *t = r.find(j, "model_type")) {
    std::string type = t->is_string() ? t->get<std::string>() : "";
    if (type != "llama" && type != "mistral" && type != "qwen2" &&
        type != "qwen3")
      return makeError(path + ": 'model_type' = " + valueText(*t) +
                       ": not supported (FairKV implements llama, mistral, "
                       "qwen2 and qwen3)");
    m.family = type;
  }
  if (const json *a = r.find(j, "architectures")) {
    static const std::map<std::string, std::string> expected = {
        {"llama", "LlamaForCausalLM"},
        {"mistral", "MistralForCausalLM"},
        {"qwen2", "Qwen2ForCausalLM"},
        {"qwen3", "Qwen3ForCausalLM"}};
    if (!a->is_array())
      return makeError(path + ": 'architectures' = " + valueText(*a) +
                       ": must be a list");
    for (const json &name : *a)
      if (name != expected.at(m.family))
        return makeError(path + ": 'architectures' = " + valueText(*a) +
                         ": a '" + m.family + "' model is " +
                         expected.at(m.family));
  }
  for (const auto &[key, value] : j.items())
    if (!readKeys().count(key) && !ignoredKeys().count(key))
      return makeError(path + ": '" + key + "' = " + valueText(value) +
                       ": unknown key (FairKV refuses what it cannot "
                       "prove harmless)");

  m.layers = r.integer("num_hidden_layers", 0, true);
  m.hidden = r.integer("hidden_size", 0, true);
  m.heads = r.integer("num_attention_heads", 0, true);
  m.ffn = r.integer("intermediate_size", 0, true);
  m.vocab = r.integer("vocab_size", 0, true);
  m.kvHeads = r.integer("num_key_value_heads", m.heads, false);
  // Qwen3Config's head_dim defaults to 128; the others derive it.
  int64_t derived = m.heads > 0 ? m.hidden / m.heads : 0;
  m.headDim = r.integer("head_dim", m.family == "qwen3" ? 128 : derived, false);
  m.normEps = r.number(j, "rms_norm_eps", 1e-6);
  static const std::map<std::string, int64_t> defaultMaxPositions = {
      {"llama", 2048}, {"mistral", 131072}, {"qwen2", 32768}, {"qwen3", 32768}};
  m.maxPositions = r.integer("max_position_embeddings",
                             defaultMaxPositions.at(m.family), false);
  if (r.failed())
    return makeError(r.error);

  if (const json *act = r.find(j, "hidden_act"); act && *act != "silu")
    return makeError(path + ": 'hidden_act' = " + valueText(*act) +
                     ": FairKV's gated MLP implements silu only");
  m.tiedEmbeddings = r.boolean("tie_word_embeddings", false);
  readRope(r, m);

  // Family options.
  const std::string &f = m.family;
  if (f == "llama" || f == "qwen3")
    r.require("attention_bias", false,
              "attention biases are not implemented for " + f);
  if (f == "llama")
    r.require("mlp_bias", false, "MLP biases are not implemented");
  if (f != "llama" && r.find(j, "mlp_bias"))
    r.refuse("mlp_bias", j["mlp_bias"], "not a key of " + f);
  m.qkvBias = f == "qwen2";
  m.qkNorm = f == "qwen3";
  if (f == "mistral") {
    if (const json *w = r.find(j, "sliding_window")) {
      if (!w->is_number_integer() || w->get<int64_t>() <= 0)
        r.refuse("sliding_window", *w, "must be a positive integer or null");
      else
        m.slidingWindow = w->get<int64_t>();
    }
    for (const char *key : {"use_sliding_window", "max_window_layers",
                            "layer_types"})
      if (const json *v = r.find(j, key))
        r.refuse(key, *v, "not a key of mistral");
  } else if (f == "qwen2" || f == "qwen3") {
    // sliding_window and max_window_layers apply only when
    // use_sliding_window is on.
    r.require("use_sliding_window", false,
              "Qwen's per-layer sliding window is not implemented");
    if (const json *types = r.find(j, "layer_types")) {
      if (!types->is_array())
        r.refuse("layer_types", *types, "must be a list");
      else
        for (const json &t : *types)
          if (t != "full_attention")
            r.refuse("layer_types", *types,
                     "only full_attention layers are implemented");
    }
  } else {
    for (const char *key : {"sliding_window", "use_sliding_window",
                            "max_window_layers", "layer_types"})
      if (const json *v = r.find(j, key))
        r.refuse(key, *v, "not a key of " + f);
  }

  m.dtype = "bf16";
  for (const char *key : {"dtype", "torch_dtype"})
    if (const json *v = r.find(j, key)) {
      std::string dt = v->is_string() ? v->get<std::string>() : "";
      if (dt == "float32")
        m.dtype = "f32";
      else if (dt == "float16")
        m.dtype = "f16";
      else if (dt == "bfloat16")
        m.dtype = "bf16";
      else
        r.refuse(key, *v, "must be float32, float16 or bfloat16");
      break;
    }
  if (r.failed())
    return makeError(r.error);
  if (Status s = m.validate(); !s)
    return makeError(s.error());
  return m;
}

Result<ModelConfig> fairkv::model::loadHFConfig(const std::string &path) {
  Result<std::string> text = placement::readFile(path);
  if (!text)
    return makeError(text.error());
  return parseHFConfig(*text, path);
}
