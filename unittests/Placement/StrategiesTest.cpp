//===- StrategiesTest.cpp - Placement strategies and metrics --------------===//

#include "fairkv/Placement/Plan.h"
#include "fairkv/Placement/Report.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace fairkv::placement;

namespace {

/// A model shape matching a profile of `layers` x `kvHeads`.
ModelConfig shapeFor(int64_t layers, int64_t kvHeads) {
  ModelConfig m = *modelPreset("llama-3-8b");
  m.name = "test";
  m.layers = layers;
  m.kvHeads = kvHeads;
  m.heads = 4 * kvHeads;
  return m;
}

PlanResult plan(const BudgetProfile &p, const ModelConfig &m, Strategy s,
                int devices, std::optional<int64_t> copies = std::nullopt,
                std::optional<double> bytes = std::nullopt) {
  PlanOptions o;
  o.strategy = s;
  o.devices = devices;
  o.copyBudget = copies;
  o.copyBudgetBytes = bytes;
  o.timeLimitSeconds = 0.5;
  Result<PlanResult> r = makePlan(p, m, o);
  EXPECT_TRUE(r) << r.error();
  return r ? *r : PlanResult{};
}

double imbalance(const PlanResult &r, const BudgetProfile &p,
                 const ModelConfig &m) {
  return evaluatePlan(r.plan, p, m, *hardwarePreset("h100-sxm"), 32)
      .attentionImbalance;
}

struct Instance {
  int64_t layers, heads;
  int devices;
  uint64_t seed;
  double skew;
};

const Instance kInstances[] = {{3, 8, 2, 1, 1.0}, {3, 8, 4, 2, 1.5},
                               {3, 8, 8, 3, 1.0}, {2, 16, 4, 4, 2.0},
                               {2, 6, 4, 5, 1.0}, {2, 4, 8, 6, 1.2}};

TEST(Strategies, EveryPlanIsValid) {
  for (const Instance &in : kInstances) {
    BudgetProfile p = syntheticProfile(in.layers, in.heads, in.seed, in.skew);
    ModelConfig m = shapeFor(in.layers, in.heads);
    for (Strategy s : {Strategy::TP, Strategy::Greedy, Strategy::FairKV,
                       Strategy::Optimal}) {
      if (s == Strategy::TP && in.heads % in.devices != 0)
        continue;
      for (std::optional<int64_t> copies :
           {std::optional<int64_t>(), std::optional<int64_t>(0),
            std::optional<int64_t>(1), std::optional<int64_t>(3)}) {
        PlanResult r = plan(p, m, s, in.devices, copies);
        Status valid = validatePlan(r.plan, p);
        EXPECT_TRUE(valid) << strategyName(s) << ": " << valid.error();
        if (copies)
          for (const LayerPlacement &layer : r.plan.layers) {
            int64_t extra = 0;
            for (const auto &head : layer)
              extra += static_cast<int64_t>(head.size()) - 1;
            EXPECT_LE(extra, *copies) << strategyName(s);
          }
        // The lower bound is a bound on every plan with this budget.
        EXPECT_LE(r.lowerBoundImbalance, imbalance(r, p, m) + 1e-9)
            << strategyName(s);
      }
    }
  }
}

TEST(Strategies, OptimalIsNeverWorseThanAnyOther) {
  for (const Instance &in : kInstances) {
    BudgetProfile p = syntheticProfile(in.layers, in.heads, in.seed, in.skew);
    ModelConfig m = shapeFor(in.layers, in.heads);
    for (std::optional<int64_t> copies :
         {std::optional<int64_t>(0), std::optional<int64_t>(1),
          std::optional<int64_t>(2), std::optional<int64_t>()}) {
      double best = imbalance(plan(p, m, Strategy::Optimal, in.devices, copies),
                              p, m);
      for (Strategy s : {Strategy::TP, Strategy::Greedy, Strategy::FairKV}) {
        if (s == Strategy::TP && in.heads % in.devices != 0)
          continue;
        // tp and greedy use no copies, so they compete at every budget.
        double other = imbalance(plan(p, m, s, in.devices, copies), p, m);
        EXPECT_LE(best, other + 1e-9)
            << strategyName(s) << " beats optimal, G=" << in.devices
            << " copies=" << (copies ? *copies : -1);
      }
    }
  }
}

TEST(Strategies, FairKVWithoutCopiesIsNeverWorseThanTP) {
  for (const Instance &in : kInstances) {
    if (in.heads % in.devices != 0)
      continue;
    BudgetProfile p = syntheticProfile(in.layers, in.heads, in.seed, in.skew);
    ModelConfig m = shapeFor(in.layers, in.heads);
    PlanResult fair = plan(p, m, Strategy::FairKV, in.devices, 0);
    PlanResult tp = plan(p, m, Strategy::TP, in.devices);
    EXPECT_LE(imbalance(fair, p, m), imbalance(tp, p, m) + 1e-12);
    EXPECT_EQ(evaluatePlan(fair.plan, p, m, *hardwarePreset("h100-sxm"), 1)
                  .extraReplicas,
              0);
  }
}

TEST(Strategies, WrapAroundReachesTheIdealWithGMinusOneCopies) {
  BudgetProfile p = syntheticProfile(4, 8, 11, 2.0);
  ModelConfig m = shapeFor(4, 8);
  PlanOptions o;
  o.devices = 8;
  o.copyBudget = 7;
  o.epsilon = 0;
  Result<PlanResult> r = makePlan(p, m, o);
  ASSERT_TRUE(r) << r.error();
  EXPECT_NEAR(imbalance(*r, p, m), 1.0, 1e-9);
}

TEST(Strategies, ByteBudgetHoldsOnEveryDevice) {
  BudgetProfile p = syntheticProfile(6, 8, 12, 1.5);
  ModelConfig m = shapeFor(6, 8);
  for (double copies : {0.0, 1.0, 2.5, 5.0}) {
    double bytes = copies * m.kvHeadWeightBytes();
    PlanResult r = plan(p, m, Strategy::FairKV, 4, std::nullopt, bytes);
    PlanMetrics metrics =
        evaluatePlan(r.plan, p, m, *hardwarePreset("h100-sxm"), 32);
    EXPECT_LE(metrics.extraWeightBytesFullestDevice, bytes + 1e-6);
  }
}

TEST(Strategies, EvenSharesAreEqualAndUnevenDoNoWorse) {
  BudgetProfile p = syntheticProfile(4, 8, 21, 1.5);
  ModelConfig m = shapeFor(4, 8);
  PlanOptions o;
  o.devices = 8;
  o.copyBudget = 3;
  o.evenShares = true;
  Result<PlanResult> even = makePlan(p, m, o);
  ASSERT_TRUE(even) << even.error();
  for (const LayerPlacement &layer : even->plan.layers)
    for (const auto &head : layer)
      for (const Replica &r : head)
        EXPECT_NEAR(r.share, 1.0 / head.size(), 1e-12);
  o.evenShares = false;
  Result<PlanResult> uneven = makePlan(p, m, o);
  ASSERT_TRUE(uneven) << uneven.error();
  EXPECT_LE(imbalance(*uneven, p, m), imbalance(*even, p, m) + 1e-9);
}

TEST(Strategies, BadOptionsAreOneLineErrors) {
  BudgetProfile p = syntheticProfile(2, 6, 1);
  ModelConfig m = shapeFor(2, 6);
  PlanOptions o;
  o.strategy = Strategy::TP;
  o.devices = 4;
  Result<PlanResult> r = makePlan(p, m, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "tp needs the devices (4) to divide the kv heads (6), or to be a "
            "multiple of them that divides the query heads (24)");
  // 16 devices on 6 KV heads: not a multiple; 48 on 6 KV heads and 24
  // query heads: a multiple that does not divide the query heads.
  for (int devices : {16, 48}) {
    o.devices = devices;
    EXPECT_FALSE(makePlan(p, m, o));
  }
  o.strategy = Strategy::FairKV;
  o.devices = 0;
  r = makePlan(p, m, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "devices must be between 1 and 4096, got 0");
  o.devices = 1000000000;
  r = makePlan(p, m, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "devices must be between 1 and 4096, got 1000000000");
  o.devices = 4;
  o.copyBudgetBytes = INFINITY;
  r = makePlan(p, m, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "copy budget in bytes must be finite and non-negative");
  EXPECT_FALSE(parseStrategy("random"));
}

// A byte budget beyond every head's weights is no cap: 1e308 bytes plans
// like no budget at all (it overflowed to no copies once).
TEST(Strategies, HugeByteBudgetIsNoCap) {
  BudgetProfile p = syntheticProfile(2, 6, 1);
  ModelConfig m = shapeFor(2, 6);
  PlanOptions o;
  o.devices = 4;
  Result<PlanResult> free = makePlan(p, m, o);
  o.copyBudgetBytes = 1e308;
  Result<PlanResult> huge = makePlan(p, m, o);
  ASSERT_TRUE(free) << free.error();
  ASSERT_TRUE(huge) << huge.error();
  auto replicas = [](const Plan &plan) {
    size_t n = 0;
    for (const auto &layer : plan.layers)
      for (const auto &head : layer)
        n += head.size();
    return n;
  };
  EXPECT_GT(replicas(free->plan), 12u);
  EXPECT_EQ(replicas(huge->plan), replicas(free->plan));
}

// Planning for decode growth is planning the grown budgets; a negative
// growth is an error.
TEST(Strategies, DecodeTokensPlanTheGrownBudgets) {
  BudgetProfile p = syntheticProfile(3, 8, 31, 1.5, 64);
  ModelConfig m = shapeFor(3, 8);
  PlanOptions o;
  o.devices = 4;
  o.decodeTokens = 40;
  Result<PlanResult> grown = makePlan(p, m, o);
  ASSERT_TRUE(grown) << grown.error();
  o.decodeTokens = 0;
  Result<PlanResult> direct = makePlan(withDecodeTokens(p, 40), m, o);
  ASSERT_TRUE(direct) << direct.error();
  ASSERT_EQ(grown->plan.layers.size(), direct->plan.layers.size());
  for (size_t l = 0; l < grown->plan.layers.size(); ++l)
    for (size_t h = 0; h < grown->plan.layers[l].size(); ++h) {
      ASSERT_EQ(grown->plan.layers[l][h].size(),
                direct->plan.layers[l][h].size());
      for (size_t r = 0; r < grown->plan.layers[l][h].size(); ++r) {
        EXPECT_EQ(grown->plan.layers[l][h][r].device,
                  direct->plan.layers[l][h][r].device);
        EXPECT_DOUBLE_EQ(grown->plan.layers[l][h][r].share,
                         direct->plan.layers[l][h][r].share);
      }
    }
  EXPECT_EQ(withDecodeTokens(p, 40).tokens[1][2], p.tokens[1][2] + 40);
  o.decodeTokens = -1;
  Result<PlanResult> bad = makePlan(p, m, o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "decode and prompt tokens must be between 0 and 4294967296");
}

// A DuoAttention streaming head stays at sink + recent while decoding; a
// retrieval head grows.
TEST(Strategies, DuoStreamingHeadsDoNotGrow) {
  BudgetProfile p;
  p.source = "duo:threshold=0.5,sink=128,recent=256,context=32768";
  p.tokens = {{384, 32768, 384}};
  BudgetProfile grown = withDecodeTokens(p, 100);
  EXPECT_EQ(grown.tokens[0], (std::vector<int64_t>{384, 32868, 384}));
  // A known prompt caps what a head holds; one within sink + recent is kept
  // whole by every head, which then grow alike.
  EXPECT_EQ(withDecodeTokens(p, 100, 1000).tokens[0],
            (std::vector<int64_t>{384, 1100, 384}));
  EXPECT_EQ(withDecodeTokens(p, 100, 300).tokens[0],
            (std::vector<int64_t>{400, 400, 400}));
  p.source = "synthetic";
  EXPECT_EQ(withDecodeTokens(p, 100).tokens[0],
            (std::vector<int64_t>{484, 32868, 484}));
}

// Every metric can be recomputed from the JSON replicas alone.
// (With decode growth, the budgets in the JSON's terms are budget + the
// plan's decode_tokens.)
TEST(CostModel, SplitReductionBlocksPayFromTheirFixedCost) {
  Result<Hardware> hw = hardwarePreset("h100-sxm");
  ASSERT_TRUE(hw) << hw.error();
  EXPECT_EQ(smallestPayingReductionBlock(1, *hw), 0);
  EXPECT_NEAR(smallestPayingReductionBlock(2, *hw), 3.6e6, 1);
  for (int g : {2, 4, 8, 64}) {
    // At that size a block's transfer takes as long as the collective's
    // fixed cost: the all-reduce costs twice that cost.
    double bytes = smallestPayingReductionBlock(g, *hw);
    EXPECT_NEAR(allReduceSeconds(bytes, g, *hw), 2 * hw->collectiveLatency,
                1e-12)
        << g << " devices";
  }
}

TEST(Report, MetricsRecomputeFromJson) {
 for (int64_t decode : {0, 25}) {
  SCOPED_TRACE("decode tokens " + std::to_string(decode));
  BudgetProfile p = syntheticProfile(5, 8, 9, 1.5);
  ModelConfig m = shapeFor(5, 8);
  Hardware hw = *hardwarePreset("h100-sxm");
  PlanOptions o;
  o.devices = 4;
  o.decodeTokens = decode;
  o.copyBudgetBytes = 0.1 * m.tpWeightBytesPerDevice(4);
  Result<PlanReport> report = planAndEvaluate(p, m, hw, o, 16);
  ASSERT_TRUE(report) << report.error();
  ReportContext ctx{&p, &m, &hw, &o, 16};
  nlohmann::json j = nlohmann::json::parse(renderJson(*report, ctx));

  const int G = j["devices"];
  EXPECT_EQ(j["options"]["decode_tokens"].get<int64_t>(), decode);
  for (auto &layer : p.tokens)
    for (int64_t &t : layer)
      t += j["options"]["decode_tokens"].get<int64_t>();
  std::vector<std::vector<double>> load(p.layers(), std::vector<double>(G));
  std::vector<int64_t> heads(G, 0);
  int64_t replicas = 0;
  for (const auto &layer : j["layers"]) {
    int l = layer["layer"];
    for (const auto &r : layer["replicas"]) {
      load[l][r["device"].get<int>()] +=
          r["share"].get<double>() * p.tokens[l][r["kv_head"].get<int>()];
      ++heads[r["device"].get<int>()];
      ++replicas;
    }
    for (int g = 0; g < G; ++g)
      EXPECT_NEAR(layer["device_load"][g].get<double>(), load[l][g], 1e-9);
  }
  double sumMax = 0, sumMean = 0;
  std::vector<double> kv(G, 0);
  for (const auto &layer : load) {
    sumMax += *std::max_element(layer.begin(), layer.end());
    for (int g = 0; g < G; ++g) {
      sumMean += layer[g] / G;
      kv[g] += layer[g];
    }
  }
  const auto &metrics = j["metrics"];
  EXPECT_NEAR(metrics["attention_imbalance"].get<double>(), sumMax / sumMean,
              1e-12);
  double kvMean = 0;
  for (double v : kv)
    kvMean += v / G;
  EXPECT_NEAR(metrics["memory_imbalance"].get<double>(),
              *std::max_element(kv.begin(), kv.end()) / kvMean, 1e-12);
  int64_t extra = replicas - p.layers() * p.kvHeads();
  EXPECT_EQ(metrics["extra_replicas"].get<int64_t>(), extra);
  double headBytes = j["options"]["kv_head_weight_bytes"];
  EXPECT_NEAR(metrics["extra_weight_bytes"].get<double>(), extra * headBytes,
              1e-3);
  double fullest = (*std::max_element(heads.begin(), heads.end()) -
                    static_cast<double>(p.layers()) * p.kvHeads() / G) *
                   headBytes;
  EXPECT_NEAR(metrics["extra_weight_bytes_fullest_device"].get<double>(),
              fullest, 1e-3);
  EXPECT_NEAR(metrics["extra_weight_fraction"].get<double>(),
              fullest / j["options"]["tp_weight_bytes_per_device"].get<double>(),
              1e-12);
  EXPECT_LE(metrics["extra_weight_fraction"].get<double>(), 0.1 + 1e-12);
  EXPECT_TRUE(metrics["predicted_step_speedup_vs_tp"].is_number());
}
}

} // namespace

