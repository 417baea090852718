//===- MetricsTest.cpp - /metrics never reads the devices mid-step -------===//
//
// The devices' KV caches change during a step, so the server's /metrics
// (an HTTP thread) must not read them then: the pool bytes are read between
// steps by the thread that runs them. Here a decode step holds on until a
// /metrics request sent during it has been answered, so a server that read
// the pools from the HTTP thread would do it mid-step, every time.
//
//===----------------------------------------------------------------------===//

#include "FakeModelServer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace fairkv::serve;

namespace {

struct Probe {
  std::mutex m;
  std::condition_variable cv;
  bool inStep = false, metricsAnswered = false, held = false;
  int64_t readsMidStep = 0, readsOffThread = 0, reads = 0;
  std::thread::id stepper;
  std::atomic<int> port{0};
};

TEST(Server, MetricsReadTheKvPoolsOnlyBetweenSteps) {
  auto tok = fake::fixtureTokenizer();
  ASSERT_TRUE(tok) << tok.error();
  Probe p;
  // The first decode step waits (at most 5 s) for the /metrics request
  // sent while it runs.
  auto beforeStep = [&](size_t, bool decode) {
    std::unique_lock<std::mutex> lock(p.m);
    p.stepper = std::this_thread::get_id();
    p.inStep = true;
    p.cv.notify_all();
    if (decode && !p.held) {
      p.held = true;
      p.cv.wait_for(lock, std::chrono::seconds(5),
                    [&] { return p.metricsAnswered; });
    }
    p.inStep = false;
  };
  auto kvBytes = [&] {
    std::lock_guard<std::mutex> lock(p.m);
    ++p.reads;
    p.readsMidStep += p.inStep;
    // Before the first step the pools are read by the thread that starts
    // the server; after it, only by the one stepping.
    p.readsOffThread += p.stepper != std::thread::id() &&
                        p.stepper != std::this_thread::get_id();
    return std::vector<int64_t>{4096};
  };
  ServerOptions options;
  options.maxTokens = 8;
  fake::FakeModelServer server(*tok, options, beforeStep, kvBytes);
  p.port = server.port();

  std::thread completion([&] {
    httplib::Client client("127.0.0.1", p.port);
    client.set_read_timeout(30, 0);
    auto res = client.Post("/v1/completions",
                           R"({"prompt": "hello", "max_tokens": 4})",
                           "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
  });
  {
    // Wait for the held decode step, then ask for the metrics during it.
    std::unique_lock<std::mutex> lock(p.m);
    ASSERT_TRUE(p.cv.wait_for(lock, std::chrono::seconds(10),
                              [&] { return p.held && p.inStep; }));
  }
  httplib::Client client("127.0.0.1", p.port);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("fairkv_kv_bytes{device=\"0\"} 4096"),
            std::string::npos)
      << metrics->body;
  {
    std::lock_guard<std::mutex> lock(p.m);
    p.metricsAnswered = true;
  }
  p.cv.notify_all();
  completion.join();

  server.stop();
  EXPECT_GT(p.reads, 1);
  EXPECT_EQ(p.readsMidStep, 0);
  EXPECT_EQ(p.readsOffThread, 0);
}

} // namespace
