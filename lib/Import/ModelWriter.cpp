//===- ModelWriter.cpp - Write a model as an unsharded fairkv module ------===//

#include "fairkv/Import/ModelWriter.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

using namespace fairkv::placement;

namespace {

/// The shortest %e text that reads back as `v` (at least 7 digits), so a
/// factor like yarn's 1.1386294361119891 survives the text exactly.
std::string floatText(double v) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*e", digits, v);
    if (std::strtod(buf, nullptr) == v)
      break;
  }
  return buf;
}

std::string quoted(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// `#fairkv.rope_scaling<...>` of a non-default rope, or "".
std::string ropeScalingText(const fairkv::model::RopeScaling &r) {
  if (r.isDefault())
    return "";
  std::string t = "#fairkv.rope_scaling<type = " + quoted(r.type) +
                  ", factor = " + floatText(r.factor);
  if (r.type != "linear")
    t += ", original_max_positions = " + std::to_string(r.originalMaxPositions);
  if (r.type == "llama3")
    t += ", low_freq_factor = " + floatText(r.lowFreqFactor) +
         ", high_freq_factor = " + floatText(r.highFreqFactor);
  if (r.type == "yarn")
    t += ", beta_fast = " + floatText(r.betaFast) +
         ", beta_slow = " + floatText(r.betaSlow) +
         ", truncate = " + (r.truncate ? "true" : "false") +
         ", attention_factor = " + floatText(r.attentionFactor);
  return t + ">";
}

} // namespace

