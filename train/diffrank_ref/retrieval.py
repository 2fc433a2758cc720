"""Retrieval as the service does it, in Python, for evaluation and hard-negative mining.

BM25: SQLite FTS5 with the `porter unicode61` tokenizer over title + " " + text, the query's
words split at ASCII punctuation, English stopwords dropped (unless nothing else is left),
and OR'ed as quoted terms (index/collection_search.cc does the
same). Dense: inner product of L2-normalized embeddings. Hybrid: reciprocal rank fusion (k=60).
"""
import re
import sqlite3

import numpy as np
import torch

from diffrank_ref.tokenization import pair_inputs

_PUNCT = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]")


# Lucene's English stop set, dropped from queries as index/collection_search.cc does.
STOPWORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such "
                      "that the their then there these they this to was will with".split())


def fts_match(text):
    words = [t for t in _PUNCT.sub(" ", text).split() if t]
    terms = [t for t in words if t.lower() not in STOPWORDS] or words
    return " OR ".join(f'"{t}"' for t in terms[:256])


class Bm25:
    def __init__(self, ids, texts):
        self.ids = list(ids)
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE d USING fts5(body, tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO d(rowid, body) VALUES (?, ?)",
                            [(i, t) for i, t in enumerate(texts)])

    def search(self, query, k=100):
        m = fts_match(query)
        if not m:
            return []
        rows = self.db.execute("SELECT rowid, -bm25(d) FROM d WHERE d MATCH ? ORDER BY bm25(d) "
                               "LIMIT ?", (m, k)).fetchall()
        return [(self.ids[r], s) for r, s in rows]


def rrf(rankings, k=60, top=100):
    scores = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank + 1)
    return [d for d, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:top]]


@torch.inference_mode()
def embed(model, tokenizer, texts, max_length, batch_size=64):
    """Embeds texts with a diffrank bi-encoder (PyTorch reference); returns float32 [N, d]."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.cfg.hidden_size), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
        out[idx] = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).float().numpy()
    return out


def pair_logits(model, tokenizer, queries, passages, max_length, device="cpu"):
    """Cross-encoder logits [N] for (queries[i], passages[i]) in the model's pair layout
    (with the model's query / document prefixes, as the C++ runtime's Encoder::EncodePair)."""
    if model.cfg.query_prefix:
        queries = [model.cfg.query_prefix + q for q in queries]
    if model.cfg.document_prefix:
        passages = [model.cfg.document_prefix + p for p in passages]
    if model.cfg.segments:
        enc = pair_inputs(tokenizer, queries, passages, max_length, model.cfg.max_query_length)
        enc = {k: v.to(device) for k, v in enc.items()}
        return model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"],
                     enc["positions"], enc["segment"])
    enc = tokenizer(list(queries), list(passages), padding=True, truncation="longest_first",
                    max_length=max_length, return_tensors="pt")
    enc = {k: v.to(device) for k, v in enc.items()}
    return model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])


@torch.inference_mode()
def score_pairs(model, tokenizer, query, passages, max_length, batch_size=32):
    """Cross-encoder logits for (query, passage) pairs."""
    out = []
    for s in range(0, len(passages), batch_size):
        chunk = passages[s:s + batch_size]
        out.extend(pair_logits(model, tokenizer, [query] * len(chunk), chunk,
                               max_length).float().tolist())
    return out
