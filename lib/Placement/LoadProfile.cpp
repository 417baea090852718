//===- LoadProfile.cpp - Measured loads from a program's --dump-kept ------===//
//
// A compiled program's `--dump-kept` file says which prompt tokens every
// (request, layer, KV head) kept. Averaged over the requests it is what each
// head holds under the method actually run: for Ada-KV, whose per-request
// reallocation no static budget predicts, the load a plan should balance.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Profile.h"

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <vector>

using namespace fairkv::placement;

namespace {

/// Reads the non-negative integer after `word` at the stream's position.
bool expectWord(std::istringstream &in, const char *word, int64_t &value) {
  std::string w;
  return (in >> w) && w == word && (in >> value) && value >= 0;
}

} // namespace

bool fairkv::placement::looksLikeKeptDump(const std::string &text) {
  return text.rfind("request ", 0) == 0;
}

Result<BudgetProfile>
fairkv::placement::importKept(const std::string &text,
                              const ModelConfig &model) {
  constexpr int64_t kMaxRequests = int64_t(1) << 24;
  // counts[request][layer * kvHeads + head]: tokens kept.
  std::map<int64_t, std::map<int64_t, int64_t>> counts;
  std::istringstream lines(text);
  std::string line;
  int64_t lineNo = 0;
  while (std::getline(lines, line)) {
    ++lineNo;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const std::string where = "kept: line " + std::to_string(lineNo) + ": ";
    const size_t colon = line.find(':');
    if (colon == std::string::npos)
      return makeError(where + "not 'request R layer L head H: positions'");
    std::istringstream head(line.substr(0, colon));
    int64_t r, l, h;
    std::string rest;
    if (!expectWord(head, "request", r) || !expectWord(head, "layer", l) ||
        !expectWord(head, "head", h) || (head >> rest))
      return makeError(where + "not 'request R layer L head H: positions'");
    if (l >= model.layers || h >= model.kvHeads)
      return makeError(where + "layer " + std::to_string(l) + " head " +
                       std::to_string(h) + " is outside model '" +
                       model.name + "'");
    if (r >= kMaxRequests)
      return makeError(where + "request " + std::to_string(r) +
                       " is beyond the limit of " +
                       std::to_string(kMaxRequests));
    std::istringstream positions(line.substr(colon + 1));
    std::set<int64_t> seen;
    std::string field;
    while (positions >> field) {
      char *end = nullptr;
      errno = 0;
      long long p = std::strtoll(field.c_str(), &end, 10);
      if (end == field.c_str() || *end != '\0' || errno != 0 || p < 0)
        return makeError(where + "'" + field + "' is not a position");
      if (!seen.insert(p).second)
        return makeError(where + "position " + field + " is listed twice");
    }
    if (!counts[r].emplace(l * model.kvHeads + h,
                           static_cast<int64_t>(seen.size()))
             .second)
      return makeError(where + "request " + std::to_string(r) + " layer " +
                       std::to_string(l) + " head " + std::to_string(h) +
                       " is listed twice");
  }
  if (counts.empty())
    return makeError("kept: no 'request R layer L head H:' lines");
  const int64_t heads = model.layers * model.kvHeads;
  std::vector<int64_t> total(heads, 0);
  for (const auto &[request, perHead] : counts) {
    if (static_cast<int64_t>(perHead.size()) != heads)
      return makeError("kept: request " + std::to_string(request) +
                       " lists " + std::to_string(perHead.size()) +
                       " (layer, head) pairs; model '" + model.name +
                       "' has " + std::to_string(heads));
    for (const auto &[index, n] : perHead)
      total[index] += n;
  }
  const int64_t requests = static_cast<int64_t>(counts.size());
  BudgetProfile p;
  p.model = model.name;
  p.source = "kept:requests=" + std::to_string(requests);
  p.tokens.assign(model.layers, std::vector<int64_t>(model.kvHeads));
  // The mean over the requests, rounded up; at least 1 (a profile's budgets
  // are positive).
  for (int64_t i = 0; i < heads; ++i)
    p.tokens[i / model.kvHeads][i % model.kvHeads] =
        std::max<int64_t>(1, (total[i] + requests - 1) / requests);
  return p;
}

Result<BudgetProfile>
fairkv::placement::readLoadProfile(const std::string &path,
                                   const ModelConfig &model) {
  Result<std::string> text = readFile(path);
  if (!text)
    return makeError(text.error());
  Result<BudgetProfile> load = looksLikeKeptDump(*text)
                                   ? importKept(*text, model)
                                   : readCanonicalProfile(*text);
  if (!load)
    return makeError(path + ": " + load.error());
  if (Status s = load->checkAgainst(model); !s)
    return makeError(path + ": " + s.error());
  return load;
}
