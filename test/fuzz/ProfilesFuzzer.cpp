//===- ProfilesFuzzer.cpp - The budget profile importers and the planner --===//
//
// The first byte picks an importer (HeadKV scores, DuoAttention gates,
// fairkv-budgets/v1, a --dump-kept file), the rest is the file. What an
// importer accepts is planned (greedy and fairkv on 2 devices, with decode
// tokens): nothing may crash or overflow on the way.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Profile.h"
#include "fairkv/Placement/Strategies.h"

#include <cstdint>
#include <string>

using namespace fairkv::placement;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
  const ModelConfig model = *modelPreset("tiny");
  Result<BudgetProfile> profile = makeError("");
  switch (data[0] % 4) {
  case 0:
    profile = importHeadKV(text, model, HeadKVOptions());
    break;
  case 1:
    profile = importDuo(text, model, DuoOptions());
    break;
  case 2:
    profile = readCanonicalProfile(text);
    break;
  default:
    profile = importKept(text, model);
    break;
  }
  if (!profile || !profile->checkAgainst(model))
    return 0;
  for (Strategy s : {Strategy::Greedy, Strategy::FairKV}) {
    PlanOptions options;
    options.strategy = s;
    options.devices = 2;
    options.decodeTokens = data[0];
    Result<PlanResult> plan = makePlan(*profile, model, options);
    if (plan && !validatePlan(plan->plan, *profile))
      __builtin_trap(); // a plan the planner made must be valid
  }
  return 0;
}
