#!/usr/bin/env python3
"""ONNX-sourced embedders: bge-small-en-v1.5 and e5-small-v2, as LangChain4j's Maven jars carry
them, converted by train/convert_onnx_bert.py to the exact DiffAttn V2 retrofit, give ONNX
Runtime's embeddings of the original graph (cosine >= 0.9999 on every text) in the C++ runtime
and in the PyTorch reference; the shipped fp16 diffrank-embed-v3 gives them within 0.999. The
shipped diffrank-rerank-v3 (a segments cross-encoder started exactly from e5-small-v2) scores
each pair 20 x ORT's cosine of e5("query: " + q) and e5("passage: " + p), within 0.05 of the
logit (fp16 weights), in the C++ runtime the server runs.

  onnx_parity.py --encode BUILD/encoder/diffrank-encode --workdir DIR [--texts 80]
                 [--onnx-dir ~/.cache/diffrank/onnx]   (filled by scripts/install-deps.sh)
Queries carry the model's query prefix and documents its document prefix, on every side: ONNX
Runtime gets prefix + text, the C++ runtime gets {"text", "kind"} lines (the server's path), the
PyTorch reference gets prefix + text. The reference pooling (CLS for bge, masked mean for e5)
and L2 normalization are done here in numpy over ORT's last_hidden_state.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "train"))
import common  # noqa: E402
from convert_onnx_bert import convert_to_diffrank  # noqa: E402
from diffrank_ref.model import load_model_dir  # noqa: E402
from diffrank_ref.onnx_peer import ONNX_DIR, PEERS, ort_embed, peer_files  # noqa: E402

MIN_COS = 0.9999
MIN_COS_FP16 = 0.999
# The ONNX peers (onnx_peer.PEERS: files, pooling, prefixes) and the shipped directory of each.
SHIPPED = {"bge-small-en-v1.5": "diffrank-embed-v3", "e5-small-v2": None}
# The shipped cross-encoders that are an exact start from a peer: name -> (peer, scale).
SHIPPED_RERANKERS = {"diffrank-rerank-v3": ("e5-small-v2", 20.0)}
MAX_LOGIT_DIFF = 0.05


def cosines(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def cpp_embed(encode, model_dir, items, out, precision="fp32"):
    src = out + ".jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for text, kind in items:
            f.write(json.dumps({"text": text, "kind": kind}, ensure_ascii=False) + "\n")
    subprocess.run([encode, "--model", model_dir, "--input", src, "--output", out,
                    "--device", "cpu", "--precision", precision, "--batch_size", "16"],
                   check=True)
    return load_file(out)["output"].numpy()


@torch.inference_mode()
def ref_embed(model_dir, tok, texts, batch=16):
    model = load_model_dir(model_dir)
    out = []
    for s in range(0, len(texts), batch):
        enc = tok.encode_batch(texts[s:s + batch])
        ids = torch.tensor([e.ids for e in enc])
        out.append(model(ids, torch.tensor([e.type_ids for e in enc]),
                         torch.tensor([e.attention_mask for e in enc])).numpy())
    return np.concatenate(out)


def cpp_pair_logits(encode, model_dir, pairs, out):
    src = out + ".jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for q, p in pairs:
            f.write(json.dumps({"query": q, "passage": p}, ensure_ascii=False) + "\n")
    subprocess.run([encode, "--model", model_dir, "--input", src, "--output", out,
                    "--device", "cpu", "--precision", "fp32", "--batch_size", "16"], check=True)
    return load_file(out)["output"].numpy().reshape(-1)


def check_reranker(encode, workdir, name, texts, onnx_dir):
    """The shipped exact-start reranker against its peer through ONNX Runtime, on pairs short
    enough that neither side is truncated (query <= 24 tokens, pair <= the model's length)."""
    peer, scale = SHIPPED_RERANKERS[name]
    _, _, pooling, qp, dp = PEERS[peer]
    onnx_path, tok_path = peer_files(peer, onnx_dir)
    sd = os.path.join(ROOT, "models", name)
    with open(os.path.join(sd, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("query_prefix", "") != qp or cfg.get("document_prefix", "") != dp:
        print(f"FAIL: {sd}/config.json prefixes differ from {peer}'s")
        return False
    short_q = [t for t in texts if len(t.split()) <= 12][:12]
    docs = [t for t in texts if len(t.split()) <= 0.5 * cfg["max_length"] - 40][:12]
    pairs = [(q, d) for q in short_q for d in docs[:6]]
    qe, _ = ort_embed(onnx_path, tok_path, [qp + q for q, _ in pairs], pooling)
    de, _ = ort_embed(onnx_path, tok_path, [dp + d for _, d in pairs], pooling)
    want = scale * (qe * de).sum(1)
    got = cpp_pair_logits(encode, sd, pairs, os.path.join(workdir, name + ".safetensors"))
    diff = np.abs(got - want)
    print(f"  C++ shipped {name} vs {scale:g} x {peer} cosine: {len(pairs)} pairs, "
          f"max |logit diff| {diff.max():.5f}")
    if len(pairs) < 30 or diff.max() > MAX_LOGIT_DIFF:
        worst = int(diff.argmax())
        print(f"FAIL: {name}: logit {got[worst]:.4f} vs {want[worst]:.4f} for {pairs[worst]!r}")
        return False
    return True


def check(name, got, want, bar, texts):
    cos = cosines(got, want)
    print(f"  {name}: min cosine {cos.min():.7f}, mean {cos.mean():.7f}")
    if cos.min() < bar:
        worst = int(cos.argmin())
        print(f"FAIL: {name}: cosine {cos[worst]:.6f} < {bar} for {texts[worst]!r}")
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--texts", type=int, default=80)
    ap.add_argument("--onnx-dir", default=ONNX_DIR)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    texts = common.corpus_texts(40) + common.synthetic_texts(200, seed=3)
    random.Random(11).shuffle(texts)
    texts = texts[:a.texts]
    # Two texts past 512 tokens, so truncation is exercised with the prefix counted.
    texts += [" ".join(texts[:60]), "retrieval " * 700]
    texts.sort(key=len)  # batches of similar lengths: little padding, a short test
    kinds = ["query" if i % 3 == 0 else "document" for i in range(len(texts))]
    os.makedirs(a.workdir, exist_ok=True)
    ok = True
    for stem, shipped in SHIPPED.items():
        _, _, pooling, qp, dp = PEERS[stem]
        onnx_path, tok_path = peer_files(stem, a.onnx_dir)
        if not os.path.exists(onnx_path):
            print(f"FAIL: {onnx_path} is missing; scripts/install-deps.sh fetches it")
            return 1
        full = [(qp if k == "query" else dp) + t for t, k in zip(texts, kinds)]
        t0 = time.time()
        want, tok = ort_embed(onnx_path, tok_path, full, pooling)
        print(f"{stem}: ONNX Runtime, {len(texts)} texts in {time.time() - t0:.1f}s")
        d = os.path.join(a.workdir, stem)
        convert_to_diffrank(onnx_path, tok_path, d, pooling, 512, "diffattn-v2",
                            f"{stem}-diffattn-v2", qp, dp)
        got = cpp_embed(a.encode, d, list(zip(texts, kinds)), os.path.join(d, "out.safetensors"))
        ok &= check("C++ diffattn-v2 fp32", got, want, MIN_COS, full)
        ok &= check("PyTorch reference diffattn-v2", ref_embed(d, tok, full), want, MIN_COS, full)
        if shipped:
            sd = os.path.join(ROOT, "models", shipped)
            with open(os.path.join(sd, "config.json")) as f:
                cfg = json.load(f)
            if cfg.get("query_prefix", "") != qp or cfg.get("document_prefix", "") != dp:
                print(f"FAIL: {sd}/config.json prefixes differ from the source model's")
                ok = False
            got = cpp_embed(a.encode, sd, list(zip(texts, kinds)),
                            os.path.join(a.workdir, shipped + ".safetensors"))
            ok &= check(f"C++ shipped {shipped} (fp16 weights)", got, want, MIN_COS_FP16, full)
    for name in SHIPPED_RERANKERS:
        ok &= check_reranker(a.encode, a.workdir, name, texts, a.onnx_dir)
    print("onnx parity:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
