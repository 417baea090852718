//===- Report.cpp - Plan reports: JSON, text, SVG -------------------------===//

#include "fairkv/Placement/Report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

using namespace fairkv::placement;

Result<PlanReport> fairkv::placement::planAndEvaluate(
    const BudgetProfile &given, const ModelConfig &model, const Hardware &hw,
    const PlanOptions &options, int64_t batch) {
  Result<PlanResult> planned = makePlan(given, model, options);
  // The metrics see what the devices will hold: budgets plus decode growth.
  const BudgetProfile profile =
      withWorkload(given, options);
  if (!planned)
    return makeError(planned.error());
  if (Status s = validatePlan(planned->plan, profile, model.queryGroup()); !s)
    return makeError("internal error: invalid plan: " + s.error());
  PlanReport report;
  report.result = std::move(*planned);
  report.metrics = evaluatePlan(report.result.plan, profile, model, hw, batch);
  if (hasTpPlan(model, options.devices)) {
    PlanOptions tpOptions = options;
    tpOptions.strategy = Strategy::TP;
    Result<PlanResult> tp = makePlan(profile, model, tpOptions);
    if (tp)
      report.tp = evaluatePlan(tp->plan, profile, model, hw, batch);
  }
  return report;
}

namespace {

std::string fmt(const char *format, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, v);
  return buffer;
}

nlohmann::ordered_json metricsJson(const PlanReport &r) {
  const PlanMetrics &m = r.metrics;
  nlohmann::ordered_json j;
  j["attention_imbalance"] = m.attentionImbalance;
  j["memory_imbalance"] = m.memoryImbalance;
  j["extra_replicas"] = m.extraReplicas;
  j["extra_weight_bytes"] = m.extraWeightBytes;
  j["extra_weight_bytes_fullest_device"] = m.extraWeightBytesFullestDevice;
  j["extra_weight_fraction"] = m.extraWeightFraction;
  j["lower_bound_attention_imbalance"] = r.result.lowerBoundImbalance;
  j["batch"] = m.batch;
  j["predicted_step_seconds"] = m.predictedStepSeconds;
  j["predicted_attention_seconds"] = m.predictedAttentionSeconds;
  j["predicted_max_batch"] = m.predictedMaxBatch;
  j["predicted_throughput_tokens_per_s"] = m.predictedThroughput;
  if (r.tp) {
    j["predicted_step_speedup_vs_tp"] =
        r.tp->predictedStepSeconds / m.predictedStepSeconds;
    j["predicted_max_batch_ratio_vs_tp"] =
        r.tp->predictedMaxBatch > 0
            ? static_cast<double>(m.predictedMaxBatch) / r.tp->predictedMaxBatch
            : 0.0;
    j["predicted_throughput_speedup_vs_tp"] =
        r.tp->predictedThroughput > 0
            ? m.predictedThroughput / r.tp->predictedThroughput
            : 0.0;
  } else {
    j["predicted_step_speedup_vs_tp"] = nullptr;
    j["predicted_max_batch_ratio_vs_tp"] = nullptr;
    j["predicted_throughput_speedup_vs_tp"] = nullptr;
  }
  j["solve_seconds"] = r.result.solveSeconds;
  if (r.result.plan.strategy == "optimal")
    j["proved_optimal"] = r.result.provedOptimal;
  return j;
}

/// The budgets the metrics were computed on: the profile's, plus the decode
/// growth the plan was made for.
BudgetProfile plannedProfile(const ReportContext &ctx) {
  return withWorkload(*ctx.profile, *ctx.options);
}

