//===- MetricsTest.cpp - /metrics never reads the devices mid-step -------===//
//
// The devices' KV caches change during a step, so the server's /metrics
// (an HTTP thread) must not read them then: the pool bytes are read between
// steps by the thread that runs them. Here a decode step holds on until a
// /metrics request sent during it has been answered, so a server that read
// the pools from the HTTP thread would do it mid-step, every time.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/Server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

using namespace fairkv::serve;
using fairkv::tokenizer::Tokenizer;

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
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  auto tok = Tokenizer::fromFile(std::string(root ? root : ".") +
                                 "/test/Fixtures/tokenizers/gpt2-bytelevel");
  ASSERT_TRUE(tok) << tok.error();
  const int64_t vocab = tok->vocabSize();
  std::vector<float> logits(vocab * 4, 0.0f);
  Probe p;

  // A step: every row's next token is id 0; the first decode step waits
  // (at most 5 s) for the /metrics request sent while it runs.
  auto step = [&](size_t rows, bool decode, StepRows &out) {
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
    out.logits = logits.data();
    out.vocab = vocab;
    out.argmax.assign(rows, 0);
    return std::string();
  };
  ServerHooks hooks;
  hooks.begin = [] { return std::string(); };
  hooks.fitting = [](const std::vector<int64_t> &lengths) {
    return static_cast<int64_t>(lengths.size());
  };
  hooks.prefill = [&](const std::vector<int64_t> &slots,
                      const std::vector<std::vector<int64_t>> &,
                      StepRows &out) { return step(slots.size(), false, out); };
  hooks.decode = [&](const std::vector<int64_t> &slots,
                     const std::vector<int64_t> &,
                     const std::vector<int64_t> &,
                     StepRows &out) { return step(slots.size(), true, out); };
  hooks.release = [](int64_t) {};
  hooks.kvBytes = [&] {
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
  options.port = 0;
  options.maxTokens = 8;
  options.onListening = [&](int port) { p.port = port; };
  std::thread server([&] { serve(*tok, options, hooks); });
  while (p.port == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

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

  std::raise(SIGTERM);
  server.join();
  EXPECT_GT(p.reads, 1);
  EXPECT_EQ(p.readsMidStep, 0);
  EXPECT_EQ(p.readsOffThread, 0);
}

} // namespace
