//===- Strategies.cpp - tp, greedy, fairkv and optimal --------------------===//
//
// fairkv and optimal share one structure:
//  1. per layer, the best placement found for every number of extra
//     replicas k = 0..G-1 (G - 1 always suffices: wrap-around filling), by
//     the heuristics (fairkv) or by the exact MILP seeded with them
//     (optimal); a layer stops taking copies once it is within epsilon of
//     its ideal;
//  2. the copies are shared out across layers by an exact DP over the
//     per-layer curves (a budget in bytes caps the total);
//  3. devices are relabelled per layer (free: every layer ends in an
//     all-reduce) so that every device holds about the same number of heads
//     and the same KV; a byte budget is then checked per device and the
//     total shrunk until it holds.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Strategies.h"
#include "LayerSolvers.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

using namespace fairkv::placement;
using namespace fairkv::placement::detail;

std::vector<std::string> fairkv::placement::strategyNames() {
  return {"tp", "greedy", "fairkv", "optimal"};
}

const char *fairkv::placement::strategyName(Strategy strategy) {
  switch (strategy) {
  case Strategy::TP:
    return "tp";
  case Strategy::Greedy:
    return "greedy";
  case Strategy::FairKV:
    return "fairkv";
  case Strategy::Optimal:
    return "optimal";
  }
  return "?";
}

Result<Strategy> fairkv::placement::parseStrategy(const std::string &name) {
  for (Strategy s :
       {Strategy::TP, Strategy::Greedy, Strategy::FairKV, Strategy::Optimal})
    if (name == strategyName(s))
      return s;
  return makeError("unknown strategy '" + name +
                   "' (known: tp, greedy, fairkv, optimal)");
}

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<double> layerWeights(const BudgetProfile &profile, size_t l) {
  return std::vector<double>(profile.tokens[l].begin(),
                             profile.tokens[l].end());
}

struct Candidate {
  LayerPlacement placement;
  double makespan = 0;
  int extra = 0;
};

/// Chooses one candidate per layer to minimise the summed makespan with at
/// most `budget` extra replicas in total (ties: fewer replicas).
std::vector<int> allocateCopies(const std::vector<std::vector<Candidate>> &c,
                                int64_t budget) {
  const size_t L = c.size();
  int64_t most = 0;
  for (const auto &layer : c)
    most += layer.back().extra;
  if (budget >= most) {
    std::vector<int> pick(L);
    for (size_t l = 0; l < L; ++l)
      pick[l] = static_cast<int>(c[l].size()) - 1;
    return pick;
  }
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t B = std::max<int64_t>(0, budget);
  std::vector<double> dp(B + 1, inf), next(B + 1);
  dp[0] = 0;
  std::vector<std::vector<int>> choice(L, std::vector<int>(B + 1, -1));
  for (size_t l = 0; l < L; ++l) {
    std::fill(next.begin(), next.end(), inf);
    for (int64_t j = 0; j <= B; ++j) {
      if (dp[j] == inf)
        continue;
      for (size_t k = 0; k < c[l].size(); ++k) {
        int64_t used = j + c[l][k].extra;
        if (used > B)
          continue;
        double value = dp[j] + c[l][k].makespan;
        if (value < next[used]) {
          next[used] = value;
          choice[l][used] = static_cast<int>(k);
        }
      }
    }
    dp.swap(next);
  }
  int64_t bestJ = 0;
  for (int64_t j = 1; j <= B; ++j)
    if (dp[j] < dp[bestJ] * (1 - 1e-12))
      bestJ = j;
  std::vector<int> pick(L, 0);
  for (size_t l = L; l-- > 0;) {
    int k = choice[l][bestJ];
    pick[l] = k;
    bestJ -= c[l][k].extra;
  }
  return pick;
}