nlohmann::ordered_json planJson(const PlanReport &r, const ReportContext &ctx) {
  const BudgetProfile profile = plannedProfile(ctx);
  nlohmann::ordered_json j;
  j["format"] = "fairkv-plan/v1";
  j["strategy"] = r.result.plan.strategy;
  j["devices"] = r.result.plan.devices;
  j["model"] = ctx.model->name;
  j["hardware"] = ctx.hw->name;
  j["profile"] = {{"source", profile.source},
                  {"layers", profile.layers()},
                  {"kv_heads", profile.kvHeads()}};
  nlohmann::ordered_json opts;
  opts["copy_budget"] = ctx.options->copyBudget
                            ? nlohmann::ordered_json(*ctx.options->copyBudget)
                            : nlohmann::ordered_json(nullptr);
  opts["copy_budget_bytes"] =
      ctx.options->copyBudgetBytes
          ? nlohmann::ordered_json(*ctx.options->copyBudgetBytes)
          : nlohmann::ordered_json(nullptr);
  opts["even_shares"] = ctx.options->evenShares;
  opts["equal_heads"] = ctx.options->equalHeads;
  opts["decode_tokens"] = ctx.options->decodeTokens;
  opts["prompt_tokens"] = ctx.options->promptTokens;
  opts["kv_head_weight_bytes"] = ctx.model->kvHeadWeightBytes();
  opts["tp_weight_bytes_per_device"] =
      ctx.model->tpWeightBytesPerDevice(r.result.plan.devices);
  j["options"] = opts;
  j["metrics"] = metricsJson(r);
  std::vector<std::vector<double>> loads = deviceLoads(r.result.plan, profile);
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t l = 0; l < r.result.plan.layers.size(); ++l) {
    nlohmann::ordered_json layer;
    layer["layer"] = l;
    nlohmann::ordered_json replicas = nlohmann::ordered_json::array();
    for (size_t h = 0; h < r.result.plan.layers[l].size(); ++h)
      for (const Replica &rep : r.result.plan.layers[l][h]) {
        nlohmann::ordered_json entry = {
            {"kv_head", h}, {"device", rep.device}, {"share", rep.share}};
        if (rep.splitsQueries())
          entry["queries"] = {rep.queryBegin, rep.queryCount};
        replicas.push_back(std::move(entry));
      }
    layer["replicas"] = replicas;
    layer["device_load"] = loads[l];
    layers.push_back(layer);
  }
  j["layers"] = layers;
  return j;
}

std::string speedup(const PlanReport &r, bool throughput) {
  if (!r.tp)
    return "n/a";
  double v = throughput ? (r.tp->predictedThroughput > 0
                               ? r.metrics.predictedThroughput /
                                     r.tp->predictedThroughput
                               : 0)
                        : r.tp->predictedStepSeconds /
                              r.metrics.predictedStepSeconds;
  return fmt("%.3fx", v);
}

} // namespace

std::string fairkv::placement::renderJson(const PlanReport &report,
                                          const ReportContext &ctx) {
  return planJson(report, ctx).dump(2) + "\n";
}

std::string fairkv::placement::renderCompareJson(
    const std::vector<PlanReport> &reports, const ReportContext &ctx) {
  nlohmann::ordered_json j;
  j["compare"] = nlohmann::ordered_json::array();
  for (const PlanReport &r : reports)
    j["compare"].push_back(planJson(r, ctx));
  return j.dump(2) + "\n";
}

