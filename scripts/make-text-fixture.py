#!/usr/bin/env python3
"""Regenerates test/Fixtures/text/llama: a tiny random-init Llama saved by
transformers with the llama3-bytelevel fixture tokenizer, and transformers'
text out for text prompts: the prompts tokenized by the tokenizer
(PreTrainedTokenizerFast over tokenizer.json), greedy generate() until an
end-of-sequence id or max_new_tokens, decoded with special tokens skipped.

Needs torch and transformers (the virtualenv of make-hf-fixtures.py), and
test/Fixtures/tokenizers (make-tokenizer-fixtures.py). CI and the tests
never run this.

  /tmp/hf/bin/python scripts/make-text-fixture.py

The folder holds config.json, generation_config.json, model.safetensors,
tokenizer.json, tokenizer_config.json (with Llama-3's chat template),
prompts.txt (one prompt per line), outputs.txt (transformers' text for
each, one JSON string per line) and chats.json (conversations, rendered by
apply_chat_template with the generation prompt, and transformers' greedy
reply to each).
"""

import json
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "test", "Fixtures")
OUT = os.path.join(ROOT, "text", "llama")
NEW_TOKENS = 12
LLAMA3_CHAT = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CHATS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello, how can I help?"},
     {"role": "user", "content": "Tell me about GPUs"}],
]
PROMPTS = [
    "The quick brown fox",
    "Tensor parallelism splits every attention head",
    "Numbers: 1 2 3",
    "Café, naïve, 日本語 😀",
    "def decode(step):",
    "Hello",
    "We'll see: they're here",
    "<|begin_of_text|>Already a BOS",
]


def margin(logits):
    top = torch.topk(logits, 2).values
    return float((top[0] - top[1]) / logits.abs().max())


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    shutil.copy(os.path.join(ROOT, "tokenizers", "llama3-bytelevel",
                             "tokenizer.json"), OUT)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, "tokenizer.json"),
                                  bos_token="<|begin_of_text|>",
                                  eos_token="<|eot_id|>")
    tok.chat_template = LLAMA3_CHAT
    tok.save_pretrained(OUT)
    eos = [tok.convert_tokens_to_ids("<|end_of_text|>"),
           tok.convert_tokens_to_ids("<|eot_id|>")]
    seed = 7
    while True:
        torch.manual_seed(seed)
        config = LlamaConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=8,
            num_key_value_heads=4, head_dim=16, intermediate_size=192,
            vocab_size=tok.backend_tokenizer.get_vocab_size(),
            rms_norm_eps=1e-5, initializer_range=0.1,
            bos_token_id=tok.bos_token_id, eos_token_id=eos,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        model = LlamaForCausalLM(config).eval()
        worst, outputs, chats = 1.0, [], []
        inputs = [(tok(text, return_tensors="pt").input_ids, None)
                  for text in PROMPTS]
        for messages in CHATS:
            ids = tok.apply_chat_template(messages, add_generation_prompt=True,
                                          return_tensors="pt",
                                          return_dict=True)["input_ids"]
            inputs.append((ids, messages))
        with torch.no_grad():
            for ids, messages in inputs:
                out = model.generate(ids, max_new_tokens=NEW_TOKENS,
                                     do_sample=False, eos_token_id=eos,
                                     pad_token_id=eos[0],
                                     output_logits=True,
                                     return_dict_in_generate=True)
                for step in out.logits:
                    worst = min(worst, margin(step[0].float()))
                new = out.sequences[0, ids.shape[1]:].tolist()
                text = tok.decode(new, skip_special_tokens=True)
                if messages is None:
                    outputs.append(text)
                else:
                    chats.append({"messages": messages,
                                  "prompt": tok.apply_chat_template(
                                      messages, add_generation_prompt=True,
                                      tokenize=False),
                                  "output": text})
        if worst >= 1e-3:
            break
        seed += 1000
    model.save_pretrained(OUT)
    model.generation_config.save_pretrained(OUT)
    with open(os.path.join(OUT, "prompts.txt"), "w") as f:
        for p in PROMPTS:
            f.write(p + "\n")
    with open(os.path.join(OUT, "outputs.txt"), "w") as f:
        for o in outputs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "chats.json"), "w") as f:
        json.dump(chats, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"seed {seed}, worst margin {worst:.4g}")
    for p, o in zip(PROMPTS, outputs):
        print(repr(p), "->", repr(o))


if __name__ == "__main__":
    main()
