"""Retrofit a baseline-attention model into DiffAttn V2, exactly (DIFFATTN.md).

Each output head i of the baseline becomes the pair (2i, 2i+1) with the same query weights
(so both attention maps are equal), W_lambda = 0 (lambda = sigmoid(0) = 0.5, the pair yields
0.5 * attn) and W_o * 2. The retrofitted model computes what the baseline computes; training
then separates the two maps because their gradients differ.
"""
from __future__ import annotations

import copy
import dataclasses

import torch

from .model import DiffrankConfig, DiffrankModel


def retrofit_v2(baseline: DiffrankModel) -> DiffrankModel:
    cfg = baseline.cfg
    if cfg.architecture != "baseline":
        raise ValueError(f"retrofit_v2 needs a baseline model, got {cfg.architecture}")
    new_cfg = dataclasses.replace(copy.deepcopy(cfg), architecture="diffattn-v2")
    model = DiffrankModel(new_cfg)
    src = baseline.state_dict()
    dst = model.state_dict()
    h, dh = cfg.num_heads, cfg.head_dim
    with torch.no_grad():
        for name, t in dst.items():
            if name.endswith("attn.q.weight"):
                w = src[name].view(h, 1, dh, -1).expand(h, 2, dh, src[name].shape[1])
                t.copy_(w.reshape(2 * h * dh, -1))
            elif name.endswith("attn.q.bias"):
                t.copy_(src[name].view(h, 1, dh).expand(h, 2, dh).reshape(-1))
            elif name.endswith("attn.lambda.weight"):
                t.zero_()
            elif name.endswith("attn.o.weight"):
                t.copy_(2 * src[name])
            else:
                t.copy_(src[name])
    return model.eval()
