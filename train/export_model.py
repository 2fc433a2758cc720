#!/usr/bin/env python3
"""Exports a trained model directory for shipping: float16 weights (half the size; the C++
runtime computes in float32 or bfloat16 either way), a new model id, same vocabulary.

  .venv/bin/python train/export_model.py SRC_DIR DEST_DIR --model-id ID [--dtype float16]
Checks that the exported model gives the same outputs as the source (max |diff| printed).
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.model import load_model_dir, save_model_dir  # noqa: E402
from diffrank_ref.retrieval import pair_logits  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    a = ap.parse_args()
    model = load_model_dir(a.src)
    model.cfg.model_id = a.model_id
    save_model_dir(model, a.dest, os.path.join(a.src, "vocab.txt"), getattr(torch, a.dtype))
    again = load_model_dir(a.dest)
    tok = load_tokenizer(a.src, model.cfg.lower_case)
    texts = ["how do airplanes stay in the air", "Lift is produced by the wing."]
    with torch.inference_mode():
        if model.cfg.role == "cross-encoder":
            ml = model.cfg.max_length
            diff = (pair_logits(model, tok, texts[:1], texts[1:], ml)
                    - pair_logits(again, tok, texts[:1], texts[1:], ml)).abs().max().item()
        else:
            enc = tok(texts, return_tensors="pt", padding=True)
            args = (enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
            diff = (model(*args) - again(*args)).abs().max().item()
    print(f"exported {a.dest} ({a.dtype}); max |output diff| vs source: {diff:.2e}")


if __name__ == "__main__":
    main()
