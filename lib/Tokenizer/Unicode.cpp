//===- Unicode.cpp - UTF-8, whitespace and GPT-2's byte alphabet ----------===//

#include "Components.h"

#include "fairkv/Tokenizer/Strings.h"

#include <array>

using namespace fairkv::tokenizer;

std::string fairkv::tokenizer::replaceAll(std::string_view text,
                                          std::string_view from,
                                          std::string_view to) {
  if (from.empty())
    return std::string(text);
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos;
       pos = hit + from.size())
    out.append(text.substr(pos, hit - pos)).append(to);
  return out.append(text.substr(pos));
}

size_t fairkv::tokenizer::utf8Length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead >= 0xC2 && lead <= 0xDF)
    return 2;
  if (lead >= 0xE0 && lead <= 0xEF)
    return 3;
  if (lead >= 0xF0 && lead <= 0xF4)
    return 4;
  return 1;
}

std::string fairkv::tokenizer::utf8Lossy(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 0; i < n;) {
    const unsigned char b = at(i);
    if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    // The valid range of the second byte depends on the lead byte (no
    // overlong forms, no surrogates, nothing past U+10FFFF); later bytes are
    // plain continuation bytes.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
      len = 2;
    else if (b == 0xE0)
      len = 3, lo = 0xA0;
    else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
      len = 3;
    else if (b == 0xED)
      len = 3, hi = 0x9F;
    else if (b == 0xF0)
      len = 4, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3)
      len = 4;
    else if (b == 0xF4)
      len = 4, hi = 0x8F;
    if (len == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t good = 1;
    if (i + 1 < n && at(i + 1) >= lo && at(i + 1) <= hi) {
      good = 2;
      while (good < len && i + good < n && at(i + good) >= 0x80 &&
             at(i + good) <= 0xBF)
        ++good;
    }
    if (good == len)
      out.append(s.substr(i, len));
    else
      out += kReplacement; // the maximal subpart, replaced once
    i += good;
  }
  return out;
}

uint32_t fairkv::tokenizer::utf8Decode(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  switch (utf8Length(b(0))) {
  case 2:
    return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  case 3:
    return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  case 4:
    return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) |
           ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  default:
    return b(0);
  }
}

std::string fairkv::tokenizer::utf8Encode(uint32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

bool fairkv::tokenizer::isWhitespace(uint32_t c) {
  // The White_Space property (PropList.txt), which Rust's char::is_whitespace
  // follows.
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

/// bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest
/// (controls, space, soft hyphen...) map to U+0100 onwards in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> encode;
  std::unordered_map<uint32_t, unsigned char> decode;
  ByteAlphabet() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      uint32_t c = printable ? static_cast<uint32_t>(b) : next++;
      encode[b] = utf8Encode(c);
      decode[c] = static_cast<unsigned char>(b);
    }
  }
};

const ByteAlphabet &alphabet() {
  static const ByteAlphabet table;
  return table;
}

} // namespace

std::string fairkv::tokenizer::byteLevelEncode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes)
    out += alphabet().encode[b];
  return out;
}

std::optional<std::string>
fairkv::tokenizer::byteLevelDecode(std::string_view token) {
  std::string out;
  for (size_t i = 0; i < token.size();) {
    size_t len = utf8Length(static_cast<unsigned char>(token[i]));
    if (i + len > token.size())
      return std::nullopt;
    auto it = alphabet().decode.find(utf8Decode(token.substr(i, len)));
    if (it == alphabet().decode.end())
      return std::nullopt;
    out += static_cast<char>(it->second);
    i += len;
  }
  return out;
}
