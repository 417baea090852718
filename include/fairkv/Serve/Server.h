//===- Server.h - An OpenAI-compatible HTTP server for a program -*- C++ -*-===//
//
// `PROGRAM --serve HOST:PORT`: /v1/completions and /v1/chat/completions
// (streamed as server-sent events or not), /v1/models, /health and
// Prometheus /metrics. Requests queue as they arrive; between batches the
// scheduler takes the oldest requests whose KV fits (admission, never
// mid-step) and runs them as one batch through the program, each with its
// own sampling, stop strings and token limit. A request whose KV alone does
// not fit is refused with the reason; the others wait their turn.
//
// The server is independent of how a batch runs: the program hands it a
// function that runs one (BatchRunner), one that says how many of a queue's
// first requests fit, and one for the KV bytes each device holds.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_SERVE_SERVER_H
#define FAIRKV_SERVE_SERVER_H

#include "fairkv/Tokenizer/Tokenizer.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fairkv::serve {

/// What a batch's caller does after each step: fill `next` (preset to the
/// devices' greedy tokens) and say whether to go on.
using StepFn = std::function<bool(int64_t step, const float *logits,
                                  int64_t vocab,
                                  const std::vector<int64_t> &argmax,
                                  std::vector<int64_t> &next)>;

struct ServerHooks {
  /// Runs one batch for at most `maxSteps` steps: "" or a one-line error.
  std::function<std::string(const std::vector<std::vector<int64_t>> &prompts,
                            int64_t maxSteps, const StepFn &onStep)>
      runBatch;
  /// How many of `prompts`' first requests fit the devices' KV memory.
  std::function<int64_t(const std::vector<std::vector<int64_t>> &prompts)>
      fitting;
  /// KV bytes each device holds for the batch running (or last run).
  std::function<std::vector<int64_t>()> kvBytes;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string modelName = "fairkv";
  /// The most requests in one batch.
  int64_t maxBatch = 32;
  /// The most tokens a request may generate (the program's KV sizing).
  int64_t maxTokens = 64;
  std::vector<int64_t> eosIds;
  /// tokenizer_config.json's chat template (Jinja), and the special tokens
  /// it refers to; empty: chat completions are refused.
  std::string chatTemplate, bosToken, eosToken;
  /// Called once the server listens (e.g. to print where).
  std::function<void(int port)> onListening;
};

/// Serves until SIGINT or SIGTERM: then it stops taking requests, finishes
/// the batch running, refuses the queued ones, and returns 0; 1 after a
/// one-line error on stderr (the address cannot be bound).
int serve(const tokenizer::Tokenizer &tokenizer, const ServerOptions &options,
          const ServerHooks &hooks);

/// Parses "HOST:PORT" (PORT 0: any free port).
bool parseHostPort(const std::string &text, std::string &host, int &port);

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_SERVER_H
