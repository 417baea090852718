//===- TextStream.h - Generated ids to text, piece by piece -----*- C++ -*-===//
//
// Turns a request's generated ids into the text to send as they arrive.
// Each token's text is the difference between decoding the last few tokens
// with it and without it (vLLM's and transformers' incremental rule: a
// decoder that treats the first token of what it decodes differently, such
// as sentencepiece's leading-space strip, does so in both, and the cost of
// a token does not grow with the output). Text that ends in an incomplete
// character waits for the tokens that complete it; text that could be the
// start of a stop string is held back, and a stop string ends the output
// before it (OpenAI's and vLLM's rule: the stop string itself is not
// returned).
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_SERVE_TEXTSTREAM_H
#define FAIRKV_SERVE_TEXTSTREAM_H

#include "fairkv/Tokenizer/Tokenizer.h"

#include <string>
#include <vector>

namespace fairkv::serve {

class TextStream {
public:
  TextStream(const tokenizer::Tokenizer &tokenizer,
             std::vector<std::string> stops);
  /// Adds `id`; returns the new text that is safe to send. Sets `*stopped`
  /// when a stop string appeared (the text returned ends before it).
  std::string push(int64_t id, bool *stopped);
  /// The text held back, at the end of the request.
  std::string finish();
  /// All the text sent so far.
  const std::string &text() const { return sent_; }

private:
  /// What ids_[read_, end) add to the text, and whether it ends in a whole
  /// character.
  std::string pendingText(bool *complete) const;
  /// Appends `piece` (the tokens after read_) to the text.
  void take(const std::string &piece);
  const tokenizer::Tokenizer &tokenizer_;
  std::vector<std::string> stops_;
  std::vector<int64_t> ids_;
  /// ids_[prefix_, read_) decode to the text just before the tokens not yet
  /// turned into text, ids_[read_, end).
  size_t prefix_ = 0, read_ = 0;
  /// The text of ids_[0, read_), and the part of it sent.
  std::string text_, sent_;
  bool stopped_ = false;
};

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_TEXTSTREAM_H
