//===- GemmChoice.h - cublasGemmEx against cuBLASLt's choice ------*- C++ -*-===//
//
// The runtime runs every weight GEMM through cublasGemmEx with the default
// algorithm (ModelKernels' gemm). On one GPU the down projection of 8192
// rows ran in 0.70x the time when split into four column blocks
// (bench/RESULTS.md), which says the default choice can be poor. Whether
// cuBLASLt's heuristics do better, shape by shape, is measured here before
// the runtime changes.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_BENCH_GPU_GEMMCHOICE_H
#define FAIRKV_BENCH_GPU_GEMMCHOICE_H

#include "fairkv/Model/ModelConfig.h"

namespace fairkv::bench {

/// e. Every weight GEMM shape of `model`'s decode at batch 64 and 256 and
/// of an 8192-token prefill (bf16 inputs, fp32 output and accumulation):
/// the runtime's cublasGemmEx against cuBLASLt's first heuristic and the
/// fastest of its first 8, each checked against cublasGemmEx's result;
/// prints ms, weight GB/s as a share of `copyBytesPerSecond` and the
/// ratios. Returns whether every cuBLASLt result matched.
bool compareGemms(const fairkv::model::ModelConfig &model,
                  double copyBytesPerSecond);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_GPU_GEMMCHOICE_H
