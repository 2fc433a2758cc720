#!/usr/bin/env python3
"""The distillation teacher of issue 24 part 3: an ensemble of bge-small-en-v1.5 and
e5-small-v2 (ONNX Runtime on the original graphs, each with its model card's prefixes and
pooling) and the first stage's lexical score, weights fitted on validation data (dl21).

  .venv/bin/python train/fit_teacher.py --rerank-set ../shared/data/dl21 [--fit-on bm25]
      [--check splade] [--cache ~/.cache/diffrank/teacher] [--write teacher.json]

teacher(q, candidates) = a * z(cos_bge) + (1 - a) * z(cos_e5) + w * z(first-stage score),
z() standardizing over one query's candidates (as pipeline/rerank_fusion.h does), so the
weights do not depend on a model's cosine range. (a, w) is the best nDCG@10 (TREC DL) of the
teacher reordering the --fit-on candidates (the BM25 top 100: its first-stage score is BM25,
which the training groups' miner also gives); --check sets are reported with the fitted
weights, their own first-stage score standing in. Embeddings are cached per model and text set
in --cache, so the teacher's scores of training candidates are computed once. One JSON line per
(a, w) and set, then the fitted line; --write stores {"a", "w", "fit_on", "ndcg@10"}.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.metrics import evaluate_trec, load_rerank_set  # noqa: E402
from diffrank_ref.teacher import DEFAULT_CACHE, TEACHERS, embed_cached, ensemble  # noqa: E402


def features(queries, cands, cache):
    """{qid: (cos_bge, cos_e5, first-stage score)} over each query's candidates."""
    qids = sorted(cands)
    texts = sorted({t for q in qids for _, t, _ in cands[q]})
    row = {t: i for i, t in enumerate(texts)}
    cos = {}
    for peer in TEACHERS:
        pe = embed_cached(peer, texts, "document", cache)
        qe = embed_cached(peer, [queries[q] for q in qids], "query", cache)
        cos[peer] = {q: pe[[row[t] for _, t, _ in cands[q]]] @ qe[i] for i, q in enumerate(qids)}
    return {q: (cos[TEACHERS[0]][q], cos[TEACHERS[1]][q], [s for _, _, s in cands[q]])
            for q in qids}


def ndcg(feats, cands, qrels, a, w):
    run = {}
    for q, (bge, e5, first) in feats.items():
        s = ensemble(bge, e5, first, a, w)
        run[q] = [cands[q][i][0] for i in np.argsort(-s, kind="stable")]
    return evaluate_trec(run, qrels)["ndcg@10"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rerank-set", required=True)
    ap.add_argument("--fit-on", default="bm25")
    ap.add_argument("--check", default="splade", help="comma-separated; '' for none")
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--a", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--w", default="0,0.1,0.2,0.3,0.5,0.75")
    ap.add_argument("--write", default=None)
    args = ap.parse_args()
    grid = [(float(a), float(w)) for a in args.a.split(",") for w in args.w.split(",")]
    sets = {}
    for name in [args.fit_on] + [c for c in args.check.split(",") if c]:
        queries, qrels, cands = load_rerank_set(args.rerank_set, name, with_scores=True)
        cands = {q: c for q, c in cands.items() if q in queries}
        sets[name] = (features(queries, cands, args.cache), cands, qrels)
        first = {q: [d for d, _, _ in c] for q, c in cands.items()}
        print(json.dumps({"set": name, "first_stage": evaluate_trec(first, qrels)["ndcg@10"]}),
              flush=True)
    best = None
    for a, w in grid:
        rec = {"a_bge": a, "w_first_stage": w}
        for name, (feats, cands, qrels) in sets.items():
            rec[name] = ndcg(feats, cands, qrels, a, w)
        print(json.dumps(rec), flush=True)
        if best is None or rec[args.fit_on] > best[args.fit_on]:
            best = rec
    print(json.dumps({"fitted": True, "fit_on": args.fit_on, **best}), flush=True)
    if args.write:
        with open(args.write, "w") as f:
            json.dump({"a": best["a_bge"], "w": best["w_first_stage"], "fit_on": args.fit_on,
                       "ndcg@10": best[args.fit_on]}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
