"""The evaluation harness's retrieval runs, shared by eval.py and sweep_reranker.py.

A Collection holds one BEIR folder (texts, judged queries, the FTS5 BM25 top 100 per query);
dense_run() ranks it with a bi-encoder (corpus embeddings cached per model file, and per
precision and diffrank-encode binary for the C++ runtime); rerank()
reorders the head of a run with a cross-encoder, as the service does (rerank_run() with any
scorer); cpp_scores() scores
pairs with the C++ runtime (diffrank-encode) in any of its precisions.
"""
import itertools
import json
import os
import subprocess
import time

import numpy as np
import torch

from diffrank_ref.metrics import load_beir
from diffrank_ref.model import load_model_dir
from diffrank_ref.retrieval import Bm25, embed, rrf, score_pairs
from diffrank_ref.tokenization import load_tokenizer


class Collection:
    def __init__(self, beir_dir):
        self.name = os.path.basename(os.path.normpath(beir_dir))
        docs, self.queries, self.qrels = load_beir(beir_dir)
        self.ids = [d["_id"] for d in docs]
        self.texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
        self.by_id = dict(zip(self.ids, self.texts))
        self.qids = [q for q in self.qrels if q in self.queries]
        bm25 = Bm25(self.ids, self.texts)
        self.lexical = {q: [d for d, _ in bm25.search(self.queries[q], 100)] for q in self.qids}


def load_model(model_dir):
    """(model, tokenizer, model id) of a diffrank model directory."""
    model = load_model_dir(model_dir)
    tok = load_tokenizer(model_dir, model.cfg.lower_case)
    return model, tok, model.cfg.model_id or os.path.basename(os.path.normpath(model_dir))


def cpp_embed(encode, model_dir, precision, texts, tmp, threads=0, kind=None):
    """Embeddings [n, d] of texts from the C++ runtime (`diffrank-encode`); kind "query" or
    "document" puts the model's prefix first, as the server does."""
    from safetensors.numpy import load_file
    os.makedirs(tmp, exist_ok=True)
    src, dst = os.path.join(tmp, "texts.jsonl"), os.path.join(tmp, "emb.safetensors")
    # In length order, so each batch pads little (diffrank-encode batches in file order).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with open(src, "w", encoding="utf-8") as f:
        for i in order:
            line = {"text": texts[i]} if kind is None else {"text": texts[i], "kind": kind}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    subprocess.run([encode, "--model", model_dir, "--input", src, "--output", dst,
                    "--device", "cpu", "--precision", precision, "--threads", str(threads)],
                   check=True, capture_output=True)
    out = load_file(dst)["output"]
    back = np.empty_like(out)
    back[order] = out
    return back


def dense_run(col, model_dir, cache, cpp=None):
    """(run {qid: top-100 doc ids}, model id, seconds) for a bi-encoder directory.
    cpp = (diffrank-encode path, precision): embed with the C++ runtime in that precision
    (what the server computes) instead of the PyTorch reference in float32."""
    t0 = time.time()
    model, tok, mid = load_model(model_dir)
    st = os.stat(os.path.join(model_dir, "model.safetensors"))
    tag = ""
    if cpp:
        # The runtime's kernels are compiled in: a rebuilt diffrank-encode may compute other
        # embeddings (LibTorch vs packed oneDNN linears), so its identity is in the key.
        tool = os.stat(cpp[0])
        tag = f"-cpp-{cpp[1]}-{tool.st_size}-{int(tool.st_mtime)}"
    key = f"{col.name}-{mid}-{st.st_size}-{int(st.st_mtime)}{tag}.npy".replace("/", "_")
    cache_file = os.path.join(cache, "embeddings", key)
    # Instruction-trained models (bge, e5) see their query / document prefixes, as in the server.
    prefix = {"query": model.cfg.query_prefix, "document": model.cfg.document_prefix}
    if cpp:
        tmp = os.path.join(cache, "tmp-cpp")
        do_embed = lambda texts, kind: cpp_embed(cpp[0], model_dir, cpp[1], texts, tmp,  # noqa: E731
                                                 kind=kind)
    else:
        do_embed = lambda texts, kind: embed(model, tok, [prefix[kind] + t for t in texts],  # noqa: E731
                                             model.cfg.max_length)
    if os.path.exists(cache_file):
        demb = np.load(cache_file)
    else:
        demb = do_embed(col.texts, "document")
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        np.save(cache_file, demb)
    qemb = do_embed([col.queries[q] for q in col.qids], "query")
    sims = torch.from_numpy(qemb) @ torch.from_numpy(demb).T
    top = sims.topk(min(100, len(col.ids)), dim=1).indices.tolist()
    run = {q: [col.ids[j] for j in top[i]] for i, q in enumerate(col.qids)}
    return run, mid, round(time.time() - t0, 1)


