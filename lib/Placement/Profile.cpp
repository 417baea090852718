//===- Profile.cpp - Budget profiles: checks, canonical form, synthetic ---===//

#include "fairkv/Placement/Profile.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

using namespace fairkv::placement;

int64_t fairkv::placement::sourceParameter(const std::string &source,
                                           const std::string &key) {
  for (size_t at = source.find(key + "="); at != std::string::npos;
       at = source.find(key + "=", at + 1))
    if (at > 0 && (source[at - 1] == ':' || source[at - 1] == ','))
      return std::atoll(source.c_str() + at + key.size() + 1);
  return -1;
}

Status BudgetProfile::validate() const {
  if (tokens.empty())
    return makeError("profile has no layers");
  size_t heads = tokens.front().size();
  if (heads == 0)
    return makeError("profile has no kv heads");
  for (size_t l = 0; l < tokens.size(); ++l) {
    if (tokens[l].size() != heads)
      return makeError("profile layer " + std::to_string(l) + " has " +
                       std::to_string(tokens[l].size()) +
                       " kv heads, layer 0 has " + std::to_string(heads));
    for (size_t h = 0; h < heads; ++h)
      if (tokens[l][h] <= 0 || tokens[l][h] > kMaxBudgetTokens)
        return makeError("profile budget of layer " + std::to_string(l) +
                         ", kv head " + std::to_string(h) +
                         " must be between 1 and " +
                         std::to_string(kMaxBudgetTokens) + ", got " +
                         std::to_string(tokens[l][h]));
  }
  return Status::ok();
}

Status BudgetProfile::checkAgainst(const ModelConfig &model) const {
  if (Status s = validate(); !s)
    return s;
  if (layers() != model.layers || kvHeads() != model.kvHeads)
    return makeError("profile shape " + std::to_string(layers()) + " layers x " +
                     std::to_string(kvHeads()) +
                     " kv heads does not match model '" + model.name + "' (" +
                     std::to_string(model.layers) + " layers x " +
                     std::to_string(model.kvHeads) + " kv heads)");
  return Status::ok();
}

Result<BudgetProfile>
fairkv::placement::readCanonicalProfile(const std::string &jsonText) {
  nlohmann::json j =
      nlohmann::json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return makeError("fairkv-budgets: not a JSON object");
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() ||
      format->get<std::string>() != "fairkv-budgets/v1")
    return makeError("fairkv-budgets: 'format' must be \"fairkv-budgets/v1\"");
  BudgetProfile p;
  if (auto it = j.find("model"); it != j.end() && it->is_string())
    p.model = it->get<std::string>();
  if (auto it = j.find("source"); it != j.end() && it->is_string())
    p.source = it->get<std::string>();
  auto tokens = j.find("tokens");
  if (tokens == j.end() || !tokens->is_array())
    return makeError("fairkv-budgets: 'tokens' must be a list of layers");
  for (const nlohmann::json &layer : *tokens) {
    if (!layer.is_array())
      return makeError("fairkv-budgets: every layer of 'tokens' must be a list");
    std::vector<int64_t> row;
    for (const nlohmann::json &t : layer) {
      if (!t.is_number_integer())
        return makeError("fairkv-budgets: budgets must be integers");
      row.push_back(t.get<int64_t>());
    }
    p.tokens.push_back(std::move(row));
  }
  auto expectCount = [&](const char *key, int64_t actual) -> Status {
    auto it = j.find(key);
    if (it == j.end())
      return Status::ok();
    if (!it->is_number_integer() || it->get<int64_t>() != actual)
      return makeError(std::string("fairkv-budgets: '") + key +
                       "' does not match 'tokens' (" + std::to_string(actual) +
                       ")");
    return Status::ok();
  };
  if (Status s = p.validate(); !s)
    return makeError("fairkv-budgets: " + s.error());
  if (Status s = expectCount("layers", p.layers()); !s)
    return makeError(s.error());
  if (Status s = expectCount("kv_heads", p.kvHeads()); !s)
    return makeError(s.error());
  return p;
}

std::string
fairkv::placement::writeCanonicalProfile(const BudgetProfile &profile) {
  nlohmann::ordered_json j;
  j["format"] = "fairkv-budgets/v1";
  j["model"] = profile.model;
  j["layers"] = profile.layers();
  j["kv_heads"] = profile.kvHeads();
  j["source"] = profile.source;
  j["tokens"] = profile.tokens;
  return j.dump(1) + "\n";
}

BudgetProfile fairkv::placement::syntheticProfile(int64_t layers,
                                                  int64_t kvHeads,
                                                  uint64_t seed, double skew,
                                                  int64_t meanTokens) {
  BudgetProfile p;
  p.model = "synthetic";
  p.source = "synthetic:seed=" + std::to_string(seed) +
             ",skew=" + std::to_string(skew).substr(0, 4) +
             ",mean=" + std::to_string(meanTokens);
  std::mt19937_64 rng(seed);
  // Log-normal budgets: a few heavy heads per layer, many light ones, like
  // the HeadKV profiles. E[exp(N(mu, s^2))] = exp(mu + s^2/2).
  double sigma = std::max(0.0, skew);
  double mu = std::log(static_cast<double>(meanTokens)) - sigma * sigma / 2;
  std::lognormal_distribution<double> dist(mu, sigma);
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<int64_t> row;
    for (int64_t h = 0; h < kvHeads; ++h)
      row.push_back(std::max<int64_t>(16, std::llround(dist(rng))));
    p.tokens.push_back(std::move(row));
  }
  return p;
}

BudgetProfile fairkv::placement::uniformProfile(const BudgetProfile &profile) {
  BudgetProfile uniform = profile;
  uniform.source = "uniform (same total KV per layer as " + profile.source +
                   ")";
  for (auto &layer : uniform.tokens) {
    int64_t sum = 0;
    for (int64_t t : layer)
      sum += t;
    for (int64_t &t : layer)
      t = sum / static_cast<int64_t>(layer.size());
  }
  return uniform;
}
