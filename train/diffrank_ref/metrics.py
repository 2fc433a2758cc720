"""IR metrics (the definitions of the project's anchors): nDCG@10 with linear gains and log2
discounts, Recall@100, MRR@10, averaged over queries with at least one positive judgement."""
import json
import math
import os


def load_queries_qrels(dirpath, min_grade=1):
    """(queries {qid: text}, qrels {qid: {docid: grade}} keeping grades >= min_grade) from
    queries.jsonl and qrels.tsv (header line, then query-id, corpus-id, score)."""
    with open(os.path.join(dirpath, "queries.jsonl"), encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    qrels = {}
    with open(os.path.join(dirpath, "qrels.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            if int(s) >= min_grade:
                qrels.setdefault(q, {})[d] = int(s)
    return queries, qrels


def load_beir(dirpath):
    """Returns (docs [{_id, title, text}], queries {qid: text}, qrels {qid: {docid: grade>0}})."""
    with open(os.path.join(dirpath, "corpus.jsonl"), encoding="utf-8") as f:
        docs = [json.loads(l) for l in f]
    queries, qrels = load_queries_qrels(dirpath)
    return docs, queries, qrels


def ndcg(ranked, rel, k=10):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked, rel, k=100):
    return len(set(ranked[:k]) & set(rel)) / len(rel)


def mrr(ranked, rel, k=10):
    for i, d in enumerate(ranked[:k]):
        if d in rel:
            return 1 / (i + 1)
    return 0.0


def evaluate(run, qrels):
    """run: {qid: [docid, ...] best first} -> mean metrics over judged queries in the run."""
    qs = [q for q in qrels if q in run]
    n = len(qs) or 1
    return {"queries": len(qs),
            "ndcg@10": round(sum(ndcg(run[q], qrels[q]) for q in qs) / n, 4),
            "recall@100": round(sum(recall(run[q], qrels[q]) for q in qs) / n, 4),
            "mrr@10": round(sum(mrr(run[q], qrels[q]) for q in qs) / n, 4)}


def load_rerank_set(dirpath, candidates="bm25", with_scores=False):
    """A reranking set in the dl21 layout: (queries {qid: text}, graded qrels {qid: {docid:
    grade}} (grade 0 kept: judged irrelevant), candidates {qid: [(docid, text), ...] in
    first-stage order}) from queries.jsonl, qrels.tsv and <candidates>-top100.jsonl;
    with_scores: (docid, text, first-stage score) triples."""
    queries, qrels = load_queries_qrels(dirpath, min_grade=0)
    cands = {}
    with open(os.path.join(dirpath, f"{candidates}-top100.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(l) for l in f]
    for r in sorted(rows, key=lambda r: (r["query-id"], r["rank"])):
        row = (r["corpus-id"], r["text"]) + ((float(r["score"]),) if with_scores else ())
        cands.setdefault(r["query-id"], []).append(row)
    return queries, qrels, cands


def evaluate_trec(run, qrels, relevant=2):
    """TREC Deep Learning metrics: nDCG@10 with the grade as gain and unjudged documents as 0
    (ideal from all judged grades), MRR@10 and Recall@100 with relevance = grade >= `relevant`.
    Averaged over queries in the run with at least one document of grade >= `relevant`."""
    qs = [q for q in qrels if q in run and any(g >= relevant for g in qrels[q].values())]
    n = len(qs) or 1
    pos = {q: {d: g for d, g in qrels[q].items() if g >= relevant} for q in qs}
    gains = {q: {d: g for d, g in qrels[q].items() if g > 0} for q in qs}
    return {"queries": len(qs),
            "ndcg@10": round(sum(ndcg(run[q], gains[q]) for q in qs) / n, 4),
            "mrr@10": round(sum(mrr(run[q], pos[q]) for q in qs) / n, 4),
            "recall@100": round(sum(recall(run[q], pos[q]) for q in qs) / n, 4)}