std::string fairkv::placement::renderText(const PlanReport &r,
                                          const ReportContext &ctx) {
  std::ostringstream out;
  const PlanMetrics &m = r.metrics;
  out << "strategy " << r.result.plan.strategy << " on "
      << r.result.plan.devices << " devices, model " << ctx.model->name
      << ", hardware " << ctx.hw->name << "\n"
      << "model    " << ctx.model->describe() << "\n"
      << "profile  " << plannedProfile(ctx).source << " ("
      << ctx.profile->layers()
      << " layers x " << ctx.profile->kvHeads() << " kv heads)\n\n";
  auto line = [&](const std::string &name, const std::string &value,
                  const std::string &tp = "") {
    char buffer[160];
    std::snprintf(buffer, sizeof(buffer), "  %-34s %14s %14s\n", name.c_str(),
                  value.c_str(), tp.c_str());
    out << buffer;
  };
  line("metric", r.result.plan.strategy, r.tp ? "tp" : "");
  auto tpv = [&](double PlanMetrics::*field, const char *f) {
    return r.tp ? fmt(f, (*r.tp).*field) : std::string();
  };
  line("attention imbalance", fmt("%.4f", m.attentionImbalance),
       tpv(&PlanMetrics::attentionImbalance, "%.4f"));
  line("memory imbalance", fmt("%.4f", m.memoryImbalance),
       tpv(&PlanMetrics::memoryImbalance, "%.4f"));
  line("lower bound (attention)", fmt("%.4f", r.result.lowerBoundImbalance));
  line("extra replicas", std::to_string(m.extraReplicas));
  line("extra weight MiB (all devices)",
       fmt("%.1f", m.extraWeightBytes / (1 << 20)));
  line("extra weight MiB (fullest device)",
       fmt("%.1f", m.extraWeightBytesFullestDevice / (1 << 20)));
  line("extra weight fraction", fmt("%.4f", m.extraWeightFraction));
  line("step ms at batch " + std::to_string(m.batch),
       fmt("%.3f", m.predictedStepSeconds * 1e3),
       tpv(&PlanMetrics::predictedStepSeconds, "%.6f").empty()
           ? ""
           : fmt("%.3f", r.tp->predictedStepSeconds * 1e3));
  line("max batch", std::to_string(m.predictedMaxBatch),
       r.tp ? std::to_string(r.tp->predictedMaxBatch) : "");
  line("throughput tokens/s", fmt("%.0f", m.predictedThroughput),
       tpv(&PlanMetrics::predictedThroughput, "%.0f"));
  line("step speedup vs tp", speedup(r, false));
  line("throughput speedup vs tp", speedup(r, true));
  line("solve seconds", fmt("%.4f", r.result.solveSeconds));
  if (r.result.plan.strategy == "optimal")
    line("proved optimal", r.result.provedOptimal ? "yes" : "no (time limit)");
  out << "\nper layer: kv head -> device(batch share) or device[query "
         "heads], ...\n";
  for (size_t l = 0; l < r.result.plan.layers.size(); ++l) {
    out << "  layer " << l << ":";
    for (size_t h = 0; h < r.result.plan.layers[l].size(); ++h) {
      out << " " << h << "->";
      const auto &reps = r.result.plan.layers[l][h];
      for (size_t i = 0; i < reps.size(); ++i) {
        out << (i ? "+" : "") << reps[i].device;
        if (reps[i].splitsQueries())
          out << "[q" << reps[i].queryBegin << "-"
              << reps[i].queryBegin + reps[i].queryCount - 1 << "]";
        else if (reps.size() > 1)
          out << fmt("(%.3g)", reps[i].share);
      }
    }
    out << "\n";
  }
  return out.str();
}

std::string fairkv::placement::renderCompareText(
    const std::vector<PlanReport> &reports, const ReportContext &ctx) {
  std::ostringstream out;
  out << "model " << ctx.model->name << ", " << ctx.options->devices
      << " devices, hardware " << ctx.hw->name << ", batch " << ctx.batch
      << "\nprofile " << plannedProfile(ctx).source << " ("
      << ctx.profile->layers() << " layers x " << ctx.profile->kvHeads()
      << " kv heads)\n\n";
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer),
                "%-8s %9s %9s %7s %9s %9s %9s %9s %9s\n", "strategy",
                "attn-imb", "mem-imb", "copies", "xweight", "lower-bd",
                "step-x", "thpt-x", "solve-s");
  out << buffer;
  for (const PlanReport &r : reports) {
    std::snprintf(buffer, sizeof(buffer),
                  "%-8s %9.4f %9.4f %7lld %9.4f %9.4f %9s %9s %9.4f\n",
                  r.result.plan.strategy.c_str(),
                  r.metrics.attentionImbalance, r.metrics.memoryImbalance,
                  static_cast<long long>(r.metrics.extraReplicas),
                  r.metrics.extraWeightFraction, r.result.lowerBoundImbalance,
                  speedup(r, false).c_str(), speedup(r, true).c_str(),
                  r.result.solveSeconds);
    out << buffer;
  }
  out << "\nattn-imb: sum of per-layer max device load / sum of mean loads "
         "(1 = perfect)\nxweight: extra weight bytes on the fullest device / "
         "its weight bytes under tp\nstep-x, thpt-x: predicted decode step "
         "and max-batch throughput speedup vs tp\n";
  return out.str();
}

