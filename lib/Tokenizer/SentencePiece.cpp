//===- SentencePiece.cpp - tokenizer.model through the sentencepiece library -===//
//
// A model folder that ships only a SentencePiece model (older Llama and
// Mistral checkpoints) is encoded and decoded by the sentencepiece library
// itself; like Llama's tokenizer, encoding with special tokens prepends the
// model's BOS. The control pieces (<s>, </s>) are its special tokens.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Tokenizer/Tokenizer.h"

#include <sentencepiece_processor.h>

using namespace fairkv::tokenizer;
using fairkv::placement::makeError;

namespace {

class SentencePieceBackend : public Backend {
public:
  sentencepiece::SentencePieceProcessor sp;

  std::vector<int64_t> encode(const std::string &text,
                              bool addSpecialTokens) const override {
    std::vector<int> pieces;
    // A failure here is invalid input the library refuses: no ids for it.
    (void)sp.Encode(text, &pieces);
    std::vector<int64_t> ids;
    if (addSpecialTokens && sp.bos_id() >= 0)
      ids.push_back(sp.bos_id());
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    return ids;
  }
  std::string decode(const std::vector<int64_t> &ids,
                     bool skipSpecialTokens) const override {
    std::vector<int> pieces;
    for (int64_t id : ids)
      if (id >= 0 && id < sp.GetPieceSize() &&
          !(skipSpecialTokens && sp.IsControl(static_cast<int>(id))))
        pieces.push_back(static_cast<int>(id));
    std::string text;
    (void)sp.Decode(pieces, &text);
    return text;
  }
  int64_t vocabSize() const override { return sp.GetPieceSize(); }
  std::optional<int64_t> tokenToId(const std::string &token) const override {
    const int id = sp.PieceToId(token);
    if (id == sp.unk_id() && token != sp.IdToPiece(sp.unk_id()))
      return std::nullopt;
    return id;
  }
  std::optional<std::string> idToToken(int64_t id) const override {
    if (id < 0 || id >= sp.GetPieceSize())
      return std::nullopt;
    return sp.IdToPiece(static_cast<int>(id));
  }
  bool isSpecial(int64_t id) const override {
    return id >= 0 && id < sp.GetPieceSize() &&
           sp.IsControl(static_cast<int>(id));
  }
};

} // namespace

Result<Tokenizer> fairkv::tokenizer::readSentencePiece(const std::string &path) {
  auto backend = std::make_unique<SentencePieceBackend>();
  const auto status = backend->sp.Load(path);
  if (!status.ok())
    return makeError(path + ": not a SentencePiece model (" +
                     std::string(status.message()) + ")");
  return Tokenizer(std::unique_ptr<Backend>(std::move(backend)));
}
