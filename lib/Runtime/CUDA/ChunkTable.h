//===- ChunkTable.h - Decode attention's chunk table over segments' room --===//
//
// Decode attention splits every (request, KV head) segment into chunks of
// kChunkTokens tokens, one thread block each. A batch plans its table once,
// over each segment's room (what its prefill kept plus the tokens still to
// decode), and the kernel clips each chunk to the current step's end, read
// on the device: a decode step then uploads nothing and launches the same
// grid every step, so it can be captured as a CUDA graph. Plain C++ (with
// host/device inline helpers) so the host's unit tests check the plan and
// the clipping the kernel does.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_RUNTIME_CUDA_CHUNKTABLE_H
#define FAIRKV_RUNTIME_CUDA_CHUNKTABLE_H

#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef __CUDACC__
#define FAIRKV_HOST_DEVICE __host__ __device__
#else
#define FAIRKV_HOST_DEVICE
#endif

namespace fairkv::cuda {

/// Tokens one thread block handles; segments longer than this are split.
constexpr int kChunkTokens = 128;

/// Chunk c covers tokens [begin[c], end[c]) (absolute, in the cache
/// buffer) of segment `segment[c]`; segment s's chunks are
/// [firstChunk[s], firstChunk[s + 1]).
struct ChunkTable {
  std::vector<int> segment, firstChunk;
  std::vector<int64_t> begin, end;
  int chunks() const { return static_cast<int>(segment.size()); }
};

/// The table over segments whose room is [base[s], base[s] + room[s]). A
/// segment without room gets no chunk.
inline ChunkTable planChunks(const std::vector<int64_t> &base,
                             const std::vector<int64_t> &room) {
  ChunkTable t;
  for (size_t s = 0; s < base.size(); ++s) {
    t.firstChunk.push_back(t.chunks());
    for (int64_t u = 0; u < room[s]; u += kChunkTokens) {
      t.segment.push_back(static_cast<int>(s));
      t.begin.push_back(base[s] + u);
      t.end.push_back(base[s] + std::min<int64_t>(room[s], u + kChunkTokens));
    }
  }
  t.firstChunk.push_back(t.chunks());
  return t;
}

/// Tokens of chunk [begin, end) when its segment's tokens end at
/// `segmentEnd` (absolute): none for a chunk past the end.
FAIRKV_HOST_DEVICE inline int clippedChunkTokens(int64_t begin, int64_t end,
                                                 int64_t segmentEnd) {
  const int64_t last = end < segmentEnd ? end : segmentEnd;
  return last > begin ? static_cast<int>(last - begin) : 0;
}

/// Where segment s's tokens end at decode step `step` when step 0's token
/// went to `decodeStart[s]`: after that step's token.
FAIRKV_HOST_DEVICE inline int64_t segmentEndAt(int64_t decodeStart,
                                               int64_t step) {
  return decodeStart + step + 1;
}

} // namespace fairkv::cuda

#endif // FAIRKV_RUNTIME_CUDA_CHUNKTABLE_H
