//===- SamplerTest.cpp - Sampling against transformers' warpers -----------===//
//
// test/Fixtures/sampling/warpers.json holds transformers' temperature, top-k,
// top-p and min-p warpers applied in generate()'s order to seeded logits
// (scripts/make-sampling-fixtures.py): the tokens they keep and the
// distribution left. Ours must keep the same tokens with the same
// probabilities, and draw from it.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/Sampler.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace fairkv::serve;

namespace {

nlohmann::json cases() {
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  std::ifstream in(std::string(root ? root : ".") +
                   "/test/Fixtures/sampling/warpers.json");
  EXPECT_TRUE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str())["cases"];
}

SamplingParams paramsOf(const nlohmann::json &c) {
  SamplingParams p;
  p.temperature = c["temperature"];
  p.topK = c["top_k"];
  p.topP = c["top_p"];
  p.minP = c["min_p"];
  return p;
}

TEST(Sampler, WarpersKeepWhatTransformersKeeps) {
  const nlohmann::json all = cases();
  ASSERT_GE(all.size(), 10u);
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const auto &c = all[i];
    std::vector<float> logits = c["logits"].get<std::vector<float>>();
    std::vector<double> p = warpedDistribution(
        logits.data(), static_cast<int64_t>(logits.size()), paramsOf(c));
    std::vector<int64_t> kept;
    for (size_t t = 0; t < p.size(); ++t)
      if (p[t] > 0)
        kept.push_back(static_cast<int64_t>(t));
    EXPECT_EQ(kept, c["kept"].get<std::vector<int64_t>>());
    std::vector<double> reference = c["probs"];
    for (size_t t = 0; t < p.size(); ++t)
      EXPECT_NEAR(p[t], reference[t], 2e-6) << "token " << t;
  }
}

TEST(Sampler, DrawsFollowTheDistributionAndRepeatFromTheSeed) {
  const auto c = cases()[12]; // top-k, top-p and min-p together
  std::vector<float> logits = c["logits"].get<std::vector<float>>();
  const int64_t vocab = static_cast<int64_t>(logits.size());
  SamplingParams params = paramsOf(c);
  params.seed = 7;
  std::vector<double> p = warpedDistribution(logits.data(), vocab, params);
  const int draws = 40000;
  std::vector<int> counts(vocab, 0);
  Sampler sampler(params, 3);
  std::vector<int64_t> first;
  for (int i = 0; i < draws; ++i) {
    int64_t t = sampler.next(logits.data(), vocab, 0);
    ASSERT_GT(p[t], 0) << "drew a removed token " << t;
    ++counts[t];
    if (i < 50)
      first.push_back(t);
  }
  for (int64_t t = 0; t < vocab; ++t) {
    double sigma = std::sqrt(draws * p[t] * (1 - p[t]));
    EXPECT_NEAR(counts[t], draws * p[t], 5 * sigma + 1) << "token " << t;
  }
  Sampler again(params, 3), other(params, 4);
  std::vector<int64_t> repeat, different;
  for (int i = 0; i < 50; ++i) {
    repeat.push_back(again.next(logits.data(), vocab, 0));
    different.push_back(other.next(logits.data(), vocab, 0));
  }
  EXPECT_EQ(repeat, first);
  EXPECT_NE(different, first);
}

TEST(Sampler, GreedyIsTheDevicesArgmax) {
  std::vector<float> logits = {0.1f, 3.0f, 3.0f, -1.0f};
  Sampler greedy(SamplingParams(), 0);
  EXPECT_EQ(greedy.next(logits.data(), 4, 2), 2);
}

TEST(Sampler, ParamsOutsideTheirRangesAreOneLine) {
  SamplingParams p;
  EXPECT_TRUE(p.validate());
  p.temperature = -1;
  EXPECT_EQ(p.validate().error(),
            "temperature must be finite and non-negative");
  p = SamplingParams();
  p.topP = 0;
  EXPECT_EQ(p.validate().error(), "top_p must be in (0, 1]");
  p = SamplingParams();
  p.minP = 2;
  EXPECT_EQ(p.validate().error(), "min_p must be in [0, 1]");
  p = SamplingParams();
  p.topK = -3;
  EXPECT_EQ(p.validate().error(), "top_k must be non-negative");
}

} // namespace
