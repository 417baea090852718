//===- PlanFileFuzzer.cpp - The fairkv-plan/v1 reader ---------------------===//
//
// Any text as a plan file for a fixed model and profile: read or refused
// in one line; a plan it reads is valid and can be evaluated.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Placement/Plan.h"
#include "fairkv/Placement/Report.h"

#include <cstdint>
#include <string>

using namespace fairkv::placement;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  const ModelConfig model = *modelPreset("tiny");
  BudgetProfile profile;
  profile.model = model.name;
  profile.source = "fuzz";
  profile.tokens.assign(model.layers, std::vector<int64_t>(model.kvHeads, 64));
  Result<Plan> plan = readPlanJson(text, profile);
  if (!plan)
    return 0;
  if (!validatePlan(*plan, profile))
    __builtin_trap(); // the reader returned a plan it should have refused
  (void)evaluatePlan(*plan, profile, model, *hardwarePreset("h100-sxm"), 8);
  return 0;
}
