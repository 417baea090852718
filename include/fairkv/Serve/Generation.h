//===- Generation.h - One request's decoding and what ends it ---*- C++ -*-===//
//
// The rule every driver follows for a request (the offline program and the
// server alike): sample its next token; it ends at an end-of-sequence id
// (counted, not shown), at a stop string (the text ending before it), or at
// its token limit.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_SERVE_GENERATION_H
#define FAIRKV_SERVE_GENERATION_H

#include "fairkv/Serve/Sampler.h"
#include "fairkv/Serve/TextStream.h"

#include <optional>
#include <string>
#include <vector>

namespace fairkv::serve {

class Generation {
public:
  /// Text is streamed only with a tokenizer. `eos` must outlive this.
  Generation(const SamplingParams &params, uint64_t stream,
             const tokenizer::Tokenizer *tokenizer,
             std::vector<std::string> stops, const std::vector<int64_t> &eos,
             int64_t maxTokens);

  /// Samples the token after `logits` (the device's greedy choice
  /// `argmax`), counts it and, unless it ends the request, streams it; the
  /// new text safe to send goes to `*delta`. Call it only while !done().
  int64_t next(const float *logits, int64_t vocab, int64_t argmax,
               std::string *delta);
  bool done() const { return !reason_.empty(); }
  /// "stop", "length", or what end() was given; empty while running.
  const std::string &reason() const { return reason_; }
  /// Ends the request (e.g. "cancelled"); returns the text held back.
  std::string end(const std::string &reason);
  /// The tokens generated, the one that ended the request included.
  const std::vector<int64_t> &tokens() const { return tokens_; }
  /// All the text sent so far (with a tokenizer).
  std::string text() const { return stream_ ? stream_->text() : ""; }

private:
  Sampler sampler_;
  std::optional<TextStream> stream_;
  const std::vector<int64_t> &eos_;
  int64_t maxTokens_;
  std::vector<int64_t> tokens_;
  std::string reason_;
};

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_GENERATION_H
