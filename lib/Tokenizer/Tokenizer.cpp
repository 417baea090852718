//===- Tokenizer.cpp - The tokenizer.json pipeline ------------------------===//
//
// Encoding, as the reference's encode_single_sequence: the input is split on
// the added tokens that match raw text; the rest is normalised, split on the
// added tokens that match normalised text, pre-tokenised and run through the
// model; the post-processor adds its special tokens. Added tokens match
// leftmost-longest, with their lstrip, rstrip and single_word options.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Tokenizer/Tokenizer.h"

#include "Components.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace fairkv::tokenizer;

namespace fairkv::tokenizer {

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false, lstrip = false, rstrip = false, singleWord = false,
       normalized = false;
};

class Pipeline : public Backend {
public:
  std::vector<int64_t> encode(const std::string &text,
                              bool addSpecialTokens) const override;
  std::string decode(const std::vector<int64_t> &ids,
                     bool skipSpecialTokens) const override;
  int64_t vocabSize() const override;
  std::optional<int64_t> tokenToId(const std::string &token) const override;
  std::optional<std::string> idToToken(int64_t id) const override;
  bool isSpecial(int64_t id) const override;

  std::vector<AddedToken> added;
  std::unordered_map<int64_t, size_t> addedById;
  /// The added tokens by their first byte: the candidates at a position.
  std::array<std::vector<size_t>, 256> addedByFirstByte;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> preTokenizer;
  std::optional<BPEModel> model;
  std::unique_ptr<Decoder> decoder;
  /// The special ids the post-processor puts before and after a sequence.
  std::vector<int64_t> prefix, suffix;

  struct Segment {
    std::string text;
    size_t offset;
    const AddedToken *token; // null: plain text
  };

  /// Splits `text` (at `offset` in the input) on the added tokens whose
  /// `normalized` flag is `normalizedTokens`.
  std::vector<Segment> splitAdded(const std::string &text, size_t offset,
                                  bool normalizedTokens) const;
  void encodeText(const std::string &text, size_t offset,
                  std::vector<int64_t> &ids) const;
};

} // namespace fairkv::tokenizer

namespace {

bool isWordChar(uint32_t c) {
  return c == '_' || (c < 0x80 ? std::isalnum(static_cast<int>(c)) != 0
                               : !isWhitespace(c));
}

/// Where the character before byte `pos` starts.
size_t previousChar(const std::string &s, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
    --start;
  return start;
}

uint32_t charBefore(const std::string &s, size_t pos) {
  return utf8Decode(std::string_view(s).substr(previousChar(s, pos)));
}

} // namespace

std::vector<Pipeline::Segment>
Pipeline::splitAdded(const std::string &text, size_t offset,
                     bool normalizedTokens) const {
  std::vector<Segment> out;
  size_t plainStart = 0, pos = 0;
  auto flushPlain = [&](size_t end) {
    if (end > plainStart)
      out.push_back(Segment{text.substr(plainStart, end - plainStart),
                            offset + plainStart, nullptr});
  };
  while (pos < text.size()) {
    const AddedToken *best = nullptr;
    for (size_t k : addedByFirstByte[static_cast<unsigned char>(text[pos])]) {
      const AddedToken &t = added[k];
      if (t.normalized != normalizedTokens ||
          text.compare(pos, t.content.size(), t.content) != 0)
        continue;
      if (best && best->content.size() >= t.content.size())
        continue;
      if (t.singleWord) {
        size_t end = pos + t.content.size();
        bool startOk = pos == 0 || !isWordChar(charBefore(text, pos));
        bool endOk = end == text.size() ||
                     !isWordChar(utf8Decode(std::string_view(text).substr(end)));
        if (!startOk || !endOk)
          continue;
      }
      best = &t;
    }
    if (!best) {
      pos += utf8Length(static_cast<unsigned char>(text[pos]));
      continue;
    }
    size_t begin = pos, end = pos + best->content.size();
    if (best->lstrip)
      while (begin > plainStart && isWhitespace(charBefore(text, begin)))
        begin = previousChar(text, begin);
    if (best->rstrip)
      while (end < text.size() &&
             isWhitespace(utf8Decode(std::string_view(text).substr(end))))
        end += utf8Length(static_cast<unsigned char>(text[end]));
    flushPlain(begin);
    out.push_back(Segment{best->content, offset + begin, best});
    plainStart = pos = end;
  }
  flushPlain(text.size());
  return out;
}

