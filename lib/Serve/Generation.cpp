//===- Generation.cpp - One request's decoding and what ends it -----------===//

#include "fairkv/Serve/Generation.h"

#include <algorithm>

using namespace fairkv::serve;

Generation::Generation(const SamplingParams &params, uint64_t stream,
                       const tokenizer::Tokenizer *tokenizer,
                       std::vector<std::string> stops,
                       const std::vector<int64_t> &eos, int64_t maxTokens)
    : sampler_(params, stream), eos_(eos), maxTokens_(maxTokens) {
  if (tokenizer)
    stream_.emplace(*tokenizer, std::move(stops));
}

int64_t Generation::next(const float *logits, int64_t vocab, int64_t argmax,
                         std::string *delta) {
  const int64_t token = sampler_.next(logits, vocab, argmax);
  tokens_.push_back(token);
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) {
    *delta = end("stop");
    return token;
  }
  bool stopped = false;
  *delta = stream_ ? stream_->push(token, &stopped) : std::string();
  if (stopped)
    reason_ = "stop";
  else if (static_cast<int64_t>(tokens_.size()) >= maxTokens_)
    *delta += end("length");
  return token;
}

std::string Generation::end(const std::string &reason) {
  reason_ = reason;
  return stream_ ? stream_->finish() : std::string();
}
