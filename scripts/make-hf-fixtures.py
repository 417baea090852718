#!/usr/bin/env python3
"""Regenerates test/Fixtures/hf: tiny random-init models saved by Hugging Face
transformers, with transformers' own greedy tokens and per-step logits.

Needs torch, transformers and safetensors (a virtualenv outside the
repository: python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch
transformers safetensors). CI and the tests never run this; they read what
it wrote. Every model is built from a config object with a fixed seed; no
hub access.

  /tmp/hf/bin/python scripts/make-hf-fixtures.py [output-dir]

Each fixture directory holds what `save_pretrained` wrote (config.json,
model.safetensors), prompts.txt (token ids, one prompt per line, mixed
lengths), tokens.txt (transformers' greedy tokens, a line per prompt, in
the format a compiled program prints with --quiet) and logits.txt (the
last-position logits of every step, in the --dump-logits format), both
computed in float32 (for a bf16 checkpoint: of its bf16 weights); a bf16
checkpoint also has tokens-bf16.txt and logits-bf16.txt, transformers
computing in bf16.
"""

import json
import os
import shutil
import sys

import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "test", "Fixtures", "hf")
PROMPT_LENGTHS = [5, 12, 9, 17]
NEW_TOKENS = 6

COMMON = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=8,
              num_key_value_heads=4, head_dim=16, intermediate_size=192,
              vocab_size=384, rms_norm_eps=1e-5, initializer_range=0.1)

