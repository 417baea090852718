//===- PrefillTokensTest.cpp - A joining prefill takes its token limit ---===//
//
// ServerOptions::prefillTokens bounds the prompt tokens (joiners x their
// longest prompt) of one joining prefill step: requests queued beyond it
// join at the next step boundaries, and none is lost. Here the first
// request's prefill holds on until four more are queued, so the next
// boundary sees all four, and a limit of two prompts' tokens must split
// them into two prefills of two.
//
//===----------------------------------------------------------------------===//

#include "FakeModelServer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace fairkv::serve;

namespace {

TEST(Server, AJoiningPrefillTakesAtMostItsPromptTokens) {
  auto tok = fake::fixtureTokenizer();
  ASSERT_TRUE(tok) << tok.error();
  const std::string prompt = "hello world, how are you today";
  const int64_t promptTokens =
      static_cast<int64_t>(tok->encode(prompt, true).size());
  ASSERT_GT(promptTokens, 2);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::vector<size_t> prefills;
  auto beforeStep = [&](size_t rows, bool decode) {
    std::unique_lock<std::mutex> lock(m);
    if (decode)
      return;
    prefills.push_back(rows);
    cv.notify_all();
    if (prefills.size() == 1)
      cv.wait_for(lock, std::chrono::seconds(20), [&] { return release; });
  };
  ServerOptions options;
  options.maxTokens = 2;
  // Two prompts fit, three do not.
  options.prefillTokens = 2 * promptTokens;
  fake::FakeModelServer server(*tok, options, beforeStep,
                               [] { return std::vector<int64_t>{0}; });
  auto complete = [&] {
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(60, 0);
    auto res =
        client.Post("/v1/completions",
                    R"({"prompt": ")" + prompt + R"(", "max_tokens": 2})",
                    "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
  };
  std::vector<std::thread> clients;
  clients.emplace_back(complete);
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10),
                            [&] { return !prefills.empty(); }));
  }
  for (int i = 0; i < 4; ++i)
    clients.emplace_back(complete);
  // Four queued behind the held prefill, as /metrics says.
  httplib::Client metrics("127.0.0.1", server.port());
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    auto res = metrics.Get("/metrics");
    queued = res &&
             res->body.find("fairkv_requests_waiting 4\n") != std::string::npos;
    if (!queued)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(queued);
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  for (std::thread &t : clients)
    t.join();
  server.stop();
  EXPECT_EQ(prefills, (std::vector<size_t>{1, 2, 2}));
}

} // namespace
