//===- ImportersTest.cpp - Profile importers, presets, config.json --------===//

#include "fairkv/Placement/Profile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <unistd.h>

using namespace fairkv::placement;

namespace {

ModelConfig tiny() { return *modelPreset("tiny"); }

// tiny: 2 layers, 4 query heads, 2 KV heads (groups {0,1} and {2,3}).
std::string headkvJson(double s0 = 1, double s1 = 3) {
  return "{\"0-0\": [" + std::to_string(s0) + ", " + std::to_string(s0) +
         "], \"0-1\": [" + std::to_string(s1) +
         "], \"0-2\": [0, 0], \"0-3\": [2], \"1-0\": [1], \"1-1\": [1], "
         "\"1-2\": [1], \"1-3\": [1]}";
}

TEST(HeadKVImporter, FollowsThePublishedBudgetRule) {
  HeadKVOptions o;
  o.base = 100;
  o.beta = 2.0;
  o.window = 8;
  Result<BudgetProfile> p = importHeadKV(headkvJson(), tiny(), o);
  ASSERT_TRUE(p) << p.error();
  // Means: layer 0 = [1, 3, 0, 2], layer 1 = [1, 1, 1, 1]; sum 10.
  // pool = floor(100 / 2) * 2 * 4 = 400, minimum = 50.
  // budget = round(s / 10 * 400 + 50) + 8 per query head:
  // layer 0: [98, 178, 58, 138]; layer 1: 98 each.
  EXPECT_EQ(p->tokens[0], (std::vector<int64_t>{98 + 178, 58 + 138}));
  EXPECT_EQ(p->tokens[1], (std::vector<int64_t>{196, 196}));
  EXPECT_NE(p->source.find("base=100"), std::string::npos);

  o.group = GroupReduction::Max;
  Result<BudgetProfile> m = importHeadKV(headkvJson(), tiny(), o);
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->tokens[0], (std::vector<int64_t>{178, 138}));
}

TEST(HeadKVImporter, TemperatureSharpens) {
  HeadKVOptions o;
  o.base = 100;
  o.beta = 2.0;
  o.temp = 2.0;
  Result<BudgetProfile> p = importHeadKV(headkvJson(), tiny(), o);
  ASSERT_TRUE(p) << p.error();
  HeadKVOptions flat = o;
  flat.temp = 1.0;
  Result<BudgetProfile> q = importHeadKV(headkvJson(), tiny(), flat);
  ASSERT_TRUE(q) << q.error();
  // The heaviest group gains from sharpening.
  EXPECT_GT(p->tokens[0][0], q->tokens[0][0]);
}

TEST(HeadKVImporter, Errors) {
  HeadKVOptions o;
  auto error = [&](const std::string &json) {
    Result<BudgetProfile> p = importHeadKV(json, tiny(), o);
    EXPECT_FALSE(p);
    return p ? std::string() : p.error();
  };
  EXPECT_EQ(error("[1, 2]"),
            "headkv: not a JSON object of \"layer-head\": [scores]");
  EXPECT_EQ(error("{\"0-0\": [1], \"zz\": [1]}"),
            "headkv: key 'zz' is not \"layer-head\"");
  EXPECT_EQ(error("{\"5-0\": [1]}"),
            "headkv: key '5-0' is outside model 'tiny' (2 layers x 4 query "
            "heads)");
  EXPECT_EQ(error("{\"0-0\": []}"),
            "headkv: scores of '0-0' must be a non-empty list");
  EXPECT_EQ(error("{\"0-0\": [\"a\"]}"),
            "headkv: scores of '0-0' must be numbers");
  EXPECT_EQ(error("{\"0-0\": [1]}"),
            "headkv: no scores for head '0-1' (model 'tiny' has 2 x 4 query "
            "heads)");
  o.beta = 1.0;
  EXPECT_EQ(error(headkvJson()),
            "headkv: need base > 0, beta > 1, temp > 0, window >= 0");
}

