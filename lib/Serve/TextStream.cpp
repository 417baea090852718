//===- TextStream.cpp - Incremental detokenisation with stop strings ------===//

#include "fairkv/Serve/TextStream.h"

using namespace fairkv::serve;

TextStream::TextStream(const tokenizer::Tokenizer &tokenizer,
                       std::vector<std::string> stops)
    : tokenizer_(tokenizer) {
  for (std::string &s : stops)
    if (!s.empty())
      stops_.push_back(std::move(s));
}

namespace {

/// Whether `text` ends in U+FFFD: an incomplete character the next token
/// may complete.
bool endsIncomplete(const std::string &text) {
  return text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

} // namespace

std::string TextStream::pendingText(bool *complete) const {
  auto decode = [&](size_t end) {
    return tokenizer_.decode(
        std::vector<int64_t>(ids_.begin() + prefix_, ids_.begin() + end),
        /*skipSpecialTokens=*/true);
  };
  const std::string before = decode(read_), after = decode(ids_.size());
  *complete = !endsIncomplete(after);
  return after.size() > before.size() ? after.substr(before.size()) : "";
}

void TextStream::take(const std::string &piece) {
  text_ += piece;
  prefix_ = read_;
  read_ = ids_.size();
}

std::string TextStream::push(int64_t id, bool *stopped) {
  *stopped = false;
  if (stopped_)
    return "";
  ids_.push_back(id);
  bool complete = false;
  std::string piece = pendingText(&complete);
  if (piece.empty() || !complete)
    return "";
  take(piece);
  // The earliest stop string. It cannot start inside what was sent: a tail
  // that could begin one is held back below.
  size_t stopAt = std::string::npos;
  for (const std::string &s : stops_)
    stopAt = std::min(stopAt, text_.find(s, sent_.size()));
  if (stopAt != std::string::npos) {
    stopped_ = *stopped = true;
    std::string out = text_.substr(sent_.size(), stopAt - sent_.size());
    sent_ += out;
    return out;
  }
  // Hold back the longest tail that could begin a stop string.
  size_t hold = 0;
  for (const std::string &s : stops_)
    for (size_t n = std::min(s.size() - 1, text_.size() - sent_.size());
         n > hold; --n)
      if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  const size_t safe = text_.size() - hold;
  if (safe <= sent_.size())
    return "";
  std::string out = text_.substr(sent_.size(), safe - sent_.size());
  sent_ += out;
  return out;
}

std::string TextStream::finish() {
  if (stopped_)
    return "";
  // Tokens that never completed a character still decode to something
  // (U+FFFD, as the tokenizer writes it).
  bool complete = false;
  if (read_ < ids_.size())
    take(pendingText(&complete));
  std::string out = text_.substr(sent_.size());
  sent_ += out;
  return out;
}
