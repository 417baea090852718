//===- ChunkTableTest.cpp - Decode attention's chunk table on the host ----===//
//
// The CUDA backend plans a batch's decode chunks once, over each segment's
// room, and the kernel clips them to each step's end (ChunkTable.h). These
// run the same plan and clipping on the host: at every step the clipped
// table covers exactly the tokens a table planned over that step's lengths
// covers, chunk for chunk, and the step's token lands inside the room.
//
//===----------------------------------------------------------------------===//

#include "ChunkTable.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace {

using fairkv::cuda::ChunkTable;
using fairkv::cuda::clippedChunkTokens;
using fairkv::cuda::kChunkTokens;
using fairkv::cuda::planChunks;
using fairkv::cuda::segmentEndAt;

/// (begin, tokens) of every chunk that holds a token, segment by segment.
std::vector<std::vector<std::pair<int64_t, int>>>
coverage(const ChunkTable &t, const std::vector<int64_t> &segmentEnd) {
  std::vector<std::vector<std::pair<int64_t, int>>> out(segmentEnd.size());
  for (size_t s = 0; s < segmentEnd.size(); ++s)
    for (int c = t.firstChunk[s]; c < t.firstChunk[s + 1]; ++c) {
      EXPECT_EQ(t.segment[c], static_cast<int>(s));
      const int n = clippedChunkTokens(t.begin[c], t.end[c], segmentEnd[s]);
      if (n > 0)
        out[s].push_back({t.begin[c], n});
    }
  return out;
}

TEST(ChunkTable, CoversEachSegmentInChunksOfAtMostKChunkTokens) {
  const std::vector<int64_t> base = {0, 5, 5, 300, 1000};
  const std::vector<int64_t> room = {5, 0, 295, 128, 129};
  const ChunkTable t = planChunks(base, room);
  ASSERT_EQ(t.firstChunk.size(), base.size() + 1);
  EXPECT_EQ(t.firstChunk.front(), 0);
  EXPECT_EQ(t.firstChunk.back(), t.chunks());
  // 1 + 0 + 3 + 1 + 2 chunks.
  EXPECT_EQ(t.chunks(), 7);
  for (size_t s = 0; s < base.size(); ++s) {
    int64_t next = base[s];
    for (int c = t.firstChunk[s]; c < t.firstChunk[s + 1]; ++c) {
      EXPECT_EQ(t.begin[c], next);
      EXPECT_GT(t.end[c], t.begin[c]);
      EXPECT_LE(t.end[c] - t.begin[c], kChunkTokens);
      next = t.end[c];
    }
    EXPECT_EQ(next, base[s] + room[s]) << "segment " << s;
  }
}

TEST(ChunkTable, ClippedCapacityPlanEqualsEachStepsExactPlan) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int segments = 1 + static_cast<int>(rng() % 12);
    const int steps = 1 + static_cast<int>(rng() % 300);
    // Kept lengths on and around chunk boundaries, and empty ones.
    std::vector<int64_t> base, room, kept, decodeStart;
    int64_t next = 0;
    for (int s = 0; s < segments; ++s) {
      const int64_t k = rng() % 4 == 0 ? kChunkTokens * (rng() % 3) +
                                             static_cast<int64_t>(rng() % 3) - 1
                                       : static_cast<int64_t>(rng() % 700);
      kept.push_back(std::max<int64_t>(0, k));
      base.push_back(next);
      room.push_back(kept.back() + steps);
      decodeStart.push_back(next + kept.back());
      next += room.back();
    }
    const ChunkTable planned = planChunks(base, room);
    for (int step = 0; step < steps; ++step) {
      std::vector<int64_t> ends, lengths;
      for (int s = 0; s < segments; ++s) {
        const int64_t slot = decodeStart[s] + step; // where the step's token goes
        EXPECT_LT(slot, base[s] + room[s]);
        ends.push_back(segmentEndAt(decodeStart[s], step));
        EXPECT_EQ(ends.back(), slot + 1);
        lengths.push_back(kept[s] + step + 1);
      }
      const ChunkTable exact = planChunks(base, lengths);
      std::vector<int64_t> exactEnds;
      for (int s = 0; s < segments; ++s)
        exactEnds.push_back(base[s] + lengths[s]);
      ASSERT_EQ(coverage(planned, ends), coverage(exact, exactEnds))
          << "trial " << trial << ", step " << step;
    }
  }
}

} // namespace
