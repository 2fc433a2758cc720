#!/usr/bin/env python3
"""Lexical search quality: diffrank's FTS5 BM25 vs the SQLite FTS5 anchor script, same run.

  bm25_quality.py --run BUILD/tests/bm25_run --workdir DIR [--data SHARED/data]
For cranfield, cisi, cacm and lisa, with the metric definitions of shared/bench/ir_metrics.py:
  engine:  queries normalized as the anchor does (words reduced to alphanumerics), so only the
           BM25 engines differ: |nDCG@10(diffrank) - nDCG@10(anchor)| <= 0.01;
  product: queries as users send them (diffrank splits words at punctuation, as FTS5 tokenizes
           the documents): nDCG@10 >= anchor - 0.01 (not worse; differences reported).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data"))
    ap.add_argument("--bench", default=None)
    a = ap.parse_args()
    bench = a.bench or os.path.join(os.path.dirname(os.path.abspath(a.data)), "bench")
    sys.path.insert(0, bench)
    import bm25_fts5  # noqa: E402  (the anchor)
    from ir_metrics import evaluate, load  # noqa: E402
    ok = True
    os.makedirs(a.workdir, exist_ok=True)
    for name in ("cranfield", "cisi", "cacm", "lisa"):
        d = os.path.join(a.data, name)
        _, _, qrels = load(d)
        anchor = bm25_fts5.run(d)
        for mode in ("engine", "product"):
            out = os.path.join(a.workdir, f"{name}.{mode}.run.json")
            subprocess.run([a.run, d, os.path.join(a.workdir, name), out]
                           + (["anchor"] if mode == "engine" else []), check=True)
            with open(out) as f:
                run = json.load(f)
            ours = evaluate({q: r for q, r in run.items() if q in qrels}, qrels)
            diff = ours["ndcg@10"] - anchor["ndcg@10"]
            good = abs(diff) <= 0.01 if mode == "engine" else diff >= -0.01
            ok &= good
            print(json.dumps({"collection": name, "mode": mode, "diffrank": ours,
                              "anchor_fts5": anchor, "ndcg@10_diff": round(diff, 4),
                              "ok": good}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
