//===- PlanCommand.cpp - `fairkv plan` ------------------------------------===//
//
// Plans a model's KV heads over G devices from a budget profile and reports
// the placement and its metrics (text, JSON, SVG), or compares every
// strategy side by side.
//
//===----------------------------------------------------------------------===//

#include "Commands.h"
#include "ProfileArgs.h"

#include "fairkv/Placement/Report.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <memory>

using namespace fairkv::placement;
using namespace fairkv::tool;

namespace {

struct PlanArgs : ProfileArgs {
  int devices = 8;
  std::string strategy = "fairkv";
  int64_t copyBudget = -1;
  double copyBudgetBytes = -1;
  double copyBudgetFraction = -1;
  bool evenShares = false;
  bool equalHeads = false;
  double epsilon = 0.002;
  double timeLimit = 20;
  std::string hw = "h100-sxm";
  int64_t batch = 32;
  int64_t decodeTokens = 0, promptTokens = 0;
  std::string format = "text";
  bool compare = false;
  std::string svg;
  std::string output;
  std::string writeProfile;
  std::string loadProfile;
  std::string promptLengths;
};

int fail(const std::string &message) {
  std::cerr << "fairkv plan: error: " << message << "\n";
  return 1;
}

int runPlan(PlanArgs &a) {
  Result<ModelConfig> model = loadModel(a);
  if (!model)
    return fail(model.error());
  Result<Hardware> hw = hardwarePreset(a.hw);
  if (!hw)
    return fail(hw.error());
  Result<BudgetProfile> profile = loadProfile(a, *model);
  if (!profile)
    return fail(profile.error());
  if (!a.writeProfile.empty() &&
      !writeTo(a.writeProfile, writeCanonicalProfile(*profile)))
    return fail("cannot write '" + a.writeProfile + "'");

  // The load the plan balances: the budgets, or what a run measured.
  if (!a.loadProfile.empty()) {
    profile = readLoadProfile(a.loadProfile, *model);
    if (!profile)
      return fail(profile.error());
  }

  PlanOptions options;
  Result<Strategy> strategy = parseStrategy(a.strategy);
  if (!strategy)
    return fail(strategy.error());
  options.strategy = *strategy;
  options.devices = a.devices;
  if (a.devices <= 0)
    return fail("--devices must be positive");
  int budgets = (a.copyBudgetBytes >= 0) + (a.copyBudgetFraction >= 0);
  if (budgets > 1)
    return fail("give at most one of --copy-budget-bytes and "
                "--copy-budget-fraction");
  if (a.copyBudget >= 0)
    options.copyBudget = a.copyBudget;
  if (a.copyBudgetBytes >= 0)
    options.copyBudgetBytes = a.copyBudgetBytes;
  if (a.copyBudgetFraction >= 0) {
    Result<double> bytes =
        copyBudgetBytesOf(a.copyBudgetFraction, *model, a.devices);
    if (!bytes)
      return fail(bytes.error());
    options.copyBudgetBytes = *bytes;
  }
  options.evenShares = a.evenShares;
  options.equalHeads = a.equalHeads;
  options.epsilon = a.epsilon;
  options.timeLimitSeconds = a.timeLimit;
  options.decodeTokens = a.decodeTokens;
  options.promptTokens = a.promptTokens;
  if (!a.promptLengths.empty()) {
    Result<std::vector<PromptLength>> lengths =
        parsePromptLengths(a.promptLengths);
    if (!lengths)
      return fail(lengths.error());
    options.promptLengths = std::move(*lengths);
  }
  if (a.batch <= 0)
    return fail("--batch must be positive");

  ReportContext ctx{&*profile, &*model, &*hw, &options, a.batch};
  std::vector<Strategy> strategies = {options.strategy};
  if (a.compare)
    strategies = {Strategy::TP, Strategy::Greedy, Strategy::FairKV,
                  Strategy::Optimal};
  std::vector<PlanReport> reports;
  for (Strategy s : strategies) {
    PlanOptions o = options;
    o.strategy = s;
    if (a.compare && s == Strategy::TP && !hasTpPlan(*model, a.devices))
      continue; // tp is undefined here; the others still compare
    if (s == Strategy::Optimal)
      std::cerr << "fairkv plan: solving optimal (time limit " << a.timeLimit
                << " s)..." << std::endl;
    Result<PlanReport> report = planAndEvaluate(*profile, *model, *hw, o,
                                                a.batch);
    if (!report)
      return fail(report.error());
    reports.push_back(std::move(*report));
  }
  const PlanReport *chosenPtr = &reports.front();
  for (const PlanReport &r : reports)
    if (r.result.plan.strategy == a.strategy)
      chosenPtr = &r;
  const PlanReport &chosen = *chosenPtr;

  std::string text;
  if (a.compare)
    text = a.format == "json" ? renderCompareJson(reports, ctx)
                              : renderCompareText(reports, ctx);
  else
    text = a.format == "json" ? renderJson(chosen, ctx)
                              : renderText(chosen, ctx);
  if (!writeTo(a.output, text))
    return fail("cannot write '" + a.output + "'");
  if (!a.svg.empty() && !writeTo(a.svg, renderSvg(chosen, ctx)))
    return fail("cannot write '" + a.svg + "'");
  return 0;
}

} // namespace