/// Minimum of sum_l bound[l][k_l] with sum_l k_l <= budget (bounds are
/// non-increasing in k).
double boundedSum(const std::vector<std::vector<double>> &bound,
                  int64_t budget) {
  const double inf = std::numeric_limits<double>::infinity();
  int64_t most = 0;
  for (const auto &layer : bound)
    most += static_cast<int64_t>(layer.size()) - 1;
  if (budget >= most) {
    double sum = 0;
    for (const auto &layer : bound)
      sum += layer.back();
    return sum;
  }
  const int64_t B = std::max<int64_t>(0, budget);
  std::vector<double> dp(B + 1, inf), next(B + 1);
  dp[0] = 0;
  for (const auto &layer : bound) {
    std::fill(next.begin(), next.end(), inf);
    for (int64_t j = 0; j <= B; ++j)
      if (dp[j] < inf)
        for (size_t k = 0; k < layer.size() && j + (int64_t)k <= B; ++k)
          next[j + k] = std::min(next[j + k], dp[j] + layer[k]);
    dp.swap(next);
  }
  return *std::min_element(dp.begin(), dp.end());
}

/// Relabels each layer's devices so that heads and KV spread evenly over the
/// devices across layers; returns the head count of the fullest device.
int64_t balanceDevices(Plan &plan, const BudgetProfile &profile) {
  const int G = plan.devices;
  std::vector<int64_t> heads(G, 0);
  std::vector<double> kv(G, 0.0);
  std::vector<std::vector<int>> counts = replicaCounts(plan);
  std::vector<std::vector<double>> loads = deviceLoads(plan, profile);
  // Layers with the most uneven head counts first: they constrain most.
  std::vector<size_t> order(plan.layers.size());
  std::iota(order.begin(), order.end(), 0);
  auto spread = [&](size_t l) {
    auto [lo, hi] = std::minmax_element(counts[l].begin(), counts[l].end());
    return *hi - *lo;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return spread(a) > spread(b); });
  std::vector<int> local(G), global(G), label(G);
  for (size_t l : order) {
    std::iota(local.begin(), local.end(), 0);
    std::stable_sort(local.begin(), local.end(), [&](int a, int b) {
      if (counts[l][a] != counts[l][b])
        return counts[l][a] > counts[l][b];
      return loads[l][a] > loads[l][b];
    });
    std::iota(global.begin(), global.end(), 0);
    std::stable_sort(global.begin(), global.end(), [&](int a, int b) {
      if (heads[a] != heads[b])
        return heads[a] < heads[b];
      return kv[a] < kv[b];
    });
    for (int i = 0; i < G; ++i) {
      label[local[i]] = global[i];
      heads[global[i]] += counts[l][local[i]];
      kv[global[i]] += loads[l][local[i]];
    }
    for (auto &head : plan.layers[l])
      for (Replica &r : head)
        r.device = label[r.device];
  }
  return *std::max_element(heads.begin(), heads.end());
}

Status checkOptions(const BudgetProfile &profile, const ModelConfig &model,
                    const PlanOptions &options) {
  if (Status s = model.validate(); !s)
    return s;
  if (Status s = profile.checkAgainst(model); !s)
    return s;
  if (options.devices <= 0 || options.devices > kMaxDevices)
    return makeError("devices must be between 1 and " +
                     std::to_string(kMaxDevices) + ", got " +
                     std::to_string(options.devices));
  if (options.copyBudget && *options.copyBudget < 0)
    return makeError("copy budget must be non-negative");
  if (options.copyBudgetBytes &&
      !(*options.copyBudgetBytes >= 0 &&
        std::isfinite(*options.copyBudgetBytes)))
    return makeError("copy budget in bytes must be finite and non-negative");
  if (!(options.epsilon >= 0 && std::isfinite(options.epsilon)))
    return makeError("epsilon must be finite and non-negative");
  if (!(options.timeLimitSeconds > 0 && options.timeLimitSeconds <= 86400))
    return makeError("the time limit must be in (0, 86400] seconds");
  const int64_t H = profile.kvHeads();
  const bool divisible = H % options.devices == 0;
  if (options.strategy == Strategy::TP && !hasTpPlan(model, options.devices))
    return makeError(
        "tp needs the devices (" + std::to_string(options.devices) +
        ") to divide the kv heads (" + std::to_string(H) +
        "), or to be a multiple of them that divides the query heads (" +
        std::to_string(model.heads) + ")");
  if (options.strategy == Strategy::Greedy && options.equalHeads && !divisible)
    return makeError("greedy --equal-heads needs the kv heads (" +
                     std::to_string(H) + ") to be divisible by the devices (" +
                     std::to_string(options.devices) + ")");
  return Status::ok();
}

} // namespace

