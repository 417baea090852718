//===- SharedProfilesTest.cpp - Acceptance on the real profiles -----------===//
//
// The real per-head profiles live in ../shared/profiles beside the checkout;
// these tests skip with a message when it is absent. G = 8, llama-3-8b shape.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Report.h"

#include <gtest/gtest.h>

#include <filesystem>

using namespace fairkv::placement;

namespace {

const std::string kDir = FAIRKV_SHARED_PROFILES_DIR;

struct Case {
  const char *name;
  const char *file;
  int64_t base; // HeadKV only
  double beta;
  double tpImbalance; // profiles/README.md, G = 8
};

const Case kCases[] = {
    {"headkv-512-1.2", "headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json",
     512, 1.2, 2.57},
    {"headkv-128-2.0", "headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json",
     128, 2.0, 1.80},
    {"duo-llama", "duo-Llama-3-8B-Instruct-Gradient-1048k.tsv", 0, 0, 1.23},
    {"duo-mistral", "duo-Mistral-7B-Instruct-v0.2.tsv", 0, 0, -1},
};

// Names the case in test listings instead of dumping its bytes.
void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class SharedProfiles : public ::testing::TestWithParam<Case> {
protected:
  void SetUp() override {
    if (!std::filesystem::is_directory(kDir))
      GTEST_SKIP() << "shared profiles not found at " << kDir
                   << " (they live in ../shared/profiles beside the checkout)";
    model = *modelPreset("llama-3-8b");
    Result<std::string> text = readFile(kDir + "/" + GetParam().file);
    ASSERT_TRUE(text) << text.error();
    Result<BudgetProfile> p = makeError("");
    if (GetParam().base > 0) {
      HeadKVOptions o;
      o.base = GetParam().base;
      o.beta = GetParam().beta;
      p = importHeadKV(*text, model, o);
    } else {
      p = importDuo(*text, model, DuoOptions());
    }
    ASSERT_TRUE(p) << p.error();
    profile = *p;
  }

  double imbalance(Strategy s, std::optional<double> bytes) {
    PlanOptions o;
    o.strategy = s;
    o.devices = 8;
    o.copyBudgetBytes = bytes;
    o.timeLimitSeconds = 5;
    Result<PlanReport> r =
        planAndEvaluate(profile, model, *hardwarePreset("h100-sxm"), o, 32);
    EXPECT_TRUE(r) << r.error();
    if (!r)
      return 0;
    if (bytes)
      EXPECT_LE(r->metrics.extraWeightBytesFullestDevice, *bytes + 1e-6);
    return r->metrics.attentionImbalance;
  }

  ModelConfig model;
  BudgetProfile profile;
};

TEST_P(SharedProfiles, TPMatchesTheProfilesReadme) {
  if (GetParam().tpImbalance < 0)
    GTEST_SKIP() << "the README gives no tp figure for this profile";
  EXPECT_NEAR(imbalance(Strategy::TP, std::nullopt), GetParam().tpImbalance,
              0.005);
}

TEST_P(SharedProfiles, FairKVWithTenPercentBytesIsNearOptimal) {
  double bytes = 0.1 * model.tpWeightBytesPerDevice(8);
  double fair = imbalance(Strategy::FairKV, bytes);
  double best = imbalance(Strategy::Optimal, bytes);
  EXPECT_LE(fair, 1.08);
  EXPECT_LE(best, fair + 1e-9);
  EXPECT_LE(fair, best * 1.02);
}

TEST_P(SharedProfiles, FairKVWithoutCopyLimitIsBalanced) {
  EXPECT_LE(imbalance(Strategy::FairKV, std::nullopt), 1.01);
}

INSTANTIATE_TEST_SUITE_P(Profiles, SharedProfiles, ::testing::ValuesIn(kCases),
                         [](const auto &info) {
                           std::string n = info.param.name;
                           for (char &c : n)
                             if (!isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return n;
                         });

} // namespace
