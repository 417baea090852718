//===- Profiles.cpp - The profiles the benchmarks plan from ---------------===//

#include "Profiles.h"

#include <algorithm>
#include <cmath>

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

placement::BudgetProfile
bench::scaledToMean(const placement::BudgetProfile &profile, double mean) {
  placement::BudgetProfile scaled = profile;
  double sum = 0, count = 0;
  for (const auto &layer : scaled.tokens)
    for (int64_t t : layer) {
      sum += t;
      ++count;
    }
  for (auto &layer : scaled.tokens)
    for (int64_t &t : layer)
      t = std::max<int64_t>(1, std::llround(t * mean / (sum / count)));
  scaled.source += ",scaled-to-mean=" + std::to_string(std::llround(mean));
  return scaled;
}

std::string bench::llamaConfigJson(const placement::ModelConfig &model) {
  return "{\"num_hidden_layers\": " + std::to_string(model.layers) +
         ", \"hidden_size\": " + std::to_string(model.hidden) +
         ", \"num_attention_heads\": " + std::to_string(model.heads) +
         ", \"num_key_value_heads\": " + std::to_string(model.kvHeads) +
         ", \"head_dim\": " + std::to_string(model.headDim) +
         ", \"intermediate_size\": " + std::to_string(model.ffn) +
         ", \"vocab_size\": " + std::to_string(model.vocab) +
         ", \"rope_theta\": 500000.0, \"rms_norm_eps\": 1e-5, "
         "\"torch_dtype\": \"bfloat16\"}\n";
}
