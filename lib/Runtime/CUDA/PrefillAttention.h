//===- PrefillAttention.h - Causal prefill attention over padded prompts --===//
//
// Causal attention of a prefill: queries, keys and values fp32
// [batch, seq, heads, head_dim], each request's prompt left-padded to `seq`
// (its last lengths[i] positions are the prompt; a padded position attends
// to nothing and gets zeros). Two kernels:
// - the row kernel: a block per query row holds the row's scores in shared
//   memory; exact two-pass softmax; prompts up to about 12K tokens (48 KB);
// - the tiled kernel: a block per 8 query positions of one head, key and
//   value tiles of 32 positions in shared memory shared by the 8 rows, an
//   online softmax (flash-attention style): any prompt length, K and V read
//   once per 8 rows instead of once per row.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_PREFILLATTENTION_H
#define FAIRKV_RUNTIME_CUDA_PREFILLATTENTION_H

#include <cuda_runtime.h>

#include <cstdint>

namespace fairkv::cuda {

struct PrefillAttentionArgs {
  const float *queries = nullptr; ///< [batch, seq, nq, headDim]
  const float *keys = nullptr;    ///< [batch, seq, nk, headDim]
  const float *values = nullptr;  ///< [batch, seq, nk, headDim]
  const int *lengths = nullptr;   ///< [batch] prompt lengths, on the device
  float *out = nullptr;           ///< [batch, seq, nq, headDim]
  int batch = 0, seq = 0, nq = 0, nk = 0;
  int headDim = 0; ///< 64 or 128
};

/// The longest prompt the row kernel takes for `headDim`.
int rowKernelMaxSeq(int headDim);

/// The row kernel up to rowKernelMaxSeq, the tiled kernel beyond.
cudaError_t launchPrefillAttention(const PrefillAttentionArgs &args,
                                   cudaStream_t stream);
/// Either kernel, whatever the length (the tiled one for every length when
/// `tiled`; the row one fails beyond rowKernelMaxSeq).
cudaError_t launchPrefillAttention(const PrefillAttentionArgs &args, bool tiled,
                                   cudaStream_t stream);

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_PREFILLATTENTION_H
