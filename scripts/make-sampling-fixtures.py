#!/usr/bin/env python3
"""Regenerates test/Fixtures/sampling/warpers.json: transformers' sampling
warpers (temperature, top-k, top-p, min-p, applied in generate()'s order) on
seeded random logits, and the distribution each leaves to sample from.

Needs torch and transformers (the virtualenv of make-hf-fixtures.py). CI and
the tests never run this.

  /tmp/hf/bin/python scripts/make-sampling-fixtures.py [output-file]
"""

import json
import os
import sys

import torch
import transformers
from transformers.generation.logits_process import (MinPLogitsWarper,
                                                    TemperatureLogitsWarper,
                                                    TopKLogitsWarper,
                                                    TopPLogitsWarper)

SETTINGS = [
    # temperature, top_k, top_p, min_p
    (1.0, 0, 1.0, None),
    (0.7, 0, 1.0, None),
    (1.5, 0, 1.0, None),
    (1.0, 1, 1.0, None),
    (1.0, 5, 1.0, None),
    (0.8, 20, 1.0, None),
    (1.0, 0, 0.9, None),
    (1.0, 0, 0.5, None),
    (0.6, 0, 0.95, None),
    (1.0, 0, 1.0, 0.05),
    (1.0, 0, 1.0, 0.3),
    (0.9, 40, 0.9, 0.05),
    (1.2, 10, 0.8, 0.1),
    (0.5, 8, 0.99, 0.01),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "test", "Fixtures", "sampling", "warpers.json")
    torch.manual_seed(0)
    cases = []
    for i, (temperature, top_k, top_p, min_p) in enumerate(SETTINGS):
        vocab = 64 if i % 2 == 0 else 97
        logits = (torch.randn(1, vocab) * (1 + i % 3)).float()
        # A few exact ties, which top-k keeps together.
        logits[0, 3] = logits[0, 5]
        scores = logits.clone()
        ids = torch.zeros(1, 1, dtype=torch.long)
        if temperature != 1.0:
            scores = TemperatureLogitsWarper(temperature)(ids, scores)
        if top_k:
            scores = TopKLogitsWarper(top_k=top_k)(ids, scores)
        if top_p < 1.0:
            scores = TopPLogitsWarper(top_p=top_p)(ids, scores)
        if min_p is not None:
            scores = MinPLogitsWarper(min_p=min_p)(ids, scores)
        probs = torch.softmax(scores, dim=-1)[0]
        cases.append({
            "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "min_p": min_p if min_p is not None else 0.0,
            "logits": [float(v) for v in logits[0]],
            "kept": [int(v) for v in torch.nonzero(probs > 0)[:, 0]],
            "probs": [float(v) for v in probs],
        })
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"transformers_version": transformers.__version__,
                   "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
