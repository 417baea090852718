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

std::string TextStream::push(int64_t id, bool *stopped) {
  *stopped = false;
  if (stopped_)
    return "";
  ids_.push_back(id);
  std::string full = tokenizer_.decode(ids_, /*skipSpecialTokens=*/true);
  if (full.compare(0, sent_.size(), sent_) != 0)
    return ""; // the decoding changed what was sent: hold on until stable
  // The earliest stop string. It cannot start inside what was sent: a tail
  // that could begin one is held back below.
  size_t stopAt = std::string::npos;
  for (const std::string &s : stops_)
    stopAt = std::min(stopAt, full.find(s));
  if (stopAt != std::string::npos) {
    stopped_ = *stopped = true;
    std::string out = stopAt > sent_.size()
                          ? full.substr(sent_.size(), stopAt - sent_.size())
                          : "";
    sent_ += out;
    return out;
  }
  if (endsIncomplete(full))
    return "";
  // Hold back the longest tail that could begin a stop string.
  size_t hold = 0;
  for (const std::string &s : stops_)
    for (size_t n = std::min(s.size() - 1, full.size()); n > hold; --n)
      if (full.compare(full.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  size_t safe = full.size() - hold;
  if (safe <= sent_.size())
    return "";
  std::string out = full.substr(sent_.size(), safe - sent_.size());
  sent_ += out;
  return out;
}

std::string TextStream::finish() {
  if (stopped_)
    return "";
  std::string full = tokenizer_.decode(ids_, /*skipSpecialTokens=*/true);
  if (full.size() <= sent_.size() ||
      full.compare(0, sent_.size(), sent_) != 0)
    return "";
  std::string out = full.substr(sent_.size());
  sent_ += out;
  return out;
}
