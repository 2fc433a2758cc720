#!/usr/bin/env python3
"""FFN pruning keeps the most important neurons and computes exactly the wide model with the
other neurons removed: at full width nothing changes; at half width every layer's FFN equals the
wide FFN with the dropped neurons' output columns zeroed; a dominant neuron is always kept."""
import dataclasses
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.model import DiffrankConfig, DiffrankModel  # noqa: E402
from diffrank_ref.prune import ffn_keep, prune_ffn_state  # noqa: E402


def narrowed(model, width):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    prune_ffn_state(state, model.cfg.num_layers, width)
    out = DiffrankModel(dataclasses.replace(model.cfg, intermediate_size=width))
    out.load_state_dict(state)
    return out.eval()


def main():
    gen = torch.Generator().manual_seed(0)
    for bias in (True, False):
        cfg = DiffrankConfig(architecture="diffattn-v2", role="cross-encoder", vocab_size=50,
                             hidden_size=48, num_layers=2, num_heads=4, intermediate_size=64,
                             max_position_embeddings=16, mlp_bias=bias)
        wide = DiffrankModel(cfg).init_random(seed=3, std=0.3).eval()
        with torch.no_grad():
            wide.layers[1].ffn.up.weight[17] *= 50  # neuron 17 of layer 1 dominates
        ids = torch.randint(4, 50, (3, 12), generator=gen)
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        x = torch.randn(3, 12, 48, generator=gen)
        with torch.no_grad():
            same = (wide(ids, types, mask) - narrowed(wide, 64)(ids, types, mask)).abs().max()
            assert same < 1e-6, f"full width changed the model by {same}"
            half = narrowed(wide, 32)
            for n in range(2):
                ffn = wide.layers[n].ffn
                keep = ffn_keep(ffn.up.weight, ffn.down.weight, 32)
                assert keep.numel() == 32 and bool((keep[1:] > keep[:-1]).all())
                if n == 1:
                    assert 17 in keep.tolist(), "the dominant neuron was dropped"
                dropped = torch.ones(64, dtype=torch.bool)
                dropped[keep] = False
                masked = DiffrankModel(cfg).eval()
                masked.load_state_dict(wide.state_dict())
                masked.layers[n].ffn.down.weight[:, dropped] = 0
                err = (masked.layers[n].ffn(x) - half.layers[n].ffn(x)).abs().max()
                assert err < 1e-5, f"layer {n}: pruned FFN differs by {err}"
        try:
            prune_ffn_state(dict(wide.state_dict()), 2, 65)
            raise AssertionError("width 65 > 64 was accepted")
        except ValueError as e:
            assert "FFN width" in str(e)
    print("FFN pruning: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
