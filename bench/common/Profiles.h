//===- Profiles.h - The profiles the benchmarks plan from -------*- C++ -*-===//

#ifndef FAIRKV_BENCH_COMMON_PROFILES_H
#define FAIRKV_BENCH_COMMON_PROFILES_H

#include "fairkv/Placement/Model.h"
#include "fairkv/Placement/Profile.h"

#include <string>

namespace fairkv::bench {

/// HeadKV's Llama-3-8B-Instruct scores, under --profiles.
inline constexpr const char *kLlama3HeadKVFile =
    "headkv-Meta-Llama-3-8B-Instruct_retrieval_reasoning_heads.json";

/// Reads kLlama3HeadKVFile from `dir` and imports it for `model` with the
/// default HeadKV options.
placement::Result<placement::BudgetProfile>
loadLlama3HeadKV(const std::string &dir, const placement::ModelConfig &model);

/// A Hugging Face config.json of `model` (a Llama, rope_theta 500000,
/// bf16), for `fairkv compile --model`.
std::string llamaConfigJson(const placement::ModelConfig &model);

/// `profile` with every budget scaled so that their mean is `mean` (each
/// at least 1): the same skew for shorter prompts.
placement::BudgetProfile scaledToMean(const placement::BudgetProfile &profile,
                                      double mean);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_COMMON_PROFILES_H
