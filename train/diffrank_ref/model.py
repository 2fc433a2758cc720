"""PyTorch reference of the diffrank encoder: attention kinds, layouts, roles.

Reads and writes the same model directory as the C++ runtime (encoder/):
config.json, model.safetensors (tensor names documented in encoder/model_config.h)
and vocab.txt. Attention math follows shared DIFFATTN.md:
  baseline     plain multi-head / grouped-query attention;
  diffattn-v2  2H query heads over shared K/V groups (pair 2i, 2i+1 in one group),
               out_i = attn_2i - sigmoid(W_lambda x)_i * attn_2i+1, no per-head norm;
  diffattn-v1  2H half-size Q/K heads, V with H heads of 2*d_h,
               A = softmax1 - lambda * softmax2, lambda = exp(lq1.lk1) - exp(lq2.lk2) + lambda_init,
               per-head RMSNorm (eps 1e-5) times (1 - lambda_init).
Bidirectional, with a key-padding mask.

Cross-encoders have two pair layouts (config `pair_mode`):
  joint     [CLS] q [SEP] p [SEP], full attention, head = logit(tanh(pooler(h_CLS)));
  segments  the bi-encoder's two inputs side by side ([CLS] q [SEP] | [CLS] p [SEP], positions
            restarting at the passage), each token attending within its own segment by one
            softmax and to the other segment by a second softmax scaled by a learned gate per
            attention head and layer (`layers.i.attn.cross_gate`, starts at 0); the head is
            scale * cos(mean(query tokens), mean(passage tokens)) + logit(tanh(pooler(h_0))).
            With gates 0 and the logit layer 0 the score is exactly the bi-encoder's cosine
            (times scale), so training starts from the dense score and opens cross-segment
            (DiffAttn) attention from there. Not defined for diffattn-v1.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ARCHITECTURES = ("diffattn-v2", "diffattn-v1", "baseline")
ROLES = ("bi-encoder", "cross-encoder")
PAIR_MODES = ("joint", "segments")


@dataclasses.dataclass
class DiffrankConfig:
    architecture: str = "diffattn-v2"
    role: str = "bi-encoder"
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    num_kv_heads: Optional[int] = None
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    max_length: Optional[int] = None
    norm: str = "post"
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    attention_bias: bool = True
    mlp_bias: bool = True
    pooling: str = "mean"
    normalize: bool = True
    lower_case: bool = True
    pair_mode: str = "joint"
    max_query_length: int = 32
    model_id: str = ""
    # Text put before every query / document before tokenizing (bi-encoders trained with
    # instructions: bge "Represent this sentence for searching relevant passages: ", e5
    # "query: " / "passage: "). Empty for models trained without.
    query_prefix: str = ""
    document_prefix: str = ""
    # Cross-encoders: {"scale": a, "bias": b}; relevance = sigmoid(a * logit + b)
    # (train/fit_calibration.py). None = the plain sigmoid.
    calibration: Optional[dict] = None

    def __post_init__(self):
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        if self.max_length is None:
            self.max_length = self.max_position_embeddings
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}")
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        width_heads = 2 * self.num_heads if self.architecture == "diffattn-v1" else self.num_heads
        if self.hidden_size % width_heads:
            raise ValueError("hidden_size must be divisible by the number of query heads")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_kv_heads must divide num_heads")
        if self.pair_mode not in PAIR_MODES:
            raise ValueError(f"unknown pair_mode {self.pair_mode!r}")
        if self.pair_mode == "segments":
            if self.role != "cross-encoder" or self.architecture == "diffattn-v1":
                raise ValueError("pair_mode 'segments' needs a diffattn-v2 or baseline cross-encoder")
            if not 3 <= self.max_query_length <= self.max_length - 3:
                raise ValueError("max_query_length must be in [3, max_length - 3]")

    @property
    def segments(self) -> bool:
        return self.role == "cross-encoder" and self.pair_mode == "segments"

    @property
    def attention_heads(self) -> int:
        """Query heads of the softmax attention (2H for diffattn-v2)."""
        return 2 * self.num_heads if self.architecture == "diffattn-v2" else self.num_heads

    @property
    def head_dim(self) -> int:
        if self.architecture == "diffattn-v1":
            return self.hidden_size // (2 * self.num_heads)
        return self.hidden_size // self.num_heads

    def to_json(self) -> dict:
        d = {"format": "diffrank-model", "format_version": 1}
        d.update(dataclasses.asdict(self))
        if not self.segments:  # joint-layout directories stay byte-identical to before
            d.pop("pair_mode")
            d.pop("max_query_length")
        for k in ("query_prefix", "document_prefix", "calibration"):  # absent when empty
            if not d[k]:
                d.pop(k)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "DiffrankConfig":
        d = dict(d)
        if d.pop("format", None) != "diffrank-model":
            raise ValueError("config.json: format must be 'diffrank-model'")
        if d.pop("format_version", None) != 1:
            raise ValueError("config.json: format_version must be 1")
        return cls(**d)


def lambda_init(layer: int) -> float:
    return 0.8 - 0.6 * math.exp(-0.3 * layer)


def _linear(i: int, o: int, bias: bool) -> nn.Linear:
    return nn.Linear(i, o, bias=bias)


class Attention(nn.Module):
    def __init__(self, cfg: DiffrankConfig, layer: int):
        super().__init__()
        self.cfg = cfg
        d, h, hkv, dh = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        b = cfg.attention_bias
        arch = cfg.architecture
        q_out, k_out, v_out = h * dh, hkv * dh, hkv * dh
        if arch == "diffattn-v2":
            q_out = 2 * h * dh
        if arch == "diffattn-v1":
            q_out, k_out, v_out = 2 * h * dh, 2 * hkv * dh, hkv * 2 * dh
        self.q = _linear(d, q_out, b)
        self.k = _linear(d, k_out, b)
        self.v = _linear(d, v_out, b)
        self.o = _linear(d, d, b)
        self.lambda_init = lambda_init(layer)
        if arch == "diffattn-v2":
            self.__setattr__("lambda", nn.Linear(d, h, bias=False))
        if arch == "diffattn-v1":
            for n in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
                setattr(self, n, nn.Parameter(torch.zeros(dh).normal_(0, 0.1)))
            self.subln = nn.RMSNorm(2 * dh, eps=1e-5, elementwise_affine=True)
        if cfg.segments:
            self.cross_gate = nn.Parameter(torch.zeros(cfg.attention_heads))

    @staticmethod
    def _heads(x, n, size):
        b, t, _ = x.shape
        return x.view(b, t, n, size).transpose(1, 2)

    def _attend(self, q, k, v, key_mask, same):
        """softmax attention; with `same` ([B, 1, T, T] bool, same segment) the segments
        layout: within-segment softmax + cross_gate x cross-segment softmax."""
        if same is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        s = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1)).float()
        s = s.masked_fill(~key_mask, float("-inf"))
        within = s.masked_fill(~same, float("-inf")).softmax(-1)
        cross = s.masked_fill(same, float("-inf")).softmax(-1)
        p = within + self.cross_gate.float().view(1, -1, 1, 1) * cross
        return torch.matmul(p.to(v.dtype), v)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor,
                same: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x [B, T, d]; key_mask [B, 1, 1, T] bool, True = attend; same [B, 1, T, T] bool
        (segments layout only)."""
        cfg = self.cfg
        b, t, _ = x.shape
        h, hkv, dh = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        arch = cfg.architecture
        if arch == "baseline":
            q = self._heads(self.q(x), h, dh)
            k = self._heads(self.k(x), hkv, dh).repeat_interleave(h // hkv, 1)
            v = self._heads(self.v(x), hkv, dh).repeat_interleave(h // hkv, 1)
            out = self._attend(q, k, v, key_mask, same)
            out = out.transpose(1, 2).reshape(b, t, h * dh)
        elif arch == "diffattn-v2":
            rep = 2 * h // hkv  # even, so heads 2i and 2i+1 share a K/V group
            q = self._heads(self.q(x), 2 * h, dh)
            k = self._heads(self.k(x), hkv, dh).repeat_interleave(rep, 1)
            v = self._heads(self.v(x), hkv, dh).repeat_interleave(rep, 1)
            a = self._attend(q, k, v, key_mask, same)
            a = a.transpose(1, 2).reshape(b, t, h, 2, dh)
            lam = torch.sigmoid(getattr(self, "lambda")(x)).unsqueeze(-1)
            out = (a[:, :, :, 0] - lam * a[:, :, :, 1]).reshape(b, t, h * dh)
        else:  # diffattn-v1
            rep = h // hkv
            q = self._heads(self.q(x), 2 * h, dh)
            k = self._heads(self.k(x), 2 * hkv, dh).repeat_interleave(rep, 1)
            v = self._heads(self.v(x), hkv, 2 * dh).repeat_interleave(rep, 1)
            scores = torch.matmul(q * dh ** -0.5, k.transpose(-2, -1))
            scores = scores.masked_fill(~key_mask, float("-inf"))
            p = scores.softmax(-1).view(b, h, 2, t, t)
            lam = (torch.exp((self.lambda_q1 * self.lambda_k1).sum().float())
                   - torch.exp((self.lambda_q2 * self.lambda_k2).sum().float())
                   + self.lambda_init).to(p.dtype)
            o = torch.matmul(p[:, :, 0] - lam * p[:, :, 1], v)
            o = self.subln(o) * (1 - self.lambda_init)
            out = o.transpose(1, 2).reshape(b, t, 2 * h * dh)
        return self.o(out)


class Ffn(nn.Module):
    def __init__(self, cfg: DiffrankConfig):
        super().__init__()
        self.up = _linear(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias)
        self.down = _linear(cfg.intermediate_size, cfg.hidden_size, cfg.mlp_bias)
        self.activation = cfg.activation

    def forward(self, x):
        u = self.up(x)
        if self.activation == "gelu":
            u = F.gelu(u)
        elif self.activation == "gelu_tanh":
            u = F.gelu(u, approximate="tanh")
        else:
            u = F.relu(u)
        return self.down(u)


class Layer(nn.Module):
    def __init__(self, cfg: DiffrankConfig, index: int):
        super().__init__()
        self.cfg = cfg
        self.attn = Attention(cfg, index)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = Ffn(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, key_mask, same=None):
        if self.cfg.norm == "post":
            x = self.attn_norm(x + self.attn(x, key_mask, same))
            return self.ffn_norm(x + self.ffn(x))
        x = x + self.attn(self.attn_norm(x), key_mask, same)
        return x + self.ffn(self.ffn_norm(x))


class Embeddings(nn.Module):
    def __init__(self, cfg: DiffrankConfig):
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        if cfg.type_vocab_size > 0:
            self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids, type_ids, positions=None):
        if positions is None:
            x = self.word(ids) + self.position.weight[: ids.shape[1]].unsqueeze(0)
        else:
            x = self.word(ids) + self.position(positions)
        if hasattr(self, "token_type"):
            x = x + self.token_type(type_ids)
        return self.norm(x)


class Head(nn.Module):
    def __init__(self, cfg: DiffrankConfig):
        super().__init__()
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, 1)
        if cfg.segments:
            self.scale = nn.Parameter(torch.full((1,), 20.0))

    def forward(self, cls):
        return self.out(torch.tanh(self.pooler(cls))).squeeze(-1)


