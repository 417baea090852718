//===- FakeModelServer.h - A server over a model that answers token 0 -*- C++ -*-===//
//
// The server tests' model: every step gives every row token 0 (zero
// logits over the gpt2-bytelevel fixture's vocabulary), with a hook to run
// in each step first; and the server itself on a free loopback port, in a
// thread of its own, stopped by SIGTERM when the test is done.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_UNITTESTS_SERVE_FAKEMODELSERVER_H
#define FAIRKV_UNITTESTS_SERVE_FAKEMODELSERVER_H

#include "fairkv/Serve/Server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>

namespace fairkv::serve::fake {

/// The gpt2-bytelevel tokenizer of test/Fixtures.
inline tokenizer::Result<tokenizer::Tokenizer> fixtureTokenizer() {
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  return tokenizer::Tokenizer::fromFile(
      std::string(root ? root : ".") + "/test/Fixtures/tokenizers/gpt2-bytelevel");
}

class FakeModelServer {
public:
  /// `beforeStep(rows, decode)` runs at the start of every step;
  /// `kvBytes` answers the pool bytes.
  FakeModelServer(const tokenizer::Tokenizer &tok, ServerOptions options,
                  std::function<void(size_t, bool)> beforeStep,
                  std::function<std::vector<int64_t>()> kvBytes)
      : logits_(tok.vocabSize() * 64, 0.0f), beforeStep_(std::move(beforeStep)) {
    const int64_t vocab = tok.vocabSize();
    auto step = [this, vocab](size_t rows, bool decode, StepRows &out) {
      beforeStep_(rows, decode);
      out.logits = logits_.data();
      out.vocab = vocab;
      out.argmax.assign(rows, 0);
      return std::string();
    };
    ServerHooks hooks;
    hooks.begin = [] { return std::string(); };
    hooks.fitting = [](const std::vector<int64_t> &lengths) {
      return static_cast<int64_t>(lengths.size());
    };
    hooks.prefill = [step](const std::vector<int64_t> &slots,
                           const std::vector<std::vector<int64_t>> &,
                           StepRows &out) { return step(slots.size(), false, out); };
    hooks.decode = [step](const std::vector<int64_t> &slots,
                          const std::vector<int64_t> &,
                          const std::vector<int64_t> &,
                          StepRows &out) { return step(slots.size(), true, out); };
    hooks.release = [](int64_t) {};
    hooks.kvBytes = std::move(kvBytes);
    options.port = 0;
    options.onListening = [this](int port) { port_ = port; };
    thread_ = std::thread([this, &tok, options, hooks] { serve(tok, options, hooks); });
    while (port_ == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~FakeModelServer() { stop(); }
  FakeModelServer(const FakeModelServer &) = delete;
  FakeModelServer &operator=(const FakeModelServer &) = delete;

  int port() const { return port_; }
  /// SIGTERM, as a user stops it; waits for it to finish.
  void stop() {
    if (!thread_.joinable())
      return;
    std::raise(SIGTERM);
    thread_.join();
  }

private:
  std::vector<float> logits_;
  std::function<void(size_t, bool)> beforeStep_;
  std::atomic<int> port_{0};
  std::thread thread_;
};

} // namespace fairkv::serve::fake

#endif // FAIRKV_UNITTESTS_SERVE_FAKEMODELSERVER_H
