#!/usr/bin/env python3
"""Regenerates test/Fixtures/kvpress: what NVIDIA's kvpress keeps and decodes
on tiny models saved by transformers (test/Fixtures/hf), the reference for
FairKV's KV compression methods.

Needs kvpress (which pins its own transformers: give it a virtualenv of its
own, outside the repository: python3 -m venv /tmp/kv && /tmp/kv/bin/pip
install kvpress). CI and the tests never run this; they read what it wrote.

  /tmp/kv/bin/python scripts/make-kvpress-fixtures.py [output-dir]

For every case, a directory with prompts.txt (one prompt per line, mixed
lengths, all longer than the window), kept.txt (for every request, layer
and KV head, the prompt positions the press keeps, ascending:
"request R layer L head H: p p p"), tokens.txt and logits.txt (greedy
decode over the compressed cache, in the formats of a compiled program's
--quiet output and --dump-logits) and case.json (the press and its
parameters). The weights are the named test/Fixtures/hf checkpoint's.
"""

import json
import os
import shutil
import sys

import kvpress
import torch
import torch.nn.functional as F
import transformers
from kvpress import AdaKVPress, DuoAttentionPress, SnapKVPress
from transformers import AutoModelForCausalLM, DynamicCache

transformers.utils.logging.disable_progress_bar()

HERE = os.path.dirname(os.path.abspath(__file__))
HF = os.path.join(HERE, "..", "test", "Fixtures", "hf")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HERE, "..", "test", "Fixtures", "kvpress")
PROMPT_LENGTHS = [24, 17, 30, 21]
NEW_TOKENS = 6
WINDOW = 8
KERNEL = 5
BUDGET = 12  # tokens kept per KV head (uniform)

SINK, RECENT = 4, 8
# DuoAttention's head pattern, (layer, KV head): True for a streaming head.
STREAMING = [[True, False, True, True], [False, True, True, False]]


class PatternDuoPress(DuoAttentionPress):
    """DuoAttentionPress with a given head pattern (the published patterns
    are for real checkpoints, from the hub)."""

    def post_init_from_model(self, model):
        self.sink_size, self.recent_size = SINK, RECENT
        self.streaming_mask = torch.tensor(STREAMING)


def duo(n):
    return PatternDuoPress(head_compression_ratio=0.5)


# Static per-head budgets (layer, KV head), tokens kept including the window:
# below and above the prompts (17-30 tokens), never below the window (kvpress
# scores the whole window alike there: no defined choice).
HEAD_BUDGETS = [[9, 16, 11, 30], [20, 10, 13, 14]]
HEADKV_BUDGETS = [[14, 9, 24, 12], [10, 31, 18, 11]]


class HeadBudgetPress(AdaKVPress):
    """A press's scores with a static budget per KV head (HeadKV's and the
    budget profiles' model), kept by kvpress's own head-wise masking (the
    mechanism AdaKVPress uses): each head keeps its budget's best-scored
    tokens; the press pads the window above every score, so it is kept."""

    budgets: list = None

    def compress(self, module, hidden_states, keys, values, attentions,
                 kwargs):
        scores = self.press.score(module, hidden_states, keys, values,
                                  attentions, kwargs)
        bsz, heads, k_len = scores.shape
        assert bsz == 1
        masked = torch.ones(heads, k_len, dtype=torch.bool)
        for h, kept in enumerate(self.kept(module.layer_idx, scores)):
            masked[h, kept] = False
        head_indices, seq_indices = torch.nonzero(masked, as_tuple=True)
        module.masked_key_indices = (torch.zeros_like(head_indices),
                                     head_indices, seq_indices)
        return keys, values

    def kept(self, layer, scores):
        """Each head's budget best tokens, ascending. Max-pooling scores
        neighbours alike: ties go to the earlier token (a stable sort; the
        rule FairKV documents), where torch.topk's choice is unspecified."""
        return [sorted(torch.sort(scores[0, h], descending=True, stable=True)
                       .indices[:self.budgets[layer][h]].tolist())
                for h in range(scores.shape[1])]