def segment_cosine(x, mask, segment):
    """Cosine of the mean-pooled query (segment 0) and passage (segment 1) tokens."""
    x = x.float()
    m = mask.float()
    out = []
    for sid in (0, 1):
        w = (m * (segment == sid).float()).unsqueeze(-1)
        pooled = (x * w).sum(1) / w.sum(1).clamp_min(1e-9)
        out.append(F.normalize(pooled, p=2, dim=-1, eps=1e-12))
    return (out[0] * out[1]).sum(-1)


class DiffrankModel(nn.Module):
    """Bi-encoder (pooled, optionally L2-normalized embeddings) or cross-encoder (one logit)."""

    def __init__(self, cfg: DiffrankConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg, i) for i in range(cfg.num_layers))
        if cfg.norm == "pre":
            self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        if cfg.role == "cross-encoder":
            self.head = Head(cfg)

    def hidden(self, ids, type_ids, mask, positions=None, segment=None):
        x = self.embeddings(ids, type_ids, positions)
        key_mask = mask.bool()[:, None, None, :]
        same = None
        if segment is not None:
            same = (segment[:, :, None] == segment[:, None, :])[:, None]
        for layer in self.layers:
            x = layer(x, key_mask, same)
        if self.cfg.norm == "pre":
            x = self.final_norm(x)
        return x

    def forward(self, ids, type_ids, mask, positions=None, segment=None):
        """Bi-encoders and joint cross-encoders take ids, type ids and mask; segments
        cross-encoders also take positions and segment ids [B, T] (pair_inputs())."""
        if self.cfg.segments and segment is None:
            raise ValueError("a segments cross-encoder needs positions and segment ids")
        x = self.hidden(ids, type_ids, mask, positions, segment if self.cfg.segments else None)
        if self.cfg.segments:
            cos = segment_cosine(x, mask, segment)
            return (self.head.scale.float() * cos + self.head(x[:, 0]).float()).float()
        if self.cfg.role == "cross-encoder":
            return self.head(x[:, 0]).float()
        if self.cfg.pooling == "cls":
            pooled = x[:, 0].float()
        else:
            m = mask.float().unsqueeze(-1)
            pooled = (x.float() * m).sum(1) / m.sum(1).clamp_min(1e-9)
        if self.cfg.normalize:
            pooled = F.normalize(pooled, p=2, dim=-1, eps=1e-12)
        return pooled

    def init_random(self, seed: int = 0, std: float = 0.02) -> "DiffrankModel":
        """Random initialization (BERT-style normal(0, std)), for tests and from-scratch training."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight") or name.endswith("subln.weight"):
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
                elif name.endswith("bias") or name.endswith("norm.bias"):
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))
                elif name.endswith("cross_gate") or name == "head.scale":
                    p.copy_(0.1 * torch.randn(p.shape, generator=g) + (20.0 if name == "head.scale" else 0))
                elif ".lambda_" in name:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(std * torch.randn(p.shape, generator=g))
        return self


def tensor_name(param_name: str) -> str:
    """Module parameter names already are the documented tensor names, but for V1's RMSNorm."""
    return param_name


