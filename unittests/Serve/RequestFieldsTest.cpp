//===- RequestFieldsTest.cpp - Request numbers are checked before use ----===//
//
// A request's integer fields (top_k, seed, max_tokens) arrive as JSON
// numbers, which may be any double: each is checked against its range
// before it is converted (a double past an integer's range does not convert:
// UBSan stops on it), and refused in one line. The server goes on serving.
//
//===----------------------------------------------------------------------===//

#include "FakeModelServer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace fairkv::serve;

namespace {

TEST(Server, RefusesNumbersPastTheirFieldsInOneLine) {
  auto tok = fake::fixtureTokenizer();
  ASSERT_TRUE(tok) << tok.error();
  ServerOptions options;
  options.maxTokens = 8;
  fake::FakeModelServer server(
      *tok, options, [](size_t, bool) {},
      [] { return std::vector<int64_t>{0}; });
  const int port = server.port();

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
  server.stop();
}

} // namespace
