//===- PreTokenizers.cpp - tokenizer.json pre-tokenisers ------------------===//
//
// ByteLevel (GPT-2's regex and byte alphabet), Split (a regex or a literal
// with the reference's delimiter behaviours), Metaspace, Digits and
// Sequence.
//
//===----------------------------------------------------------------------===//

#include "Components.h"

using namespace fairkv::tokenizer;

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext,
                      Contiguous };

/// Cuts `piece` at `matches` (sorted, non-overlapping byte ranges) the way
/// the reference's NormalizedString::split does, dropping empty parts.
void cut(const Piece &piece,
         const std::vector<std::pair<size_t, size_t>> &matches,
         Behavior behavior, std::vector<Piece> &out) {
  // (begin, end, is-match) over the whole piece.
  std::vector<std::tuple<size_t, size_t, bool>> parts;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b > prev)
      parts.emplace_back(prev, b, false);
    parts.emplace_back(b, e, true);
    prev = e;
  }
  if (prev < piece.text.size())
    parts.emplace_back(prev, piece.text.size(), false);

  std::vector<std::pair<size_t, size_t>> ranges;
  switch (behavior) {
  case Behavior::Isolated:
    for (auto [b, e, m] : parts)
      ranges.emplace_back(b, e);
    break;
  case Behavior::Removed:
    for (auto [b, e, m] : parts)
      if (!m)
        ranges.emplace_back(b, e);
    break;
  case Behavior::Contiguous: {
    bool lastMatch = false;
    for (auto [b, e, m] : parts) {
      if (m && lastMatch)
        ranges.back().second = e;
      else
        ranges.emplace_back(b, e);
      lastMatch = m;
    }
    break;
  }
  case Behavior::MergedWithPrevious: {
    bool lastMatch = false;
    for (auto [b, e, m] : parts) {
      if (m && !lastMatch && !ranges.empty())
        ranges.back().second = e;
      else
        ranges.emplace_back(b, e);
      lastMatch = m;
    }
    break;
  }
  case Behavior::MergedWithNext: {
    bool lastMatch = false;
    for (size_t i = parts.size(); i-- > 0;) {
      auto [b, e, m] = parts[i];
      if (m && !lastMatch && !ranges.empty())
        ranges.back().first = b;
      else
        ranges.emplace_back(b, e);
      lastMatch = m;
    }
    std::reverse(ranges.begin(), ranges.end());
    break;
  }
  }
  for (auto [b, e] : ranges)
    if (e > b)
      out.push_back(Piece{piece.text.substr(b, e - b), piece.offset + b});
}

std::vector<std::pair<size_t, size_t>> literalMatches(std::string_view text,
                                                      const std::string &lit) {
  std::vector<std::pair<size_t, size_t>> matches;
  if (lit.empty())
    return matches;
  for (size_t pos = 0; (pos = text.find(lit, pos)) != std::string::npos;
       pos += lit.size())
    matches.emplace_back(pos, pos + lit.size());
  return matches;
}

const char *const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

class ByteLevel : public PreTokenizer {
public:
  ByteLevel(bool addPrefixSpace, std::shared_ptr<const Regex> regex)
      : addPrefixSpace_(addPrefixSpace), regex_(std::move(regex)) {}
  std::vector<Piece> split(std::vector<Piece> pieces) const override {
    std::vector<Piece> out;
    for (Piece &p : pieces) {
      if (addPrefixSpace_ && (p.text.empty() || p.text[0] != ' '))
        p.text.insert(0, " ");
      std::vector<Piece> words;
      if (regex_)
        cut(p, regex_->findAll(p.text), Behavior::Isolated, words);
      else if (!p.text.empty())
        words.push_back(std::move(p));
      for (Piece &w : words)
        out.push_back(Piece{byteLevelEncode(w.text), w.offset});
    }
    return out;
  }

private:
  bool addPrefixSpace_;
  std::shared_ptr<const Regex> regex_;
};

class Split : public PreTokenizer {
public:
  Split(std::shared_ptr<const Regex> regex, std::string literal,
        Behavior behavior)
      : regex_(std::move(regex)), literal_(std::move(literal)),
        behavior_(behavior) {}
  std::vector<Piece> split(std::vector<Piece> pieces) const override {
    std::vector<Piece> out;
    for (const Piece &p : pieces)
      cut(p, regex_ ? regex_->findAll(p.text) : literalMatches(p.text, literal_),
          behavior_, out);
    return out;
  }

private:
  std::shared_ptr<const Regex> regex_;
  std::string literal_;
  Behavior behavior_;
};