def save_model_dir(model: DiffrankModel, path: str, vocab_file: str,
                   dtype: torch.dtype = torch.float32) -> None:
    """Writes config.json, model.safetensors (float32, or float16 / bfloat16 to halve the size;
    the C++ runtime reads all three) and vocab.txt to `path`."""
    os.makedirs(path, exist_ok=True)
    cfg = model.cfg
    with open(vocab_file, encoding="utf-8") as f:
        vocab = f.read()
    n = len(vocab.rstrip("\n").split("\n"))
    if n != cfg.vocab_size:
        raise ValueError(f"{vocab_file} has {n} tokens but vocab_size is {cfg.vocab_size}")
    state = {tensor_name(k): v.detach().to(dtype).contiguous().cpu()
             for k, v in model.state_dict().items()}
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg.to_json(), f, indent=2)
        f.write("\n")
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write(vocab if vocab.endswith("\n") else vocab + "\n")


def load_model_dir(path: str, device: str = "cpu") -> DiffrankModel:
    with open(os.path.join(path, "config.json")) as f:
        cfg = DiffrankConfig.from_json(json.load(f))
    model = DiffrankModel(cfg)
    state = load_file(os.path.join(path, "model.safetensors"))
    state = {k: v.float() for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: missing tensors {missing}, unexpected {unexpected}")
    return model.to(device).eval()
