//===- RuntimeTestSupport.h - Helpers of the runtime tests -------*- C++
//-*-===//
//
// Shared by the CPU and CUDA runtime tests: seeded inputs, and checks of a
// session's all_reduce, all_gather and fused linear_all_reduce.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H
#define FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H

#include "fairkv/Runtime/FairKVRuntime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>

/// `name` in a temporary directory of this test process's own (made on
/// first use), so that parallel test processes and two build trees on one
/// machine never share a file.
inline std::string uniqueTempPath(const std::string &name) {
  static const std::string dir = [] {
    std::string pattern = testing::TempDir() + "/fairkv-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    const char *made = mkdtemp(buffer.data());
    return std::string(made ? made : testing::TempDir().c_str());
  }();
  return dir + "/" + name;
}

/// `n` seeded values, uniform in [-1, 1).
inline std::vector<float> random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Every device of `session`, one thread each, at the same time, in a
/// step of `seq` tokens, contributes {d + 1, 10 (d + 1)}: all_reduce must
/// give every device the sums and all_gather (along the last axis) every
/// contribution in device order; or, where `standIns` (solo devices'
/// decode steps), the device's own part and its part in every place.
/// Then a KV head copied onto every device serves a batch of 4: each
/// device takes its requests' rows (take_rows) of a batch whose row r holds
/// {r, 10 r + 1}, and gather_rows must give every device the whole batch;
/// or, for stand-ins, its own rows in place and the other copies' zero.
inline void expectCollectives(fairkv_rt_session *session, int devices,
                              int64_t seq, bool standIns) {
  std::vector<std::vector<float>> sums(devices), gathers(devices);
  std::vector<std::thread> threads;
  auto part = [](int g) {
    return std::vector<float>{float(g + 1), float(10 * (g + 1))};
  };
  for (int g = 0; g < devices; ++g)
    threads.emplace_back([&, g] {
      fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
      fairkv_rt_step_begin(c, 1, seq);
      std::vector<float> mine = part(g);
      int64_t shape[] = {1, 1, 2};
      fairkv_rt_tensor *x = fairkv_rt_tensor_from_f32(c, mine.data(), shape, 3);
      fairkv_rt_tensor *s = fairkv_rt_all_reduce(c, x, 0);
      fairkv_rt_tensor *a = fairkv_rt_all_gather(c, x, 2);
      sums[g].assign(fairkv_rt_tensor_f32_data(s),
                     fairkv_rt_tensor_f32_data(s) + 2);
      gathers[g].assign(fairkv_rt_tensor_f32_data(a),
                        fairkv_rt_tensor_f32_data(a) + 2 * devices);
      fairkv_rt_step_end(c);
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
    const std::vector<float> mine = part(g);
    std::vector<float> copies;
    for (int p = 0; p < devices; ++p)
      copies.insert(copies.end(), mine.begin(), mine.end());
    EXPECT_EQ(sums[g], standIns ? mine : sum)
        << "device " << g << ", seq " << seq;
    EXPECT_EQ(gathers[g], standIns ? copies : gather)
        << "device " << g << ", seq " << seq;
  }

  const int64_t batch = 4;
  std::vector<float> whole;
  for (int64_t r = 0; r < batch; ++r)
    whole.insert(whole.end(), {float(r), float(10 * r + 1)});
  std::vector<int64_t> replicas;
  std::vector<double> shares(devices, 1.0 / devices);
  for (int g = 0; g < devices; ++g)
    replicas.push_back(g);
  std::vector<std::vector<float>> taken(devices), gatheredRows(devices);
  threads.clear();
  for (int g = 0; g < devices; ++g)
    threads.emplace_back([&, g] {
      fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
      fairkv_rt_step_begin(c, batch, seq);
      int64_t shape[] = {batch, 1, 2};
      fairkv_rt_tensor *x =
          fairkv_rt_tensor_from_f32(c, whole.data(), shape, 3);
      fairkv_rt_tensor *rows = fairkv_rt_take_rows(
          c, x, 0, 8, devices, replicas.data(), shares.data());
      fairkv_rt_tensor *back = fairkv_rt_gather_rows(
          c, rows, 0, 8, devices, replicas.data(), shares.data());
      taken[g].assign(fairkv_rt_tensor_f32_data(rows),
                      fairkv_rt_tensor_f32_data(rows) +
                          fairkv_rt_tensor_numel(rows));
      gatheredRows[g].assign(fairkv_rt_tensor_f32_data(back),
                             fairkv_rt_tensor_f32_data(back) +
                                 fairkv_rt_tensor_numel(back));
      fairkv_rt_step_end(c);
    });
  for (std::thread &t : threads)
    t.join();
  int64_t served = 0;
  for (int g = 0; g < devices; ++g) {
    // Its own rows in place (row r is recognised by its first value).
    std::vector<float> own(2 * batch, 0.0f);
    for (size_t i = 0; i + 1 < taken[g].size(); i += 2) {
      const int64_t r = static_cast<int64_t>(taken[g][i]);
      ASSERT_TRUE(r >= 0 && r < batch) << "device " << g;
      own[2 * r] = taken[g][i];
      own[2 * r + 1] = taken[g][i + 1];
      ++served;
    }
    EXPECT_EQ(gatheredRows[g], standIns ? own : whole)
        << "device " << g << ", seq " << seq;
  }
  // Every request is served by exactly one copy.
  EXPECT_EQ(served, batch);
}

inline void expectCollectivesAgree(fairkv_rt_session *session, int devices) {
  expectCollectives(session, devices, 1, false);
}

/// Solo devices (fairkv_rt_options.solo_devices): stand-ins in a decode
/// step, without meeting the other devices; the real collectives at
/// prefill.
inline void expectSoloStandIns(fairkv_rt_session *session, int devices) {
  expectCollectives(session, devices, 1, true);
  expectCollectives(session, devices, 2, false);
}

/// fairkv_rt_linear_all_reduce on every device of `session` (one thread
/// each), in up to `chunks` blocks: device g's projection is columns
/// [g * ffn / G, (g + 1) * ffn / G) of layer 0's down projection (read from
/// `weightsPath`, [hidden, ffn]) times seeded activations of that width for
/// a [2, 3] batch, and device g >= 1 adds a seeded addend (the rows of
/// copied heads); device 1 has no projection (it holds only copies). Every
/// device must receive the sum of all projections and addends (float64
/// reference, within `tolerance` of the largest |value|), identical on
/// every device.
inline void expectLinearAllReduceSums(fairkv_rt_session *session, int devices,
                                      const std::string &weightsPath,
                                      int64_t hidden, int64_t ffn,
                                      int64_t chunks, double tolerance) {
  const char *name = "model.layers.0.mlp.down_proj.weight";
  const int64_t rows = 6;
  auto projects = [](int g) { return g != 1; };
  auto adds = [](int g) { return g >= 1; };
  // The reference reads the whole weight through a CPU session.
  fairkv_rt_options o;
  fairkv_rt_default_options(&o);
  fairkv_rt_session *cpu = nullptr;
  ASSERT_EQ(fairkv_rt_session_create(weightsPath.c_str(), &o, &cpu), FAIRKV_OK)
      << fairkv_rt_last_error();
  fairkv_rt_ctx *host = fairkv_rt_session_device(cpu, 0);
  fairkv_rt_step_begin(host, 1, 1);
  const int64_t shape[] = {hidden, ffn};
  const float *w = fairkv_rt_tensor_f32_data(
      fairkv_rt_weight(host, name, -1, nullptr, 0, shape, 2));
  std::vector<double> want(rows * hidden, 0.0);
  std::vector<std::vector<float>> inputs(devices), addends(devices);
  for (int g = 0; g < devices; ++g) {
    const int64_t c0 = g * ffn / devices, c1 = (g + 1) * ffn / devices;
    inputs[g] = random(rows * (c1 - c0), 100 + g);
    addends[g] = random(rows * hidden, 200 + g);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < hidden; ++h) {
        if (adds(g))
          want[r * hidden + h] += addends[g][r * hidden + h];
        for (int64_t c = c0; projects(g) && c < c1; ++c)
          want[r * hidden + h] +=
              double(inputs[g][r * (c1 - c0) + c - c0]) * w[h * ffn + c];
      }
  }
  fairkv_rt_session_destroy(cpu);

  std::vector<std::vector<float>> got(devices);
  std::vector<std::thread> threads;
  for (int g = 0; g < devices; ++g)
    threads.emplace_back([&, g] {
      fairkv_rt_ctx *c = fairkv_rt_session_device(session, g);
      fairkv_rt_step_begin(c, 2, 3);
      const int64_t range[] = {g * ffn / devices, (g + 1) * ffn / devices};
      const int64_t width = range[1] - range[0];
      const int64_t sliceShape[] = {hidden, width}, xShape[] = {2, 3, width},
                    addendShape[] = {2, 3, hidden};
      fairkv_rt_tensor *x = nullptr, *wg = nullptr, *addend = nullptr;
      if (projects(g)) {
        wg = fairkv_rt_weight(c, name, 1, range, 2, sliceShape, 2);
        x = fairkv_rt_tensor_from_f32(c, inputs[g].data(), xShape, 3);
      }
      if (adds(g))
        addend =
            fairkv_rt_tensor_from_f32(c, addends[g].data(), addendShape, 3);
      fairkv_rt_tensor *y =
          fairkv_rt_linear_all_reduce(c, x, wg, addend, chunks, 0);
      const float *data = fairkv_rt_tensor_f32_data(y);
      got[g].assign(data, data + fairkv_rt_tensor_numel(y));
    });
  for (std::thread &t : threads)
    t.join();
  double largest = 0;
  for (double v : want)
    largest = std::max(largest, std::fabs(v));
  for (int g = 0; g < devices; ++g) {
    ASSERT_EQ(got[g].size(), want.size()) << "device " << g;
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[g][i], want[i], tolerance * largest)
          << "device " << g << ", element " << i;
    EXPECT_EQ(got[g], got[0]) << "device " << g << " differs from device 0";
  }
}

#endif // FAIRKV_UNITTESTS_RUNTIME_RUNTIMETESTSUPPORT_H