def hybrid_run(col, dense):
    """Reciprocal rank fusion (k = 60) of a dense run and BM25, as the service fuses."""
    return {q: rrf([dense[q], col.lexical[q]]) for q in col.qids}


def rerank_run(col, run, depth, score):
    """The run with each query's top `depth` reordered by score(pairs) -> one score per
    (query text, passage text) pair, asked once for every query's head together."""
    heads = {q: run[q][:depth] for q in col.qids}
    scores = iter(score([(col.queries[q], col.by_id[d]) for q in col.qids for d in heads[q]]))
    reranked = {}
    for q in col.qids:
        s = [next(scores) for _ in heads[q]]
        order = sorted(range(len(s)), key=lambda i: -s[i])
        reranked[q] = [heads[q][i] for i in order] + run[q][depth:]
    return reranked


def rerank(col, run, model, tok, depth, max_length=None):
    """(reranked run, run fusing the reranked head with the first-stage head by RRF), scored
    by a PyTorch cross-encoder."""
    def score(pairs):
        out = []
        for query, group in itertools.groupby(pairs, key=lambda p: p[0]):
            out += score_pairs(model, tok, query, [p for _, p in group],
                               max_length or model.cfg.max_length)
        return out

    reranked = rerank_run(col, run, depth, score)
    fused = {q: rrf([run[q][:depth], reranked[q][:depth]]) + run[q][depth:]
             for q in col.qids}
    return reranked, fused


def cosine_scores(model_dir, lists):
    """Bi-encoder cosine of each query with each of its passages: lists = [(query, [passage,
    ...]), ...] -> [[cosine, ...], ...] (PyTorch reference, float32), with the model's query and
    document prefixes (bge's instruction), as the server embeds them."""
    model, tok, _ = load_model(model_dir)
    texts = sorted({p for _, ps in lists for p in ps})
    row = {t: i for i, t in enumerate(texts)}
    qp, dp = model.cfg.query_prefix, model.cfg.document_prefix
    pe = embed(model, tok, [dp + t for t in texts], model.cfg.max_length)
    qe = embed(model, tok, [qp + q for q, _ in lists], model.cfg.max_length)
    return [[float(qe[i] @ pe[row[p]]) for p in ps] for i, (_, ps) in enumerate(lists)]


def run_rerank_tool(tool, model_dir, lists, depth=None, fusion_weight=None, precision="auto",
                    threads=None):
    """The service's reranking stage (pipeline/tools/rerank_main.cc) over lists = [(query,
    [passage, ...] in first-stage order), ...]: ([{"order", "logits", "scores"}, ...],
    {"depth", "fusion_weight", "device"} as the tool resolved them)."""
    import re
    src = "".join(json.dumps({"query": q, "passages": ps}, ensure_ascii=False) + "\n"
                  for q, ps in lists)
    if threads is None:  # DIFFRANK_THREADS, as the Python side; 0 = all cores
        threads = int(os.environ.get("DIFFRANK_THREADS", 0))
    cmd = [tool, "--model", model_dir, "--precision", precision, "--threads", str(threads)]
    if depth is not None:
        cmd += ["--depth", str(depth)]
    if fusion_weight is not None:
        cmd += ["--fusion_weight", str(fusion_weight)]
    r = subprocess.run(cmd, input=src, capture_output=True, text=True, encoding="utf-8")
    if r.returncode != 0:
        raise RuntimeError(f"{tool} failed: {r.stderr.strip()}")
    m = re.search(r" on (.*), depth (\d+), fusion weight ([0-9.eE+-]+)", r.stderr)
    info = {"depth": int(m.group(2)), "fusion_weight": float(m.group(3)),
            "device": m.group(1)} if m else {}
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()], info


def fuse_with_first_stage(logits, weight):
    """Python mirror of pipeline/rerank_fusion.h (for fitting the weight on stored logits;
    every reported figure comes from the C++ tool)."""
    x = np.asarray(logits, dtype=np.float64)
    if weight == 0 or len(x) == 0:
        return x
    prior = 1.0 / (61.0 + np.arange(len(x)))

    def z(v):
        sd = v.std()
        return (v - v.mean()) / sd if sd > 1e-12 else np.zeros_like(v)
    return z(x) + weight * z(prior)


def cpp_scores(encode, model_dir, precision, pairs, tmp, threads=0):
    """Logits of (query, passage) pairs from the C++ runtime (`diffrank-encode`)."""
    from safetensors.numpy import load_file
    src, dst = os.path.join(tmp, "pairs.jsonl"), os.path.join(tmp, "scores.safetensors")
    with open(src, "w", encoding="utf-8") as f:
        for q, p in pairs:
            f.write(json.dumps({"query": q, "passage": p}, ensure_ascii=False) + "\n")
    subprocess.run([encode, "--model", model_dir, "--input", src, "--output", dst,
                    "--precision", precision, "--threads", str(threads)], check=True,
                   capture_output=True)
    return load_file(dst)["output"].tolist()
