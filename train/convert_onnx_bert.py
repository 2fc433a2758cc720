#!/usr/bin/env python3
"""Turn an ONNX export of a BERT encoder (as LangChain4j's jars carry) into a Hugging Face BERT
folder that convert_hf_bert.py reads, or straight into a diffrank model directory.

  convert_onnx_bert.py MODEL.onnx TOKENIZER.json OUT_DIR --pooling cls|mean
      [--query-prefix S] [--document-prefix S] [--max-length 512]
      [--diffrank --architecture baseline|diffattn-v2 --model-id ID]

Without --diffrank, OUT_DIR becomes a Hugging Face folder (config.json, model.safetensors in
float32, vocab.txt, tokenizer_config.json and the sentence-transformers pooling files).
With --diffrank, OUT_DIR is a diffrank model directory (fp16 safetensors, --dtype float32 for
exact parity checks; the exact DiffAttn V2
retrofit with --architecture diffattn-v2) and the prefixes go into its config.json.

How the weights are found: the exports name embeddings, biases and LayerNorms as Hugging Face
does (encoder.layer.N.attention.self.query.bias, ...) but the MatMul weights are anonymous
initializers. Each linear is a MatMul(x, W) feeding Add(., bias): the converter walks from every
"*.bias" Add back to its MatMul and takes W (stored [in, out]; Hugging Face keeps [out, in]).
Sizes come from the tensors; the head count from the attention Reshape's shape constants (checked
against --num-heads when given). The tokenizer's vocabulary (WordPiece, ids in order) and its
lower-casing come from tokenizer.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _onnx():
    try:
        import onnx  # noqa: F401
        from onnx import numpy_helper  # noqa: F401
    except ImportError as e:  # pragma: no cover - message for users
        raise SystemExit("convert_onnx_bert.py needs the onnx package: "
                         ".venv/bin/pip install -r train/requirements-onnx.txt") from e
    import onnx
    from onnx import numpy_helper
    return onnx, numpy_helper


def read_onnx_state(path: str, num_heads: int | None = None) -> tuple[dict, dict]:
    """Returns (Hugging Face state dict of numpy arrays, inferred sizes)."""
    onnx, numpy_helper = _onnx()
    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    state = {}
    for name, t in inits.items():
        if name.startswith(("embeddings.", "encoder.", "pooler.")):
            state[name] = numpy_helper.to_array(t).astype(np.float32)
    for n in g.node:
        if n.op_type != "Add":
            continue
        bias = [i for i in n.input if i in inits and i.endswith(".bias")]
        if len(bias) != 1 or "LayerNorm" in bias[0]:
            continue
        other = [i for i in n.input if i != bias[0]][0]
        mm = producer.get(other)
        if mm is None or mm.op_type != "MatMul":
            continue
        w = [i for i in mm.input if i in inits]
        if len(w) != 1:
            raise ValueError(f"{path}: the MatMul before {bias[0]} has no single weight")
        arr = numpy_helper.to_array(inits[w[0]]).astype(np.float32)
        state[bias[0][:-len(".bias")] + ".weight"] = np.ascontiguousarray(arr.T)
    layers = sorted({int(m.group(1)) for k in state
                     for m in [re.match(r"encoder\.layer\.(\d+)\.", k)] if m})
    if not layers or layers != list(range(len(layers))):
        raise ValueError(f"{path}: no encoder.layer.N tensors in order; not a BERT export")
    for i in layers:
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            k = f"encoder.layer.{i}.{part}.weight"
            if k not in state:
                raise ValueError(f"{path}: found no MatMul weight for {k}")
    hidden = state["embeddings.word_embeddings.weight"].shape[1]
    # Heads: the attention reshapes q/k/v to [batch, len, heads, head_dim], the shape being a
    # Concat whose last two inputs are constants.
    heads = set()
    for n in g.node:
        if n.op_type != "Reshape" or "/attention/self/" not in n.name:
            continue
        cat = producer.get(n.input[1])
        if cat is None or cat.op_type != "Concat" or len(cat.input) != 4:
            continue
        tail = [consts.get(i) for i in cat.input[2:]]
        if all(t is not None and t.size == 1 for t in tail):
            h, d = int(tail[0].reshape(-1)[0]), int(tail[1].reshape(-1)[0])
            if h > 0 and h * d == hidden:
                heads.add(h)
    if num_heads is None:
        if len(heads) != 1:
            raise ValueError(f"{path}: cannot tell the head count ({sorted(heads)}); "
                             "pass --num-heads")
        num_heads = heads.pop()
    elif heads and num_heads not in heads:
        raise ValueError(f"{path}: --num-heads {num_heads} but the graph reshapes to "
                         f"{sorted(heads)}")
    sizes = dict(
        vocab_size=int(state["embeddings.word_embeddings.weight"].shape[0]),
        hidden_size=int(hidden), num_hidden_layers=len(layers), num_attention_heads=num_heads,
        intermediate_size=int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(state["embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=int(state["embeddings.token_type_embeddings.weight"].shape[0]))
    return state, sizes


def read_tokenizer(path: str) -> tuple[list[str], bool]:
    """WordPiece vocabulary in id order and whether the normalizer lower-cases."""
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok.get("model", {})
    if model.get("type") != "WordPiece":
        raise ValueError(f"{path}: model.type is {model.get('type')!r}; only WordPiece")
    vocab = model["vocab"]
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise ValueError(f"{path}: vocabulary ids are not 0..{len(ids) - 1}")
    by_id = [""] * len(ids)
    for t, i in vocab.items():
        by_id[i] = t
    norm = tok.get("normalizer") or {}
    lower = bool(norm.get("lowercase", True)) if norm.get("type") == "BertNormalizer" else True
    return by_id, lower


def write_hf_dir(onnx_path: str, tokenizer_path: str, out: str, pooling: str, max_length: int,
                 num_heads: int | None = None) -> None:
    from safetensors.numpy import save_file
    state, sizes = read_onnx_state(onnx_path, num_heads)
    vocab, lower = read_tokenizer(tokenizer_path)
    if len(vocab) != sizes["vocab_size"]:
        raise ValueError(f"{tokenizer_path}: {len(vocab)} tokens, the model has "
                         f"{sizes['vocab_size']} embeddings")
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    cfg = dict(model_type="bert", architectures=["BertModel"], hidden_act="gelu",
               layer_norm_eps=1e-12, position_embedding_type="absolute", **sizes)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()},
              os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": lower}, f)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": sizes["hidden_size"],
                   "pooling_mode_cls_token": pooling == "cls",
                   "pooling_mode_mean_tokens": pooling == "mean"}, f)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": max_length, "do_lower_case": lower}, f)


def convert_to_diffrank(onnx_path: str, tokenizer_path: str, out: str, pooling: str,
                        max_length: int, architecture: str, model_id: str,
                        query_prefix: str = "", document_prefix: str = "",
                        num_heads: int | None = None, dtype: str = "float32"):
    from convert_hf_bert import convert
    from diffrank_ref.model import save_model_dir
    with tempfile.TemporaryDirectory() as hf:
        write_hf_dir(onnx_path, tokenizer_path, hf, pooling, max_length, num_heads)
        model = convert(hf, "bi-encoder", architecture, model_id)
        model.cfg.query_prefix = query_prefix
        model.cfg.document_prefix = document_prefix
        import torch
        save_model_dir(model, out, os.path.join(hf, "vocab.txt"),
                       {"float32": torch.float32, "float16": torch.float16}[dtype])
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("tokenizer")
    ap.add_argument("out_dir")
    ap.add_argument("--pooling", required=True, choices=["cls", "mean"])
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--num-heads", type=int, default=None)
    ap.add_argument("--query-prefix", default="")
    ap.add_argument("--document-prefix", default="")
    ap.add_argument("--diffrank", action="store_true",
                    help="write a diffrank model directory instead of a Hugging Face folder")
    ap.add_argument("--architecture", default="diffattn-v2", choices=["baseline", "diffattn-v2"])
    ap.add_argument("--model-id", default="")
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"],
                    help="weights of the diffrank directory (float16: the shipped form)")
    a = ap.parse_args()
    if a.diffrank:
        m = convert_to_diffrank(a.onnx, a.tokenizer, a.out_dir, a.pooling, a.max_length,
                                a.architecture, a.model_id, a.query_prefix, a.document_prefix,
                                a.num_heads, a.dtype)
        print(f"wrote {a.out_dir} ({m.cfg.architecture}, "
              f"{sum(p.numel() for p in m.parameters())} parameters)")
    else:
        if a.query_prefix or a.document_prefix:
            ap.error("prefixes go into a diffrank directory (--diffrank)")
        write_hf_dir(a.onnx, a.tokenizer, a.out_dir, a.pooling, a.max_length, a.num_heads)
        print(f"wrote {a.out_dir} (Hugging Face BERT folder)")


if __name__ == "__main__":
    main()
