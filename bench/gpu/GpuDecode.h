//===- GpuDecode.h - Whole-model decode on one GPU: check and tokens/s ----===//

#ifndef FAIRKV_BENCH_GPU_GPUDECODE_H
#define FAIRKV_BENCH_GPU_GPUDECODE_H

#include "fairkv/Placement/Model.h"

#include <cstdint>
#include <vector>

namespace fairkv::bench {

/// A 2-layer model's decode steps on the GPU against a float64 host
/// reference; prints one line and returns whether it passed.
bool checkWholeDecode();

/// SnapKV scoring and per-head top-k selection at prefill on the GPU
/// against a float64 host reference of the CPU runtime's rule; prints one
/// line and returns whether it passed.
bool checkPrefillSelect();

/// Prints and returns the decode tokens/s of a random-weight model of
/// `shape` with one layer per entry of `budgets` ([layer][kv head] tokens);
/// 0 if it could not run.
double wholeDecodeTokensPerSecond(const fairkv::placement::ModelConfig &shape,
                                  const std::vector<std::vector<int64_t>> &budgets,
                                  int batch);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_GPU_GPUDECODE_H