# name: (config class, model class, config arguments, dtype)
MODELS = {
    "llama-gqa": (LlamaConfig, LlamaForCausalLM, dict(
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        torch.float32),
    "llama-gqa-bf16": (LlamaConfig, LlamaForCausalLM, dict(
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        torch.bfloat16),
    "llama-mha-tied": (LlamaConfig, LlamaForCausalLM, dict(
        num_key_value_heads=8, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
        torch.float32),
    "llama-linear": (LlamaConfig, LlamaForCausalLM, dict(
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                         "factor": 2.0}), torch.float32),
    # Prompts of 5 (below 12 positions throughout) to 17 tokens (past it).
    "llama-dynamic": (LlamaConfig, LlamaForCausalLM, dict(
        max_position_embeddings=12,
        rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0,
                         "factor": 2.0}), torch.float32),
    # Wavelengths on both sides of 32 / 4 and 32 / 1: all three llama3 cases.
    "llama-llama3": (LlamaConfig, LlamaForCausalLM, dict(
        max_position_embeddings=256,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                         "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 32}),
        torch.float32),
    "llama-yarn": (LlamaConfig, LlamaForCausalLM, dict(
        max_position_embeddings=128,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0,
                         "factor": 4.0,
                         "original_max_position_embeddings": 32}),
        torch.float32),
    "mistral": (MistralConfig, MistralForCausalLM, dict(
        sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        torch.float32),
    # q/k/v biases (Qwen2Attention reads head_dim when the config has one).
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(
        rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        torch.float32),
    # Per-head q/k RMSNorm before rotary.
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, dict(
        rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        torch.float32),
    # A window longer than every request, and one of 8 positions that hides
    # most of every prompt from its later queries.
    "mistral-window": (MistralConfig, MistralForCausalLM, dict(
        sliding_window=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        torch.float32),
    "mistral-window-8": (MistralConfig, MistralForCausalLM, dict(
        sliding_window=8,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        torch.float32),
}

# Every family in bf16 too (transformers computes in bf16 there).
for family in ["mistral", "qwen2", "qwen3"]:
    cc, mc, extra, _ = MODELS[family]
    MODELS[family + "-bf16"] = (cc, mc, extra, torch.bfloat16)


def greedy(model, prompt):
    """transformers' greedy decode: a prefill, then one token at a time."""
    steps = []
    with torch.no_grad():
        out = model(torch.tensor([prompt]), use_cache=True)
        for _ in range(NEW_TOKENS):
            logits = out.logits[0, -1].float()
            token = int(torch.argmax(logits))
            steps.append((logits, token))
            out = model(torch.tensor([[token]]),
                        past_key_values=out.past_key_values, use_cache=True)
    return steps


def margin(logits):
    top = torch.topk(logits, 2).values
    return float((top[0] - top[1]) / logits.abs().max())


def old_layout(config_path):
    """The same config as transformers 4 wrote it: rope_theta at the top
    level, rope_scaling, torch_dtype."""
    with open(config_path) as f:
        c = json.load(f)
    rope = c.pop("rope_parameters")
    c["rope_theta"] = rope.pop("rope_theta")
    c["rope_scaling"] = None if rope.get("rope_type") == "default" else rope
    c["torch_dtype"] = c.pop("dtype")
    return c


MIN_MARGIN = 1e-3


def make(name, config_class, model_class, extra, dtype, seed):
    """Saves the model of the first seed from `seed` on whose greedy steps
    (computed in float32) all keep their top two logits MIN_MARGIN apart,
    so that float32 rounding cannot decide a token."""
    while True:
        directory, worst = make_one(name, config_class, model_class, extra,
                                    dtype, seed)
        if worst >= MIN_MARGIN:
            return directory, worst, seed
        seed += 1000


def make_one(name, config_class, model_class, extra, dtype, seed):
    torch.manual_seed(seed)
    args = dict(COMMON)
    args.update(extra)
    config = config_class(**args)
    model = model_class(config)
    # transformers initializes biases to 0 and norm weights to 1, which
    # would let a dropped bias or norm weight pass unnoticed.
    with torch.no_grad():
        for parameter, p in model.named_parameters():
            if parameter.endswith(".bias"):
                p.normal_(0.0, 0.2)
            elif "norm" in parameter:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model = model.to(dtype).eval()
    directory = os.path.join(OUT, name)
    shutil.rmtree(directory, ignore_errors=True)
    model.save_pretrained(directory)
    g = torch.Generator().manual_seed(seed + 1)
    prompts = [torch.randint(0, config.vocab_size, (n,), generator=g).tolist()
               for n in PROMPT_LENGTHS]
    with open(os.path.join(directory, "prompts.txt"), "w") as f:
        for p in prompts:
            f.write(" ".join(map(str, p)) + "\n")
    # The references: transformers' float32 computation (of the bf16
    # weights, for a bf16 checkpoint), and for a bf16 checkpoint also its
    # bf16 computation (-bf16 files).
    # Loaded back as a user would (the rotary buffers are then float32; a
    # model cast to bf16 in memory would have rounded them), afresh for
    # every prompt: dynamic rope keeps state across forward passes.
    def load(load_dtype):
        return lambda: model_class.from_pretrained(
            directory, dtype=load_dtype).eval()
    runs = [("", load(torch.float32))]
    if dtype != torch.float32:
        runs.append(("-bf16", load(dtype)))
    worst = 1.0
    for suffix, reference in runs:
        results = [greedy(reference(), p) for p in prompts]
        with open(os.path.join(directory, f"tokens{suffix}.txt"), "w") as f:
            for steps in results:
                f.write("".join(f" {t}" for _, t in steps) + "\n")
        with open(os.path.join(directory, f"logits{suffix}.txt"), "w") as f:
            for step in range(NEW_TOKENS):
                for i, steps in enumerate(results):
                    row = steps[step][0]
                    if not suffix:
                        worst = min(worst, margin(row))
                    f.write(f"step {step} request {i}:" +
                            "".join(f" {float(v):.9g}" for v in row) + "\n")
    return directory, worst


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for seed, (name, (cc, mc, extra, dtype)) in enumerate(MODELS.items()):
        directory, worst, used = make(name, cc, mc, extra, dtype, 100 + seed)
        print(f"{name}: seed {used}, smallest top-2 margin {worst:.2e} of "
              "the largest logit")
    # One config in the older layout, for llama-llama3's weights and
    # references (the test reads them from there).
    source = os.path.join(OUT, "llama-llama3")
    legacy = os.path.join(OUT, "llama-llama3-legacy")
    shutil.rmtree(legacy, ignore_errors=True)
    os.makedirs(legacy)
    with open(os.path.join(legacy, "config.json"), "w") as f:
        json.dump(old_layout(os.path.join(source, "config.json")), f, indent=2)


if __name__ == "__main__":
    main()