void Pipeline::encodeText(const std::string &text, size_t offset,
                          std::vector<int64_t> &ids) const {
  for (const Segment &raw : splitAdded(text, offset, false)) {
    if (raw.token) {
      ids.push_back(raw.token->id);
      continue;
    }
    std::string normalized =
        normalizer ? normalizer->normalize(raw.text) : raw.text;
    for (const Segment &seg : splitAdded(normalized, raw.offset, true)) {
      if (seg.token) {
        ids.push_back(seg.token->id);
        continue;
      }
      std::vector<Piece> words = {Piece{seg.text, seg.offset}};
      if (preTokenizer)
        words = preTokenizer->split(std::move(words));
      for (const Piece &w : words)
        for (int64_t id : model->tokenize(w.text))
          ids.push_back(id);
    }
  }
}

namespace {

/// The special ids a post-processor adds around one sequence.
Status readPostProcessor(const Json &j, const Json &addedTokens,
                         std::vector<int64_t> &prefix,
                         std::vector<int64_t> &suffix) {
  if (j.is_null())
    return Status::ok();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return makeError("post_processor: not an object with a 'type'");
  const std::string type = j["type"];
  if (type == "ByteLevel")
    return Status::ok(); // offsets only
  if (type == "Sequence" && j.value("processors", Json()).is_array()) {
    for (const Json &p : j["processors"])
      if (Status s = readPostProcessor(p, addedTokens, prefix, suffix); !s)
        return s;
    return Status::ok();
  }
  if (type == "TemplateProcessing" && j.value("single", Json()).is_array()) {
    const Json specials = j.value("special_tokens", Json::object());
    bool afterSequence = false;
    for (const Json &item : j["single"]) {
      if (item.contains("Sequence")) {
        afterSequence = true;
        continue;
      }
      const Json token = item.value("SpecialToken", Json());
      const std::string name = token.value("id", std::string());
      const Json entry = specials.value(name, Json());
      if (!entry.is_object() || !entry.value("ids", Json()).is_array())
        return makeError("post_processor: special token '" + name +
                         "' has no ids");
      for (const Json &id : entry["ids"]) {
        if (!id.is_number_integer())
          return makeError("post_processor: special token '" + name +
                           "' has a non-integer id");
        (afterSequence ? suffix : prefix).push_back(id.get<int64_t>());
      }
    }
    return Status::ok();
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const Json cls = j.value("cls", Json()), sep = j.value("sep", Json());
    if (!cls.is_array() || cls.size() != 2 || !cls[1].is_number_integer() ||
        !sep.is_array() || sep.size() != 2 || !sep[1].is_number_integer())
      return makeError("post_processor " + type + ": needs cls and sep");
    prefix.push_back(cls[1].get<int64_t>());
    suffix.push_back(sep[1].get<int64_t>());
    return Status::ok();
  }
  return makeError("post_processor '" + type + "' is not supported");
}

} // namespace

Result<Tokenizer> Tokenizer::fromJson(const std::string &text) {
  // A field of the wrong JSON type throws from the accessors: one line too.
  try {
    return parse(text);
  } catch (const std::exception &e) {
    return makeError(std::string("malformed tokenizer.json: ") + e.what());
  }
}

Result<Tokenizer> Tokenizer::parse(const std::string &text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return makeError("not a tokenizer.json: not a JSON object");
  if (j.contains("truncation") && !j["truncation"].is_null())
    return makeError("truncation is not supported; it would cut prompts "
                     "silently");
  auto pipeline = std::make_unique<Pipeline>();
  const Json model = j.value("model", Json());
  Result<BPEModel> bpe = BPEModel::fromJson(model);
  if (!bpe)
    return makeError(bpe.error());
  pipeline->model = std::move(*bpe);

  const Json added = j.value("added_tokens", Json::array());
  if (!added.is_array())
    return makeError("added_tokens must be a list");
  for (const Json &a : added) {
    if (!a.is_object() || !a.value("content", Json()).is_string() ||
        !a.value("id", Json()).is_number_integer() || a["id"].get<int64_t>() < 0)
      return makeError("added_tokens: every entry needs a content and an id");
    AddedToken t;
    t.content = a["content"].get<std::string>();
    t.id = a["id"].get<int64_t>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.singleWord = a.value("single_word", false);
    t.normalized = a.value("normalized", !t.special);
    pipeline->addedById[t.id] = pipeline->added.size();
    if (!t.content.empty())
      pipeline->addedByFirstByte[static_cast<unsigned char>(t.content[0])]
          .push_back(pipeline->added.size());
    pipeline->added.push_back(std::move(t));
  }
  auto normalizer = makeNormalizer(j.value("normalizer", Json()));
  if (!normalizer)
    return makeError(normalizer.error());
  pipeline->normalizer = std::move(*normalizer);
  auto pre = makePreTokenizer(j.value("pre_tokenizer", Json()));
  if (!pre)
    return makeError(pre.error());
  pipeline->preTokenizer = std::move(*pre);
  auto decoder = makeDecoder(j.value("decoder", Json()));
  if (!decoder)
    return makeError(decoder.error());
  pipeline->decoder = std::move(*decoder);
  if (Status s = readPostProcessor(j.value("post_processor", Json()), added,
                                   pipeline->prefix, pipeline->suffix);
      !s)
    return makeError(s.error());
  return Tokenizer(std::unique_ptr<Backend>(std::move(pipeline)));
}