// A workload of prompt lengths: each head's load is its weighted mean over
// them of min(budget, length) + decode tokens.
TEST(Strategies, PromptLengthsAverageWhatHeadsHold) {
  BudgetProfile p;
  p.model = "m";
  p.source = "test";
  p.tokens = {{100, 10}};
  PlanOptions o;
  o.decodeTokens = 4;
  o.promptLengths = {{20, 3}, {200, 1}};
  BudgetProfile load = withWorkload(p, o);
  // Head 0: (3 * (20 + 4) + 1 * (100 + 4)) / 4 = 44; head 1: 10 + 4.
  EXPECT_EQ(load.tokens[0], (std::vector<int64_t>{44, 14}));
  o.promptLengths.clear();
  o.promptTokens = 20;
  EXPECT_EQ(withWorkload(p, o).tokens[0], (std::vector<int64_t>{24, 14}));

  Result<std::vector<PromptLength>> list = parsePromptLengths("32,64:3, 128");
  ASSERT_TRUE(list) << list.error();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[1].tokens, 64);
  EXPECT_EQ((*list)[1].weight, 3);
  EXPECT_EQ((*list)[2].weight, 1);
  EXPECT_FALSE(parsePromptLengths("0"));
  EXPECT_FALSE(parsePromptLengths("32:-1"));
  EXPECT_FALSE(parsePromptLengths("99999999999999999999"));
  EXPECT_FALSE(parsePromptLengths(""));
  Result<std::vector<PromptLength>> missing =
      parsePromptLengths("/nonexistent/lengths.txt");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("cannot open"), std::string::npos)
      << missing.error();
}

