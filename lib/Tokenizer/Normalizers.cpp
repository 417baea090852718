//===- Normalizers.cpp - tokenizer.json normalisers -----------------------===//
//
// NFC, NFD, NFKC, NFKD (utf8proc), Lowercase, Prepend, Replace, Strip and
// Sequence, each as the reference defines it.
//
//===----------------------------------------------------------------------===//

#include "Components.h"

#include "fairkv/Tokenizer/Strings.h"

#include <utf8proc.h>

#include <cstdlib>

using namespace fairkv::tokenizer;

namespace {

class UnicodeForm : public Normalizer {
public:
  explicit UnicodeForm(int options) : options_(options) {}
  std::string normalize(std::string text) const override {
    utf8proc_uint8_t *out = nullptr;
    utf8proc_ssize_t n = utf8proc_map(
        reinterpret_cast<const utf8proc_uint8_t *>(text.data()),
        static_cast<utf8proc_ssize_t>(text.size()), &out,
        static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (n < 0)
      return text; // only on invalid UTF-8, which the input never is
    std::string result(reinterpret_cast<char *>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
  }

private:
  int options_;
};

class Lowercase : public Normalizer {
public:
  std::string normalize(std::string text) const override {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      size_t len = utf8Length(static_cast<unsigned char>(text[i]));
      out += utf8Encode(static_cast<uint32_t>(utf8proc_tolower(
          static_cast<utf8proc_int32_t>(utf8Decode(text.substr(i, len))))));
      i += len;
    }
    return out;
  }
};

class Prepend : public Normalizer {
public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string text) const override {
    // The reference prepends to non-empty text only.
    return text.empty() ? text : prefix_ + text;
  }

private:
  std::string prefix_;
};

class Replace : public Normalizer {
public:
  Replace(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    return replaceAll(text, pattern_, content_);
  }

private:
  std::string pattern_, content_;
};

class Strip : public Normalizer {
public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    size_t begin = 0, end = text.size();
    while (left_ && begin < end) {
      size_t len = utf8Length(static_cast<unsigned char>(text[begin]));
      if (!isWhitespace(utf8Decode(std::string_view(text).substr(begin, len))))
        break;
      begin += len;
    }
    while (right_ && end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
        --start;
      if (!isWhitespace(utf8Decode(std::string_view(text).substr(start))))
        break;
      end = start;
    }
    return text.substr(begin, end - begin);
  }

private:
  bool left_, right_;
};

class Sequence : public Normalizer {
public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto &p : parts_)
      text = p->normalize(std::move(text));
    return text;
  }

private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

/// A Replace pattern: {"String": s} (a Regex pattern is refused).
Result<std::string> literalPattern(const Json &j, const std::string &what) {
  if (j.is_object() && j.contains("String") && j["String"].is_string())
    return j["String"].get<std::string>();
  return makeError(what + ": only literal String patterns are supported");
}

} // namespace

Result<std::unique_ptr<Normalizer>>
fairkv::tokenizer::makeNormalizer(const Json &j) {
  if (j.is_null())
    return std::unique_ptr<Normalizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return makeError("normalizer: not an object with a 'type'");
  const std::string type = j["type"];
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(new UnicodeForm(UTF8PROC_COMPOSE));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(new UnicodeForm(UTF8PROC_DECOMPOSE));
  if (type == "NFKC")
    return std::unique_ptr<Normalizer>(
        new UnicodeForm(UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  if (type == "NFKD")
    return std::unique_ptr<Normalizer>(
        new UnicodeForm(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  if (type == "Lowercase")
    return std::unique_ptr<Normalizer>(new Lowercase());
  if (type == "Prepend" && j.value("prepend", Json()).is_string())
    return std::unique_ptr<Normalizer>(
        new Prepend(j["prepend"].get<std::string>()));
  if (type == "Replace" && j.value("content", Json()).is_string()) {
    Result<std::string> pattern =
        literalPattern(j.value("pattern", Json()), "normalizer Replace");
    if (!pattern)
      return makeError(pattern.error());
    return std::unique_ptr<Normalizer>(
        new Replace(*pattern, j["content"].get<std::string>()));
  }
  if (type == "Strip")
    return std::unique_ptr<Normalizer>(new Strip(
        j.value("strip_left", true), j.value("strip_right", true)));
  if (type == "Sequence" && j.value("normalizers", Json()).is_array()) {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const Json &part : j["normalizers"]) {
      Result<std::unique_ptr<Normalizer>> p = makeNormalizer(part);
      if (!p)
        return makeError(p.error());
      if (*p)
        parts.push_back(std::move(*p));
    }
    return std::unique_ptr<Normalizer>(new Sequence(std::move(parts)));
  }
  return makeError("normalizer '" + type + "' is not supported");
}
