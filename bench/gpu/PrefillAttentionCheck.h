//===- PrefillAttentionCheck.h - Prefill attention kernels on a GPU -------===//

#ifndef FAIRKV_BENCH_GPU_PREFILLATTENTIONCHECK_H
#define FAIRKV_BENCH_GPU_PREFILLATTENTIONCHECK_H

namespace fairkv::bench {

/// Both causal prefill-attention kernels (the row kernel and the tiled one)
/// on left-padded prompts against a float64 host reference on sampled
/// rows, the tiled one also beyond the row kernel's longest prompt and
/// against the row kernel on every row; then both timed on one llama-3-8b
/// layer's prompt. Prints its lines and returns whether the checks passed.
bool checkPrefillAttention();

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_GPU_PREFILLATTENTIONCHECK_H
