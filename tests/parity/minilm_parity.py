#!/usr/bin/env python3
"""A real model: all-MiniLM-L6-v2 converted to diffrank and served by the C++ runtime gives
the sentence-transformers embeddings of the original (cosine >= 0.9999 on every text).

  minilm_parity.py --encode BUILD/encoder/diffrank-encode --workdir DIR
Checks on 240 varied texts by default (corpus passages, questions, multi-script and edge-case
texts; some longer than the 256-token limit, so truncation is exercised; --texts 1200 is the
long comparison, minutes on 2 cores):
  1. C++ on the converted (baseline) directory vs sentence-transformers;
  2. the PyTorch reference on the same directory vs sentence-transformers;
  3. C++ on the DiffAttn V2 retrofit of the model vs sentence-transformers (exact at step 0);
  4. C++ in bfloat16 on CPU (--precision bf16) vs sentence-transformers: min cosine >= 0.999
     (the stated tolerance of reduced precision; reported, and required), only where the CPU
     has native bf16 (diffrank-encode --cpu_info): emulated it is slow and never the default.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
import common  # noqa: E402
from convert_hf_bert import convert  # noqa: E402
from diffrank_ref.model import load_model_dir, save_model_dir  # noqa: E402

MIN_COS = 0.9999
MIN_COS_BF16 = 0.999


def cosines(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encode", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--texts", type=int, default=240)
    a = ap.parse_args()
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(os.cpu_count() or 1)
    src = common.minilm_dir()
    texts = common.corpus_texts(160) + common.synthetic_texts(400, seed=1)
    # Every kind of text in the sample: corpus, questions, synthetic edge cases.
    random.Random(7).shuffle(texts)
    texts = texts[: max(a.texts, 200)]
    texts.sort(key=len)
    assert len(texts) >= 200, len(texts)
    os.makedirs(a.workdir, exist_ok=True)
    jsonl = os.path.join(a.workdir, "texts.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")

    t0 = time.time()
    st = SentenceTransformer(src, device="cpu")
    want = st.encode(texts, batch_size=32, convert_to_numpy=True)
    print(f"sentence-transformers: {len(texts)} texts in {time.time() - t0:.1f}s")

    ok = True
    cases = [("baseline", "fp32"), ("diffattn-v2", "fp32")]
    cpu = common.cpu_info(a.encode)
    if cpu["native_bf16"]:
        cases.append(("baseline", "bf16"))
    else:
        print(f"bf16 case skipped: CPU kernel path {cpu['isa']} has no native bf16")
    for arch, precision in cases:
        d = os.path.join(a.workdir, f"minilm-{arch}")
        if precision == "fp32":
            model = convert(src, "bi-encoder", arch, f"all-MiniLM-L6-v2-{arch}")
            save_model_dir(model, d, os.path.join(src, "vocab.txt"))
        out = os.path.join(d, f"out-{precision}.safetensors")
        t0 = time.time()
        subprocess.run([a.encode, "--model", d, "--input", jsonl, "--output", out,
                        "--device", "cpu", "--precision", precision, "--batch_size", "32"],
                       check=True)
        got = load_file(out)
        cos = cosines(got["output"].numpy(), want)
        truncated = int(got["truncated"].sum())
        print(f"C++ {arch} {precision}: {time.time() - t0:.1f}s, min cosine {cos.min():.7f}, "
              f"mean {cos.mean():.7f}, {truncated} texts truncated at 256 tokens")
        bar = MIN_COS if precision == "fp32" else MIN_COS_BF16
        if cos.min() < bar:
            worst = int(cos.argmin())
            print(f"FAIL: cosine {cos[worst]:.6f} < {bar} for {texts[worst]!r}")
            ok = False
        if arch == "baseline" and precision == "fp32":
            ref = load_model_dir(d)
            tok = st.tokenizer
            embs = []
            with torch.no_grad():
                for i in range(0, len(texts), 64):
                    enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
                    embs.append(ref(enc["input_ids"], enc["token_type_ids"],
                                    enc["attention_mask"]).numpy())
            cos_ref = cosines(np.concatenate(embs), want)
            print(f"PyTorch reference: min cosine {cos_ref.min():.7f}")
            ok &= bool(cos_ref.min() >= MIN_COS)
    print("minilm parity:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