class Metaspace : public PreTokenizer {
public:
  enum class Prepend { Always, First, Never };
  Metaspace(std::string replacement, Prepend prepend, bool splitWords)
      : replacement_(std::move(replacement)), prepend_(prepend),
        split_(splitWords) {}
  std::vector<Piece> split(std::vector<Piece> pieces) const override {
    std::vector<Piece> out;
    for (const Piece &p : pieces) {
      Piece q{std::string(), p.offset};
      for (char c : p.text)
        q.text += c == ' ' ? replacement_ : std::string(1, c);
      bool starts = q.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_ == Prepend::Always ||
                      (prepend_ == Prepend::First && p.offset == 0)))
        q.text.insert(0, replacement_);
      if (split_)
        cut(q, literalMatches(q.text, replacement_), Behavior::MergedWithNext,
            out);
      else if (!q.text.empty())
        out.push_back(std::move(q));
    }
    return out;
  }

private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class Digits : public PreTokenizer {
public:
  explicit Digits(bool individual) : individual_(individual) {}
  std::vector<Piece> split(std::vector<Piece> pieces) const override {
    std::vector<Piece> out;
    for (const Piece &p : pieces) {
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t i = 0; i < p.text.size(); ++i)
        if (p.text[i] >= '0' && p.text[i] <= '9') {
          if (!individual_ && !matches.empty() && matches.back().second == i)
            matches.back().second = i + 1;
          else
            matches.emplace_back(i, i + 1);
        }
      cut(p, matches, Behavior::Isolated, out);
    }
    return out;
  }

private:
  bool individual_;
};

class Sequence : public PreTokenizer {
public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  std::vector<Piece> split(std::vector<Piece> pieces) const override {
    for (const auto &p : parts_)
      pieces = p->split(std::move(pieces));
    return pieces;
  }

private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Result<Behavior> parseBehavior(const Json &j) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed")
    return Behavior::Removed;
  if (b == "Isolated")
    return Behavior::Isolated;
  if (b == "MergedWithPrevious")
    return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext")
    return Behavior::MergedWithNext;
  if (b == "Contiguous")
    return Behavior::Contiguous;
  return makeError("pre_tokenizer Split: unknown behavior '" + b + "'");
}

} // namespace

Result<std::unique_ptr<PreTokenizer>>
fairkv::tokenizer::makePreTokenizer(const Json &j) {
  if (j.is_null())
    return std::unique_ptr<PreTokenizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return makeError("pre_tokenizer: not an object with a 'type'");
  const std::string type = j["type"];
  if (type == "ByteLevel") {
    std::shared_ptr<const Regex> regex;
    if (j.value("use_regex", true)) {
      auto r = Regex::compile(kGpt2Pattern);
      if (!r)
        return makeError("pre_tokenizer ByteLevel: " + r.error());
      regex = *r;
    }
    return std::unique_ptr<PreTokenizer>(
        new ByteLevel(j.value("add_prefix_space", true), regex));
  }
  if (type == "Split") {
    if (j.value("invert", false))
      return makeError("pre_tokenizer Split: invert is not supported");
    Result<Behavior> behavior = parseBehavior(j.value("behavior", Json()));
    if (!behavior)
      return makeError(behavior.error());
    const Json pattern = j.value("pattern", Json());
    if (pattern.is_object() && pattern.contains("Regex") &&
        pattern["Regex"].is_string()) {
      auto r = Regex::compile(pattern["Regex"].get<std::string>());
      if (!r)
        return makeError("pre_tokenizer Split: " + r.error());
      return std::unique_ptr<PreTokenizer>(new Split(*r, "", *behavior));
    }
    if (pattern.is_object() && pattern.contains("String") &&
        pattern["String"].is_string())
      return std::unique_ptr<PreTokenizer>(
          new Split(nullptr, pattern["String"].get<std::string>(), *behavior));
    return makeError("pre_tokenizer Split: pattern must be a Regex or a "
                     "String");
  }
  if (type == "Metaspace") {
    std::string replacement = j.value("replacement", std::string("\u2581"));
    Metaspace::Prepend prepend = Metaspace::Prepend::Always;
    if (j.contains("prepend_scheme")) {
      const std::string s = j.value("prepend_scheme", std::string());
      if (s == "first")
        prepend = Metaspace::Prepend::First;
      else if (s == "never")
        prepend = Metaspace::Prepend::Never;
      else if (s != "always")
        return makeError("pre_tokenizer Metaspace: unknown prepend_scheme '" +
                         s + "'");
    } else if (!j.value("add_prefix_space", true)) {
      prepend = Metaspace::Prepend::Never; // the older spelling
    }
    return std::unique_ptr<PreTokenizer>(
        new Metaspace(replacement, prepend, j.value("split", true)));
  }
  if (type == "Digits")
    return std::unique_ptr<PreTokenizer>(
        new Digits(j.value("individual_digits", false)));
  if (type == "Sequence" && j.value("pretokenizers", Json()).is_array()) {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const Json &part : j["pretokenizers"]) {
      auto p = makePreTokenizer(part);
      if (!p)
        return makeError(p.error());
      if (*p)
        parts.push_back(std::move(*p));
    }
    return std::unique_ptr<PreTokenizer>(new Sequence(std::move(parts)));
  }
  return makeError("pre_tokenizer '" + type + "' is not supported");
}
