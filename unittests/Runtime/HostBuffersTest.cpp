//===- HostBuffersTest.cpp - Reused tensor storage, fairkv_rt_release -----===//

#include "Runtime.h"
#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

using fairkv::rt::HostBuffers;
using fairkv::rt::Tensor;

namespace {

/// A step's arena of one tensor of `n` floats, all `value`.
std::vector<std::unique_ptr<Tensor>> arenaOf(size_t n, float value) {
  std::vector<std::unique_ptr<Tensor>> arena;
  arena.push_back(std::make_unique<Tensor>());
  arena.back()->f.assign(n, value);
  return arena;
}

bool allZero(const std::vector<float> &v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
}

TEST(HostBuffers, TheNextStepReusesAStepsStorageAsZeros) {
  HostBuffers buffers;
  auto arena = arenaOf(1000, 7.0f);
  const float *storage = arena.back()->f.data();
  buffers.keep(arena);
  EXPECT_TRUE(arena.empty());
  EXPECT_EQ(buffers.bytes(), 1000 * sizeof(float));
  // A small tensor does not take a buffer more than twice its size.
  std::vector<float> small;
  buffers.take(small, 100);
  EXPECT_NE(small.data(), storage);
  EXPECT_EQ(buffers.bytes(), 1000 * sizeof(float));
  std::vector<float> again;
  buffers.take(again, 900);
  EXPECT_EQ(again.data(), storage);
  EXPECT_EQ(again.size(), 900u);
  EXPECT_TRUE(allZero(again));
  EXPECT_EQ(buffers.bytes(), 0u);
}

TEST(HostBuffers, AReleasedTensorsStorageServesTheSameStep) {
  HostBuffers buffers;
  std::vector<float> released(4096, 3.0f);
  const float *storage = released.data();
  buffers.put(released);
  EXPECT_TRUE(released.empty());
  std::vector<float> next;
  buffers.take(next, 4096);
  EXPECT_EQ(next.data(), storage);
  EXPECT_TRUE(allZero(next));
  std::vector<int64_t> ids(64, 5);
  const int64_t *idStorage = ids.data();
  buffers.put(ids);
  std::vector<int64_t> nextIds;
  buffers.take(nextIds, 40);
  EXPECT_EQ(nextIds.data(), idStorage);
  EXPECT_EQ(std::count(nextIds.begin(), nextIds.end(), 0), 40);
}

TEST(HostBuffers, StorageNoStepReusedIsDropped) {
  HostBuffers buffers;
  auto prefill = arenaOf(1 << 16, 1.0f);
  buffers.keep(prefill);
  // Kept through the step after (a decode step that did not need it)...
  std::vector<std::unique_ptr<Tensor>> none;
  buffers.keep(none);
  EXPECT_EQ(buffers.bytes(), (1u << 16) * sizeof(float));
  // ...and dropped after a second one.
  buffers.keep(none);
  EXPECT_EQ(buffers.bytes(), 0u);
}

TEST(HostBuffers, ReleaseGivesAStepTensorsStorageToTheNext) {
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  fairkv_rt_session *session = nullptr;
  // No weights are read: a session of any safetensors file will do.
  std::string path = uniqueTempPath("host-buffers.safetensors");
  ASSERT_EQ(fairkv_rt_write_random_weights(path.c_str(), 1, 8, 2, 1, 4, 8,
                                           16, 1, "f32"),
            FAIRKV_OK)
      << fairkv_rt_last_error();
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
  fairkv_rt_step_begin(ctx, 1, 1);
  std::vector<float> data(1 << 14, 2.0f);
  const int64_t shape[] = {1, 1, 1 << 14};
  fairkv_rt_tensor *a = fairkv_rt_tensor_from_f32(ctx, data.data(), shape, 3);
  fairkv_rt_tensor *like = fairkv_rt_tensor_from_f32(ctx, data.data(), shape, 3);
  const float *storage = fairkv_rt_tensor_f32_data(a);
  fairkv_rt_release(ctx, a);
  fairkv_rt_tensor *b = fairkv_rt_zeros_like(ctx, like);
  EXPECT_EQ(fairkv_rt_tensor_f32_data(b), storage);
  const float *bData = fairkv_rt_tensor_f32_data(b);
  EXPECT_TRUE(std::all_of(bData, bData + (1 << 14),
                          [](float x) { return x == 0.0f; }));
  fairkv_rt_step_end(ctx);
  fairkv_rt_session_destroy(session);
}

} // namespace
