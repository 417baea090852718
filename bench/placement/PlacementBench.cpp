//===- PlacementBench.cpp - Strategies side by side on the real profiles --===//
//
// For every shared profile x G in {2, 4, 8, 16} x every strategy x copy budgets
// {0, G-1 per layer, 5% and 10% of per-device weights}: attention and memory
// imbalance, extra weight fraction, lower bound, predicted speedup vs tp
// (llama-3-8b shape, h100-sxm, batch 32) and solve time (at G = 16, more
// devices than the 8 KV heads, tp replicates each KV head on two devices); then solve times on
// an 80-layer x 64-KV-head x 64-device synthetic instance and a 70B-shaped
// model. Writes its section of bench/RESULTS.md.
//
// Usage: fairkv-bench-placement [--profiles DIR] [--results FILE]
//                               [--optimal-seconds S]
//
//===----------------------------------------------------------------------===//

#include "Profiles.h"
#include "ResultsFile.h"
#include "fairkv/Placement/Report.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

using namespace fairkv::placement;

namespace {

struct Budget {
  std::string name;
  std::optional<int64_t> copies;
  std::optional<double> fraction;
};

struct Variant {
  std::string name;
  Strategy strategy;
  bool even = false;
};

using fairkv::bench::formatNumber;

} // namespace

