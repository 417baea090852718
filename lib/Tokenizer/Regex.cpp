//===- Regex.cpp - PCRE2 patterns for the split pre-tokenisers ------------===//
//
// The reference compiles its patterns with Oniguruma; the patterns real
// tokenizers use (GPT-2's, Llama-3's, Qwen2's) mean the same in PCRE2 with
// UTF and Unicode properties on: \s, \p{L}, \p{N}, (?i:...), (?!...).
//
//===----------------------------------------------------------------------===//

#include "Components.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

using namespace fairkv::tokenizer;

Result<std::shared_ptr<const Regex>>
fairkv::tokenizer::Regex::compile(const std::string &pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return makeError("regex at offset " + std::to_string(offset) + ": " +
                     reinterpret_cast<const char *>(message));
  }
  // JIT when the library has it; the interpreter otherwise.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  std::shared_ptr<Regex> regex(new Regex());
  regex->code_ = code;
  return std::shared_ptr<const Regex>(std::move(regex));
}

fairkv::tokenizer::Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code *>(code_));
}

std::vector<std::pair<size_t, size_t>>
fairkv::tokenizer::Regex::findAll(std::string_view text) const {
  auto *code = static_cast<pcre2_code *>(code_);
  pcre2_match_data *data = pcre2_match_data_create_from_pattern(code, nullptr);
  std::vector<std::pair<size_t, size_t>> matches;
  size_t start = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()),
                         text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc < 0)
      break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(data);
    size_t begin = ov[0], end = ov[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      start = end;
    } else {
      // An empty match splits nothing: move on by one character.
      if (begin >= text.size())
        break;
      start = begin + utf8Length(static_cast<unsigned char>(text[begin]));
    }
  }
  pcre2_match_data_free(data);
  return matches;
}
