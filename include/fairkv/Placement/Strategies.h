//===- Strategies.h - Placement strategies ----------------------*- C++ -*-===//
//
// The four strategies of DESIGN.md section 2: `tp` (contiguous heads),
// `greedy` (LPT), `fairkv` (best-effort assignment + Fair-Copying) and
// `optimal` (exact per layer for the copy budget).
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_STRATEGIES_H
#define FAIRKV_PLACEMENT_STRATEGIES_H

#include "fairkv/Placement/Plan.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fairkv::placement {

enum class Strategy { TP, Greedy, FairKV, Optimal };

std::vector<std::string> strategyNames();
Result<Strategy> parseStrategy(const std::string &name);
const char *strategyName(Strategy strategy);

/// One prompt length of a workload and how often it occurs.
struct PromptLength {
  int64_t tokens = 0;
  double weight = 1;
};

/// The most devices a plan may have (plans, plan files, pass options).
constexpr int kMaxDevices = 4096;

struct PlanOptions {
  Strategy strategy = Strategy::FairKV;
  int devices = 8;
  /// Extra replicas allowed per layer (none: no per-layer cap).
  std::optional<int64_t> copyBudget;
  /// Extra weight bytes allowed on any device (none: no byte cap).
  std::optional<double> copyBudgetBytes;
  /// fairkv: equal batch shares among the copies of a head (default:
  /// water-filled uneven shares).
  bool evenShares = false;
  /// greedy: the same number of heads on every device.
  bool equalHeads = false;
  /// fairkv: a layer gets no more copies once its makespan is within
  /// (1 + epsilon) of the ideal (optimal only stops at the ideal itself).
  double epsilon = 0.002;
  /// optimal: wall-clock limit of the exact solver for the whole plan.
  double timeLimitSeconds = 20.0;
  /// Tokens every request will append to every head by decoding: a head
  /// holds its budget plus these, so light heads weigh more than their
  /// budgets say. Planning (and the metrics) use budget + decodeTokens.
  int64_t decodeTokens = 0;
  /// The prompt length the requests will have (0: unknown): a head whose
  /// budget exceeds it holds only the prompt, so planning uses
  /// min(budget, promptTokens) + decodeTokens.
  int64_t promptTokens = 0;
  /// The prompt lengths the requests will have, with their weights (empty:
  /// promptTokens): planning uses each head's mean over them of
  /// min(budget, length) + decodeTokens.
  std::vector<PromptLength> promptLengths;
};

/// What every head of `profile` holds at the end of a request under the
/// options' workload (decode tokens and the prompt length or lengths).
BudgetProfile withWorkload(const BudgetProfile &profile,
                           const PlanOptions &options);

/// Parses a prompt-length distribution: "32,64,128" (equal weights),
/// "32:10,64:5" (length:weight), or the path of a file of "length weight"
/// lines (a histogram; '#' starts a comment). Lengths in [1, 2^32], weights
/// positive; errors are one line.
Result<std::vector<PromptLength>> parsePromptLengths(const std::string &spec);

/// What every head of `profile` holds at the end of a request: its budget,
/// at most `promptTokens` when that is known, plus `decodeTokens` (but a
/// DuoAttention streaming head stays at its budget).
BudgetProfile withDecodeTokens(const BudgetProfile &profile,
                               int64_t decodeTokens, int64_t promptTokens = 0);

struct PlanResult {
  Plan plan;
  double solveSeconds = 0;
  /// Lower bound on the attention imbalance of any plan with this budget.
  double lowerBoundImbalance = 1.0;
  /// optimal: whether every layer was solved to proven optimality.
  bool provedOptimal = false;
};

/// The copy budget in bytes that `fraction` of a device's tp weight bytes
/// allows on `devices` devices. A fraction past every head's weights is no
/// cap at all (its product may overflow: it is clamped, not infinite); a
/// negative or non-finite fraction is an error.
Result<double> copyBudgetBytesOf(double fraction, const ModelConfig &model,
                                 int devices);

/// Whether tp can place `model` on `devices` devices: they divide the KV
/// heads, or they are a multiple of the KV heads that divides the query
/// heads (each KV head then replicated, vLLM's layout).
bool hasTpPlan(const ModelConfig &model, int devices);

/// Plans `profile` for `model` with `options`. Errors (one line) for bad
/// options, e.g. tp on devices that do not divide the KV heads.
Result<PlanResult> makePlan(const BudgetProfile &profile,
                            const ModelConfig &model,
                            const PlanOptions &options);

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_STRATEGIES_H