// greedy's unequal head counts put extra weights on a device: under a byte
// budget no device holds more than the budget pays for.
TEST(Strategies, GreedyRespectsTheByteBudget) {
  BudgetProfile p = syntheticProfile(6, 8, 5, 1.5, 256);
  ModelConfig m = shapeFor(6, 8);
  Hardware hw = *hardwarePreset("h100-sxm");
  PlanOptions o;
  o.strategy = Strategy::Greedy;
  o.devices = 4;
  Result<PlanReport> free = planAndEvaluate(p, m, hw, o, 8);
  ASSERT_TRUE(free) << free.error();
  ASSERT_GT(free->metrics.extraWeightFraction, 0.02); // the test can fail
  for (double fraction : {0.0, 0.02}) {
    o.copyBudgetBytes = fraction * m.tpWeightBytesPerDevice(o.devices);
    Result<PlanReport> capped = planAndEvaluate(p, m, hw, o, 8);
    ASSERT_TRUE(capped) << capped.error();
    EXPECT_LE(capped->metrics.extraWeightFraction, fraction + 1e-12)
        << "budget " << fraction;
    EXPECT_TRUE(validatePlan(capped->result.plan, p));
  }
}

// More devices than KV heads: tp replicates each KV head over G / H devices,
// each serving a slice of its query group (vLLM's layout), and pays for it in
// KV held twice; fairkv plans against it with copies that split the batch.
TEST(Strategies, MoreDevicesThanKVHeads) {
  BudgetProfile p = syntheticProfile(6, 8, 4, 1.2);
  ModelConfig m = shapeFor(6, 8); // 32 query heads
  Hardware hw = *hardwarePreset("h100-sxm");
  PlanOptions o;
  o.strategy = Strategy::TP;
  o.devices = 16;
  Result<PlanReport> tp = planAndEvaluate(p, m, hw, o, 32);
  ASSERT_TRUE(tp) << tp.error();
  ASSERT_TRUE(validatePlan(tp->result.plan, p, m.queryGroup()));
  EXPECT_TRUE(splitsQueries(tp->result.plan));
  std::vector<std::vector<double>> loads = deviceLoads(tp->result.plan, p);
  std::vector<std::vector<double>> weights =
      deviceHeadWeights(tp->result.plan, m);
  for (size_t l = 0; l < p.tokens.size(); ++l)
    for (int h = 0; h < 8; ++h)
      for (int i = 0; i < 2; ++i) {
        const Replica &r = tp->result.plan.layers[l][h][i];
        EXPECT_EQ(r.device, 2 * h + i);
        EXPECT_EQ(r.queryBegin, 2 * i);
        EXPECT_EQ(r.queryCount, 2);
        // Each copy holds and reads the head's whole KV, and its weights
        // are K, V and half the query group's Q and O.
        EXPECT_DOUBLE_EQ(loads[l][r.device], p.tokens[l][h]);
        EXPECT_DOUBLE_EQ(weights[l][r.device], m.kvHeadWeightBytes(2));
      }
  EXPECT_DOUBLE_EQ(m.tpAttentionBytesPerDevice(16),
                   6 * m.kvHeadWeightBytes(2));
  EXPECT_EQ(tp->metrics.extraWeightBytesFullestDevice, 0);
  // Against the ideal (every head's KV once, spread over 16 devices) tp
  // holds and reads at least twice what it must.
  EXPECT_GE(tp->metrics.attentionImbalance, 2.0);
  EXPECT_GE(tp->metrics.memoryImbalance, 2.0);

  for (std::optional<double> fraction :
       {std::optional<double>(), std::optional<double>(0.1)}) {
    o.strategy = Strategy::FairKV;
    o.copyBudgetBytes.reset();
    if (fraction)
      o.copyBudgetBytes = *copyBudgetBytesOf(*fraction, m, 16);
    Result<PlanReport> fair = planAndEvaluate(p, m, hw, o, 32);
    ASSERT_TRUE(fair) << fair.error();
    ASSERT_TRUE(fair->tp);
    EXPECT_FALSE(splitsQueries(fair->result.plan));
    EXPECT_LT(fair->metrics.attentionImbalance,
              fair->tp->attentionImbalance / 1.5);
    EXPECT_LT(fair->metrics.memoryImbalance, fair->tp->memoryImbalance);
    if (fraction)
      EXPECT_LE(fair->metrics.extraWeightFraction, *fraction + 1e-9);
  }
}

