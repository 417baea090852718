//===- Workload.cpp - What heads hold under a workload of prompt lengths --===//
//
// A head's load is what it holds at the end of a request: min(budget,
// prompt) plus the decoded tokens (a DuoAttention streaming head stays at
// its budget). Requests differ in length, so plans balance the mean over
// the workload's prompt lengths.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Strategies.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

using namespace fairkv::placement;

namespace {

/// Parses one "length" or "length:weight" (or "length weight") entry.
Status parseEntry(const std::string &text, char separator,
                  std::vector<PromptLength> &out) {
  std::string length = text, weight;
  if (size_t at = text.find(separator); at != std::string::npos) {
    length = text.substr(0, at);
    weight = text.substr(at + 1);
  }
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  length = trim(length);
  weight = trim(weight);
  char *end = nullptr;
  errno = 0;
  long long tokens = std::strtoll(length.c_str(), &end, 10);
  if (length.empty() || *end != '\0' || errno != 0 || tokens < 1 ||
      tokens > kMaxBudgetTokens)
    return makeError("prompt length '" + length + "' is not an integer in [1, " +
                     std::to_string(kMaxBudgetTokens) + "]");
  double w = 1;
  if (!weight.empty()) {
    w = std::strtod(weight.c_str(), &end);
    if (*end != '\0' || !(w > 0) || !std::isfinite(w))
      return makeError("prompt length weight '" + weight +
                       "' is not a positive number");
  }
  out.push_back({tokens, w});
  return Status::ok();
}

} // namespace

Result<std::vector<PromptLength>>
fairkv::placement::parsePromptLengths(const std::string &spec) {
  constexpr size_t kMaxLengths = 1 << 16;
  std::vector<PromptLength> lengths;
  const bool list =
      !spec.empty() &&
      spec.find_first_not_of("0123456789,:. \te+-") == std::string::npos;
  if (list) {
    std::stringstream entries(spec);
    std::string entry;
    while (std::getline(entries, entry, ','))
      if (Status s = parseEntry(entry, ':', lengths); !s)
        return makeError("--prompt-lengths: " + s.error());
  } else {
    Result<std::string> text = readFile(spec);
    if (!text)
      return makeError("--prompt-lengths: " + text.error());
    std::istringstream lines(*text);
    std::string line;
    for (int64_t n = 1; std::getline(lines, line); ++n) {
      line = line.substr(0, line.find('#'));
      if (line.find_first_not_of(" \t\r") == std::string::npos)
        continue;
      size_t first = line.find_first_not_of(" \t");
      size_t gap = line.find_first_of(" \t", first);
      if (gap != std::string::npos)
        line[gap] = ':';
      if (Status s = parseEntry(line, ':', lengths); !s)
        return makeError(spec + ": line " + std::to_string(n) + ": " +
                         s.error());
      if (lengths.size() > kMaxLengths)
        break;
    }
  }
  if (lengths.empty())
    return makeError("--prompt-lengths: no prompt length in '" + spec + "'");
  if (lengths.size() > kMaxLengths)
    return makeError("--prompt-lengths: more than " +
                     std::to_string(kMaxLengths) + " lengths");
  return lengths;
}

BudgetProfile fairkv::placement::withWorkload(const BudgetProfile &profile,
                                              const PlanOptions &options) {
  if (options.promptLengths.empty())
    return withDecodeTokens(profile, options.decodeTokens,
                            options.promptTokens);
  // The weighted mean, per head, of what it holds at each length.
  std::vector<std::vector<double>> mean(
      profile.tokens.size(),
      std::vector<double>(profile.kvHeads(), 0.0));
  double total = 0;
  for (const PromptLength &p : options.promptLengths) {
    BudgetProfile at = withDecodeTokens(profile, options.decodeTokens, p.tokens);
    for (size_t l = 0; l < mean.size(); ++l)
      for (size_t h = 0; h < mean[l].size(); ++h)
        mean[l][h] += p.weight * static_cast<double>(at.tokens[l][h]);
    total += p.weight;
  }
  BudgetProfile load = profile;
  for (size_t l = 0; l < mean.size(); ++l)
    for (size_t h = 0; h < mean[l].size(); ++h)
      load.tokens[l][h] =
          std::max<int64_t>(1, std::llround(mean[l][h] / total));
  load.source += ",prompts=" + std::to_string(options.promptLengths.size()) +
                 " lengths";
  if (options.decodeTokens > 0)
    load.source += ",decode+" + std::to_string(options.decodeTokens);
  return load;
}
