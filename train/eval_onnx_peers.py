#!/usr/bin/env python3
"""Dense retrieval of diffrank embedders against their ONNX sources, in one run.

  .venv/bin/python train/eval_onnx_peers.py --beir DIR [--beir DIR ...]
      [--peers bge-small-en-v1.5,e5-small-v2] [--biencoder MODEL_DIR ...] [--peer-minilm]
      [--embed-precision reference|fp32|bf16|int8] [--encode-tool build/encoder/diffrank-encode]

For each BEIR folder prints one JSON line per model: nDCG@10, Recall@100, MRR@10 of the dense
top 100 (cosine over the whole corpus; the harness's metric definitions). Peers run through
ONNX Runtime on the original graphs from LangChain4j's jars (train/diffrank_ref/onnx_peer.py:
prefixes and pooling of each model card); diffrank directories run through the C++ runtime in
--embed-precision (default fp32: what the server computes) or the PyTorch reference.
--peer-minilm adds all-MiniLM-L6-v2 (the previous generation's source) as a diffrank baseline
directory. Corpus embeddings are cached per model file in --cache.
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
from diffrank_ref.harness import Collection, dense_run  # noqa: E402
from diffrank_ref.metrics import evaluate  # noqa: E402
from diffrank_ref.onnx_peer import PEERS, ort_embed, peer_files  # noqa: E402
from eval import minilm_dir  # noqa: E402


def ort_run(col, name, cache):
    onnx_path, tok_path = peer_files(name)
    _, _, pooling, qp, dp = PEERS[name]
    t0 = time.time()
    st = os.stat(onnx_path)
    cache_file = os.path.join(cache, "embeddings",
                              f"{col.name}-ort-{name}-{st.st_size}-{int(st.st_mtime)}.npy")
    if os.path.exists(cache_file):
        demb = np.load(cache_file)
    else:
        demb, _ = ort_embed(onnx_path, tok_path, [dp + t for t in col.texts], pooling)
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        np.save(cache_file, demb)
    qemb, _ = ort_embed(onnx_path, tok_path, [qp + col.queries[q] for q in col.qids], pooling)
    sims = torch.from_numpy(qemb) @ torch.from_numpy(demb).T
    top = sims.topk(min(100, len(col.ids)), dim=1).indices.tolist()
    return {q: [col.ids[j] for j in top[i]] for i, q in enumerate(col.qids)}, round(time.time() - t0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir", action="append", required=True)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--biencoder", action="append", default=[])
    ap.add_argument("--peer-minilm", action="store_true")
    ap.add_argument("--embed-precision", default="fp32",
                    choices=["reference", "fp32", "bf16", "int8"])
    ap.add_argument("--encode-tool", default=os.path.join(HERE, "..", "build", "encoder",
                                                          "diffrank-encode"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/diffrank/eval"))
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("DIFFRANK_THREADS", os.cpu_count() or 1)))
    dirs = list(a.biencoder)
    if a.peer_minilm:
        dirs.append(minilm_dir(a.cache))
    cpp = None if a.embed_precision == "reference" else (a.encode_tool, a.embed_precision)
    for beir in a.beir:
        col = Collection(beir)
        for name in [p for p in a.peers.split(",") if p]:
            run, secs = ort_run(col, name, a.cache)
            print(json.dumps({"collection": col.name, "system": "dense",
                              "model": f"{name} (ONNX Runtime)", **evaluate(run, col.qrels),
                              "seconds": secs}), flush=True)
        for d in dirs:
            run, mid, secs = dense_run(col, d, a.cache, cpp)
            print(json.dumps({"collection": col.name, "system": "dense",
                              "model": f"{mid} ({a.embed_precision})",
                              **evaluate(run, col.qrels), "seconds": secs}), flush=True)


if __name__ == "__main__":
    main()