int main(int argc, char **argv) {
  fairkv::bench::BenchArgs args;
  if (int exit = fairkv::bench::parseBenchArgs(
          argc, argv, "fairkv-bench-placement", FAIRKV_SOURCE_DIR,
          {{"optimal-seconds", "3"}}, args);
      exit >= 0)
    return exit;
  const std::string &dir = args.profiles, &results = args.results;
  const double optimalSeconds =
      std::atof(args.values["optimal-seconds"].c_str());
  if (!std::filesystem::is_directory(dir)) {
    std::cerr << "fairkv-bench-placement: error: no profiles at '" << dir
              << "' (use --profiles)\n";
    return 1;
  }
  ModelConfig model = *modelPreset("llama-3-8b");
  Hardware hw = *hardwarePreset("h100-sxm");
  const int64_t batch = 32;

  std::vector<std::pair<std::string, BudgetProfile>> profiles;
  Result<std::string> headkv =
      readFile(dir + "/" + fairkv::bench::kLlama3HeadKVFile);
  if (!headkv) {
    std::cerr << "fairkv-bench-placement: error: " << headkv.error() << "\n";
    return 1;
  }
  for (int64_t base : {128, 512})
    for (double beta : {1.2, 2.0}) {
      HeadKVOptions o;
      o.base = base;
      o.beta = beta;
      Result<BudgetProfile> p = importHeadKV(*headkv, model, o);
      if (!p) {
        std::cerr << "fairkv-bench-placement: error: " << p.error() << "\n";
        return 1;
      }
      profiles.push_back({"HeadKV base " + std::to_string(base) + ", beta " +
                              formatNumber("%.1f", beta) + " (group sum)",
                          *p});
    }
  for (auto [file, name] :
       {std::pair<const char *, const char *>{
            "duo-Llama-3-8B-Instruct-Gradient-1048k.tsv",
            "DuoAttention Llama-3-8B-1048k, 32k context"},
        {"duo-Mistral-7B-Instruct-v0.2.tsv",
         "DuoAttention Mistral-7B-v0.2, 32k context"}}) {
    Result<std::string> text = readFile(dir + "/" + file);
    Result<BudgetProfile> p =
        text ? importDuo(*text, model, DuoOptions()) : makeError(text.error());
    if (!p) {
      std::cerr << "fairkv-bench-placement: error: " << p.error() << "\n";
      return 1;
    }
    profiles.push_back({name, *p});
  }

  const Variant variants[] = {{"tp", Strategy::TP},
                              {"greedy", Strategy::Greedy},
                              {"fairkv", Strategy::FairKV},
                              {"fairkv-even", Strategy::FairKV, true},
                              {"optimal", Strategy::Optimal}};
  std::ostringstream md;
  md << "## Placement (`bench/placement`)\n\n"
     << "Machine: " << fairkv::bench::machineDescription()
     << ". Run: " << fairkv::bench::utcNow() << ".\n"
     << "Model shape llama-3-8b (32 layers x 8 KV heads), hardware preset "
        "h100-sxm, batch "
     << batch << ". optimal: the exact per-layer branch and bound, at most " << optimalSeconds
     << " s per plan. At G = 16 (more devices than KV heads) tp replicates each "
        "KV head on two devices, each serving half its query group, as vLLM "
        "does, so it holds and reads every KV head twice; imbalances are "
        "against every head's KV held once. Budgets: `0` = no copies, `G-1` = G-1 extra replicas "
        "per layer, `5%`/`10%` = extra weight bytes per device as a fraction "
        "of its tp weights.\n\n"
     << "Columns: attention imbalance (1 = perfect), memory imbalance, extra "
        "weight fraction on the fullest device, lower bound on the attention "
        "imbalance at that budget, predicted decode step speedup vs tp at "
        "batch "
     << batch
     << ", predicted max-batch throughput speedup vs tp, extra replicas, "
        "solve seconds.\n\n";
  size_t runs = 0;
  for (const auto &[name, profile] : profiles) {
    md << "### " << name << "\n\n"
       << "| G | budget | strategy | attn imb | mem imb | xweight | lower bd | "
          "step x | thpt x | copies | solve s |\n"
       << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (int G : {2, 4, 8, 16}) {
      const Budget budgets[] = {{"0", int64_t(0), std::nullopt},
                                {"G-1", int64_t(G - 1), std::nullopt},
                                {"5%", std::nullopt, 0.05},
                                {"10%", std::nullopt, 0.10}};
      for (const Budget &b : budgets)
        for (const Variant &v : variants) {
          // tp and greedy take no copies: list them once per G.
          if ((v.strategy == Strategy::TP || v.strategy == Strategy::Greedy) &&
              b.name != "0")
            continue;
          PlanOptions o;
          o.strategy = v.strategy;
          o.devices = G;
          o.evenShares = v.even;
          o.copyBudget = b.copies;
          if (b.fraction)
            o.copyBudgetBytes = *copyBudgetBytesOf(*b.fraction, model, G);
          o.timeLimitSeconds = optimalSeconds;
          Result<PlanReport> r = planAndEvaluate(profile, model, hw, o, batch);
          if (!r) {
            std::cerr << "fairkv-bench-placement: error: " << r.error() << "\n";
            return 1;
          }
          const PlanMetrics &m = r->metrics;
          md << "| " << G << " | " << b.name << " | " << v.name << " | "
             << formatNumber("%.4f", m.attentionImbalance) << " | "
             << formatNumber("%.4f", m.memoryImbalance) << " | "
             << formatNumber("%.4f", m.extraWeightFraction) << " | "
             << formatNumber("%.4f", r->result.lowerBoundImbalance) << " | "
             << (r->tp ? formatNumber("%.3f", r->tp->predictedStepSeconds /
                                                  m.predictedStepSeconds)
                       : "n/a")
             << " | "
             << (r->tp && r->tp->predictedThroughput > 0
                     ? formatNumber("%.3f", m.predictedThroughput /
                                                r->tp->predictedThroughput)
                     : "n/a")
             << " | " << m.extraReplicas << " | "
             << formatNumber("%.4f", r->result.solveSeconds)
             << (v.strategy == Strategy::Optimal && !r->result.provedOptimal
                     ? " (not proved)"
                     : "")
             << " |\n";
          ++runs;
          std::cerr << "\r" << runs << " plans" << std::flush;
        }
    }
    md << "\n";
  }
  std::cerr << "\n";

  md << "### Solve time at scale\n\n"
     << "| instance | strategy | budget | attn imb | copies | solve s |\n"
     << "|---|---|---|---|---|---|\n";
  struct Scale {
    std::string name;
    ModelConfig shape;
    int devices;
  };
  ModelConfig big = *modelPreset("llama-3-70b");
  big.name = "80 layers x 64 KV heads";
  big.kvHeads = 64;
  big.heads = 64;
  Scale scales[] = {{"llama-3-70b shape, 80 x 8, synthetic, G=8",
                     *modelPreset("llama-3-70b"), 8},
                    {"80 layers x 64 KV heads x 64 devices, synthetic", big,
                     64}};
  for (const Scale &s : scales) {
    BudgetProfile p = syntheticProfile(s.shape.layers, s.shape.kvHeads, 1);
    for (const Variant &v : variants) {
      if (v.even)
        continue;
      for (std::optional<double> fraction :
           {std::optional<double>(), std::optional<double>(0.1)}) {
        if ((v.strategy == Strategy::TP || v.strategy == Strategy::Greedy) &&
            fraction)
          continue;
        PlanOptions o;
        o.strategy = v.strategy;
        o.devices = s.devices;
        if (fraction)
          o.copyBudgetBytes =
              *fraction * s.shape.tpWeightBytesPerDevice(s.devices);
        o.timeLimitSeconds = 30;
        Result<PlanReport> r = planAndEvaluate(p, s.shape, hw, o, batch);
        if (!r) {
          std::cerr << "fairkv-bench-placement: error: " << r.error() << "\n";
          return 1;
        }
        md << "| " << s.name << " | " << v.name << " | "
           << (fraction ? "10%" : "none") << " | "
           << formatNumber("%.4f", r->metrics.attentionImbalance) << " | "
           << r->metrics.extraReplicas << " | "
           << formatNumber("%.4f", r->result.solveSeconds)
           << (v.strategy == Strategy::Optimal && !r->result.provedOptimal
                   ? " (time limit, not proved)"
                   : "")
           << " |\n";
        std::cerr << "scale: " << s.name << " " << v.name << " done\n";
      }
    }
  }
  md << "\n";
  if (!fairkv::bench::writeSection(results, "placement", md.str())) {
    std::cerr << "fairkv-bench-placement: error: cannot write " << results
              << "\n";
    return 1;
  }
  std::cout << "fairkv-bench-placement: " << runs << " plans; wrote "
            << results << "\n";
  return 0;
}