std::function<int()> fairkv::tool::addPlanCommand(CLI::App &app) {
  auto args = std::make_shared<PlanArgs>();
  PlanArgs &a = *args;
  CLI::App *plan = app.add_subcommand(
      "plan", "Place every layer's KV heads on G devices from a per-head "
              "budget profile, and report the metrics against tp");
  addProfileOptions(*plan, a);
  plan->add_option("--devices,-g", a.devices, "number of devices G")
      ->capture_default_str();
  plan->add_option("--strategy", a.strategy, joined(strategyNames()))
      ->capture_default_str();
  plan->add_option("--copy-budget", a.copyBudget,
                   "extra replicas allowed per layer");
  plan->add_option("--copy-budget-bytes", a.copyBudgetBytes,
                   "extra weight bytes allowed on any device");
  plan->add_option("--copy-budget-fraction", a.copyBudgetFraction,
                   "extra weight bytes per device, as a fraction of the "
                   "device's tp weight bytes (0.1 = 10%)");
  plan->add_flag("--even-shares", a.evenShares,
                 "fairkv: equal batch shares among copies (default: "
                 "water-filled uneven shares)");
  plan->add_flag("--equal-heads", a.equalHeads,
                 "greedy: the same number of heads on every device");
  plan->add_option("--epsilon", a.epsilon,
                   "stop copying a layer within this of its ideal")
      ->capture_default_str();
  plan->add_option("--time-limit", a.timeLimit,
                   "optimal: seconds for the exact solver")
      ->capture_default_str();
  plan->add_option("--hw", a.hw, joined(hardwarePresetNames()))
      ->capture_default_str();
  plan->add_option("--batch", a.batch, "batch of the predicted step time")
      ->capture_default_str();
  plan->add_option("--decode-tokens", a.decodeTokens,
                   "tokens each request will decode: every head then holds "
                   "its budget plus these, and the plan balances that")
      ->capture_default_str();
  plan->add_option("--prompt-tokens", a.promptTokens,
                   "the requests' prompt length (0: unknown): a head holds "
                   "at most this much of its budget, and the plan counts "
                   "that")
      ->capture_default_str();
  plan->add_option("--prompt-lengths", a.promptLengths,
                   "the requests' prompt lengths instead of one: 32,64,128, "
                   "32:10,64:5 (length:weight) or a file of 'length weight' "
                   "lines; the plan balances each head's mean over them");
  plan->add_option("--load-profile", a.loadProfile,
                   "balance what each head holds as a run measured it (a "
                   "program's --dump-kept file, e.g. under adakv, or "
                   "fairkv-budgets/v1 JSON) instead of its budget");
  plan->add_option("--format", a.format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  plan->add_flag("--compare", a.compare,
                 "plan with every strategy and show them side by side");
  plan->add_option("--svg", a.svg,
                   "write per-layer per-device load (tp vs the strategy)");
  plan->add_option("--output,-o", a.output, "write the report here "
                                            "(default: stdout)");
  plan->add_option("--write-profile", a.writeProfile,
                   "also write the budgets as fairkv-budgets/v1 JSON");
  return [args] { return runPlan(*args); };
}