TEST(DuoImporter, ThresholdAndSparsity) {
  std::string tsv = "0.9\t-0.0001\n0.2 0.7\n";
  DuoOptions o;
  o.context = 4096;
  Result<BudgetProfile> p = importDuo(tsv, tiny(), o);
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->tokens[0], (std::vector<int64_t>{4096, 384}));
  EXPECT_EQ(p->tokens[1], (std::vector<int64_t>{384, 4096}));
  // 75% sparsity: only the top quarter (one head of four) is retrieval.
  o.sparsity = 0.75;
  Result<BudgetProfile> s = importDuo(tsv, tiny(), o);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->tokens[0], (std::vector<int64_t>{4096, 384}));
  EXPECT_EQ(s->tokens[1], (std::vector<int64_t>{384, 384}));
}

TEST(DuoImporter, Errors) {
  DuoOptions o;
  Result<BudgetProfile> rows = importDuo("1 0\n", tiny(), o);
  ASSERT_FALSE(rows);
  EXPECT_EQ(rows.error(), "duo: 1 rows, but model 'tiny' has 2 layers");
  Result<BudgetProfile> cols = importDuo("1 0\n1 0 1\n", tiny(), o);
  ASSERT_FALSE(cols);
  EXPECT_EQ(cols.error(),
            "duo: row 2 has 3 columns, but model 'tiny' has 2 kv heads");
  Result<BudgetProfile> nan = importDuo("1 x\n1 0\n", tiny(), o);
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error(), "duo: line 1: 'x' is not a number");
}

TEST(CanonicalProfile, RoundTripsAndRejectsBadInput) {
  BudgetProfile p = syntheticProfile(3, 4, /*seed=*/7);
  ASSERT_TRUE(p.validate());
  Result<BudgetProfile> back = readCanonicalProfile(writeCanonicalProfile(p));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->tokens, p.tokens);
  EXPECT_EQ(back->source, p.source);

  auto error = [](const std::string &json) {
    Result<BudgetProfile> r = readCanonicalProfile(json);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error();
  };
  EXPECT_EQ(error("{"), "fairkv-budgets: not a JSON object");
  EXPECT_EQ(error("{\"format\": \"v0\"}"),
            "fairkv-budgets: 'format' must be \"fairkv-budgets/v1\"");
  EXPECT_EQ(error("{\"format\": \"fairkv-budgets/v1\", \"tokens\": [[1, 2], "
                  "[3]]}"),
            "fairkv-budgets: profile layer 1 has 1 kv heads, layer 0 has 2");
  EXPECT_EQ(error("{\"format\": \"fairkv-budgets/v1\", \"tokens\": [[1, 0]]}"),
            "fairkv-budgets: profile budget of layer 0, kv head 1 must be "
            "between 1 and 4294967296, got 0");
  EXPECT_EQ(error("{\"format\": \"fairkv-budgets/v1\", \"layers\": 2, "
                  "\"tokens\": [[1, 2]]}"),
            "fairkv-budgets: 'layers' does not match 'tokens' (1)");
}

TEST(CanonicalProfile, ShapeMustMatchTheModel) {
  BudgetProfile p = syntheticProfile(3, 2, 1);
  Status s = p.checkAgainst(tiny());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "profile shape 3 layers x 2 kv heads does not match "
                       "model 'tiny' (2 layers x 2 kv heads)");
}

TEST(SyntheticProfile, IsSeededAndSkewed) {
  BudgetProfile a = syntheticProfile(4, 8, 3), b = syntheticProfile(4, 8, 3),
                c = syntheticProfile(4, 8, 4);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
  int64_t lo = INT64_MAX, hi = 0;
  for (const auto &layer : a.tokens)
    for (int64_t t : layer) {
      lo = std::min(lo, t);
      hi = std::max(hi, t);
    }
  EXPECT_GT(hi, 3 * lo);
}

