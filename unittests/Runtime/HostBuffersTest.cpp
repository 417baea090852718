//===- HostBuffersTest.cpp - Reused tensor storage, fairkv_rt_release -----===//
//
// Also the step tensors' bytes a device holds at once
// (fairkv_rt_ctx_tensor_bytes), which releases lower.
//
//===----------------------------------------------------------------------===//

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

TEST(TensorBytes, AStepsPeakCountsItsTensorsUntilTheirRelease) {
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  fairkv_rt_session *session = nullptr;
  std::string path = uniqueTempPath("tensor-bytes.safetensors");
  ASSERT_EQ(fairkv_rt_write_random_weights(path.c_str(), 1, 8, 2, 1, 4, 8, 16,
                                           1, "f32"),
            FAIRKV_OK)
      << fairkv_rt_last_error();
  ASSERT_EQ(fairkv_rt_session_create(path.c_str(), &o, &session), FAIRKV_OK)
      << fairkv_rt_last_error();
  fairkv_rt_ctx *ctx = fairkv_rt_session_device(session, 0);
  int64_t prefill = -1, decode = -1;
  fairkv_rt_ctx_tensor_bytes(ctx, &prefill, &decode);
  EXPECT_EQ(prefill, 0);
  EXPECT_EQ(decode, 0);
  const std::vector<float> data(2 * 3 * 16, 1.0f);
  const int64_t prompts[] = {2, 3, 16}, tokens[] = {2, 1, 16};
  // A prefill of 2 x 3 positions of 16 floats (384 bytes; the last
  // position 128): a, a + a (768 live), a released (384), the last
  // position of b (512), b released (128), c + c (256).
  auto prefillStep = [&](bool release) {
    fairkv_rt_step_begin(ctx, 2, 3);
    fairkv_rt_tensor *a =
        fairkv_rt_tensor_from_f32(ctx, data.data(), prompts, 3);
    fairkv_rt_tensor *b = fairkv_rt_add(ctx, a, a);
    if (release)
      fairkv_rt_release(ctx, a);
    fairkv_rt_tensor *c = fairkv_rt_last_position(ctx, b);
    if (release)
      fairkv_rt_release(ctx, b);
    fairkv_rt_add(ctx, c, c);
    fairkv_rt_step_end(ctx);
  };
  prefillStep(true);
  fairkv_rt_ctx_tensor_bytes(ctx, &prefill, &decode);
  EXPECT_EQ(prefill, 768);
  EXPECT_EQ(decode, 0);
  // The prefill's tensors are gone with its step: a decode step of three
  // tensors of 2 x 1 x 16 floats (128 bytes), none released, peaks at
  // their sum.
  fairkv_rt_step_begin(ctx, 2, 1);
  fairkv_rt_tensor *e = fairkv_rt_tensor_from_f32(ctx, data.data(), tokens, 3);
  fairkv_rt_tensor *f = fairkv_rt_add(ctx, e, e);
  fairkv_rt_add(ctx, f, f);
  fairkv_rt_step_end(ctx);
  fairkv_rt_ctx_tensor_bytes(ctx, &prefill, &decode);
  EXPECT_EQ(prefill, 768);
  EXPECT_EQ(decode, 384);
  // Without releases a prefill holds all four at once.
  prefillStep(false);
  fairkv_rt_ctx_tensor_bytes(ctx, &prefill, &decode);
  EXPECT_EQ(prefill, 384 + 384 + 128 + 128);
  EXPECT_EQ(decode, 384);
  fairkv_rt_session_destroy(session);
}

} // namespace
