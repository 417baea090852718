//===- Importers.cpp - HeadKV and DuoAttention profile importers ----------===//
//
// Turns the published outputs of HeadKV (per-query-head retrieval-reasoning
// scores) and DuoAttention (per-KV-head gates) into per-KV-head budgets,
// following each method's own budget rule (see shared/profiles/README.md).
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Profile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

using namespace fairkv::placement;

namespace {
std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
} // namespace

Result<BudgetProfile>
fairkv::placement::importHeadKV(const std::string &jsonText,
                                const ModelConfig &model,
                                const HeadKVOptions &options) {
  if (options.base <= 0 || !(options.beta > 1.0) || !(options.temp > 0) ||
      options.window < 0)
    return makeError("headkv: need base > 0, beta > 1, temp > 0, window >= 0");
  if (Status s = model.validate(); !s)
    return makeError(s.error());
  nlohmann::json j =
      nlohmann::json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return makeError("headkv: not a JSON object of \"layer-head\": [scores]");

  const int64_t layers = model.layers, heads = model.heads;
  std::vector<double> s(layers * heads, -1.0);
  for (const auto &[key, value] : j.items()) {
    int64_t l = -1, h = -1;
    char dash = 0;
    std::istringstream in(key);
    if (!(in >> l >> dash >> h) || dash != '-' || !in.eof())
      return makeError("headkv: key '" + key + "' is not \"layer-head\"");
    if (l < 0 || l >= layers || h < 0 || h >= heads)
      return makeError("headkv: key '" + key + "' is outside model '" +
                       model.name + "' (" + std::to_string(layers) +
                       " layers x " + std::to_string(heads) + " query heads)");
    if (!value.is_array() || value.empty())
      return makeError("headkv: scores of '" + key +
                       "' must be a non-empty list");
    double sum = 0;
    for (const nlohmann::json &v : value) {
      if (!v.is_number())
        return makeError("headkv: scores of '" + key + "' must be numbers");
      sum += v.get<double>();
    }
    double mean = sum / value.size();
    if (!(mean >= 0) || !std::isfinite(mean))
      return makeError("headkv: mean score of '" + key +
                       "' must be finite and non-negative");
    s[l * heads + h] = mean;
  }
  for (int64_t i = 0; i < layers * heads; ++i)
    if (s[i] < 0)
      return makeError("headkv: no scores for head '" +
                       std::to_string(i / heads) + "-" +
                       std::to_string(i % heads) + "' (model '" + model.name +
                       "' has " + std::to_string(layers) + " x " +
                       std::to_string(heads) + " query heads)");

  // HeadKV's rule: normalise over all heads, sharpen by temp, renormalise,
  // then share a pool of floor(base/beta) per head on top of a minimum.
  auto normalise = [&] {
    double total = 0;
    for (double v : s)
      total += v;
    if (total <= 0)
      return false;
    for (double &v : s)
      v /= total;
    return true;
  };
  if (!normalise())
    return makeError("headkv: all scores are zero");
  for (double &v : s)
    v = std::pow(v, options.temp);
  normalise();
  const int64_t shared = static_cast<int64_t>(
      std::floor(static_cast<double>(options.base) / options.beta));
  const double pool = static_cast<double>(shared) * layers * heads;
  const double minimum = static_cast<double>(options.base - shared);

  BudgetProfile p;
  p.model = model.name;
  p.source = "headkv:base=" + std::to_string(options.base) +
             ",beta=" + fmt(options.beta) + ",temp=" + fmt(options.temp) +
             ",window=" + std::to_string(options.window) + ",group=" +
             (options.group == GroupReduction::Sum ? "sum" : "max");
  const int64_t group = model.queryGroup();
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<int64_t> row(model.kvHeads, 0);
    for (int64_t h = 0; h < heads; ++h) {
      // Python's round() (half to even), as HeadKV computes it.
      int64_t budget = static_cast<int64_t>(
                           std::nearbyint(s[l * heads + h] * pool + minimum)) +
                       options.window;
      int64_t &kv = row[h / group];
      kv = options.group == GroupReduction::Sum ? kv + budget
                                                : std::max(kv, budget);
    }
    p.tokens.push_back(std::move(row));
  }
  if (Status st = p.validate(); !st)
    return makeError("headkv: " + st.error());
  return p;
}

Result<BudgetProfile>
fairkv::placement::importDuo(const std::string &tsvText,
                             const ModelConfig &model,
                             const DuoOptions &options) {
  if (options.sink < 0 || options.recent < 0 || options.context <= 0 ||
      options.sink + options.recent <= 0)
    return makeError("duo: need sink, recent >= 0, sink + recent > 0 and "
                     "context > 0");
  if (options.sparsity && !(*options.sparsity >= 0 && *options.sparsity <= 1))
    return makeError("duo: sparsity must be in [0, 1]");
  std::vector<std::vector<double>> gates;
  std::istringstream lines(tsvText);
  std::string line;
  int64_t lineNo = 0;
  while (std::getline(lines, line)) {
    ++lineNo;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    std::istringstream fields(line);
    std::vector<double> row;
    std::string field;
    while (fields >> field) {
      char *end = nullptr;
      double v = std::strtod(field.c_str(), &end);
      if (end == field.c_str() || *end != '\0' || !std::isfinite(v))
        return makeError("duo: line " + std::to_string(lineNo) + ": '" +
                         field + "' is not a number");
      row.push_back(v);
    }
    gates.push_back(std::move(row));
  }
  if (static_cast<int64_t>(gates.size()) != model.layers)
    return makeError("duo: " + std::to_string(gates.size()) +
                     " rows, but model '" + model.name + "' has " +
                     std::to_string(model.layers) + " layers");
  for (size_t l = 0; l < gates.size(); ++l)
    if (static_cast<int64_t>(gates[l].size()) != model.kvHeads)
      return makeError("duo: row " + std::to_string(l + 1) + " has " +
                       std::to_string(gates[l].size()) +
                       " columns, but model '" + model.name + "' has " +
                       std::to_string(model.kvHeads) + " kv heads");

  double threshold = options.threshold;
  if (options.sparsity) {
    // The top (1 - sparsity) fraction of gates are retrieval heads.
    std::vector<double> all;
    for (const auto &row : gates)
      all.insert(all.end(), row.begin(), row.end());
    std::sort(all.begin(), all.end(), std::greater<double>());
    auto retrieval = static_cast<size_t>(
        std::llround((1.0 - *options.sparsity) * all.size()));
    threshold = retrieval == 0 ? all.front()
                : retrieval >= all.size()
                    ? -INFINITY
                    : (all[retrieval - 1] + all[retrieval]) / 2;
  }
  const int64_t streaming =
      std::min(options.sink + options.recent, options.context);
  BudgetProfile p;
  p.model = model.name;
  p.source = "duo:" +
             (options.sparsity ? "sparsity=" + fmt(*options.sparsity)
                               : "threshold=" + fmt(options.threshold)) +
             ",sink=" + std::to_string(options.sink) +
             ",recent=" + std::to_string(options.recent) +
             ",context=" + std::to_string(options.context);
  for (const auto &row : gates) {
    std::vector<int64_t> budgets;
    for (double gate : row)
      budgets.push_back(gate > threshold ? options.context : streaming);
    p.tokens.push_back(std::move(budgets));
  }
  return p;
}