namespace {

/// A DuoAttention profile's streaming-head budget (sink + recent, from the
/// source its importer wrote), or -1 for another profile.
int64_t duoStreamingBudget(const std::string &source) {
  if (source.rfind("duo:", 0) != 0)
    return -1;
  int64_t sink = sourceParameter(source, "sink"),
          recent = sourceParameter(source, "recent");
  return sink < 0 || recent < 0 ? -1 : sink + recent;
}

} // namespace

BudgetProfile fairkv::placement::withDecodeTokens(const BudgetProfile &profile,
                                                 int64_t decodeTokens,
                                                 int64_t promptTokens) {
  BudgetProfile grown = profile;
  // A DuoAttention streaming head stays at sink + recent while decoding;
  // it streams only when the prompt exceeds that (else it keeps the prompt
  // and grows like the others).
  const int64_t streaming = duoStreamingBudget(profile.source);
  const bool streams =
      streaming > 0 && (promptTokens <= 0 || promptTokens > streaming);
  for (auto &layer : grown.tokens)
    for (int64_t &t : layer) {
      const bool constant = streams && t == streaming;
      if (promptTokens > 0)
        t = std::min(t, promptTokens);
      if (!constant)
        t += std::max<int64_t>(0, decodeTokens);
    }
  if (promptTokens > 0)
    grown.source += ",prompt=" + std::to_string(promptTokens);
  if (decodeTokens > 0)
    grown.source += ",decode+" + std::to_string(decodeTokens);
  return grown;
}

Result<double> fairkv::placement::copyBudgetBytesOf(double fraction,
                                                   const ModelConfig &model,
                                                   int devices) {
  if (!(fraction >= 0 && std::isfinite(fraction)))
    return makeError("the copy budget fraction must be finite and "
                     "non-negative");
  return std::min(fraction * model.tpWeightBytesPerDevice(devices),
                  std::numeric_limits<double>::max());
}

bool fairkv::placement::hasTpPlan(const ModelConfig &model, int devices) {
  return devices > 0 && (model.kvHeads % devices == 0 ||
                         model.tpReplicatedQueries(devices) > 0);
}

/// fairkv's share of the exact per-layer search, over the whole plan.
constexpr double kFairKVSearchSeconds = 0.04;

