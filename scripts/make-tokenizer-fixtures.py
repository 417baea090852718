#!/usr/bin/env python3
"""Regenerates test/Fixtures/tokenizers: small tokenizers trained with the
Hugging Face `tokenizers` package in the layouts real models ship, and that
package's ids and decoded text over a Unicode test corpus.

Needs `tokenizers` and `sentencepiece` (a virtualenv outside the
repository: python3 -m venv /tmp/tok && /tmp/tok/bin/pip install tokenizers
sentencepiece). CI and the tests never run
this; they read what it wrote. Training is deterministic (a fixed corpus).

  /tmp/tok/bin/python scripts/make-tokenizer-fixtures.py [output-dir]

Each fixture directory holds tokenizer.json; the directory's expected.json
holds, for every corpus line and each fixture, the ids with and without the
post-processor's special tokens and the decoded text with and without
special tokens skipped.

  llama3-bytelevel   Llama-3: Split (its regex) + ByteLevel, ignore_merges,
                     <|begin_of_text|> prepended
  qwen2-bytelevel    Qwen2: NFC normaliser, Split (its regex) + ByteLevel,
                     no BOS, chat special tokens
  gpt2-bytelevel     GPT-2: ByteLevel pre-tokeniser with its own regex
  llama2-spm         Llama-2 (legacy convert): Prepend + Replace normaliser,
                     BPE with byte fallback and a fused <unk>, <s> prepended
  mistral-spm        Mistral (newer convert): Metaspace pre-tokeniser
                     (prepend first, no split), byte fallback, <s> prepended
  sentencepiece-bpe  a tokenizer.model (no tokenizer.json) trained by the
                     sentencepiece package as Llama-2's was: BPE, byte
                     fallback; its ids and text are sentencepiece's, with
                     <s> prepended as Llama's tokenizer does
"""

import json
import os
import sys

import tempfile

