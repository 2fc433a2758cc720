#!/usr/bin/env python3
"""attention_ab.py: diffrank's fused CPU attention against LibTorch's ops, same binary.

    encoder/bench/attention_ab.py --bench build/encoder/diffrank-encoder-bench \
        --models models/diffrank-rerank-v2,models/diffrank-embed-v3 \
        --precisions fp32,int8,bf16 --shapes 20x128,1x32 --isas native,avx2 \
        [--rounds 3] [--iters 8] [--busy]

Runs diffrank-encoder-bench with --attention fused and --attention torch in
alternating rounds (so drift on a shared machine hits both), per model,
precision, shape (BATCHxTOKENS) and kernel path (native, or a lowered one via
DIFFRANK_MAX_CPU_ISA), and prints one JSON line per run and a markdown table:
median tokens/s and p50 ms of each arm and the ratio fused / torch. --busy
runs everything beside one busy-looping process (a shared host, a pod at its
CPU limit). A bf16 row is skipped where the kernel path refuses bf16.
Results: docs/benchmarks.md ("Fused attention for the rerankers ...").
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(bench, model, precision, batch, seq, attention, isa, iters, threads):
    env = dict(os.environ)
    if isa != "native":
        env["DIFFRANK_MAX_CPU_ISA"] = isa
    cmd = [bench, "--model", model, "--batch", str(batch), "--seq", str(seq),
           "--precision", precision, "--attention", attention, "--iters", str(iters),
           "--warmup", "2"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1:] or ["failed"]
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--models", required=True, help="comma-separated model directories")
    ap.add_argument("--precisions", default="fp32,int8,bf16")
    ap.add_argument("--shapes", default="20x128,1x32", help="BATCHxTOKENS, comma-separated")
    ap.add_argument("--isas", default="native,avx2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="0: the encoder's default")
    ap.add_argument("--busy", action="store_true", help="beside one busy-looping process")
    a = ap.parse_args()
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"]) if a.busy else None
    try:
        cells = [(m, p, s, i) for m in a.models.split(",") for i in a.isas.split(",")
                 for s in a.shapes.split(",") for p in a.precisions.split(",")]
        results = {}
        refused = set()
        for r in range(a.rounds):
            for cell in cells:
                if cell in refused:
                    continue
                model, precision, shape, isa = cell
                batch, seq = (int(x) for x in shape.split("x"))
                for attention in ("fused", "torch") if r % 2 == 0 else ("torch", "fused"):
                    rec, err = run(a.bench, model, precision, batch, seq, attention, isa,
                                   a.iters, a.threads)
                    if rec is None:
                        print(json.dumps({"cell": cell, "refused": err}), flush=True)
                        refused.add(cell)
                        break
                    rec.update(model=os.path.basename(model.rstrip("/")), isa=isa,
                               attention=attention, round=r, busy=a.busy)
                    print(json.dumps(rec), flush=True)
                    results.setdefault(cell, {}).setdefault(attention, []).append(rec)
    finally:
        if busy:
            busy.kill()
    print(f"\ncpu: {cpu_name()}, {os.cpu_count()} cpus, busy neighbour: {a.busy}, "
          f"{a.rounds} alternating rounds, medians")
    print("| model | path | precision | shape | fused tokens/s | torch tokens/s | fused p50 ms "
          "| torch p50 ms | fused / torch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell, arms in results.items():
        if cell in refused or len(arms) < 2:
            continue
        model, precision, shape, isa = cell
        f = statistics.median(x["tokens_per_s"] for x in arms["fused"])
        t = statistics.median(x["tokens_per_s"] for x in arms["torch"])
        fp = statistics.median(x["p50_ms"] for x in arms["fused"])
        tp = statistics.median(x["p50_ms"] for x in arms["torch"])
        print(f"| {os.path.basename(model.rstrip('/'))} | {isa} | {precision} | {shape} "
              f"| {f:,.0f} | {t:,.0f} | {fp:.2f} | {tp:.2f} | {f / t:.2f} |")
    return 0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
