//===- ProfileArgs.cpp - Model and profile options shared by commands -----===//

#include "ProfileArgs.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

using namespace fairkv::placement;
using namespace fairkv::tool;

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

std::string fairkv::tool::joined(const std::vector<std::string> &names) {
  std::string s;
  for (const std::string &n : names)
    s += (s.empty() ? "" : "|") + n;
  return s;
}

void fairkv::tool::addProfileOptions(CLI::App &c, ProfileArgs &a) {
  c.add_option("--model", a.model,
               "model preset (" + joined(modelPresetNames()) +
                   ") or a Hugging Face config.json")
      ->required();
  c.add_option("--profile", a.profile,
               "budget profile file, 'synthetic' (seeded, skewed) or "
               "'uniform' (every head --uniform-tokens)")
      ->required();
  c.add_option("--profile-format", a.profileFormat,
               "headkv|duo|fairkv|kept (a program's --dump-kept file: each "
               "head's mean kept tokens; default: from the file)")
      ->check(CLI::IsMember({"headkv", "duo", "fairkv", "kept"}));
  c.add_option("--headkv-base", a.headkv.base, "HeadKV base capacity")
      ->capture_default_str();
  c.add_option("--headkv-beta", a.headkv.beta, "HeadKV pool factor (> 1)")
      ->capture_default_str();
  c.add_option("--headkv-temp", a.headkv.temp, "HeadKV temperature")
      ->capture_default_str();
  c.add_option("--headkv-window", a.headkv.window, "HeadKV recent window")
      ->capture_default_str();
  c.add_option("--headkv-group", a.headkvGroup,
               "GQA reduction of query-head budgets: sum|max")
      ->check(CLI::IsMember({"sum", "max"}))
      ->capture_default_str();
  c.add_option("--duo-threshold", a.duo.threshold,
               "DuoAttention retrieval-head gate threshold")
      ->capture_default_str();
  c.add_option("--duo-sparsity", a.duoSparsity,
               "DuoAttention target sparsity (overrides the threshold)");
  c.add_option("--duo-sink", a.duo.sink, "streaming-head sink tokens")
      ->capture_default_str();
  c.add_option("--duo-recent", a.duo.recent, "streaming-head recent tokens")
      ->capture_default_str();
  c.add_option("--duo-context", a.duo.context,
               "context length kept by retrieval heads")
      ->capture_default_str();
  c.add_option("--seed", a.seed, "seed of the synthetic profile")
      ->capture_default_str();
  c.add_option("--skew", a.skew,
               "skew (log-normal sigma) of the synthetic profile")
      ->capture_default_str();
  c.add_option("--mean-tokens", a.meanTokens,
               "mean budget of the synthetic profile")
      ->capture_default_str();
  c.add_option("--uniform-tokens", a.uniformTokens,
               "budget of every head in the uniform profile (the default "
               "keeps every token: compression off)")
      ->capture_default_str();
}

Result<ModelConfig> fairkv::tool::loadModel(const ProfileArgs &a) {
  return resolveModel(a.model);
}

Result<BudgetProfile> fairkv::tool::loadProfile(ProfileArgs &a,
                                                const ModelConfig &model) {
  a.headkv.group =
      a.headkvGroup == "max" ? GroupReduction::Max : GroupReduction::Sum;
  if (a.duoSparsity >= 0)
    a.duo.sparsity = a.duoSparsity;
  Result<BudgetProfile> profile = makeError("");
  if (a.profile == "synthetic") {
    if (a.meanTokens <= 0)
      return makeError("--mean-tokens must be positive");
    profile = syntheticProfile(model.layers, model.kvHeads, a.seed, a.skew,
                               a.meanTokens);
  } else if (a.profile == "uniform") {
    if (a.uniformTokens <= 0)
      return makeError("--uniform-tokens must be positive");
    BudgetProfile p;
    p.model = model.name;
    p.source = "uniform:" + std::to_string(a.uniformTokens);
    p.tokens.assign(model.layers,
                    std::vector<int64_t>(model.kvHeads, a.uniformTokens));
    profile = p;
  } else {
    Result<std::string> text = readFile(a.profile);
    if (!text)
      return makeError(text.error());
    std::string format = a.profileFormat;
    if (format.empty()) {
      if (endsWith(a.profile, ".tsv"))
        format = "duo";
      else if (text->find("fairkv-budgets/v1") != std::string::npos)
        format = "fairkv";
      else if (looksLikeKeptDump(*text))
        format = "kept";
      else
        format = "headkv";
    }
    if (format == "headkv")
      profile = importHeadKV(*text, model, a.headkv);
    else if (format == "duo")
      profile = importDuo(*text, model, a.duo);
    else if (format == "kept")
      profile = importKept(*text, model);
    else
      profile = readCanonicalProfile(*text);
    if (!profile)
      return makeError(a.profile + ": " + profile.error());
  }
  if (profile->model.empty() || profile->model == "synthetic")
    profile->model = model.name;
  if (Status s = profile->checkAgainst(model); !s)
    return makeError(s.error());
  // A sliding window of N: no head ever holds more than N tokens (the
  // runtime gives back what no query can see), so plans and cache pools
  // count at most N.
  if (model.slidingWindow > 0) {
    bool capped = false;
    for (std::vector<int64_t> &layer : profile->tokens)
      for (int64_t &tokens : layer)
        if (tokens > model.slidingWindow) {
          tokens = model.slidingWindow;
          capped = true;
        }
    if (capped)
      profile->source +=
          ",sliding_window=" + std::to_string(model.slidingWindow);
  }
  return profile;
}

bool fairkv::tool::writeTo(const std::string &path, const std::string &text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return static_cast<bool>(std::cout);
  }
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}
