//===- BPE.cpp - The byte-pair-encoding model -----------------------------===//
//
// A word starts as its characters (or, with byte fallback, the <0xXX> tokens
// of a character not in the vocabulary; else the unknown token, fused over a
// run when asked); then the pair of lowest merge rank is merged, leftmost
// first, until no pair has a merge. A heap keeps that O(n log n), as the
// reference's does, so a prompt that is one word (Metaspace without split)
// stays fast.
//
//===----------------------------------------------------------------------===//

#include "Components.h"

#include <cstdio>
#include <queue>

using namespace fairkv::tokenizer;

Result<BPEModel> fairkv::tokenizer::BPEModel::fromJson(const Json &j) {
  if (!j.is_object() || j.value("type", std::string("BPE")) != "BPE")
    return makeError("model: only BPE models are supported, not '" +
                     (j.is_object() ? j.value("type", std::string("?"))
                                    : std::string("?")) +
                     "'");
  if (!j.value("dropout", Json()).is_null() &&
      j["dropout"].get<double>() != 0)
    return makeError("model: BPE dropout is not supported");
  for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (j.contains(key) && !j[key].is_null() &&
        !(j[key].is_string() && j[key].get<std::string>().empty()))
      return makeError(std::string("model: BPE ") + key + " is not supported");
  const Json vocab = j.value("vocab", Json());
  if (!vocab.is_object())
    return makeError("model: 'vocab' must be an object of token: id");
  BPEModel m;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > INT32_MAX)
      return makeError("model: the id of '" + it.key() + "' is not valid");
    m.vocab_[it.key()] = it->get<int64_t>();
    m.tokens_[it->get<int64_t>()] = it.key();
  }
  const Json merges = j.value("merges", Json::array());
  if (!merges.is_array())
    return makeError("model: 'merges' must be a list");
  int rank = 0;
  for (const Json &merge : merges) {
    std::string a, b;
    if (merge.is_string()) {
      const std::string s = merge.get<std::string>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        return makeError("model: merge '" + s + "' is not two tokens");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
    } else {
      return makeError("model: a merge is neither 'a b' nor [a, b]");
    }
    auto ia = m.vocab_.find(a), ib = m.vocab_.find(b),
         ir = m.vocab_.find(a + b);
    if (ia == m.vocab_.end() || ib == m.vocab_.end() || ir == m.vocab_.end())
      return makeError("model: merge '" + a + " " + b +
                       "' names a token outside the vocabulary");
    // The first of duplicate merges wins, as in the reference's map.
    m.merges_.emplace(pairKey(ia->second, ib->second),
                      Merge{rank++, ir->second});
  }
  if (j.contains("unk_token") && j["unk_token"].is_string()) {
    auto it = m.vocab_.find(j["unk_token"].get<std::string>());
    if (it == m.vocab_.end())
      return makeError("model: unk_token '" + j["unk_token"].get<std::string>() +
                       "' is not in the vocabulary");
    m.unk_ = it->second;
  }
  m.fuseUnk_ = j.value("fuse_unk", false);
  m.byteFallback_ = j.value("byte_fallback", false);
  m.ignoreMerges_ = j.value("ignore_merges", false);
  return m;
}

const std::string *fairkv::tokenizer::BPEModel::token(int64_t id) const {
  auto it = tokens_.find(id);
  return it == tokens_.end() ? nullptr : &it->second;
}

std::vector<int64_t>
fairkv::tokenizer::BPEModel::tokenize(std::string_view word) const {
  if (word.empty())
    return {};
  if (ignoreMerges_)
    if (auto it = vocab_.find(std::string(word)); it != vocab_.end())
      return {it->second};

  struct Symbol {
    int64_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  auto add = [&](int64_t id) {
    int index = static_cast<int>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, -1, true});
    if (index > 0)
      symbols[index - 1].next = index;
  };
  std::optional<int64_t> pendingUnk;
  for (size_t i = 0; i < word.size();) {
    size_t len = std::min(utf8Length(static_cast<unsigned char>(word[i])),
                          word.size() - i);
    std::string ch(word.substr(i, len));
    i += len;
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pendingUnk)
        add(*pendingUnk), pendingUnk.reset();
      add(it->second);
      continue;
    }
    if (byteFallback_) {
      std::vector<int64_t> bytes;
      for (unsigned char b : ch) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        auto it = vocab_.find(name);
        if (it == vocab_.end())
          break;
        bytes.push_back(it->second);
      }
      if (bytes.size() == ch.size()) {
        if (pendingUnk)
          add(*pendingUnk), pendingUnk.reset();
        for (int64_t id : bytes)
          add(id);
        continue;
      }
    }
    // Without an unknown token the character is dropped, as the reference
    // drops it.
    if (!unk_)
      continue;
    if (pendingUnk && !fuseUnk_)
      add(*pendingUnk);
    pendingUnk = *unk_;
  }
  if (pendingUnk)
    add(*pendingUnk);

  struct Candidate {
    int rank;
    int pos;
    int64_t result;
    bool operator>(const Candidate &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int left) {
    if (left < 0 || symbols[left].next < 0)
      return;
    auto it = merges_.find(pairKey(symbols[left].id,
                                   symbols[symbols[left].next].id));
    if (it != merges_.end())
      heap.push(Candidate{it->second.rank, left, it->second.result});
  };
  for (int s = 0; s + 1 < static_cast<int>(symbols.size()); ++s)
    consider(s);
  while (!heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    Symbol &left = symbols[top.pos];
    if (!left.alive || left.next < 0)
      continue;
    // Stale when either side has merged since the candidate was pushed.
    auto it = merges_.find(pairKey(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.result != top.result ||
        it->second.rank != top.rank)
      continue;
    Symbol &right = symbols[left.next];
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0)
      symbols[right.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  std::vector<int64_t> ids;
  for (const Symbol &s : symbols)
    if (s.alive)
      ids.push_back(s.id);
  return ids;
}
