"""The distillation teacher of issue 24 part 3, shared by fit_teacher.py (fits its weights on
validation data) and train_reranker.py --teacher ensemble (scores the training groups):

  teacher(q, candidates) = a * z(cos_bge) + (1 - a) * z(cos_e5) + w * z(BM25),

bge-small-en-v1.5 and e5-small-v2 run by ONNX Runtime on their original graphs (each with its
model card's prefixes and pooling), z() standardizing over one query's candidates. Embeddings
are cached on disk by content, so a teacher score is computed once.

Also the keyword-style query of a training question (the content words a user would type into
a search box: "compress", "plymouth colony governor"), which the question-only training sets
lack and which the reranker must handle too.
"""
import hashlib
import math
import os
import sys

import numpy as np

from diffrank_ref.onnx_peer import PEERS, ort_embed, peer_files
from diffrank_ref.retrieval import STOPWORDS, _PUNCT, fts_match

TEACHERS = ("bge-small-en-v1.5", "e5-small-v2")
DEFAULT_CACHE = os.path.expanduser("~/.cache/diffrank/teacher")

# Words that make a question a question; a keyword query has none of them.
QUESTION_WORDS = frozenset(
    "what whats how who whom whose when where which why does do did is are was were can could "
    "should would will define definition meaning means mean much many long i you we my your "
    "from about has have had been being than its it's also most more very".split()) | STOPWORDS


def embed_cached(peer, texts, kind, cache=DEFAULT_CACHE):
    """ORT embeddings of texts (the peer's prefix for `kind` applied), cached by content."""
    _, _, pooling, qp, dp = PEERS[peer]
    prefix = qp if kind == "query" else dp
    key = hashlib.sha256(("\n".join([peer, kind] + list(texts))).encode()).hexdigest()[:16]
    path = os.path.join(cache, f"{peer}-{kind}-{key}.npy")
    if os.path.exists(path):
        return np.load(path)
    onnx_path, tok_path = peer_files(peer)
    if not os.path.exists(onnx_path):
        sys.exit(f"{onnx_path} is missing: scripts/install-deps.sh fetches it")
    emb, _ = ort_embed(onnx_path, tok_path, [prefix + t for t in texts], pooling)
    os.makedirs(cache, exist_ok=True)
    np.save(path + ".tmp.npy", emb)
    os.replace(path + ".tmp.npy", path)
    return emb


def z(x):
    """Standard scores over one query's candidates (all zero when they are all equal)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def ensemble(cos_bge, cos_e5, first, a, w):
    """The teacher's scores of one query's candidates from its three raw features."""
    return a * z(cos_bge) + (1 - a) * z(cos_e5) + w * z(first)


def load_fit(path):
    """(a, w) from fit_teacher.py --write's JSON; ValueError naming the problem otherwise."""
    import json
    try:
        with open(path) as f:
            fit = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(fit, dict):
        raise ValueError(f"{path}: expected an object with \"a\" and \"w\"")
    out = []
    for key, lo, hi in (("a", 0.0, 1.0), ("w", 0.0, math.inf)):
        v = fit.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ValueError(f"{path}: \"{key}\" must be a number in [{lo}, {hi}], got {v!r}")
        out.append(float(v))
    return tuple(out)


def doc_freq(passages):
    """Lower-cased word -> number of passages containing it (the keyword picker's rarity)."""
    df = {}
    for p in passages:
        for t in set(_PUNCT.sub(" ", p.lower()).split()):
            df[t] = df.get(t, 0) + 1
    return df


def keyword_query(question, df, rng, max_words=3):
    """The question as a search-box query: its content words (no stopwords, no question
    words, no bare numbers), the 1..max_words rarest of them by `df`, in their original order.
    None when the question has no content word."""
    words = [t for t in _PUNCT.sub(" ", question.lower()).split()
             if t not in QUESTION_WORDS and not t.isdigit()]
    words = list(dict.fromkeys(words))
    if not words:
        return None
    k = rng.randint(1, min(max_words, len(words)))
    keep = set(sorted(words, key=lambda t: (df.get(t, 0), t))[:k])
    return " ".join(t for t in words if t in keep)


def bm25_of(bm25, query, ids):
    """BM25 (pool statistics) of the given pool rows for `query`; 0 for a row that does not
    match any query term."""
    m = fts_match(query)
    if not m or not ids:
        return [0.0] * len(ids)
    marks = ",".join("?" * len(ids))
    rows = dict(bm25.db.execute(f"SELECT rowid, -bm25(d) FROM d WHERE d MATCH ? AND rowid IN "
                                f"({marks})", (m, *ids)).fetchall())
    return [float(rows.get(i, 0.0)) for i in ids]


def group_scores(queries, candidates, pool, a, w, cache=DEFAULT_CACHE):
    """Teacher scores for training groups: queries[k] with candidates[k] (passages of `pool`,
    a list of texts). Returns a list of float lists, candidates[k]'s ensemble scores."""
    from diffrank_ref.retrieval import Bm25
    row = {t: i for i, t in enumerate(pool)}
    qtexts = sorted(set(queries))
    qrow = {t: i for i, t in enumerate(qtexts)}
    emb = {}
    for peer in TEACHERS:
        emb[peer] = (embed_cached(peer, qtexts, "query", cache),
                     embed_cached(peer, pool, "document", cache))
    bm = Bm25(list(range(len(pool))), pool)
    out = []
    for q, cands in zip(queries, candidates):
        ids = [row[c] for c in cands]
        cos = [emb[p][1][ids] @ emb[p][0][qrow[q]] for p in TEACHERS]
        s = ensemble(cos[0], cos[1], bm25_of(bm, q, ids), a, w)
        out.append([round(float(x), 4) if math.isfinite(x) else 0.0 for x in s])
    return out
