//===- DecodeAttention.h - Compressed variable-length decode attention ----===//
//
// The CUDA decode-attention kernel over compressed per-head KV: one segment
// per (request, KV head) of any length, its keys and values stored
// contiguously (bf16 or fp16, flattened, prefix-sum offsets), the whole GQA group of
// queries handled together so K and V are read once. Long segments are split
// into chunks (flash-decoding style) whose partial softmax results a second
// kernel combines exactly.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_DECODEATTENTION_H
#define FAIRKV_RUNTIME_CUDA_DECODEATTENTION_H

#include "ChunkTable.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fairkv::cuda {

/// The split kernel: both write the same partial results, which the
/// combine kernel merges.
enum class DecodeSplitKernel {
  /// Online below kOnlineMaxChunks chunks, ThreePass from there.
  Auto,
  /// A lane holds 4 dims of a row; scores go to shared memory, then the
  /// softmax, then a second read for V (three passes over the chunk).
  ThreePass,
  /// A lane holds 8 dims (one 16-byte load), a warp 2 or 4 rows at once;
  /// K and V are read together in one pass with a running softmax.
  Online,
  /// Online, with each warp's next batch of K and V loaded before it
  /// computes on the current one (twice the loads in flight, more
  /// registers). Measured by fairkv-bench-gpu; Auto does not choose it.
  OnlinePipelined,
};

/// Measured by fairkv-bench-gpu on an H100 and an H200 (bench/RESULTS.md):
/// on one device's share of one layer (~1K chunks at batch 64, G = 8) the
/// online kernel took 0.4-3.9% less time than the three-pass one; on all 32
/// layers in one launch (~280K chunks) 0.9-4.4% more. Every launch the
/// runtime makes is one layer.
constexpr int kOnlineMaxChunks = 1 << 16;

struct DecodeAttentionArgs {
  DecodeSplitKernel kernel = DecodeSplitKernel::Auto;
  /// [total tokens, headDim] each: bf16, or fp16 when `halfKV` is set.
  const void *keys = nullptr;
  const void *values = nullptr;
  bool halfKV = false;
  const int64_t *offsets = nullptr;      ///< [segments + 1] token offsets
  const float *queries = nullptr;        ///< [segments, group, headDim]
  float *out = nullptr;                  ///< [segments, group, headDim]
  int segments = 0;
  int group = 0;   ///< query heads per KV head: 1, 2, 4 or 8
  int headDim = 0; ///< 128 or 64
  /// Chunk table: for chunk c, its segment and [begin, end) tokens
  /// (absolute), built by planChunks (ChunkTable.h) on the host and copied
  /// to the device.
  const int *chunkSegment = nullptr;
  const int64_t *chunkBegin = nullptr;
  const int64_t *chunkEnd = nullptr;
  int chunks = 0;
  /// First chunk of each segment ([segments + 1]).
  const int *segmentFirstChunk = nullptr;
  /// Workspace: per chunk, group x (headDim accumulator + max + sum) floats.
  float *partial = nullptr;
  /// Optional, for a chunk table planned over segments' capacity: segment
  /// s then ends at decodeStart[s] + *step + 1 (decodeStart: where decode
  /// step 0's token went), chunks are clipped to that end and chunks past
  /// it contribute nothing. The step is read on the device, so one captured
  /// CUDA graph serves every step.
  const int64_t *decodeStart = nullptr;
  const int *step = nullptr;
};

/// Floats of workspace `partial` needs for `chunks` chunks.
inline int64_t partialFloats(int chunks, int group, int headDim) {
  return static_cast<int64_t>(chunks) * group * (headDim + 2);
}

/// The split kernel `args` runs (Auto resolved).
inline DecodeSplitKernel splitKernel(const DecodeAttentionArgs &args) {
  if (args.kernel != DecodeSplitKernel::Auto)
    return args.kernel;
  return args.chunks < kOnlineMaxChunks ? DecodeSplitKernel::Online
                                        : DecodeSplitKernel::ThreePass;
}

/// Launches the split and combine kernels on `stream`.
cudaError_t launchDecodeAttention(const DecodeAttentionArgs &args,
                                  cudaStream_t stream);

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_DECODEATTENTION_H
