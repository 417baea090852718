//===- Profile.h - Per-head KV budget profiles ------------------*- C++ -*-===//
//
// A budget profile gives, per layer and KV head, the tokens of KV kept per
// request. Importers turn the published outputs of HeadKV and DuoAttention
// into profiles; our own canonical format is `fairkv-budgets/v1`.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_PLACEMENT_PROFILE_H
#define FAIRKV_PLACEMENT_PROFILE_H

#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fairkv::placement {

/// The largest budget a profile may give a head (tokens): beyond any
/// context, small enough that sums over a model never overflow.
constexpr int64_t kMaxBudgetTokens = int64_t(1) << 32;

struct BudgetProfile {
  std::string model;
  /// tokens[l][h]: tokens of KV that KV head h of layer l keeps per request.
  std::vector<std::vector<int64_t>> tokens;
  /// Where the budgets came from, e.g. "headkv:base=512,beta=1.2,group=sum".
  std::string source;

  int64_t layers() const { return static_cast<int64_t>(tokens.size()); }
  int64_t kvHeads() const {
    return tokens.empty() ? 0 : static_cast<int64_t>(tokens.front().size());
  }
  /// Checks the profile is rectangular with positive budgets.
  Status validate() const;
  /// Checks the profile's shape against a model's layers and KV heads.
  Status checkAgainst(const ModelConfig &model) const;
};

enum class GroupReduction { Sum, Max };

struct HeadKVOptions {
  int64_t base = 512;
  double beta = 1.2;
  double temp = 1.0;
  int64_t window = 32;
  /// How the budgets of a GQA group's query heads become the KV head's.
  GroupReduction group = GroupReduction::Sum;
};

/// HeadKV score JSON ({"L-H": [scores...]}, per query head). The model gives
/// the query and KV head counts for the GQA reduction.
Result<BudgetProfile> importHeadKV(const std::string &jsonText,
                                   const ModelConfig &model,
                                   const HeadKVOptions &options);

struct DuoOptions {
  /// A head whose gate exceeds the threshold is a retrieval head ...
  double threshold = 0.5;
  /// ... unless a target sparsity (fraction of streaming heads) is given:
  /// then the top (1 - sparsity) fraction of gates are retrieval heads.
  std::optional<double> sparsity;
  int64_t sink = 128;
  int64_t recent = 256;
  int64_t context = 32768;
};

/// DuoAttention pattern TSV: layers rows x KV-head columns of gate values.
Result<BudgetProfile> importDuo(const std::string &tsvText,
                                const ModelConfig &model,
                                const DuoOptions &options);

/// What each head holds, measured: a compiled program's `--dump-kept` file
/// ("request R layer L head H: positions", every (layer, head) once per
/// request), averaged over its requests and rounded up. Source
/// "kept:requests=N". A plan balances this where the method moves budget
/// between heads per request (Ada-KV), while the program's budgets stay.
Result<BudgetProfile> importKept(const std::string &text,
                                 const ModelConfig &model);
/// Whether a profile file is a `--dump-kept` file.
bool looksLikeKeptDump(const std::string &text);
/// A load profile file (`--dump-kept` or `fairkv-budgets/v1`), checked
/// against the model; errors name the path.
Result<BudgetProfile> readLoadProfile(const std::string &path,
                                      const ModelConfig &model);

/// The canonical `fairkv-budgets/v1` JSON.
Result<BudgetProfile> readCanonicalProfile(const std::string &jsonText);
std::string writeCanonicalProfile(const BudgetProfile &profile);

/// A seeded, skewed synthetic profile (log-normal budgets, a few heavy
/// heads per layer) for demos and scaling tests.
BudgetProfile syntheticProfile(int64_t layers, int64_t kvHeads, uint64_t seed,
                               double skew = 1.0, int64_t meanTokens = 512);

/// The same total KV per layer, every head of a layer at the layer's mean
/// budget: the balanced yardstick tp needs nothing to be fair on.
BudgetProfile uniformProfile(const BudgetProfile &profile);

/// The integer parameter `key` of a profile's source (`duo:...,sink=128,...`:
/// `key=value` after the method name or a comma), or -1 when absent.
int64_t sourceParameter(const std::string &source, const std::string &key);

/// Reads a whole file; errors name the path.
Result<std::string> readFile(const std::string &path);

} // namespace fairkv::placement

#endif // FAIRKV_PLACEMENT_PROFILE_H
