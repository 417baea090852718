//===- PrefillSelect.h - SnapKV scoring and per-head top-k at prefill -*- C++ -*-===//
//
// What each (request, KV head) segment keeps of its prompt, on the GPU, by
// the CPU runtime's rule (lib/Runtime/Ops.cpp, poolScores and staticKeep,
// kvpress's SnapKV): the last `window` queries of the head's GQA group
// score every earlier token with their softmax attention, averaged over
// those queries and the group, average-pooled over `kernel` tokens; the
// segment keeps its window plus the best budget - window candidates (ties:
// the earlier token); a prompt within the budget is kept whole, a budget
// within the window keeps the prompt's last budget tokens.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_PREFILLSELECT_H
#define FAIRKV_RUNTIME_CUDA_PREFILLSELECT_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fairkv::cuda {

struct PrefillSelectArgs {
  const __nv_bfloat16 *keys = nullptr; ///< [total prompt tokens, headDim]
  /// Or fp32 keys (the CUDA backend scores its fp32 projections, as the CPU
  /// runtime does); used when set.
  const float *keysF32 = nullptr;
  const int64_t *offsets = nullptr;    ///< [segments + 1] token offsets
  /// The last `window` queries of each segment's group, [segments, window,
  /// group, headDim]; query i sits at prompt position length - window + i
  /// (entries before position 0 are ignored).
  const float *queries = nullptr;
  const int *budgets = nullptr; ///< [segments] tokens to keep
  int segments = 0, window = 0, group = 0, headDim = 0;
  /// Tokens the scores are average-pooled over (odd).
  int kernel = 5;
  /// Workspace: [total prompt tokens] floats each.
  float *logits = nullptr, *scores = nullptr, *pooled = nullptr;
  /// Out: 1 where a token is kept ([total prompt tokens]), and per segment
  /// how many are kept.
  uint8_t *keep = nullptr;
  int *kept = nullptr;
  /// Only score: leave every segment's pooled candidate scores in
  /// `pooled` (its first length - min(window, length) entries) and choose
  /// nothing (Ada-KV chooses across heads, elsewhere).
  bool poolOnly = false;
};

/// Launches scoring and selection on `stream`.
cudaError_t launchPrefillSelect(const PrefillSelectArgs &args,
                                cudaStream_t stream);

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_PREFILLSELECT_H
