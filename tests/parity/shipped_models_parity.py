#!/usr/bin/env python3
"""The shipped models (models/diffrank-embed-v2, models/diffrank-rerank-v3 and -v2) give the same
outputs in the C++ runtime as in the PyTorch reference.

  shipped_models_parity.py --encode BUILD/encoder/diffrank-encode --workdir DIR [--models DIR]
Bi-encoder: 240 varied texts (corpus passages, questions, multi-script, edge cases, some
truncated), min cosine C++ vs PyTorch >= 0.9999. Cross-encoder: 240 (query, passage) pairs,
max |logit difference| <= 1e-3 (float32 on both sides); the C++ reranker in int8
(--precision int8, dynamic quantization) keeps the float32 reference's order: Spearman >= 0.99
(on a CPU without VNNI that is the 7-bit activation path; `ctest -R avx2` runs it anywhere).
Each is checked twice: in batches of 32, and each text or pair alone on 2 threads (a query's
path: row tasks up to 64 tokens).
"""
import argparse
import json
import os
import random
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "train"))
import common  # noqa: E402
from diffrank_ref.model import load_model_dir  # noqa: E402
from diffrank_ref.retrieval import embed, score_pairs  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402


def run_cpp(encode, model, jsonl, out, precision="fp32", one_at_a_time=False):
    """one_at_a_time: each text (pair) alone on 2 threads, as a query runs in the server: up to
    64 tokens a projection runs as row tasks (encoder/cpu_linear.h), both threads in one region,
    a different path from the batches of 32."""
    extra = ["--batch_size", "1", "--threads", "2"] if one_at_a_time else []
    subprocess.run([encode, "--model", model, "--input", jsonl, "--output", out,
                    "--precision", precision] + extra, check=True, capture_output=True)
    return load_file(out)["output"].numpy()


def spearman(a, b):
    """Spearman rank correlation (no ties in float logits)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(a.workdir, exist_ok=True)
    texts = common.corpus_texts(60) + common.synthetic_texts(120, seed=3)
    random.Random(3).shuffle(texts)  # every kind of text in the sample
    texts = texts[:240]
    assert len(texts) >= 200

    bdir = os.path.join(a.models, "diffrank-embed-v2")
    jsonl = os.path.join(a.workdir, "texts.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    model = load_model_dir(bdir)
    ref = embed(model, load_tokenizer(bdir, model.cfg.lower_case), texts, model.cfg.max_length)
    ok = True
    for alone in (False, True):
        cpp = run_cpp(a.encode, bdir, jsonl, os.path.join(a.workdir, "embed.safetensors"),
                      one_at_a_time=alone)
        cos = (cpp * ref).sum(1) / np.linalg.norm(cpp, axis=1) / np.linalg.norm(ref, axis=1)
        print(json.dumps({"model": "diffrank-embed-v2", "texts": len(texts), "alone": alone,
                          "min_cosine": float(cos.min())}))
        ok = ok and cos.min() >= 0.9999

    pairs = [(texts[i], texts[(i * 7 + 3) % len(texts)]) for i in range(len(texts))]
    jsonl = os.path.join(a.workdir, "pairs.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for q, p in pairs:
            f.write(json.dumps({"query": q, "passage": p}, ensure_ascii=False) + "\n")
    # diffrank-rerank-v3 carries e5's prefixes: both runtimes put them before each side.
    for name in ("diffrank-rerank-v3", "diffrank-rerank-v2"):
        rdir = os.path.join(a.models, name)
        model = load_model_dir(rdir)
        tok = load_tokenizer(rdir, model.cfg.lower_case)
        ref_logits = np.array([score_pairs(model, tok, q, [p], model.cfg.max_length)[0]
                               for q, p in pairs])
        for alone in (False, True):
            cpp_logits = run_cpp(a.encode, rdir, jsonl, os.path.join(a.workdir, name + ".st"),
                                 one_at_a_time=alone)
            diff = float(np.abs(cpp_logits - ref_logits).max())
            print(json.dumps({"model": name, "pairs": len(pairs), "alone": alone,
                              "max_abs_diff": diff}))
            int8 = run_cpp(a.encode, rdir, jsonl, os.path.join(a.workdir, name + "-int8.st"),
                           "int8", one_at_a_time=alone)
            rho = spearman(int8, ref_logits)
            print(json.dumps({"model": name, "precision": "int8", "pairs": len(pairs),
                              "alone": alone, "spearman_vs_float32": rho,
                              "max_abs_diff": float(np.abs(int8 - ref_logits).max()),
                              "logit_std": float(ref_logits.std())}))
            ok = ok and diff <= 1e-3 and rho >= 0.99
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
