//===- Server.h - An OpenAI-compatible HTTP server for a program -*- C++ -*-===//
//
// `PROGRAM --serve HOST:PORT`: /v1/completions and /v1/chat/completions
// (streamed as server-sent events or not), /v1/models, /health and
// Prometheus /metrics. Continuous batching: requests queue as they arrive;
// at every step boundary the oldest ones whose KV fits with the running
// requests join (admission, never mid-step) with a prefill step of their
// own, then decode with the rest, each with its own sampling, stop strings
// and token limit; a finished request leaves and its KV pages go to the
// next. A request whose KV does not fit even alone is refused with the
// reason; the others wait their turn.
//
// The server is independent of how a step runs: the program hands it hooks
// over its ContinuousRunner.
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

/// One step's answer, row by row: next-token logits and the devices' greedy
/// tokens.
struct StepRows {
  const float *logits = nullptr;
  int64_t vocab = 0;
  std::vector<int64_t> argmax;
};

/// The program under the server: a continuous batch that requests join
/// (their own prefill step) and leave between steps.
struct ServerHooks {
  /// Starts the batch: "" or a one-line error.
  std::function<std::string()> begin;
  /// How many of these joining prompts' first ones fit with the running.
  std::function<int64_t(const std::vector<int64_t> &lengths)> fitting;
  /// The prefill of joining `slots`; "" or a one-line error.
  std::function<std::string(const std::vector<int64_t> &slots,
                            const std::vector<std::vector<int64_t>> &prompts,
                            StepRows &out)>
      prefill;
  /// One decode step of running `slots`, fed `ids` at `positions`.
  std::function<std::string(const std::vector<int64_t> &slots,
                            const std::vector<int64_t> &ids,
                            const std::vector<int64_t> &positions,
                            StepRows &out)>
      decode;
  /// A finished request's KV goes back to the pools.
  std::function<void(int64_t slot)> release;
  /// KV pool bytes on each device; called only between steps, by the
  /// thread that runs them (and once before the first).
  std::function<std::vector<int64_t>()> kvBytes;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string modelName = "fairkv";
  /// The most requests running at once.
  int64_t maxBatch = 32;
  /// The most prompt tokens (joiners x their longest prompt) one joining
  /// prefill step takes, at least one request (0: no limit); the others
  /// join at the next steps.
  int64_t prefillTokens = 0;
  /// The most tokens a request may generate (the program's KV sizing).
  int64_t maxTokens = 64;
  std::vector<int64_t> eosIds;
  /// tokenizer_config.json's chat template (Jinja), and the special tokens
  /// it refers to; empty: chat completions are refused.
  std::string chatTemplate, bosToken, eosToken;
  /// One stderr line per finished request (--log-level debug).
  bool logRequests = false;
  /// Called once the server listens (e.g. to print where).
  std::function<void(int port)> onListening;
};

/// How many of `n` prompts of `lengths` tokens, from the first on, one
/// prefill step of at most `tokens` prompt tokens takes (rows x their
/// longest prompt, padding included): at least one (of n > 0), all when
/// `tokens` is 0. The offline batch's groups and the server's joiners
/// follow it.
size_t promptsPerPrefillStep(const int64_t *lengths, size_t n, int64_t tokens);

/// Serves until SIGINT or SIGTERM: then it stops taking requests, refuses
/// the queued ones, finishes the running ones, and returns 0; 1 after a
/// one-line error on stderr (the address cannot be bound, the batch cannot
/// start).
int serve(const tokenizer::Tokenizer &tokenizer, const ServerOptions &options,
          const ServerHooks &hooks);

/// Parses "HOST:PORT" (PORT 0: any free port).
bool parseHostPort(const std::string &text, std::string &host, int &port);

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_SERVER_H