Result<PlanResult> fairkv::placement::makePlan(const BudgetProfile &given,
                                               const ModelConfig &model,
                                               const PlanOptions &options) {
  if (options.decodeTokens < 0 || options.promptTokens < 0 ||
      options.decodeTokens > kMaxBudgetTokens ||
      options.promptTokens > kMaxBudgetTokens)
    return makeError("decode and prompt tokens must be between 0 and " +
                     std::to_string(kMaxBudgetTokens));
  if (options.promptTokens > 0 && !options.promptLengths.empty())
    return makeError("give one prompt length or a distribution of them, "
                     "not both");
  const BudgetProfile profile =
      withWorkload(given, options);
  if (Status s = checkOptions(profile, model, options); !s)
    return makeError(s.error());
  const Clock::time_point start = Clock::now();
  const int G = options.devices;
  const int H = static_cast<int>(profile.kvHeads());
  const size_t L = profile.tokens.size();
  const bool divisible = H % G == 0;

  PlanResult result;
  result.plan.strategy = strategyName(options.strategy);
  result.plan.devices = G;

  // The most copies any layer may take: G - 1 reach the ideal.
  int perLayerCap = G - 1;
  if (options.copyBudget)
    perLayerCap = static_cast<int>(
        std::min<int64_t>(perLayerCap, *options.copyBudget));
  const double headBytes = model.kvHeadWeightBytes();
  // The head weights of a device under tp, in whole heads (more than
  // L H / G when tp replicates KV heads over more devices than there are).
  const double tpHeads = model.tpAttentionBytesPerDevice(G) / headBytes;
  // Total extra replicas a byte budget can possibly allow: every device at
  // most its TP heads plus budget / headBytes.
  int64_t byteCap = std::numeric_limits<int64_t>::max() / 4;
  if (options.copyBudgetBytes) {
    // In double: a budget beyond every head's weights is no cap at all.
    const double perDevice =
        std::floor(tpHeads + *options.copyBudgetBytes / headBytes + 1e-9);
    if (perDevice * G < static_cast<double>(byteCap))
      byteCap = std::max<int64_t>(0, static_cast<int64_t>(perDevice) * G -
                                         static_cast<int64_t>(L) * H);
  }

  // Lower bounds, shared by every strategy so they can be compared.
  std::vector<std::vector<double>> bounds(L);
  double idealSum = 0;
  for (size_t l = 0; l < L; ++l) {
    std::vector<double> w = layerWeights(profile, l);
    idealSum += std::accumulate(w.begin(), w.end(), 0.0) / G;
    for (int k = 0; k <= perLayerCap; ++k)
      bounds[l].push_back(layerLowerBound(w, G, k));
  }

  if (options.strategy == Strategy::TP || options.strategy == Strategy::Greedy) {
    // greedy's unequal head counts put extra weights on a device: under a
    // byte budget, every device holds at most its tp heads plus what the
    // budget pays for, over the whole model (the total always suffices:
    // LPT never runs out of devices with room).
    std::vector<int64_t> allowance;
    if (options.strategy == Strategy::Greedy && options.copyBudgetBytes) {
      const double perDevice =
          std::floor(tpHeads + *options.copyBudgetBytes / headBytes + 1e-9);
      if (perDevice < static_cast<double>(L) * H)
        allowance.assign(G, std::max<int64_t>(
                                static_cast<int64_t>(std::ceil(tpHeads - 1e-9)),
                                static_cast<int64_t>(perDevice)));
    }
    const int replicatedQueries =
        static_cast<int>(model.tpReplicatedQueries(G));
    for (size_t l = 0; l < L; ++l)
      result.plan.layers.push_back(
          options.strategy == Strategy::TP
              ? (divisible ? contiguousPlacement(H, G)
                           : replicatedPlacement(H, G, replicatedQueries))
              : lptPlacement(layerWeights(profile, l), G, options.equalHeads,
                             allowance.empty() ? nullptr : &allowance));
    result.solveSeconds = secondsSince(start);
    result.lowerBoundImbalance = boundedSum(bounds, byteCap) / idealSum;
    return result;
  }

  const bool exact = options.strategy == Strategy::Optimal;
  std::vector<std::vector<Candidate>> candidates(L);
  result.provedOptimal = exact;
  // The exact solver's time is shared out over the solves still to come.
  size_t solvesLeft = L * static_cast<size_t>(perLayerCap + 1);
  for (size_t l = 0; l < L; ++l) {
    std::vector<double> w = layerWeights(profile, l);
    const double ideal = std::accumulate(w.begin(), w.end(), 0.0) / G;
    for (int k = 0; k <= perLayerCap; ++k, --solvesLeft) {
      Candidate c;
      if (k == 0) {
        // Best-effort assignment: never worse than tp or balanced LPT.
        std::vector<LayerPlacement> options0 = {lptPlacement(w, G, false)};
        if (divisible) {
          options0.push_back(lptPlacement(w, G, true));
          options0.push_back(contiguousPlacement(H, G));
        }
        for (LayerPlacement &p : options0) {
          double span = makespan(p, w, G);
          if (c.placement.empty() || span < c.makespan * (1 - 1e-12)) {
            c.makespan = span;
            c.placement = std::move(p);
          }
        }
      } else {
        c.placement = options.evenShares && !exact
                          ? evenSharePlacement(w, G, k)
                          : splitPlacement(w, G, k);
        c.makespan = makespan(c.placement, w, G);
      }
      // optimal searches until its time limit; fairkv too, for a few tens
      // of milliseconds in all (most layers prove optimal in far less),
      // unless its shares must be even.
      const bool search = exact || !options.evenShares;
      const double limit =
          exact ? options.timeLimitSeconds
                : std::min(options.timeLimitSeconds, kFairKVSearchSeconds);
      if (search && c.makespan > bounds[l][k] * (1 + 1e-9)) {
        double left = limit - secondsSince(start);
        if (left > 0.001) {
          ExactLayerResult r = exactLayer(w, G, k, c.placement,
                                          left / std::max<size_t>(1, solvesLeft));
          bounds[l][k] = std::max(bounds[l][k], r.bound);
          result.provedOptimal = result.provedOptimal && r.proved;
          if (r.makespan < c.makespan) {
            c.placement = std::move(r.placement);
            c.makespan = r.makespan;
          }
        } else {
          result.provedOptimal = false;
        }
      }
      c.extra = extraReplicas(c.placement);
      // More copies never hurt: keep the previous candidate if better.
      if (k > 0 && candidates[l].back().makespan <= c.makespan)
        c = candidates[l].back();
      candidates[l].push_back(std::move(c));
      // fairkv stops copying a layer within epsilon of its ideal; optimal
      // is the exact optimum for the budget, so it stops only at the ideal.
      double slack = exact ? 1e-9 : options.epsilon;
      if (candidates[l].back().makespan <= ideal * (1 + slack))
        break;
    }
    // Bounds are per k; a layer that stopped early keeps its own makespan.
    for (size_t k = 0; k < bounds[l].size(); ++k)
      bounds[l][k] = std::min(
          bounds[l][k],
          candidates[l][std::min(k, candidates[l].size() - 1)].makespan);
  }

  int64_t budget = byteCap;
  for (;;) {
    std::vector<int> pick = allocateCopies(candidates, budget);
    Plan plan;
    plan.strategy = result.plan.strategy;
    plan.devices = G;
    int64_t used = 0;
    for (size_t l = 0; l < L; ++l) {
      plan.layers.push_back(candidates[l][pick[l]].placement);
      used += candidates[l][pick[l]].extra;
    }
    int64_t fullest = balanceDevices(plan, profile);
    bool fits = !options.copyBudgetBytes ||
                (fullest - tpHeads) * headBytes <=
                    *options.copyBudgetBytes * (1 + 1e-9) + 1e-6;
    if (fits) {
      result.plan = std::move(plan);
      break;
    }
    if (used > 0) {
      budget = used - 1;
      continue;
    }
    // Without copies the budget can still be exceeded by uneven head counts:
    // fall back to equal heads per device, which TP-sized memory always fits.
    if (!divisible)
      return makeError("a copy budget of " +
                       std::to_string(*options.copyBudgetBytes) +
                       " bytes cannot be met: " + std::to_string(H) +
                       " kv heads do not spread evenly over " +
                       std::to_string(G) + " devices");
    for (size_t l = 0; l < L; ++l) {
      std::vector<double> w = layerWeights(profile, l);
      LayerPlacement lpt = lptPlacement(w, G, true);
      LayerPlacement tp = contiguousPlacement(H, G);
      bool useTp = makespan(tp, w, G) < makespan(lpt, w, G);
      candidates[l] = {Candidate{useTp ? tp : lpt,
                                 makespan(useTp ? tp : lpt, w, G), 0}};
    }
    budget = 0;
  }
  result.solveSeconds = secondsSince(start);
  result.lowerBoundImbalance = boundedSum(bounds, byteCap) / idealSum;
  return result;
}