TEST(Plan, QuerySplitCopiesMustTileTheGroupAndServeTheBatch) {
  BudgetProfile p = syntheticProfile(1, 2, 1);
  Plan plan;
  plan.devices = 4;
  auto check = [&](LayerPlacement layer, int64_t group) {
    plan.layers = {std::move(layer)};
    return static_cast<bool>(validatePlan(plan, p, group));
  };
  LayerPlacement good = {{{0, 1.0, 0, 2}, {1, 1.0, 2, 2}},
                         {{2, 1.0, 0, 3}, {3, 1.0, 3, 1}}};
  EXPECT_TRUE(check(good, 4));
  EXPECT_TRUE(check(good, 0));
  EXPECT_FALSE(check(good, 6));
  // A gap, an overlap, a part of the batch, mixed kinds.
  EXPECT_FALSE(check({{{0, 1.0, 0, 1}, {1, 1.0, 2, 2}}, {{2, 1.0}}}, 0));
  EXPECT_FALSE(check({{{0, 1.0, 0, 3}, {1, 1.0, 2, 2}}, {{2, 1.0}}}, 0));
  EXPECT_FALSE(check({{{0, 0.5, 0, 2}, {1, 1.0, 2, 2}}, {{2, 1.0}}}, 0));
  EXPECT_FALSE(check({{{0, 0.5}, {1, 1.0, 0, 4}}, {{2, 1.0}}}, 0));
}

