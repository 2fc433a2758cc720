#!/usr/bin/env python3
"""Convert a Hugging Face BERT checkpoint directory into a diffrank model directory.

  convert_hf_bert.py HF_DIR OUT_DIR [--role bi-encoder|cross-encoder]
                     [--architecture baseline|diffattn-v2] [--model-id ID]

HF_DIR holds config.json (model_type "bert"), model.safetensors or pytorch_model.bin, and
vocab.txt; a sentence-transformers folder (modules.json, 1_Pooling/config.json,
sentence_bert_config.json) sets pooling, normalization and max length. A cross-encoder needs a
BertForSequenceClassification checkpoint with one label (pooler + classifier).
--architecture diffattn-v2 retrofits the attention exactly (see diffrank_ref/retrofit.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffrank_ref.model import DiffrankConfig, DiffrankModel, save_model_dir  # noqa: E402
from diffrank_ref.retrofit import retrofit_v2  # noqa: E402

ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "relu": "relu"}


def _read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def load_state(hf_dir: str) -> dict:
    st = os.path.join(hf_dir, "model.safetensors")
    if os.path.exists(st):
        from safetensors.torch import load_file
        return load_file(st)
    binf = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.exists(binf):
        return torch.load(binf, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{hf_dir}: no model.safetensors or pytorch_model.bin")


def hf_name(name: str) -> str:
    """Maps a diffrank tensor name to the Hugging Face BERT name."""
    parts = name.split(".")
    if parts[0] == "embeddings":
        return {"word": "embeddings.word_embeddings", "position": "embeddings.position_embeddings",
                "token_type": "embeddings.token_type_embeddings",
                "norm": "embeddings.LayerNorm"}[parts[1]] + "." + parts[2]
    if parts[0] == "head":
        return {"pooler": "pooler.dense", "out": "classifier"}[parts[1]] + "." + parts[2]
    n, rest = parts[1], ".".join(parts[2:])
    table = {"attn.q": "attention.self.query", "attn.k": "attention.self.key",
             "attn.v": "attention.self.value", "attn.o": "attention.output.dense",
             "attn_norm": "attention.output.LayerNorm", "ffn.up": "intermediate.dense",
             "ffn.down": "output.dense", "ffn_norm": "output.LayerNorm"}
    stem, leaf = rest.rsplit(".", 1)
    return f"encoder.layer.{n}.{table[stem]}.{leaf}"


def convert(hf_dir: str, role: str = "bi-encoder", architecture: str = "baseline",
            model_id: str = "") -> DiffrankModel:
    hf = _read_json(os.path.join(hf_dir, "config.json"))
    if hf is None or hf.get("model_type") != "bert":
        raise ValueError(f"{hf_dir}/config.json: model_type must be 'bert'")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    act = hf.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {act!r}")
    st_cfg = _read_json(os.path.join(hf_dir, "sentence_bert_config.json"), {})
    pool_cfg = _read_json(os.path.join(hf_dir, "1_Pooling", "config.json"), {})
    modules = _read_json(os.path.join(hf_dir, "modules.json"), [])
    tok_cfg = _read_json(os.path.join(hf_dir, "tokenizer_config.json"), {})
    pooling = "cls" if pool_cfg.get("pooling_mode_cls_token") else "mean"
    if pool_cfg.get("pooling_mode_max_tokens") or pool_cfg.get("pooling_mode_mean_sqrt_len_tokens"):
        raise ValueError("only mean or CLS pooling is supported")
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    if not modules:
        normalize = True  # plain BERT used as an embedder: cosine-ready output
    cfg = DiffrankConfig(
        architecture="baseline", role=role, vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"], num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"],
        type_vocab_size=hf.get("type_vocab_size", 2),
        max_length=min(st_cfg.get("max_seq_length", hf["max_position_embeddings"]),
                       hf["max_position_embeddings"]),
        norm="post", layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
        activation=ACTIVATIONS[act], attention_bias=True, mlp_bias=True,
        pooling=pooling, normalize=normalize,
        lower_case=bool(tok_cfg.get("do_lower_case", True)),
        model_id=model_id or os.path.basename(os.path.normpath(hf_dir)))
    state = load_state(hf_dir)
    # Strip a model prefix ("bert.") and accept old gamma/beta LayerNorm names.
    clean = {}
    for k, v in state.items():
        k = k[5:] if k.startswith("bert.") else k
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        clean[k] = v
    model = DiffrankModel(cfg)
    new_state = {}
    for name, t in model.state_dict().items():
        src = hf_name(name)
        if src not in clean:
            raise ValueError(f"{hf_dir}: checkpoint has no tensor {src} (for {name})")
        if tuple(clean[src].shape) != tuple(t.shape):
            raise ValueError(f"{hf_dir}: {src} has shape {tuple(clean[src].shape)}, "
                             f"expected {tuple(t.shape)}")
        new_state[name] = clean[src].float()
    model.load_state_dict(new_state)
    model.eval()
    if architecture == "diffattn-v2":
        model = retrofit_v2(model)
    elif architecture != "baseline":
        raise ValueError("--architecture must be baseline or diffattn-v2")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--role", default="bi-encoder", choices=["bi-encoder", "cross-encoder"])
    ap.add_argument("--architecture", default="baseline", choices=["baseline", "diffattn-v2"])
    ap.add_argument("--model-id", default="")
    a = ap.parse_args()
    model = convert(a.hf_dir, a.role, a.architecture, a.model_id)
    save_model_dir(model, a.out_dir, os.path.join(a.hf_dir, "vocab.txt"))
    print(f"wrote {a.out_dir} ({model.cfg.architecture}, {model.cfg.role}, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
