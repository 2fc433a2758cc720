#!/usr/bin/env python3
"""Fits the reranker's calibration: relevance_score = sigmoid(scale * logit + bias), so that a
score reads as the probability that a passage is relevant (TREC DL grade >= 2) to the query.

  .venv/bin/python train/fit_calibration.py --rerank-set ../shared/data/dl21 \
      --reranker models/diffrank-rerank-v2 [--write]

Data: the reranking set's BM25 and SPLADE top-100 candidates (validation data; unjudged
candidates count as not relevant, as in the TREC DL metrics), scored by the C++ runtime
(build/encoder/diffrank-encode, float32). Two-fold by query: the figures reported for the fit
are on the fold it was not fitted on (Brier score, expected calibration error over 10 bins,
log loss), next to the raw sigmoid(logit) the service used before. --write stores the fit on
all queries in the reranker's config.json ("calibration": {"scale", "bias"}), which the
server applies to Rerank's relevance_score. Prints one JSON object.
"""
import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from diffrank_ref.harness import cpp_scores  # noqa: E402
from diffrank_ref.metrics import load_rerank_set  # noqa: E402


def fit(x, y, iters=100):
    """Logistic regression of y on x (scale, bias) by Newton's method, with a tiny ridge."""
    w = np.zeros(2)
    X = np.stack([x, np.ones_like(x)], 1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ w)))
        g = X.T @ (p - y) + 1e-6 * w
        H = (X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def report(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).sum()
              for b in range(10) if (bins == b).any()) / len(p)
    return {"brier": round(float(((p - y) ** 2).mean()), 4), "ece": round(float(ece), 4),
            "log_loss": round(float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()), 4),
            "mean_p": round(float(p.mean()), 4), "positive_rate": round(float(y.mean()), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rerank-set", required=True)
    ap.add_argument("--reranker", default=os.path.join(HERE, "..", "models", "diffrank-rerank-v2"))
    ap.add_argument("--encode-tool", default=os.path.join(HERE, "..", "build", "encoder",
                                                          "diffrank-encode"))
    ap.add_argument("--relevant", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()

    pairs, labels, qids = [], [], []
    seen = set()
    for cands in ("bm25", "splade"):
        queries, qrels, cand = load_rerank_set(a.rerank_set, cands)
        for q, docs in cand.items():
            if q not in queries:
                continue
            for d, text in docs:
                if (q, d) in seen:
                    continue
                seen.add((q, d))
                pairs.append((queries[q], text))
                labels.append(1.0 if qrels.get(q, {}).get(d, 0) >= a.relevant else 0.0)
                qids.append(q)
    with tempfile.TemporaryDirectory() as tmp:
        logits = np.array(cpp_scores(a.encode_tool, a.reranker, "fp32", pairs, tmp))
    y = np.array(labels)
    order = sorted(set(qids))
    fold = np.array([order.index(q) % 2 for q in qids])
    held = {"raw_sigmoid": [], "fitted": []}
    folds = []
    for k in (0, 1):
        s, b = fit(logits[fold != k], y[fold != k])
        folds.append({"scale": round(s, 4), "bias": round(b, 4)})
        test = fold == k
        held["raw_sigmoid"].append((1 / (1 + np.exp(-logits[test])), y[test]))
        held["fitted"].append((1 / (1 + np.exp(-(s * logits[test] + b))), y[test]))
    out = {"rerank_set": os.path.basename(os.path.normpath(a.rerank_set)),
           "reranker": os.path.basename(os.path.normpath(a.reranker)), "pairs": len(pairs),
           "queries": len(order), "folds": folds}
    for name, parts in held.items():
        out[f"held_out_{name}"] = report(np.concatenate([p for p, _ in parts]),
                                         np.concatenate([t for _, t in parts]))
    scale, bias = fit(logits, y)
    out["fit_all"] = {"scale": round(scale, 4), "bias": round(bias, 4)}
    # Where the calibrated score crosses 0.5 (the logit a relevant-looking passage needs).
    out["logit_at_0.5"] = round(-bias / scale, 3) if scale else math.inf
    if a.write:
        path = os.path.join(a.reranker, "config.json")
        with open(path) as f:
            config = json.load(f)
        config["calibration"] = {"scale": round(scale, 4), "bias": round(bias, 4)}
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        out["written"] = path
    print(json.dumps(out))


if __name__ == "__main__":
    main()
