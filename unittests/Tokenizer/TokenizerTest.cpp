//===- TokenizerTest.cpp - Tokenizers against the tokenizers package ------===//
//
// test/Fixtures/tokenizers holds tokenizers trained with the Hugging Face
// `tokenizers` package in the layouts real models ship, and that package's
// ids and decoded text for a Unicode corpus, and a SentencePiece model with
// the sentencepiece package's (scripts/make-tokenizer-fixtures.py). Ours
// must equal them exactly.
//
//===----------------------------------------------------------------------===//

#include "fairkv/Tokenizer/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace fairkv::tokenizer;

namespace {

std::string fixtures() {
  const char *root = std::getenv("FAIRKV_SOURCE_DIR");
  return std::string(root ? root : ".") + "/test/Fixtures/tokenizers";
}

nlohmann::json expected() {
  std::ifstream in(fixtures() + "/expected.json");
  EXPECT_TRUE(in) << "no " << fixtures() << "/expected.json";
  std::ostringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

std::string escaped(const std::string &s) {
  std::string out;
  for (unsigned char c : s)
    if (c >= 0x20 && c < 0x7F)
      out += static_cast<char>(c);
    else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  return out;
}

class Reference : public testing::TestWithParam<std::string> {};

TEST_P(Reference, IdsAndDecodingEqualTheTokenizersPackage) {
  const nlohmann::json all = expected();
  const std::string name = GetParam();
  Result<Tokenizer> tok = Tokenizer::fromFile(fixtures() + "/" + name);
  ASSERT_TRUE(tok) << tok.error();
  const auto &corpus = all["corpus"];
  const auto &cases = all["fixtures"][name];
  ASSERT_EQ(corpus.size(), cases.size());
  ASSERT_GT(cases.size(), 30u);
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = corpus[i];
    SCOPED_TRACE("line " + std::to_string(i) + ": " + escaped(text));
    std::vector<int64_t> ids = tok->encode(text, true);
    EXPECT_EQ(ids, cases[i]["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(tok->encode(text, false),
              cases[i]["ids_no_special"].get<std::vector<int64_t>>());
    std::vector<int64_t> reference = cases[i]["ids"];
    EXPECT_EQ(escaped(tok->decode(reference, false)),
              escaped(cases[i]["decoded"].get<std::string>()));
    EXPECT_EQ(escaped(tok->decode(reference, true)),
              escaped(cases[i]["decoded_skip_special"].get<std::string>()));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Reference,
                         testing::Values("llama3-bytelevel", "qwen2-bytelevel",
                                         "gpt2-bytelevel", "llama2-spm",
                                         "mistral-spm", "sentencepiece-bpe"),
                         [](const auto &info) {
                           std::string n = info.param;
                           for (char &c : n)
                             if (c == '-')
                               c = '_';
                           return n;
                         });

// Byte-level tokenizers round-trip any text, byte for byte (special tokens
// in the text included).
TEST(Tokenizer, ByteLevelRoundTripsTheCorpus) {
  Result<Tokenizer> tok = Tokenizer::fromFile(fixtures() + "/llama3-bytelevel");
  ASSERT_TRUE(tok) << tok.error();
  const nlohmann::json all = expected();
  for (const auto &line : all["corpus"]) {
    const std::string text = line;
    EXPECT_EQ(tok->decode(tok->encode(text, false), false), text);
  }
}

TEST(Tokenizer, RefusesWhatItDoesNotImplementInOneLine) {
  auto error = [](const std::string &json) {
    Result<Tokenizer> t = Tokenizer::fromJson(json);
    EXPECT_FALSE(t);
    return t ? std::string() : t.error();
  };
  const std::string model =
      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
          "merges": ["a b"]})";
  EXPECT_TRUE(Tokenizer::fromJson("{" + model + "}"));
  EXPECT_EQ(error("[]"), "not a tokenizer.json: not a JSON object");
  EXPECT_EQ(error(R"({"model": {"type": "WordPiece", "vocab": {}}})"),
            "model: only BPE models are supported, not 'WordPiece'");
  EXPECT_EQ(error("{" + model + R"(, "normalizer": {"type": "Precompiled"}})"),
            "normalizer 'Precompiled' is not supported");
  EXPECT_EQ(error("{" + model +
                  R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}})")
                .rfind("pre_tokenizer Split: regex at offset", 0),
            0u);
  EXPECT_EQ(error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})"),
            "model: merge 'a b' names a token outside the vocabulary");
  EXPECT_EQ(error("{" + model + R"(, "decoder": {"type": "Strip", "content": 3}})"),
            "decoder Strip: needs a content and counts");
  EXPECT_EQ(error("{" + model + R"(, "truncation": {"max_length": 8}})"),
            "truncation is not supported; it would cut prompts silently");
  EXPECT_EQ(error("{" + model + R"(, "pre_tokenizer": {"type": "ByteLevel", "use_regex": "yes"}})")
                .rfind("malformed tokenizer.json: ", 0),
            0u);
}

TEST(Tokenizer, MergesByRankAndFallsBackToBytes) {
  // "abab": a b -> ab (rank 0) then ab ab -> abab (rank 1); "c" is unknown
  // and falls back to its byte token.
  Result<Tokenizer> t = Tokenizer::fromJson(R"({"model": {"type": "BPE",
      "byte_fallback": true,
      "vocab": {"a": 0, "b": 1, "ab": 2, "abab": 3, "<0x63>": 4},
      "merges": [["a", "b"], ["ab", "ab"]]}})");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->encode("abab"), (std::vector<int64_t>{3}));
  EXPECT_EQ(t->encode("ababa"), (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(t->encode("acb"), (std::vector<int64_t>{0, 4, 1}));
  EXPECT_EQ(t->vocabSize(), 5);
  EXPECT_EQ(t->tokenToId("ab"), 2);
  EXPECT_EQ(t->idToToken(3), "abab");
  EXPECT_FALSE(t->idToToken(99));
}

} // namespace