std::string fairkv::placement::renderSvg(const PlanReport &report,
                                         const ReportContext &ctx) {
  std::vector<std::pair<std::string, std::vector<std::vector<double>>>> panels;
  const BudgetProfile profile = plannedProfile(ctx);
  if (hasTpPlan(*ctx.model, report.result.plan.devices)) {
    PlanOptions tp = *ctx.options;
    tp.strategy = Strategy::TP;
    if (Result<PlanResult> r = makePlan(*ctx.profile, *ctx.model, tp))
      panels.push_back({"tp", deviceLoads(r->plan, profile)});
  }
  panels.push_back({report.result.plan.strategy,
                    deviceLoads(report.result.plan, profile)});
  const int G = report.result.plan.devices;
  const int L = static_cast<int>(ctx.profile->layers());
  const int cell = std::max(6, std::min(24, 900 / std::max(1, L)));
  const int rowH = std::max(6, std::min(24, 240 / G));
  const int left = 70, top = 40, gap = 50;
  const int panelH = G * rowH;
  const int width = left + L * cell + 160;
  const int height = top + static_cast<int>(panels.size()) * (panelH + gap) + 20;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width
      << "\" height=\"" << height << "\" font-family=\"sans-serif\" "
      << "font-size=\"12\">\n"
      << "<title>Per-layer, per-device attention load (load / layer mean)"
      << "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\">"
      << ctx.model->name << ", " << G << " devices: KV tokens read per "
      << "request, device / layer mean (white 1.0, red 2.0+, blue 0)</text>\n";
  auto colour = [](double ratio) {
    // Blue below the mean, white at the mean, red above (saturating at 2).
    double t = std::max(0.0, std::min(2.0, ratio));
    int r, g, b;
    if (t < 1) {
      r = g = static_cast<int>(255 * t);
      b = 255;
    } else {
      r = 255;
      g = b = static_cast<int>(255 * (2 - t));
    }
    char buf[16];
    std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", r, g, b);
    return std::string(buf);
  };
  for (size_t p = 0; p < panels.size(); ++p) {
    int y0 = top + static_cast<int>(p) * (panelH + gap) + 20;
    const auto &loads = panels[p].second;
    double sumMax = 0, sumMean = 0;
    for (const auto &layer : loads) {
      double mean = 0;
      for (double v : layer)
        mean += v / G;
      sumMax += *std::max_element(layer.begin(), layer.end());
      sumMean += mean;
    }
    svg << "<text x=\"" << left << "\" y=\"" << y0 - 6 << "\">"
        << panels[p].first << ": attention imbalance "
        << fmt("%.3f", sumMax / sumMean) << "</text>\n";
    for (int g = 0; g < G; ++g)
      svg << "<text x=\"" << left - 6 << "\" y=\"" << y0 + g * rowH + rowH - 2
          << "\" text-anchor=\"end\" font-size=\"10\">dev " << g
          << "</text>\n";
    for (int l = 0; l < L; ++l) {
      double mean = 0;
      for (double v : loads[l])
        mean += v / G;
      for (int g = 0; g < G; ++g)
        svg << "<rect x=\"" << left + l * cell << "\" y=\"" << y0 + g * rowH
            << "\" width=\"" << cell << "\" height=\"" << rowH
            << "\" fill=\"" << colour(loads[l][g] / mean)
            << "\" stroke=\"#ddd\"><title>layer " << l << ", device " << g
            << ": " << fmt("%.1f", loads[l][g]) << " tokens ("
            << fmt("%.2f", loads[l][g] / mean) << "x mean)</title></rect>\n";
    }
    svg << "<text x=\"" << left << "\" y=\"" << y0 + panelH + 14
        << "\" font-size=\"10\">layer 0 .. " << L - 1 << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

/// Bounds a plan file's query ranges so that their sums cannot overflow;
/// validatePlan checks that they tile a group.
constexpr int64_t kMaxQueryGroup = int64_t(1) << 20;

Result<Plan> fairkv::placement::readPlanJson(const std::string &jsonText,
                                             const BudgetProfile &profile) {
  nlohmann::json j =
      nlohmann::json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return makeError("plan: not a JSON object");
  if (auto f = j.find("format");
      f != j.end() && (!f->is_string() || *f != "fairkv-plan/v1"))
    return makeError("plan: 'format' must be \"fairkv-plan/v1\"");
  auto devices = j.find("devices");
  if (devices == j.end() || !devices->is_number_integer() ||
      devices->get<int64_t>() <= 0 || devices->get<int64_t>() > kMaxDevices)
    return makeError("plan: 'devices' must be an integer between 1 and " +
                     std::to_string(kMaxDevices));
  Plan plan;
  plan.devices = devices->get<int>();
  if (auto s = j.find("strategy"); s != j.end() && s->is_string())
    plan.strategy = s->get<std::string>();
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array())
    return makeError("plan: 'layers' must be a list");
  plan.layers.assign(profile.layers(),
                     LayerPlacement(profile.kvHeads()));
  std::vector<bool> seen(profile.layers(), false);
  for (const nlohmann::json &layer : *layers) {
    auto index = layer.find("layer");
    auto replicas = layer.find("replicas");
    if (!layer.is_object() || index == layer.end() ||
        !index->is_number_integer() || replicas == layer.end() ||
        !replicas->is_array())
      return makeError("plan: every layer needs 'layer' and 'replicas'");
    int64_t l = index->get<int64_t>();
    if (l < 0 || l >= profile.layers())
      return makeError("plan: layer " + std::to_string(l) +
                       " is outside the model's " +
                       std::to_string(profile.layers()) + " layers");
    if (seen[l])
      return makeError("plan: layer " + std::to_string(l) + " appears twice");
    seen[l] = true;
    for (const nlohmann::json &r : *replicas) {
      auto head = r.find("kv_head"), device = r.find("device"),
           share = r.find("share");
      if (!r.is_object() || head == r.end() || !head->is_number_integer() ||
          device == r.end() || !device->is_number_integer() ||
          share == r.end() || !share->is_number())
        return makeError("plan: layer " + std::to_string(l) +
                         ": every replica needs 'kv_head', 'device', 'share'");
      int64_t h = head->get<int64_t>();
      if (h < 0 || h >= profile.kvHeads())
        return makeError("plan: layer " + std::to_string(l) + ": kv head " +
                         std::to_string(h) + " is outside the model's " +
                         std::to_string(profile.kvHeads()) + " kv heads");
      // Checked before it narrows to an int: 2^32 + 1 must not read as 1.
      if (device->get<int64_t>() < 0 || device->get<int64_t>() >= plan.devices)
        return makeError("plan: layer " + std::to_string(l) + ", kv head " +
                         std::to_string(h) + " has a replica on device " +
                         device->dump() + ", outside 0.." +
                         std::to_string(plan.devices - 1));
      Replica replica{device->get<int>(), share->get<double>()};
      if (auto queries = r.find("queries"); queries != r.end()) {
        if (!queries->is_array() || queries->size() != 2 ||
            !(*queries)[0].is_number_integer() ||
            !(*queries)[1].is_number_integer() ||
            (*queries)[0].get<int64_t>() < 0 ||
            (*queries)[1].get<int64_t>() <= 0 ||
            // Compared without adding: first + count may pass int64.
            (*queries)[0].get<int64_t>() > kMaxQueryGroup ||
            (*queries)[1].get<int64_t>() >
                kMaxQueryGroup - (*queries)[0].get<int64_t>())
          return makeError("plan: layer " + std::to_string(l) +
                           ": 'queries' must be [first, count] with count > 0 "
                           "inside a query group");
        replica.queryBegin = (*queries)[0].get<int>();
        replica.queryCount = (*queries)[1].get<int>();
      }
      plan.layers[l][h].push_back(replica);
    }
  }
  for (int64_t l = 0; l < profile.layers(); ++l)
    if (!seen[l])
      return makeError("plan: layer " + std::to_string(l) + " is missing");
  if (Status s = validatePlan(plan, profile); !s)
    return makeError("plan: " + s.error());
  return plan;
}
