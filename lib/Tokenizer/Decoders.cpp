//===- Decoders.cpp - tokenizer.json decoders -----------------------------===//
//
// ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence,
// each a step of the reference's decode_chain.
//
//===----------------------------------------------------------------------===//

#include "Components.h"

#include "fairkv/Tokenizer/Strings.h"

using namespace fairkv::tokenizer;

namespace {

const char kReplacementChar[] = "\xEF\xBF\xBD";

class ByteLevel : public Decoder {
public:
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    // A token whose characters all come from the byte alphabet stands for
    // those bytes; any other (an added token) for its own UTF-8.
    std::string bytes;
    for (const std::string &t : tokens) {
      if (std::optional<std::string> b = byteLevelDecode(t))
        bytes += *b;
      else
        bytes += t;
    }
    return {utf8Lossy(bytes)};
  }
};

class Replace : public Decoder {
public:
  Replace(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    for (std::string &t : tokens)
      t = replaceAll(t, pattern_, content_);
    return tokens;
  }

private:
  std::string pattern_, content_;
};

class ByteFallback : public Decoder {
public:
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pendingTokens = 0;
    auto flush = [&] {
      if (pendingTokens == 0)
        return;
      if (utf8Lossy(pending) == pending)
        out.push_back(pending);
      else
        for (size_t i = 0; i < pendingTokens; ++i)
          out.push_back(kReplacementChar);
      pending.clear();
      pendingTokens = 0;
    };
    for (std::string &t : tokens) {
      auto hex = [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) != 0;
      };
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
          hex(t[3]) && hex(t[4])) {
        pending += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
        ++pendingTokens;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }
};

class Fuse : public Decoder {
public:
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const std::string &t : tokens)
      all += t;
    return {all};
  }
};

class Strip : public Decoder {
public:
  Strip(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    for (std::string &t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t i = 0; i < start_ && t.compare(begin, content_.size(),
                                                  content_) == 0 &&
                         begin + content_.size() <= end;
           ++i)
        begin += content_.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(),
                                   content_) == 0;
           ++i)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
    return tokens;
  }

private:
  std::string content_;
  size_t start_, stop_;
};

class Metaspace : public Decoder {
public:
  Metaspace(std::string replacement, bool stripFirst)
      : replacement_(std::move(replacement)), stripFirst_(stripFirst) {}
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    // Every replacement becomes a space, except in the first token, where
    // the reference drops them (the prefix it added).
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string &t = tokens[i];
      for (size_t pos = 0; pos < t.size();) {
        if (!replacement_.empty() &&
            t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && stripFirst_))
            out += ' ';
          pos += replacement_.size();
        } else {
          out += t[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

private:
  std::string replacement_;
  bool stripFirst_;
};

class Sequence : public Decoder {
public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  std::vector<std::string>
  decodeChain(std::vector<std::string> tokens) const override {
    for (const auto &p : parts_)
      tokens = p->decodeChain(std::move(tokens));
    return tokens;
  }

private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

} // namespace

Result<std::unique_ptr<Decoder>> fairkv::tokenizer::makeDecoder(const Json &j) {
  if (j.is_null())
    return std::unique_ptr<Decoder>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return makeError("decoder: not an object with a 'type'");
  const std::string type = j["type"];
  if (type == "ByteLevel")
    return std::unique_ptr<Decoder>(new ByteLevel());
  if (type == "Replace") {
    const Json pattern = j.value("pattern", Json());
    if (!pattern.is_object() || !pattern.contains("String") ||
        !pattern["String"].is_string() || !j.value("content", Json()).is_string())
      return makeError("decoder Replace: only literal String patterns are "
                       "supported");
    return std::unique_ptr<Decoder>(new Replace(
        pattern["String"].get<std::string>(), j["content"].get<std::string>()));
  }
  if (type == "ByteFallback")
    return std::unique_ptr<Decoder>(new ByteFallback());
  if (type == "Fuse")
    return std::unique_ptr<Decoder>(new Fuse());
  if (type == "Strip") {
    const Json start = j.value("start", Json(0)), stop = j.value("stop", Json(0));
    if (!j.value("content", Json()).is_string() ||
        !start.is_number_unsigned() || !stop.is_number_unsigned())
      return makeError("decoder Strip: needs a content and counts");
    return std::unique_ptr<Decoder>(new Strip(j["content"].get<std::string>(),
                                              start.get<size_t>(),
                                              stop.get<size_t>()));
  }
  if (type == "Metaspace") {
    bool strip = j.value("add_prefix_space", true);
    if (j.contains("prepend_scheme"))
      strip = j.value("prepend_scheme", std::string()) != "never";
    return std::unique_ptr<Decoder>(new Metaspace(
        j.value("replacement", std::string("\u2581")), strip));
  }
  if (type == "Sequence" && j.value("decoders", Json()).is_array()) {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const Json &part : j["decoders"]) {
      auto p = makeDecoder(part);
      if (!p)
        return makeError(p.error());
      if (*p)
        parts.push_back(std::move(*p));
    }
    return std::unique_ptr<Decoder>(new Sequence(std::move(parts)));
  }
  return makeError("decoder '" + type + "' is not supported");
}
