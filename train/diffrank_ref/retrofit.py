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


def segments_exact_start(model: DiffrankModel, body_state: dict, scale: float = 20.0):
    """Loads a segments cross-encoder (model.py) so that it scores exactly scale x the cosine
    of the bi-encoder whose weights are `body_state`: the body's tensors, cross-segment gates 0,
    head pooler identity, logit layer 0. Returns the model."""
    cfg = model.cfg
    if not cfg.segments:
        raise ValueError("segments_exact_start needs a pair_mode 'segments' cross-encoder")
    state = dict(body_state)
    for i in range(cfg.num_layers):
        state[f"layers.{i}.attn.cross_gate"] = torch.zeros(cfg.attention_heads)
    state["head.pooler.weight"] = torch.eye(cfg.hidden_size)
    state["head.pooler.bias"] = torch.zeros(cfg.hidden_size)
    state["head.out.weight"] = torch.zeros(1, cfg.hidden_size)
    state["head.out.bias"] = torch.zeros(1)
    state["head.scale"] = torch.full((1,), float(scale))
    model.load_state_dict(state)
    return model
