//===- ModelConfigTest.cpp - The config.json reader and rope tables -------===//

#include "fairkv/Model/ModelConfig.h"

#include <gtest/gtest.h>

using namespace fairkv::model;

namespace {

const char *kLlama3 = R"({"model_type": "llama", "num_hidden_layers": 2,
  "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 4,
  "head_dim": 16, "intermediate_size": 128, "vocab_size": 256,
  "max_position_embeddings": 256, "dtype": "float32",
  "rope_parameters": {"rope_type": "llama3", "rope_theta": 10000.0,
    "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32}})";

// The same model as transformers 4 wrote it.
const char *kLlama3Legacy = R"({"model_type": "llama", "num_hidden_layers": 2,
  "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 4,
  "head_dim": 16, "intermediate_size": 128, "vocab_size": 256,
  "max_position_embeddings": 256, "torch_dtype": "float32",
  "rope_theta": 10000.0, "rope_scaling": {"type": "llama3", "factor": 8.0,
    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32}})";

TEST(ModelConfig, BothLayoutsReadTheSameModel) {
  for (const char *text : {kLlama3, kLlama3Legacy}) {
    Result<ModelConfig> m = parseHFConfig(text, "config.json");
    ASSERT_TRUE(m) << m.error();
    EXPECT_EQ(m->family, "llama");
    EXPECT_EQ(m->rope.type, "llama3");
    EXPECT_EQ(m->rope.factor, 8.0);
    EXPECT_EQ(m->rope.originalMaxPositions, 32);
    EXPECT_EQ(m->dtype, "f32");
    EXPECT_EQ(m->maxPositions, 256);
  }
}

// The tables transformers 5.24 computed for these configs
// (ROPE_INIT_FUNCTIONS[type](config, "cpu")).
TEST(ModelConfig, RopeTablesMatchTransformers) {
  Result<ModelConfig> m = parseHFConfig(kLlama3, "config.json");
  ASSERT_TRUE(m) << m.error();
  const double llama3[] = {1.0,
                           0.0958399772644043,
                           0.012500000186264515,
                           0.0039528473280370235,
                           0.0012499999720603228,
                           0.00039528473280370235,
                           0.0001250000059371814,
                           3.9528473280370235e-05};
  std::vector<float> got = m->ropeInverseFrequencies();
  ASSERT_EQ(got.size(), 8u);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], llama3[i], 2e-7 * llama3[i]) << "llama3 " << i;
  EXPECT_EQ(m->rope.attentionFactor, 1.0);

  ModelConfig yarn = *m;
  yarn.rope = RopeScaling();
  yarn.rope.type = "yarn";
  yarn.rope.factor = 4.0;
  yarn.rope.originalMaxPositions = 32;
  const double expected[] = {1.0,
                             0.19764235615730286,
                             0.02500000037252903,
                             0.007905694656074047,
                             0.0024999999441206455,
                             0.0007905694656074047,
                             0.0002500000118743628,
                             7.905694656074047e-05};
  got = yarn.ropeInverseFrequencies();
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 2e-7 * expected[i]) << "yarn " << i;
}

TEST(ModelConfig, YarnAttentionFactorFollowsTransformers) {
  Result<ModelConfig> m = parseHFConfig(
      R"({"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 4,
          "intermediate_size": 32, "vocab_size": 10,
          "max_position_embeddings": 256, "rope_parameters": {
            "rope_type": "yarn", "factor": 8.0,
            "original_max_position_embeddings": 32}})",
      "config.json");
  ASSERT_TRUE(m) << m.error();
  // 0.1 * ln(8) + 1, as transformers' get_mscale.
  EXPECT_NEAR(m->rope.attentionFactor, 1.2079441541679836, 1e-15);
}

