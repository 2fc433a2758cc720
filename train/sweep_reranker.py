#!/usr/bin/env python3
"""The reranker's quality / latency curve in the C++ runtime the server runs: layers,
sequence length and precision against nDCG@10 and milliseconds (issue 4).

  .venv/bin/python train/sweep_reranker.py --reranker DIR [--reranker DIR ...] \
      --beir DIR [--beir DIR ...] [--max-len 64,128,256] [--precision fp32,bf16,int8] \
      [--measure quality,latency] [--build build]

For every reranker x max length x precision it prints one JSON object per line:
- quality: nDCG@10 / MRR@10 after reranking the hybrid top --depth (the shipped bi-encoder +
  FTS5 BM25 fused by RRF, exactly as scripts/eval), the pairs scored by `diffrank-encode`;
- latency: p50 / p90 ms of `diffrank-encoder-bench` for --pairs pairs of exactly max-length
  tokens in one batch on DIFFRANK_THREADS threads (default 2), and the ratio to the float32 run
  of the same model and length in the same script.
Precision: fp32; bf16 (weights and activations); int8 (dynamic quantization of the
projections, encoder/quantized_linear.h). Max length other than the model's own is set through
a temporary copy of its config.json. Width: the hidden size stays 384 (the only pretrained
source, all-MiniLM-L6-v2, is 384 wide); the FFN width is swept with models trained by
`train_reranker.py --ffn-width N` (pruned from 1536 before training).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)
from diffrank_ref.harness import (Collection, cpp_scores, dense_run, hybrid_run,  # noqa: E402
                                  rerank_run)
from diffrank_ref.metrics import evaluate  # noqa: E402


def with_max_length(model_dir, max_len, tmp):
    """model_dir itself, or a copy of its config with max_length = max_len (weights linked)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg["max_length"] == max_len:
        return model_dir, cfg
    out = os.path.join(tmp, f"{os.path.basename(os.path.normpath(model_dir))}-{max_len}")
    os.makedirs(out, exist_ok=True)
    for name in ("model.safetensors", "vocab.txt"):
        if not os.path.exists(os.path.join(out, name)):
            os.symlink(os.path.abspath(os.path.join(model_dir, name)), os.path.join(out, name))
    cfg = dict(cfg, max_length=max_len)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)
    return out, cfg


def bench_ms(bench, model_dir, precision, pairs, max_len, threads, iters):
    r = subprocess.run([bench, "--model", model_dir, "--batch", str(pairs), "--seq", str(max_len),
                        "--iters", str(iters), "--threads", str(threads), "--precision", precision],
                       check=True, capture_output=True, text=True)
    row = json.loads(r.stdout.strip().splitlines()[-1])
    return row["p50_ms"], row["p90_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reranker", action="append", required=True)
    ap.add_argument("--beir", action="append", default=[])
    ap.add_argument("--biencoder", default=os.path.join(ROOT, "models", "diffrank-embed-v2"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--max-len", default="64,128,256")
    ap.add_argument("--precision", default="fp32,bf16,int8")
    ap.add_argument("--measure", default="quality,latency")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/diffrank/eval"))
    a = ap.parse_args()
    threads = int(os.environ.get("DIFFRANK_THREADS", 2))
    encode = os.path.join(a.build, "encoder", "diffrank-encode")
    bench = os.path.join(a.build, "encoder", "diffrank-encoder-bench")
    measure = set(a.measure.split(","))

    cols, hybrid = [], {}
    if "quality" in measure:
        for beir in a.beir:
            col = Collection(beir)
            dense, _, _ = dense_run(col, a.biencoder, a.cache)
            hybrid[col.name] = hybrid_run(col, dense)
            cols.append(col)
            print(json.dumps({"collection": col.name, "system": "hybrid",
                              **evaluate(hybrid[col.name], col.qrels)}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for rdir in a.reranker:
            for max_len in (int(x) for x in a.max_len.split(",")):
                mdir, cfg = with_max_length(rdir, max_len, tmp)
                ref_ms = None
                for precision in a.precision.split(","):
                    row = {"reranker": cfg.get("model_id"), "dir": rdir,
                           "layers": cfg["num_layers"], "width": cfg["hidden_size"],
                           "ffn_width": cfg["intermediate_size"],
                           "max_len": max_len, "precision": precision}
                    if "latency" in measure:
                        ms, p90 = bench_ms(bench, mdir, precision, a.pairs, max_len, threads, a.iters)
                        if precision == "fp32":
                            ref_ms = ms
                        row.update({"pairs": a.pairs, "threads": threads, "ms_p50": ms,
                                    "ms_p90": p90})
                        if ref_ms:
                            row["speedup_vs_fp32"] = round(ref_ms / ms, 2)
                    for col in cols:
                        m = evaluate(rerank_run(
                            col, hybrid[col.name], a.depth,
                            lambda pairs: cpp_scores(encode, mdir, precision, pairs, tmp, threads)),
                            col.qrels)
                        row[f"{col.name}_ndcg@10"] = m["ndcg@10"]
                        row[f"{col.name}_mrr@10"] = m["mrr@10"]
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
