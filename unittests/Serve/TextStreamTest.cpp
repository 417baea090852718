//===- TextStreamTest.cpp - Streaming text and stop strings ---------------===//

#include "fairkv/Serve/TextStream.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace fairkv::serve;
using fairkv::tokenizer::Tokenizer;

namespace {

Tokenizer load(const std::string &name) {
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  auto t = Tokenizer::fromFile(std::string(root ? root : ".") +
                               "/test/Fixtures/tokenizers/" + name);
  EXPECT_TRUE(t) << t.error();
  return std::move(*t);
}

/// Streams `text`'s ids; returns what was sent and whether a stop hit.
std::pair<std::string, bool> stream(const Tokenizer &tok,
                                    const std::string &text,
                                    std::vector<std::string> stops) {
  TextStream s(tok, std::move(stops));
  std::string out;
  bool stopped = false;
  for (int64_t id : tok.encode(text, false)) {
    std::string piece = s.push(id, &stopped);
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos)
        << "sent half a character";
    out += piece;
    if (stopped)
      break;
  }
  out += s.finish();
  EXPECT_EQ(out, s.text());
  return {out, stopped};
}

// Every fixture's tokenizer (byte-level BPE, sentencepiece-style
// tokenizer.json, tokenizer.model): what is streamed token by token, each
// piece from the last few tokens only, is the whole output decoded at once.
TEST(TextStream, PiecesJoinToTheDecodedText) {
  // Emoji and CJK fall back to several byte tokens each; leading, doubled
  // and trailing spaces, newlines and tabs are where decoders differ.
  const std::string text =
      "Hello 😀 world, 日本語 and ❤️ again\n  Indented\tline,  two  spaces "
      "and 1234567 digits; naïve café — ok?\n\n end ";
  std::string longText;
  for (int i = 0; i < 20; ++i)
    longText += text;
  for (const char *name : {"gpt2-bytelevel", "llama2-spm", "llama3-bytelevel",
                           "mistral-spm", "qwen2-bytelevel",
                           "sentencepiece-bpe"}) {
    Tokenizer tok = load(name);
    for (const std::string &t : {text, longText}) {
      auto [out, stopped] = stream(tok, t, {});
      EXPECT_FALSE(stopped);
      EXPECT_EQ(out, tok.decode(tok.encode(t, false), true)) << name;
    }
  }
}

TEST(TextStream, StopStringsEndTheTextBeforeThem) {
  Tokenizer tok = load("llama3-bytelevel");
  auto [out, stopped] = stream(tok, "The quick brown fox jumps", {"fox", "zzz"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "The quick brown ");
  // A stop string across token boundaries, and one never reached.
  auto [again, hit] = stream(tok, "It's a dog's life", {"g's l"});
  EXPECT_TRUE(hit);
  EXPECT_EQ(again, "It's a do");
  auto [whole, none] = stream(tok, "no stop here", {"STOP"});
  EXPECT_FALSE(none);
  EXPECT_EQ(whole, "no stop here");
}

} // namespace
