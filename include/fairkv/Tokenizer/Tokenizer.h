//===- Tokenizer.h - Hugging Face tokenizer.json tokenizers -----*- C++ -*-===//
//
// Reads a model's `tokenizer.json` (the Hugging Face `tokenizers` format) and
// encodes and decodes as that package does: added and special tokens split
// first, then the normaliser, the pre-tokeniser, the BPE model and the
// post-processor's special tokens; decoding runs the decoder chain. Covers
// the layouts real models ship: byte-level BPE (Llama-3, Qwen2, GPT-2) and
// SentencePiece-style BPE with byte fallback (Llama-2, Mistral). A component
// outside them is refused in one line when the file is read, never
// approximated. A folder with only a `tokenizer.model` is read by the
// sentencepiece library itself (a BOS prepended, as Llama's tokenizer does).
//
//===----------------------------------------------------------------------===//

#ifndef FAIRKV_TOKENIZER_TOKENIZER_H
#define FAIRKV_TOKENIZER_TOKENIZER_H

#include "fairkv/Placement/Result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fairkv::tokenizer {

using placement::Result;
using placement::Status;

/// What a tokenizer file becomes: tokenizer.json's pipeline, or a
/// SentencePiece model.
class Backend {
public:
  virtual ~Backend() = default;
  virtual std::vector<int64_t> encode(const std::string &text,
                                      bool addSpecialTokens) const = 0;
  virtual std::string decode(const std::vector<int64_t> &ids,
                             bool skipSpecialTokens) const = 0;
  virtual int64_t vocabSize() const = 0;
  virtual std::optional<int64_t> tokenToId(const std::string &token) const = 0;
  virtual std::optional<std::string> idToToken(int64_t id) const = 0;
  virtual bool isSpecial(int64_t id) const = 0;
};

class Tokenizer {
public:
  /// Reads `path`: a tokenizer.json or a tokenizer.model, or a model folder
  /// holding one (tokenizer.json first).
  static Result<Tokenizer> fromFile(const std::string &path);
  /// Parses the text of a tokenizer.json.
  static Result<Tokenizer> fromJson(const std::string &json);

  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

  /// The ids of `text`, with the post-processor's special tokens (a BOS)
  /// when `addSpecialTokens`.
  std::vector<int64_t> encode(const std::string &text,
                              bool addSpecialTokens = true) const;
  /// The text of `ids` (UTF-8; invalid byte sequences become U+FFFD), without
  /// special tokens when `skipSpecialTokens`. Ids outside the vocabulary are
  /// skipped, as the reference does.
  std::string decode(const std::vector<int64_t> &ids,
                     bool skipSpecialTokens = false) const;

  /// The largest id plus one, over the model's and the added tokens.
  int64_t vocabSize() const;
  std::optional<int64_t> tokenToId(const std::string &token) const;
  std::optional<std::string> idToToken(int64_t id) const;
  bool isSpecial(int64_t id) const;

  explicit Tokenizer(std::unique_ptr<Backend> backend);

private:
  static Result<Tokenizer> parse(const std::string &json);
  std::unique_ptr<Backend> backend_;
};

/// A SentencePiece model file's tokenizer (the sentencepiece library).
Result<Tokenizer> readSentencePiece(const std::string &path);

} // namespace fairkv::tokenizer

#endif // FAIRKV_TOKENIZER_TOKENIZER_H