TEST(ModelConfig, RefusesWhatItDoesNotCompute) {
  auto errorOf = [](std::string text) {
    Result<ModelConfig> m = parseHFConfig(text, "c.json");
    return m ? std::string("accepted") : m.error();
  };
  std::string base = kLlama3;
  auto with = [&](const std::string &from, const std::string &to) {
    std::string t = base;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_EQ(errorOf(with("\"llama\"", "\"mixtral\"")),
            "c.json: 'model_type' = \"mixtral\": not supported (FairKV "
            "implements llama, mistral, qwen2 and qwen3)");
  EXPECT_EQ(errorOf(with("\"dtype\": \"float32\"", "\"dtype\": \"int8\"")),
            "c.json: 'dtype' = \"int8\": must be float32, float16 or bfloat16");
  EXPECT_EQ(errorOf(with("\"dtype\"", "\"num_local_experts\": 8, \"dtype\"")),
            "c.json: 'num_local_experts' = 8: unknown key (FairKV refuses "
            "what it cannot prove harmless)");
  EXPECT_EQ(errorOf(with("\"factor\": 8.0, ", "")),
            "c.json: rope type 'llama3' needs rope_parameters.factor");
  EXPECT_EQ(errorOf(with("\"dtype\"", "\"hidden_act\": \"relu\", \"dtype\"")),
            "c.json: 'hidden_act' = \"relu\": FairKV's gated MLP implements "
            "silu only");
  EXPECT_EQ(errorOf(with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1099511627776")),
            "model 'c.json': layers = 1099511627776 exceeds 4096");
  EXPECT_EQ(errorOf(with("\"intermediate_size\": 128", "\"intermediate_size\": 4611686018427387904")),
            "model 'c.json': ffn = 4611686018427387904 exceeds 4194304");
  EXPECT_EQ(errorOf(with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1e9")),
            "c.json: 'num_hidden_layers' = 1000000000.0: must be an integer");
  EXPECT_EQ(errorOf(with("\"dtype\"", "\"mlp_bias\": true, \"dtype\"")),
            "c.json: 'mlp_bias' = true: MLP biases are not implemented");
}

TEST(ModelConfig, FamilyDefaultsAndTensors) {
  // Qwen3's head_dim defaults to 128; qwen2 has q/k/v biases.
  Result<ModelConfig> q3 = parseHFConfig(
      R"({"model_type": "qwen3", "num_hidden_layers": 1, "hidden_size": 64,
          "num_attention_heads": 2, "intermediate_size": 32,
          "vocab_size": 10})",
      "q3.json");
  ASSERT_TRUE(q3) << q3.error();
  EXPECT_EQ(q3->headDim, 128);
  EXPECT_TRUE(q3->qkNorm);
  ModelConfig m = *q3;
  m.family = "qwen2";
  m.qkNorm = false;
  m.qkvBias = true;
  m.tiedEmbeddings = true;
  std::vector<TensorSpec> tensors = modelTensors(m);
  int biases = 0;
  for (const TensorSpec &t : tensors) {
    biases += t.kind == TensorKind::Bias;
    EXPECT_NE(t.name, "lm_head.weight");
  }
  EXPECT_EQ(biases, 3);
}

TEST(ModelConfig, CudaPositionLimits) {
  ModelConfig m;
  EXPECT_EQ(m.cudaPositionLimit(), 0);
  m.slidingWindow = 4096;
  std::string why;
  EXPECT_EQ(m.cudaPositionLimit(&why), 4096);
  EXPECT_NE(why.find("sliding_window = 4096"), std::string::npos);
  m.rope.type = "dynamic";
  m.rope.originalMaxPositions = 2048;
  EXPECT_EQ(m.cudaPositionLimit(&why), 2048);
  EXPECT_NE(why.find("dynamic"), std::string::npos);
}

// transformers 5.24: _compute_dynamic_ntk_parameters(config, seq_len=20)
// for head_dim 16, theta 1e4, factor 2, max_position_embeddings 8.
TEST(ModelConfig, DynamicRopeRescalesPastTheMaximum) {
  ModelConfig m;
  m.headDim = 16;
  m.rope.type = "dynamic";
  m.rope.factor = 2.0;
  m.rope.originalMaxPositions = 8;
  EXPECT_EQ(m.ropeInverseFrequencies(8), m.ropeInverseFrequencies(0));
  const double expected[] = {1.0,
                             0.25941282510757446,
                             0.06729500740766525,
                             0.01745718903839588,
                             0.0045286184176802635,
                             0.0011747815879061818,
                             0.0003047533973585814,
                             7.905694656074047e-05};
  std::vector<float> got = m.ropeInverseFrequencies(20);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 2e-7 * expected[i]) << i;
}

} // namespace
