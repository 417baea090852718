//===- TokenizerFuzzer.cpp - tokenizer.json and the text it encodes -------===//
//
// Input: a tokenizer.json, a NUL byte, then text. The file is read or
// refused in one line; a tokenizer read encodes any text (invalid UTF-8
// included) into ids of its vocabulary, and decodes them into valid UTF-8.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Tokenizer/Tokenizer.h"

#include <cstdint>
#include <string>

namespace {

bool validUtf8(const std::string &s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = s[i];
    size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size())
      return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
        return false;
    i += n;
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string input(reinterpret_cast<const char *>(data), size);
  const size_t split = input.find('\0');
  const std::string json = input.substr(0, split);
  const std::string text =
      split == std::string::npos ? std::string() : input.substr(split + 1);
  auto tok = fairkv::tokenizer::Tokenizer::fromJson(json);
  if (!tok)
    return 0;
  const int64_t vocab = tok->vocabSize();
  for (bool special : {true, false}) {
    std::vector<int64_t> ids = tok->encode(text, special);
    for (int64_t id : ids)
      if (id < 0 || id >= vocab)
        __builtin_trap(); // an id outside the vocabulary
    if (!validUtf8(tok->decode(ids, false)) || !validUtf8(tok->decode(ids, true)))
      __builtin_trap(); // decoding must give valid UTF-8
  }
  return 0;
}
