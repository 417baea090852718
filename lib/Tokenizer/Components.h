//===- Components.h - The stages of a tokenizer.json pipeline ---*- C++ -*-===//
//
// One class per stage of the Hugging Face pipeline, each built from its JSON
// object and refusing, in one line, options it does not implement.
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_LIB_TOKENIZER_COMPONENTS_H
#define FAIRKV_LIB_TOKENIZER_COMPONENTS_H

#include "fairkv/Tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fairkv::tokenizer {

using placement::makeError;
using Json = nlohmann::json;

/// A piece of the input on its way to the model: its text, and the byte
/// offset in the original input where it starts (Metaspace's "first"
/// scheme prepends only at offset 0).
struct Piece {
  std::string text;
  size_t offset = 0;
};

class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  /// Splits every piece further, in order; empty pieces are dropped.
  virtual std::vector<Piece> split(std::vector<Piece> pieces) const = 0;
};

class Decoder {
public:
  virtual ~Decoder() = default;
  /// The reference's decode_chain: tokens in, tokens out; the caller joins.
  virtual std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const = 0;
};

/// A null JSON value gives a null stage (the identity).
Result<std::unique_ptr<Normalizer>> makeNormalizer(const Json &j);
Result<std::unique_ptr<PreTokenizer>> makePreTokenizer(const Json &j);
Result<std::unique_ptr<Decoder>> makeDecoder(const Json &j);

/// The BPE model: vocabulary, ranked merges, unknown and byte fallback.
class BPEModel {
public:
  static Result<BPEModel> fromJson(const Json &j);

  std::vector<int64_t> tokenize(std::string_view word) const;
  const std::unordered_map<std::string, int64_t> &vocab() const {
    return vocab_;
  }
  const std::string *token(int64_t id) const;

private:
  struct Merge {
    int rank;
    int64_t result;
  };
  static uint64_t pairKey(int64_t a, int64_t b) {
    return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
  }
  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> tokens_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int64_t> unk_;
  bool fuseUnk_ = false;
  bool byteFallback_ = false;
  bool ignoreMerges_ = false;
};

/// A compiled PCRE2 pattern (UTF, Unicode properties), as the reference's
/// Oniguruma patterns are written.
class Regex {
public:
  static Result<std::shared_ptr<const Regex>> compile(const std::string &pattern);
  ~Regex();
  /// Byte ranges of the successive non-overlapping matches in `text`.
  std::vector<std::pair<size_t, size_t>> findAll(std::string_view text) const;

private:
  Regex() = default;
  void *code_ = nullptr;
};

// Unicode helpers.

/// The byte length of the UTF-8 character that starts with `lead` (1 for a
/// byte that starts none).
size_t utf8Length(unsigned char lead);
/// `bytes` with every ill-formed sequence replaced by U+FFFD, as Rust's
/// String::from_utf8_lossy does (one per maximal ill-formed subpart).
std::string utf8Lossy(std::string_view bytes);
/// The code point of the valid UTF-8 character at the start of `s`.
uint32_t utf8Decode(std::string_view s);
std::string utf8Encode(uint32_t codepoint);
/// Unicode White_Space.
bool isWhitespace(uint32_t codepoint);
/// GPT-2's bytes_to_unicode: every byte as a printable character.
std::string byteLevelEncode(std::string_view bytes);
/// The bytes behind a byte-level token, or nothing when a character of it
/// is not one of the 256.
std::optional<std::string> byteLevelDecode(std::string_view token);

} // namespace fairkv::tokenizer

#endif // FAIRKV_LIB_TOKENIZER_COMPONENTS_H