TEST(Report, QuerySplitCopiesRoundTripThroughJson) {
  BudgetProfile p = syntheticProfile(2, 4, 3);
  ModelConfig m = shapeFor(2, 4);
  Hardware hw = *hardwarePreset("h100-sxm");
  PlanOptions o;
  o.strategy = Strategy::TP;
  o.devices = 8;
  Result<PlanReport> tp = planAndEvaluate(p, m, hw, o, 8);
  ASSERT_TRUE(tp) << tp.error();
  ReportContext ctx{&p, &m, &hw, &o, 8};
  Result<Plan> back = readPlanJson(renderJson(*tp, ctx), p);
  ASSERT_TRUE(back) << back.error();
  ASSERT_EQ(back->layers.size(), tp->result.plan.layers.size());
  for (size_t l = 0; l < back->layers.size(); ++l)
    for (size_t h = 0; h < back->layers[l].size(); ++h)
      for (size_t i = 0; i < back->layers[l][h].size(); ++i) {
        const Replica &a = back->layers[l][h][i];
        const Replica &b = tp->result.plan.layers[l][h][i];
        EXPECT_EQ(a.device, b.device);
        EXPECT_EQ(a.queryBegin, b.queryBegin);
        EXPECT_EQ(a.queryCount, b.queryCount);
      }
}