Result<Tokenizer> Tokenizer::fromFile(const std::string &path) {
  std::filesystem::path file(path);
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    if (!std::filesystem::exists(file / "tokenizer.json", ec) &&
        std::filesystem::exists(file / "tokenizer.model", ec))
      return readSentencePiece((file / "tokenizer.model").string());
    file /= "tokenizer.json";
  } else if (file.extension() == ".model") {
    return readSentencePiece(path);
  }
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return makeError("cannot open '" + file.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  Result<Tokenizer> t = fromJson(text.str());
  if (!t)
    return makeError(file.string() + ": " + t.error());
  return t;
}

Tokenizer::Tokenizer(std::unique_ptr<Backend> backend)
    : backend_(std::move(backend)) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int64_t> Pipeline::encode(const std::string &text,
                                       bool addSpecialTokens) const {
  std::vector<int64_t> ids;
  if (addSpecialTokens)
    ids = prefix;
  encodeText(utf8Lossy(text), 0, ids);
  if (addSpecialTokens)
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  return ids;
}

std::string Pipeline::decode(const std::vector<int64_t> &ids,
                              bool skipSpecialTokens) const {
  std::vector<std::string> tokens;
  for (int64_t id : ids) {
    if (auto it = addedById.find(id);
        it != addedById.end()) {
      const AddedToken &t = added[it->second];
      if (!(skipSpecialTokens && t.special))
        tokens.push_back(t.content);
      continue;
    }
    if (const std::string *token = model->token(id))
      tokens.push_back(*token);
  }
  if (!decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i)
      joined += (i ? " " : "") + tokens[i];
    return joined;
  }
  std::string out;
  for (const std::string &t : decoder->decodeChain(std::move(tokens)))
    out += t;
  return out;
}

int64_t Pipeline::vocabSize() const {
  int64_t size = 0;
  for (const auto &[token, id] : model->vocab())
    size = std::max(size, id + 1);
  for (const AddedToken &t : added)
    size = std::max(size, t.id + 1);
  return size;
}

std::optional<int64_t> Pipeline::tokenToId(const std::string &token) const {
  for (const AddedToken &t : added)
    if (t.content == token)
      return t.id;
  auto it = model->vocab().find(token);
  if (it == model->vocab().end())
    return std::nullopt;
  return it->second;
}

std::optional<std::string> Pipeline::idToToken(int64_t id) const {
  if (auto it = addedById.find(id); it != addedById.end())
    return added[it->second].content;
  if (const std::string *t = model->token(id))
    return *t;
  return std::nullopt;
}

bool Pipeline::isSpecial(int64_t id) const {
  auto it = addedById.find(id);
  return it != addedById.end() &&
         added[it->second].special;
}

std::vector<int64_t> Tokenizer::encode(const std::string &text,
                                       bool addSpecialTokens) const {
  return backend_->encode(text, addSpecialTokens);
}
std::string Tokenizer::decode(const std::vector<int64_t> &ids,
                              bool skipSpecialTokens) const {
  return backend_->decode(ids, skipSpecialTokens);
}
int64_t Tokenizer::vocabSize() const { return backend_->vocabSize(); }
std::optional<int64_t> Tokenizer::tokenToId(const std::string &token) const {
  return backend_->tokenToId(token);
}
std::optional<std::string> Tokenizer::idToToken(int64_t id) const {
  return backend_->idToToken(id);
}
bool Tokenizer::isSpecial(int64_t id) const { return backend_->isSpecial(id); }
