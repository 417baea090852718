//===- ReadYardsticks.h - What the GPU reads when nothing is computed -----===//
//
// Decode attention reached 87% of copy bandwidth on an H100 but 71% on an
// H200 (bench/RESULTS.md), whose SMs are the H100's with 1.43x the memory
// bandwidth. These two kernels tell the bounds apart on the card at hand:
// a flat stream of 16-byte loads says what reading alone reaches, and the
// attention kernel's own loads over its own chunk table, with no math, say
// what its access pattern (chunks, grid, block, loads in flight) reaches.
// Attention well below the second points at its instructions; the second
// well below the first at the pattern.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_BENCH_GPU_READYARDSTICKS_H
#define FAIRKV_BENCH_GPU_READYARDSTICKS_H

#include "DecodeAttention.h"

#include <cstddef>
#include <cstdint>

namespace fairkv::bench {

/// Bytes per second a grid-stride kernel of 16-byte loads reads from one
/// flat buffer of `bytes` (read only: one word per block is written).
double streamReadBandwidth(size_t bytes);

/// Seconds per launch of the loads-only kernel over `args`'s chunk table;
/// `pipelined`: each warp issues its next batch's loads before it uses the
/// current one (as DecodeSplitKernel::OnlinePipelined).
double chunkLoadSeconds(const cuda::DecodeAttentionArgs &args, int repeats,
                        bool pipelined = false);

/// Runs the loads-only kernel once over `args` (bf16 or fp16 K and V,
/// head_dim 64 or 128, an exact chunk table: no decodeStart) and returns
/// the XOR of every 32-bit word it read, which covers each K and V word of
/// the chunks exactly once (the check that it reads what attention reads).
uint32_t chunkLoadChecksum(const cuda::DecodeAttentionArgs &args,
                           bool pipelined = false);

} // namespace fairkv::bench

#endif // FAIRKV_BENCH_GPU_READYARDSTICKS_H