import sentencepiece as spm
import tokenizers
from tokenizers import (Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAIN = [
    "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it?",
    "We'll see: they're here, you've won, I'm done, he'd go, she'll stay.",
    "Tensor parallelism splits every attention head's KV cache over GPUs.",
    "Per-head KV compression gives every head its own budget of tokens.",
    "def decode(step, cache):\n    return attention(query, cache[step])\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += x[i] * y[i];\n}\n",
    "Numbers: 0 1 2 3 12 123 1234 12345 3.14159 2026-12-02 10,000,000.",
    "Café, naïve, résumé, déjà vu, Straße, smörgåsbord, crème brûlée.",
    "Привет, мир! Как дела? Всё хорошо.",
    "こんにちは世界。日本語のテキストです。",
    "你好，世界！这是中文文本。模型在许多GPU上运行。",
    "مرحبا بالعالم",
    "Emoji: 😀 🚀 👍🏽 ❤️ 🇩🇪",
    "   leading spaces, trailing spaces   ",
    "Line one\nLine two\r\nLine three\n\n\nTabs\there\tand\tthere.",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\": true}",
    "<html><body><p>Hello &amp; welcome</p></body></html>",
    "ALL CAPS SHOUTING, MiXeD cAsE, snake_case_name, CamelCaseName.",
] * 3

# Text the tokenizers never saw whole: unseen scripts (byte fallback, unk),
# decomposed accents (NFC), runs of whitespace, special tokens in the text.
CORPUS = TRAIN[: len(TRAIN) // 3] + [
    "",
    " ",
    "a",
    "Hello world",
    " Hello world",
    "Hello  world   with    many     spaces",
    "I'LL DON'T WE'VE they'RE",
    "e\u0301cole, cafe\u0301, A\u030angstro\u0308m",  # decomposed accents
    "ﬁne ｆｕｌｌｗｉｄｔｈ Ⅻ ㎏",
    "Ελληνικά κείμενα και עברית וגם हिन्दी पाठ",
    "ꦧꦱꦗꦮ 𓀀𓀁 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001F9EC",
    "tabs\t\t\tand\n\n\nnewlines\r\n\r\n",
    "12345678901234567890",
    "<|begin_of_text|>Hello<|eot_id|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<s>[INST] Hi there [/INST]</s>",
    "trailing space ",
    "\u00a0non-breaking\u2003em-space\u200bzero-width",
    "mixed 日本 and English and русский 123 😀",
]

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                   "<|start_header_id|>", "<|end_header_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SPM_SPECIALS = ["<unk>", "<s>", "</s>"]


def byte_level(pattern, specials, normalizer=None, ignore_merges=False,
               bos=None, vocab=700):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                     use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated",
                                 invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False,
                                     trim_offsets=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN, trainer)
    if bos is not None:
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                special_tokens=[(bos, tok.token_to_id(bos))]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def sentencepiece_style(metaspace, vocab=600):
    # Learn merges on the ▁-joined corpus, then lay the vocabulary out as a
    # converted SentencePiece model does: <unk> <s> </s>, the 256 byte
    # tokens, then the learned pieces.
    learner = Tokenizer(models.BPE())
    learner.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    learner.pre_tokenizer = pre_tokenizers.Split(Regex(r"▁[^▁]*|[^▁]+"),
                                                 behavior="isolated")
    learner.train_from_iterator(
        TRAIN, trainers.BpeTrainer(vocab_size=vocab, show_progress=False))
    learned = json.loads(learner.to_str())["model"]
    order = sorted(learned["vocab"].items(), key=lambda kv: kv[1])
    vocab_map = {t: i for i, t in enumerate(SPM_SPECIALS)}
    for b in range(256):
        vocab_map[f"<0x{b:02X}>"] = len(vocab_map)
    for token, _ in order:
        if token not in vocab_map:
            vocab_map[token] = len(vocab_map)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab_map, merges=merges,
                               unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.add_special_tokens(SPM_SPECIALS)
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([
            decoders.Replace("▁", " "), decoders.ByteFallback(),
            decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    else:
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([
            decoders.Replace("▁", " "), decoders.ByteFallback(),
            decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
        special_tokens=[("<s>", 1)])
    return tok


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "test", "Fixtures", "tokenizers")
    fixtures = {
        "llama3-bytelevel": byte_level(LLAMA3_PATTERN, LLAMA3_SPECIALS,
                                       ignore_merges=True,
                                       bos="<|begin_of_text|>"),
        "qwen2-bytelevel": byte_level(QWEN2_PATTERN, QWEN2_SPECIALS,
                                      normalizer=normalizers.NFC()),
        "gpt2-bytelevel": byte_level(None, ["<|endoftext|>"], vocab=500),
        "llama2-spm": sentencepiece_style(metaspace=False),
        "mistral-spm": sentencepiece_style(metaspace=True),
    }
    expected = {"tokenizers_version": tokenizers.__version__,
                "corpus": CORPUS, "fixtures": {}}
    for name, tok in fixtures.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        # What a user's file holds: read it back, as a tokenizer loads it.
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        cases = []
        for text in CORPUS:
            with_special = tok.encode(text, add_special_tokens=True).ids
            plain = tok.encode(text, add_special_tokens=False).ids
            cases.append({
                "ids": with_special,
                "ids_no_special": plain,
                "decoded": tok.decode(with_special,
                                      skip_special_tokens=False),
                "decoded_skip_special": tok.decode(
                    with_special, skip_special_tokens=True),
            })
        expected["fixtures"][name] = cases
        print(f"{name}: vocab {tok.get_vocab_size()}")
    # A SentencePiece model file, read by sentencepiece itself.
    d = os.path.join(out, "sentencepiece-bpe")
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(TRAIN) + "\n")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(tmp, "m"),
            model_type="bpe", vocab_size=800, byte_fallback=True,
            character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0,
            normalization_rule_name="identity", num_threads=1,
            minloglevel=2)
        with open(os.path.join(tmp, "m.model"), "rb") as f:
            model = f.read()
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(model)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    cases = []
    for text in CORPUS:
        plain = sp.encode(text)
        ids = [sp.bos_id()] + plain
        cases.append({"ids": ids, "ids_no_special": plain,
                      "decoded": sp.decode(ids),
                      "decoded_skip_special": sp.decode(plain)})
    expected["fixtures"]["sentencepiece-bpe"] = cases
    expected["sentencepiece_version"] = spm.__version__
    print(f"sentencepiece-bpe: vocab {sp.get_piece_size()}")
    with open(os.path.join(out, "expected.json"), "w",
              encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