TEST(Models, PresetsAndConfigJson) {
  Result<ModelConfig> m = modelPreset("llama-3-70b");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layers, 80);
  EXPECT_EQ(m->hidden, 8192);
  EXPECT_EQ(m->kvHeads, 8);
  EXPECT_EQ(m->ffn, 28672);
  Result<ModelConfig> mistral = modelPreset("mistral-small-24b");
  ASSERT_TRUE(mistral);
  EXPECT_EQ(mistral->hidden, 5120);
  EXPECT_EQ(mistral->heads * mistral->headDim, 4096);
  EXPECT_FALSE(modelPreset("gpt-5"));

  // llama-3-8b: (2 + 2 * 4) * 128 * 4096 * 2 bytes travel with a KV head.
  EXPECT_DOUBLE_EQ(modelPreset("llama-3-8b")->kvHeadWeightBytes(),
                   10.0 * 128 * 4096 * 2);

  // A name of this process's own: ctest runs test binaries in parallel.
  std::string path = testing::TempDir() + "/fairkv-config-" +
                     std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path);
    out << R"({"_name_or_path": "m", "num_hidden_layers": 4, "hidden_size": 256,
               "num_attention_heads": 8, "num_key_value_heads": 2,
               "intermediate_size": 512, "vocab_size": 1000,
               "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
               "torch_dtype": "bfloat16"})";
  }
  Result<ModelConfig> cfg = resolveModel(path);
  ASSERT_TRUE(cfg) << cfg.error();
  EXPECT_EQ(cfg->name, "m");
  EXPECT_EQ(cfg->headDim, 32);
  EXPECT_EQ(cfg->kvHeads, 2);
  EXPECT_EQ(cfg->dtype, "bf16");
  {
    std::ofstream out(path);
    out << R"({"num_hidden_layers": 4})";
  }
  Result<ModelConfig> bad = fairkv::model::loadHFConfig(path);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), path + ": missing 'hidden_size'");
  std::remove(path.c_str());
  EXPECT_FALSE(fairkv::model::loadHFConfig(path));
}

} // namespace

TEST(KeptImporter, AveragesWhatEachHeadKeptOverTheRequests) {
  // tiny: 2 layers x 2 KV heads; two requests.
  const std::string kept = "request 0 layer 0 head 0: 0 1 2\n"
                           "request 0 layer 0 head 1: 5\n"
                           "request 0 layer 1 head 0: 1 2\n"
                           "request 0 layer 1 head 1: 3 4 5 6\n"
                           "request 1 layer 0 head 0: 0\n"
                           "request 1 layer 0 head 1: 2 3\n"
                           "request 1 layer 1 head 0: 1 2\n"
                           "request 1 layer 1 head 1:\n";
  ASSERT_TRUE(looksLikeKeptDump(kept));
  Result<BudgetProfile> p = importKept(kept, tiny());
  ASSERT_TRUE(p) << p.error();
  // Means rounded up: (3 + 1) / 2, (1 + 2) / 2, 2, (4 + 0) / 2.
  EXPECT_EQ(p->tokens[0], (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(p->tokens[1], (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(p->source, "kept:requests=2");
}

TEST(KeptImporter, RefusesMalformedOrIncompleteDumps) {
  auto error = [](const std::string &text) {
    Result<BudgetProfile> p = importKept(text, tiny());
    return p ? std::string("accepted") : p.error();
  };
  const std::string full = "request 0 layer 0 head 0: 1\n"
                           "request 0 layer 0 head 1: 1\n"
                           "request 0 layer 1 head 0: 1\n";
  EXPECT_NE(error(full).find("request 0 lists 3 (layer, head) pairs"),
            std::string::npos)
      << error(full);
  EXPECT_NE(error(full + "request 0 layer 1 head 0: 2\n").find("listed twice"),
            std::string::npos);
  EXPECT_NE(error("request 0 layer 2 head 0: 1\n").find("outside model"),
            std::string::npos);
  EXPECT_NE(error("request 0 layer 0 head 0: 1 x\n").find("not a position"),
            std::string::npos);
  EXPECT_NE(error("request 0 layer 0 head 0: 1 1\n").find("listed twice"),
            std::string::npos);
  EXPECT_NE(error("request 0 layer 0: 1\n").find("not 'request R"),
            std::string::npos);
  EXPECT_NE(error("request 99999999999 layer 0 head 0: 1\n").find("limit"),
            std::string::npos);
  EXPECT_NE(error("\n").find("no 'request"), std::string::npos);
}
