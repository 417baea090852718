//===- RuntimeTestSupport.h - Helpers of the runtime tests -------*- C++ -*-===//
//
// Shared by the CPU and CUDA runtime tests: seeded inputs, and a check of a
// session's all_reduce and all_gather.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H
#define FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H

#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

/// `n` seeded values, uniform in [-1, 1).
inline std::vector<float> random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Every device of `session`, one thread each, contributes
/// {d + 1, 10 (d + 1)}: all_reduce must give every device the sums and
/// all_gather (along the last axis) every contribution in device order.
inline void expectCollectivesAgree(fairkv_rt_session *session, int devices) {
  std::vector<std::vector<float>> sums(devices), gathers(devices);
  std::vector<std::thread> threads;
  for (int g = 0; g < devices; ++g)
    threads.emplace_back([&, g] {
      fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
      fairkv_rt_step_begin(c, 1, 1);
      std::vector<float> mine = {float(g + 1), float(10 * (g + 1))};
      int64_t shape[] = {1, 1, 2};
      fairkv_rt_tensor *x = fairkv_rt_tensor_from_f32(c, mine.data(), shape, 3);
      fairkv_rt_tensor *s = fairkv_rt_all_reduce(c, x, 0);
      fairkv_rt_tensor *a = fairkv_rt_all_gather(c, x, 2);
      sums[g].assign(fairkv_rt_tensor_f32_data(s),
                     fairkv_rt_tensor_f32_data(s) + 2);
      gathers[g].assign(fairkv_rt_tensor_f32_data(a),
                        fairkv_rt_tensor_f32_data(a) + 2 * devices);
    });
  for (std::thread &t : threads)
    t.join();
  std::vector<float> sum = {0, 0}, gather;
  for (int g = 0; g < devices; ++g) {
    sum[0] += g + 1;
    sum[1] += 10 * (g + 1);
    gather.insert(gather.end(), {float(g + 1), float(10 * (g + 1))});
  }
  for (int g = 0; g < devices; ++g) {
    EXPECT_EQ(sums[g], sum) << "device " << g;
    EXPECT_EQ(gathers[g], gather) << "device " << g;
  }
}

#endif // FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H
