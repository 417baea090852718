//===- Profiles.cpp - The profiles the benchmarks plan from ---------------===//

#include "Profiles.h"

using namespace fairkv;

placement::Result<placement::BudgetProfile>
bench::loadLlama3HeadKV(const std::string &dir,
                        const placement::ModelConfig &model) {
  placement::Result<std::string> text =
      placement::readFile(dir + "/" + kLlama3HeadKVFile);
  if (!text)
    return placement::makeError(text.error());
  return placement::importHeadKV(*text, model, placement::HeadKVOptions());
}
