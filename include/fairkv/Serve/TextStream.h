//===- TextStream.h - Generated ids to text, piece by piece -----*- C++ -*-===//
//
// Turns a request's generated ids into the text to send as they arrive: the
// whole output is decoded again at each token (so merges across tokens and
// multi-byte characters come out as the tokenizer decodes them), text that
// ends in an incomplete character or could be the start of a stop string is
// held back, and a stop string ends the output before it (OpenAI's and
// vLLM's rule: the stop string itself is not returned).
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
  const tokenizer::Tokenizer &tokenizer_;
  std::vector<std::string> stops_;
  std::vector<int64_t> ids_;
  std::string sent_;
  bool stopped_ = false;
};

} // namespace fairkv::serve

#endif // FAIRKV_SERVE_TEXTSTREAM_H
