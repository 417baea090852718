//===- Report.h - Plan reports: JSON, text, SVG -----------------*- C++ -*-===//
//
// Renders plans and their metrics. The JSON carries every replica and every
// device load, so each metric can be recomputed from it.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_REPORT_H
#define FAIRKV_PLACEMENT_REPORT_H

#include "fairkv/Placement/Strategies.h"

#include <optional>
#include <string>
#include <vector>

namespace fairkv::placement {

/// One planned strategy with its metrics, and the tp metrics it is compared
/// with (absent when tp is not defined for the inputs).
struct PlanReport {
  PlanResult result;
  PlanMetrics metrics;
  std::optional<PlanMetrics> tp;
};

struct ReportContext {
  const BudgetProfile *profile;
  const ModelConfig *model;
  const Hardware *hw;
  const PlanOptions *options;
  int64_t batch;
};

/// Plans with `options` and evaluates against tp on the same inputs.
Result<PlanReport> planAndEvaluate(const BudgetProfile &profile,
                                   const ModelConfig &model, const Hardware &hw,
                                   const PlanOptions &options, int64_t batch);

std::string renderJson(const PlanReport &report, const ReportContext &ctx);
std::string renderText(const PlanReport &report, const ReportContext &ctx);
/// Several strategies side by side (`--compare`).
std::string renderCompareText(const std::vector<PlanReport> &reports,
                              const ReportContext &ctx);
std::string renderCompareJson(const std::vector<PlanReport> &reports,
                              const ReportContext &ctx);
/// Reads a plan written by renderJson (`fairkv plan --format json`,
/// format "fairkv-plan/v1") and checks it fits `profile` (layers, KV heads)
/// and is valid (shares, distinct devices, devices in range).
Result<Plan> readPlanJson(const std::string &jsonText,
                          const BudgetProfile &profile);

/// Per-layer, per-device load of tp against `report`'s plan, as two
/// heatmaps (devices x layers, colour = load / the layer's mean load).
std::string renderSvg(const PlanReport &report, const ReportContext &ctx);

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_REPORT_H
