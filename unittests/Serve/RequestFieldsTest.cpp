//===- RequestFieldsTest.cpp - Request numbers are checked before use ----===//
//
// A request's integer fields (top_k, seed, max_tokens) arrive as JSON
// numbers, which may be any double: each is checked against its range
// before it is converted (a double past an integer's range does not convert:
// UBSan stops on it), and refused in one line. The server goes on serving.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/Server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

using namespace fairkv::serve;
using fairkv::tokenizer::Tokenizer;

namespace {

TEST(Server, RefusesNumbersPastTheirFieldsInOneLine) {
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  auto tok = Tokenizer::fromFile(std::string(root ? root : ".") +
                                 "/test/Fixtures/tokenizers/gpt2-bytelevel");
  ASSERT_TRUE(tok) << tok.error();
  const int64_t vocab = tok->vocabSize();
  std::vector<float> logits(vocab * 4, 0.0f);
  // Every step's next token is id 0.
  auto step = [&](size_t rows, StepRows &out) {
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
                      StepRows &out) { return step(slots.size(), out); };
  hooks.decode = [&](const std::vector<int64_t> &slots,
                     const std::vector<int64_t> &, const std::vector<int64_t> &,
                     StepRows &out) { return step(slots.size(), out); };
  hooks.release = [](int64_t) {};
  hooks.kvBytes = [] { return std::vector<int64_t>{0}; };
  std::atomic<int> port{0};
  ServerOptions options;
  options.port = 0;
  options.maxTokens = 8;
  options.onListening = [&](int p) { port = p; };
  std::thread server([&] { serve(*tok, options, hooks); });
  while (port == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  auto post = [&](const std::string &fields) {
    auto res = client.Post("/v1/completions",
                           R"({"prompt": "hello", "temperature": 0)" +
                               fields + "}",
                           "application/json");
    return res ? std::to_string(res->status) + " " + res->body
               : std::string("no answer");
  };
  const std::pair<const char *, const char *> refused[] = {
      {R"(, "top_k": 1e300)", "top_k must be an integer from -1 to 2^31"},
      {R"(, "top_k": -2)", "top_k must be an integer from -1 to 2^31"},
      {R"(, "top_k": 2.5)", "top_k must be an integer from -1 to 2^31"},
      {R"(, "seed": -1)", "seed must be an integer from 0 to 2^53"},
      {R"(, "seed": 1e19)", "seed must be an integer from 0 to 2^53"},
      {R"(, "max_tokens": 1e300)",
       "max_tokens 1e+300 exceeds the program's limit of 8 (its "
       "--max-new-tokens)"},
      {R"(, "max_tokens": -1e300)", "max_tokens must be at least 1"},
      {R"(, "max_tokens": 2.5)", "max_tokens must be an integer"},
  };
  for (const auto &[fields, message] : refused) {
    const std::string answer = post(fields);
    EXPECT_EQ(answer.substr(0, 4), "400 ") << fields << ": " << answer;
    EXPECT_NE(answer.find(message), std::string::npos)
        << fields << ": " << answer;
  }
  // The limits themselves, and vLLM's top_k of -1 (none), are served.
  for (const char *fields :
       {R"(, "top_k": -1, "max_tokens": 8)",
        R"(, "top_k": 2147483648, "seed": 9007199254740992, "max_tokens": 1)"}) {
    const std::string answer = post(fields);
    EXPECT_EQ(answer.substr(0, 4), "200 ") << fields << ": " << answer;
  }
  std::raise(SIGTERM);
  server.join();
}

} // namespace