std::string fairkv::import::writeModelModule(const ModelConfig &m,
                                             const BudgetProfile &profile,
                                             const std::string &functionName) {
  const int64_t H = m.hidden, Q = m.heads, K = m.kvHeads, D = m.headDim;
  const std::string hid = "tensor<?x?x" + std::to_string(H) + "xf32>";
  const std::string ids = "tensor<?x?xi64>";
  auto mat = [](int64_t r, int64_t c) {
    return "tensor<" + std::to_string(r) + "x" + std::to_string(c) + "xf32>";
  };
  auto vec = [](int64_t n) { return "tensor<" + std::to_string(n) + "xf32>"; };
  auto heads = [&](int64_t n) {
    return "tensor<?x?x" + std::to_string(n) + "x" + std::to_string(D) +
           "xf32>";
  };
  const std::string theta = floatText(m.ropeTheta), eps = floatText(m.normEps);
  const std::string scaling = ropeScalingText(m.rope);

  std::ostringstream o;
  o << "module attributes {fairkv.config = #fairkv.model_config<layers = "
    << m.layers << ", hidden = " << H << ", heads = " << Q
    << ", kv_heads = " << K << ", head_dim = " << D << ", ffn = " << m.ffn
    << ", vocab = " << m.vocab << ", rope_theta = " << theta
    << ", norm_eps = " << eps << ", dtype = " << m.dtype << ", family = "
    << quoted(m.family);
  if (!scaling.empty())
    o << ", rope_scaling = " << scaling;
  o << ", max_positions = " << m.maxPositions;
  if (m.tiedEmbeddings)
    o << ", tie_word_embeddings = true";
  if (m.qkvBias)
    o << ", qkv_bias = true";
  if (m.qkNorm)
    o << ", qk_norm = true";
  if (m.slidingWindow > 0)
    o << ", sliding_window = " << m.slidingWindow;
  o << ">} {\n";
  o << "  func.func @" << functionName << "(%ids: " << ids << ", %pos: " << ids
    << ") -> tensor<?xi64> {\n";
  o << "    %embed = fairkv.weight \"model.embed_tokens.weight\" : "
    << mat(m.vocab, H) << "\n";
  o << "    %h0 = fairkv.embedding %ids, %embed : (" << ids << ", "
    << mat(m.vocab, H) << ") -> " << hid << "\n";
  for (int64_t l = 0; l < m.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    const std::string s = std::to_string(l), h = "%h" + s;
    auto weight = [&](const std::string &var, const std::string &name,
                      const std::string &type) {
      o << "    %" << var << s << " = fairkv.weight \"" << p << "." << name
        << "\" : " << type << "\n";
    };
    o << "    // Layer " << l << ".\n";
    weight("ln", "input_layernorm.weight", vec(H));
    weight("wq", "self_attn.q_proj.weight", mat(Q * D, H));
    weight("wk", "self_attn.k_proj.weight", mat(K * D, H));
    weight("wv", "self_attn.v_proj.weight", mat(K * D, H));
    weight("wo", "self_attn.o_proj.weight", mat(H, Q * D));
    weight("pln", "post_attention_layernorm.weight", vec(H));
    weight("wg", "mlp.gate_proj.weight", mat(m.ffn, H));
    weight("wu", "mlp.up_proj.weight", mat(m.ffn, H));
    weight("wd", "mlp.down_proj.weight", mat(H, m.ffn));
    o << "    %n" << s << " = fairkv.rms_norm " << h << ", %ln" << s
      << " eps = " << eps << " : " << hid << ", " << vec(H) << "\n";
    if (m.qkvBias) {
      weight("bq", "self_attn.q_proj.bias", vec(Q * D));
      weight("bk", "self_attn.k_proj.bias", vec(K * D));
      weight("bv", "self_attn.v_proj.bias", vec(K * D));
    }
    if (m.qkNorm) {
      weight("qn", "self_attn.q_norm.weight", vec(D));
      weight("kn", "self_attn.k_norm.weight", vec(D));
    }
    o << "    %q" << s << ", %k" << s << ", %v" << s
      << " = fairkv.qkv_proj %n" << s << ", %wq" << s << ", %wk" << s
      << ", %wv" << s;
    if (m.qkvBias)
      o << " bias %bq" << s << ", %bk" << s << ", %bv" << s;
    o << " : (" << hid << ", " << mat(Q * D, H) << ", " << mat(K * D, H)
      << ", " << mat(K * D, H);
    if (m.qkvBias)
      o << ", " << vec(Q * D) << ", " << vec(K * D) << ", " << vec(K * D);
    o << ") -> (" << heads(Q) << ", " << heads(K) << ", " << heads(K)
      << ")\n";
    // Qwen3 normalizes each head of q and k before rotary.
    std::string qIn = "%q" + s, kIn = "%k" + s;
    if (m.qkNorm) {
      o << "    %qn" << s << "h = fairkv.rms_norm %q" << s << ", %qn" << s
        << " eps = " << eps << " : " << heads(Q) << ", " << vec(D) << "\n";
      o << "    %kn" << s << "h = fairkv.rms_norm %k" << s << ", %kn" << s
        << " eps = " << eps << " : " << heads(K) << ", " << vec(D) << "\n";
      qIn = "%qn" + s + "h";
      kIn = "%kn" + s + "h";
    }
    // The op's own attribute is written without its dialect prefix (as
    // MLIR prints it): a full `#fairkv...` would take the `:` after it as
    // its type.
    const std::string rope =
        theta + (scaling.empty()
                     ? ""
                     : " scaling = " +
                           scaling.substr(std::string("#fairkv.rope_scaling")
                                              .size()));
    o << "    %qr" << s << " = fairkv.rotary " << qIn << ", %pos theta = "
      << rope << " : " << heads(Q) << ", " << ids << "\n";
    o << "    %kr" << s << " = fairkv.rotary " << kIn << ", %pos theta = "
      << rope << " : " << heads(K) << ", " << ids << "\n";
    o << "    %att" << s << " = fairkv.attention %qr" << s << ", %kr" << s
      << ", %v" << s << " layer " << l << " budgets <tokens = [";
    for (int64_t k = 0; k < K; ++k)
      o << (k ? ", " : "") << profile.tokens[l][k];
    o << "], source = " << quoted(profile.source) << "> : (" << heads(Q)
      << ", " << heads(K) << ", " << heads(K) << ") -> " << heads(Q) << "\n";
    o << "    %o" << s << " = fairkv.out_proj %att" << s << ", %wo" << s
      << " : (" << heads(Q) << ", " << mat(H, Q * D) << ") -> " << hid
      << "\n";
    o << "    %r" << s << " = fairkv.add " << h << ", %o" << s << " : " << hid
      << "\n";
    o << "    %m" << s << "n = fairkv.rms_norm %r" << s << ", %pln" << s
      << " eps = " << eps << " : " << hid << ", " << vec(H) << "\n";
    o << "    %m" << s << " = fairkv.mlp %m" << s << "n, %wg" << s << ", %wu"
      << s << ", %wd" << s << " : (" << hid << ", " << mat(m.ffn, H) << ", "
      << mat(m.ffn, H) << ", " << mat(H, m.ffn) << ") -> " << hid << "\n";
    o << "    %h" << l + 1 << " = fairkv.add %r" << s << ", %m" << s << " : "
      << hid << "\n";
  }
  o << "    %fn = fairkv.weight \"model.norm.weight\" : " << vec(H) << "\n";
  // A tied model's LM head is its embedding table.
  if (!m.tiedEmbeddings)
    o << "    %lm = fairkv.weight \"lm_head.weight\" : " << mat(m.vocab, H)
      << "\n";
  const std::string lm = m.tiedEmbeddings ? "%embed" : "%lm";
  // Only the last position's logits choose the next token: the final norm
  // and the LM head see that one position per row.
  const std::string last = "tensor<?x1x" + std::to_string(H) + "xf32>";
  const std::string logits = "tensor<?x1x" + std::to_string(m.vocab) + "xf32>";
  o << "    %hl = fairkv.last_position %h" << m.layers << " : " << hid << " -> "
    << last << "\n";
  o << "    %hf = fairkv.rms_norm %hl, %fn eps = " << eps << " : " << last
    << ", " << vec(H) << "\n";
  o << "    %logits = fairkv.lm_head %hf, " << lm << " : (" << last << ", "
    << mat(m.vocab, H) << ") -> " << logits << "\n";
  o << "    %next = fairkv.greedy_sample %logits : " << logits
    << " -> tensor<?xi64>\n";
  o << "    return %next : tensor<?xi64>\n  }\n}\n";
  return o.str();
}
