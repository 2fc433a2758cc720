#!/usr/bin/env python3
"""TREC DL metrics (evaluate_trec) against hand-computed cases: graded gains with unjudged
documents as 0, MRR@10 and Recall@100 counting only grade >= 2, queries without a grade >= 2
judgement left out; and the BEIR metrics' nDCG on the same run."""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from diffrank_ref.metrics import evaluate_trec, ndcg  # noqa: E402


def close(a, b):
    return abs(a - b) < 1e-4


def main():
    qrels = {"q1": {"a": 3, "b": 1, "c": 0, "d": 2},
             "q2": {"x": 1, "y": 0},          # no grade >= 2: not counted
             "q3": {"m": 2}}
    run = {"q1": ["b", "u", "a", "c", "d"],   # u unjudged
           "q2": ["x", "y"],
           "q3": ["z"] * 10 + ["m"]}          # m at rank 11: outside @10, inside @100
    got = evaluate_trec(run, qrels)
    # q1: DCG = 1/log2(2) + 0 + 3/log2(4) + 0 + 2/log2(6); IDCG = 3 + 2/log2(3) + 1/log2(4)
    dcg = 1 + 3 / 2 + 2 / math.log2(6)
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    assert got["queries"] == 2, got
    assert close(got["ndcg@10"], round((dcg / idcg + 0.0) / 2, 4)), (got, dcg / idcg)
    # q1: first grade >= 2 is "a" at rank 3 (b has grade 1) -> 1/3; q3: none in the top 10.
    assert close(got["mrr@10"], round((1 / 3 + 0) / 2, 4)), got
    # q1: a and d of {a, d} retrieved; q3: m within 100.
    assert close(got["recall@100"], 1.0), got
    assert close(ndcg(run["q1"], {"a": 3, "b": 1, "d": 2}), dcg / idcg)
    # relevant=1 counts grade 1 too: q1's MRR becomes 1 (b at rank 1), q2 joins.
    got1 = evaluate_trec(run, qrels, relevant=1)
    assert got1["queries"] == 3 and close(got1["mrr@10"], round((1 + 1 + 0) / 3, 4)), got1
    print("trec metrics ok")


if __name__ == "__main__":
    main()