/// A plan file's integers are checked where they are 64-bit, before they
/// narrow or add: a device of 2^32 + 1 must not read as device 1, and
/// 'queries' whose first + count passes int64 must not wrap into range.
TEST(Report, PlanFileIntegersAreCheckedBeforeTheyNarrow) {
  BudgetProfile p = syntheticProfile(1, 2, 3);
  const std::string head = R"({"format": "fairkv-plan/v1", "devices": 2,
      "layers": [{"layer": 0, "replicas": [)";
  const std::string other = R"({"kv_head": 1, "device": 1, "share": 1.0}]}]})";
  auto read = [&](const std::string &first) {
    Result<Plan> plan = readPlanJson(head + first + ", " + other, p);
    return plan ? std::string("read") : plan.error();
  };
  EXPECT_EQ(read(R"({"kv_head": 0, "device": 0, "share": 1.0})"), "read");
  EXPECT_EQ(read(R"({"kv_head": 0, "device": 4294967297, "share": 1.0})"),
            "plan: layer 0, kv head 0 has a replica on device 4294967297, "
            "outside 0..1");
  EXPECT_EQ(read(R"({"kv_head": 0, "device": -1, "share": 1.0})"),
            "plan: layer 0, kv head 0 has a replica on device -1, outside "
            "0..1");
  EXPECT_EQ(read(R"({"kv_head": 0, "device": 0, "share": 1.0, "queries":
                    [9223372036854775807, 9223372036854775807]})"),
            "plan: layer 0: 'queries' must be [first, count] with count > 0 "
            "inside a query group");
}
