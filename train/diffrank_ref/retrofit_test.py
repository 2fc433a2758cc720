#!/usr/bin/env python3
"""The V2 retrofit of a baseline model computes exactly what the baseline computes (DIFFATTN.md),
for post- and pre-norm layouts, grouped K/V, both roles; and it is a real V2 model (its
lambda projection and duplicated query heads are where the recipe puts them)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.model import DiffrankConfig, DiffrankModel  # noqa: E402
from diffrank_ref.retrofit import retrofit_v2  # noqa: E402


def main():
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for role in ("bi-encoder", "cross-encoder"):
        for extra in ({}, {"norm": "pre", "num_kv_heads": 2}, {"attention_bias": False}):
            cfg = DiffrankConfig(architecture="baseline", role=role, vocab_size=50, hidden_size=48,
                                 num_layers=2, num_heads=4, intermediate_size=64,
                                 max_position_embeddings=16, **extra)
            base = DiffrankModel(cfg).init_random(seed=3, std=0.3).eval()
            v2 = retrofit_v2(base)
            assert v2.cfg.architecture == "diffattn-v2"
            assert torch.count_nonzero(getattr(v2.layers[0].attn, "lambda").weight) == 0
            ids = torch.randint(4, 50, (3, 12), generator=gen)
            mask = torch.ones_like(ids)
            mask[1, 7:] = 0
            types = torch.zeros_like(ids)
            with torch.no_grad():
                err = (base(ids, types, mask) - v2(ids, types, mask)).abs().max().item()
            worst = max(worst, err)
            print(f"{role} {extra}: max |baseline - retrofit| = {err:.2e}")
            if err > 1e-5:
                print("FAIL")
                return 1
    print(f"retrofit identity: ok (worst {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
