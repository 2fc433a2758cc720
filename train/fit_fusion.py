#!/usr/bin/env python3
"""Fit the reranking stage's defaults on validation data: fusion weight x depth x quality x time.

  .venv/bin/python train/fit_fusion.py --rerank-set ../shared/data/dl21 [--candidates bm25,splade]
      [--reranker models/diffrank-rerank-v2] [--depths 5,10,20,30,50,100]
      [--weights 0,0.25,...] [--seq 128]
Scores each set's top 100 once with the service's reranking stage (the C++ tool
diffrank-rerank, fusion weight 0: the raw logits, which do not depend on depth), then for every
depth and weight fuses the head with the first-stage order (harness.fuse_with_first_stage, the
mirror of pipeline/rerank_fusion.h) and reports TREC nDCG@10; with --bench, the cross-encoder's
time to score `depth` pairs of --seq tokens (diffrank-encoder-bench, the server's precision).
One JSON line per (depth, weight) with the mean over the sets, then one "best" line per depth.
Only validation sets belong here (dl21, splits of training sources); never the BEIR qrels.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.harness import fuse_with_first_stage, run_rerank_tool  # noqa: E402
from diffrank_ref.metrics import evaluate_trec, load_rerank_set  # noqa: E402

BUILD = os.path.join(HERE, "..", "build")


def bench_ms(tool, model, depth, seq, precision):
    out = subprocess.run([tool, "--model", model, "--batch", str(depth), "--seq", str(seq),
                          "--threads", os.environ.get("DIFFRANK_THREADS", "0"),
                          "--iters", "10", "--warmup", "2", "--device", "cpu",
                          "--precision", precision], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["p50_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rerank-set", action="append", required=True)
    ap.add_argument("--candidates", default="bm25,splade")
    ap.add_argument("--reranker", default=os.path.join(HERE, "..", "models", "diffrank-rerank-v2"))
    ap.add_argument("--depths", default="5,10,15,20,30,50,100")
    ap.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,0.75,1,1.5,2,3")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--rerank-tool", default=os.path.join(BUILD, "pipeline", "diffrank-rerank"))
    ap.add_argument("--bench", default=None, help="diffrank-encoder-bench, to time each depth")
    ap.add_argument("--bench-precision", default="bf16")
    ap.add_argument("--seq", type=int, default=128)
    a = ap.parse_args()
    depths = [int(x) for x in a.depths.split(",")]
    weights = [float(x) for x in a.weights.split(",")]
    sets = []
    for rset in a.rerank_set:
        for cand in a.candidates.split(","):
            queries, qrels, cands = load_rerank_set(rset, cand)
            qids = [q for q in cands if q in qrels and q in queries]
            lists = [(queries[q], [t for _, t in cands[q]]) for q in qids]
            out, info = run_rerank_tool(a.rerank_tool, a.reranker, lists, max(depths), 0.0,
                                        a.precision)
            first = {q: [d for d, _ in cands[q]] for q in qids}
            logits = {q: o["logits"] for q, o in zip(qids, out)}
            sets.append((f"{os.path.basename(os.path.normpath(rset))}/{cand}", qrels, first,
                         logits))
            print(json.dumps({"set": sets[-1][0], "device": info.get("device"),
                              "first_stage": evaluate_trec(first, qrels)}), flush=True)
    best = {}
    for depth in depths:
        ms = bench_ms(a.bench, a.reranker, depth, a.seq, a.bench_precision) if a.bench else None
        for w in weights:
            per = {}
            for name, qrels, first, logits in sets:
                run = {}
                for q, docs in first.items():
                    s = fuse_with_first_stage(logits[q][:depth], w)
                    head = sorted(range(len(s)), key=lambda i: -s[i])
                    run[q] = [docs[i] for i in head] + docs[depth:]
                per[name] = evaluate_trec(run, qrels)["ndcg@10"]
            mean = round(sum(per.values()) / len(per), 4)
            rec = {"depth": depth, "fusion_weight": w, "ndcg@10": per, "mean": mean,
                   "rerank_ms": ms}
            print(json.dumps(rec), flush=True)
            if depth not in best or mean > best[depth]["mean"]:
                best[depth] = rec
    for depth in depths:
        print(json.dumps({"best": True, **best[depth]}), flush=True)


if __name__ == "__main__":
    main()