class MaxPoolSnapKVPress(SnapKVPress):
    """SnapKVPress with max- instead of average-pooling, HeadKV's and Ada-KV's
    reference selection (kernel 7): everything else is SnapKVPress.score."""

    def score(self, module, hidden_states, keys, values, attentions, kwargs):
        bsz, kv_heads, k_len, _ = keys.shape
        group = module.config.num_attention_heads // kv_heads
        attn = self.compute_window_attention(
            module, hidden_states, keys, self.window_size,
            kwargs["position_embeddings"])
        scores = F.max_pool1d(attn.mean(dim=-2), kernel_size=self.kernel_size,
                              padding=self.kernel_size // 2, stride=1)
        scores = scores.view(bsz, kv_heads, group, k_len - self.window_size)
        scores = scores.mean(2)
        return F.pad(scores, (0, self.window_size),
                     value=scores.max().item() + 1)


def head_budgets(inner, budgets):
    press = HeadBudgetPress(inner, alpha_safeguard=0.0)
    press.budgets = budgets
    return press


# name: (checkpoint, press factory taking a prompt length)
CASES = {
    "snapkv-llama": ("llama-gqa", lambda n: SnapKVPress(
        compression_ratio=ratio(n), window_size=WINDOW, kernel_size=KERNEL)),
    "snapkv-qwen3": ("qwen3", lambda n: SnapKVPress(
        compression_ratio=ratio(n), window_size=WINDOW, kernel_size=KERNEL)),
    "adakv-llama": ("llama-gqa", lambda n: AdaKVPress(SnapKVPress(
        compression_ratio=ratio(n), window_size=WINDOW, kernel_size=KERNEL),
        alpha_safeguard=0.2)),
    "snapkv-heads-llama": ("llama-gqa", lambda n: head_budgets(SnapKVPress(
        compression_ratio=0.5, window_size=WINDOW, kernel_size=KERNEL),
        HEAD_BUDGETS)),
    "headkv-llama": ("llama-gqa", lambda n: head_budgets(MaxPoolSnapKVPress(
        compression_ratio=0.5, window_size=WINDOW, kernel_size=7),
        HEADKV_BUDGETS)),
    # kvpress keeps a streaming head's decoded tokens too; DuoAttention (and
    # FairKV) keep it at sink + recent: run() slides kvpress's mask along.
    "duo-llama": ("llama-gqa", duo),
}


def ratio(n):
    """The compression ratio under which kvpress keeps BUDGET of n tokens
    (compute_n_kept truncates n * (1 - ratio)); checked in run()."""
    return 1.0 - (BUDGET + 0.5) / n


class Recorder:
    """Records which positions each layer keeps, around a press."""

    def __init__(self, press):
        self.press, self.kept = press, {}
        if isinstance(press, DuoAttentionPress):
            original = press.compress

            def compress(module, hidden_states, keys, values, attentions,
                         kwargs):
                out = original(module, hidden_states, keys, values,
                               attentions, kwargs)
                k_len, heads = keys.shape[2], keys.shape[1]
                keep = torch.ones(heads, k_len, dtype=torch.bool)
                indices = getattr(module, "masked_key_indices", None)
                if indices is not None:
                    keep[indices[1], indices[2]] = False
                self.kept[module.layer_idx] = keep
                return out
            press.compress = compress
            return
        inner = press.press if isinstance(press, AdaKVPress) else press
        original = inner.score

        def score(module, hidden_states, keys, values, attentions, kwargs):
            s = original(module, hidden_states, keys, values, attentions,
                         kwargs)
            self.kept[module.layer_idx] = s.clone()
            return s
        inner.score = score


def kept_positions(press, layer, scores, k_len):
    """Positions each KV head keeps, from the scores the press ranked, by
    the press's own rule (ScorerPress.compress / AdaKVPress.compress)."""
    if isinstance(press, DuoAttentionPress):
        return [torch.nonzero(scores[h])[:, 0].tolist()
                for h in range(scores.shape[0])]
    heads = scores.shape[1]
    if isinstance(press, HeadBudgetPress):
        return press.kept(layer, scores)
    n_kept = kvpress.utils.compute_n_kept(k_len, press.compression_ratio)
    if isinstance(press, AdaKVPress):
        s = scores.clone()
        n_safe = int(n_kept * press.alpha_safeguard)
        if press.alpha_safeguard > 0:
            n_safe = max(1, n_safe) if n_kept > 0 else 0
        top = torch.topk(s, n_safe, dim=-1).indices
        s.scatter_(-1, top, torch.finfo(s.dtype).max)
        n_pruned = heads * (k_len - n_kept)
        pruned = torch.topk(-s.reshape(1, -1), n_pruned, dim=1).indices[0]
        keep = torch.ones(heads * k_len, dtype=torch.bool)
        keep[pruned] = False
        keep = keep.view(heads, k_len)
        return [torch.nonzero(keep[h])[:, 0].tolist() for h in range(heads)]
    indices = scores.topk(n_kept, dim=-1).indices[0]
    return [sorted(indices[h].tolist()) for h in range(heads)]


def slide_streaming(model, length):
    """DuoAttention's decode: a streaming head attends to its sink and its
    RECENT newest tokens, the new one included (the oldest recent token
    leaves as a new one arrives), through kvpress's head-wise key mask."""
    for layer, attention in enumerate(a.self_attn for a in model.model.layers):
        heads = torch.tensor(STREAMING[layer]).nonzero()[:, 0].tolist()
        seq = [t for t in range(SINK, length - RECENT)]
        head_indices = torch.tensor([h for h in heads for _ in seq],
                                    dtype=torch.long)
        seq_indices = torch.tensor(seq * len(heads), dtype=torch.long)
        attention.masked_key_indices = (torch.zeros_like(head_indices),
                                        head_indices, seq_indices)


def run(model, press, prompt):
    recorder = Recorder(press)
    cache = DynamicCache()
    steps = []
    with torch.no_grad():
        with press(model):
            out = model(torch.tensor([prompt]), past_key_values=cache)
        for step in range(NEW_TOKENS):
            logits = out.logits[0, -1].float()
            token = int(torch.argmax(logits))
            steps.append((logits, token))
            if isinstance(press, DuoAttentionPress):
                slide_streaming(model, len(prompt) + step + 1)
            out = model(torch.tensor([[token]]), past_key_values=cache,
                        position_ids=torch.tensor([[len(prompt) + step]]))
    kept = {layer: kept_positions(press, layer, s, len(prompt))
            for layer, s in recorder.kept.items()}
    for layer, heads in kept.items():
        assert all(len(h) == BUDGET for h in heads) or isinstance(
            press, (AdaKVPress, DuoAttentionPress)), (layer,
                                                      [len(h) for h in heads])
    return kept, steps


def main():
    print(f"kvpress {kvpress.__version__ if hasattr(kvpress, '__version__') else ''}"
          f" transformers {transformers.__version__}, torch {torch.__version__}")
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, (checkpoint, make_press)) in enumerate(CASES.items()):
        model = AutoModelForCausalLM.from_pretrained(
            os.path.join(HF, checkpoint), dtype=torch.float32,
            attn_implementation="sdpa").eval()
        g = torch.Generator().manual_seed(500 + seed)
        prompts = [torch.randint(0, model.config.vocab_size, (n,),
                                 generator=g).tolist()
                   for n in PROMPT_LENGTHS]
        directory = os.path.join(OUT, name)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        results = [run(model, make_press(len(p)), p) for p in prompts]
        with open(os.path.join(directory, "prompts.txt"), "w") as f:
            for p in prompts:
                f.write(" ".join(map(str, p)) + "\n")
        with open(os.path.join(directory, "kept.txt"), "w") as f:
            for r, (kept, _) in enumerate(results):
                for layer in sorted(kept):
                    for h, positions in enumerate(kept[layer]):
                        f.write(f"request {r} layer {layer} head {h}: " +
                                " ".join(map(str, positions)) + "\n")
        with open(os.path.join(directory, "tokens.txt"), "w") as f:
            for _, steps in results:
                f.write("".join(f" {t}" for _, t in steps) + "\n")
        with open(os.path.join(directory, "logits.txt"), "w") as f:
            for step in range(NEW_TOKENS):
                for r, (_, steps) in enumerate(results):
                    f.write(f"step {step} request {r}:" + "".join(
                        f" {float(v):.9g}" for v in steps[step][0]) + "\n")
        press = make_press(PROMPT_LENGTHS[0])
        case = {"checkpoint": checkpoint, "press": type(press).__name__}
        if isinstance(press, DuoAttentionPress):
            case.update(sink_size=SINK, recent_size=RECENT,
                        streaming=STREAMING)
            # The budgets that say so: sink + recent for a streaming head,
            # more than any prompt for a retrieval head.
            with open(os.path.join(directory, "budgets.json"), "w") as f:
                json.dump({"format": "fairkv-budgets/v1",
                           "source": f"duo:sink={SINK},recent={RECENT}",
                           "tokens": [[SINK + RECENT if s else 1000
                                       for s in row] for row in STREAMING]},
                          f)
        elif isinstance(press, HeadBudgetPress):
            case.update(inner=type(press.press).__name__, window_size=WINDOW,
                        kernel_size=press.press.kernel_size,
                        budgets=press.budgets)
            source = ("headkv:fixture" if isinstance(press.press,
                                                     MaxPoolSnapKVPress)
                      else "kvpress:per-head-budgets")
            with open(os.path.join(directory, "budgets.json"), "w") as f:
                json.dump({"format": "fairkv-budgets/v1", "source": source,
                           "tokens": press.budgets}, f)
        else:
            case.update(window_size=WINDOW, kernel_size=KERNEL,
                        tokens_per_head=BUDGET,
                        alpha_safeguard=getattr(press, "alpha_safeguard",
                                                None))
        with open(os.path.join(directory, "case.json"), "w") as f:
            json.dump(case, f, indent=2)
        print(f"{name}: {len(prompts)} prompts")


if __name__ == "__main__":
    main()
