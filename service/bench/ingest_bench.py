#!/usr/bin/env python3
"""Ingestion speed: offline and online bulk loading and Upsert vs the raw encoder, same texts,
same run (issue 14).

  .venv-clients/bin/python service/bench/ingest_bench.py [--texts demo|lisa|generated] \
      [--count 100000] [--precision auto|fp32|bf16|int8] [--threads 2] [--paths raw,offline,online,upsert]

Texts:
  demo       the README demo's documents (installed Debian packages' descriptions from
             /var/lib/dpkg/status, via clients/python/demo.py);
  lisa       ../shared/data/lisa/corpus.jsonl (5,999 abstracts);
  generated  --count documents the script generates: 1-6 sentences drawn (fixed seed) from the
             description sentences of every package the machine's apt catalog lists
             (`apt-cache dumpavail`), so lengths and vocabulary are those of real text.
Paths, each timed end to end on the same texts:
  raw      build/encoder/diffrank-encode over the texts sorted by length (the encoder alone at
           its best: the embedder's precision, --batch_size 32, no padding waste);
  offline  diffrank-index building a collection version (--no-publish);
  online   diffrank-index --online into a fresh diffrank-server (--batch_documents, 4 in flight);
  upsert   a Python grpcio client streaming Upsert batches of --batch documents.
Prints one JSON line per path (documents/s, tokens/s, ratio to raw) and a Markdown table.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from demo import documents  # noqa: E402
from diffrank_client import Client  # noqa: E402
from server import Server  # noqa: E402


def generated(n, seed=7):
    """n documents of 1-6 real sentences each (see the module docstring)."""
    sentences = []
    for d in documents("catalog", 0):
        for s in re.split(r"(?<=[.!?])\s+", d["text"].replace("\n", " ")):
            if 20 <= len(s) <= 400:
                sentences.append(s)
    rng = random.Random(seed)
    for i in range(n):
        k = rng.randint(1, 6)
        yield {"id": f"g{i}", "text": " ".join(rng.choice(sentences) for _ in range(k))}


def load_texts(a):
    if a.texts == "demo":
        return list(documents("status", a.count or 10 ** 9))
    if a.texts == "lisa":
        path = os.path.join(ROOT, "..", "shared", "data", "lisa", "corpus.jsonl")
        out = []
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                out.append({"id": d["_id"], "title": d.get("title", ""), "text": d["text"]})
        return out[:a.count] if a.count else out
    return list(generated(a.count or 100000))


def run(cmd, **kw):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {p.stderr[-2000:]}")
    return time.time() - t0, p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--texts", choices=["demo", "lisa", "generated"], default="demo")
    ap.add_argument("--count", type=int, default=0, help="0 = all (generated: 100,000)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch", type=int, default=256, help="documents per Upsert batch")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--paths", default="raw,offline,online,upsert")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "diffrank-embed-v3"),
                    help="embedder directory (default: the server's default)")
    a = ap.parse_args()
    docs = load_texts(a)
    n = len(docs)
    paths = a.paths.split(",")
    work = tempfile.mkdtemp(prefix="diffrank-ingest-")
    index = os.path.join(a.build, "indexer", "diffrank-index")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    results = {}
    tokens = None
    precision = "float32"
    try:
        inp = os.path.join(work, "docs.jsonl")
        with open(inp, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        if "offline" in paths or "raw" in paths:
            secs, err = run([index, "--data_dir", os.path.join(work, "offline"), "--collection",
                             "ingest", "--input", inp, "--no-publish", "--model", a.model,
                             "--threads",
                             str(a.threads), "--precision", a.precision], env=env)
            # "built ...: N documents, ...; D documents/s, T tokens/s; ..."
            m = re.search(r"built .*?([\d.]+) tokens/s", err)
            dev = re.search(r"on cpu \(([a-z0-9]+)", err)
            tokens = float(m.group(1)) * secs if m else None
            precision = dev.group(1) if dev else "float32"
            results["offline"] = secs
        if "raw" in paths:
            prec = {"float32": "fp32", "bfloat16": "bf16", "int8": "int8"}.get(precision, "fp32")
            raw_in = os.path.join(work, "sorted.jsonl")
            texts = sorted(((d.get("title", "") + " " + d["text"]).strip() for d in docs), key=len)
            with open(raw_in, "w") as f:
                for t in texts:
                    f.write(json.dumps({"text": t}) + "\n")
            secs, _ = run([os.path.join(a.build, "encoder", "diffrank-encode"), "--model",
                           a.model, "--input", raw_in,
                           "--output", os.path.join(work, "raw.safetensors"), "--device", "cpu",
                           "--precision", prec, "--batch_size", "32", "--threads",
                           str(a.threads)], env=env)
            results["raw"] = secs
        if "online" in paths or "upsert" in paths:
            os.environ["DIFFRANK_SERVER"] = os.path.join(a.build, "service", "diffrank-server")
            s = Server(data_dir=os.path.join(work, "data"), keys=False,
                       extra_args=["--precision", a.precision, "--threads", str(a.threads),
                                   "--embedder_model", a.model])
            try:
                if "online" in paths:
                    secs, _ = run([index, "--online", "--server", s.target, "--data_dir",
                                   os.path.join(work, "unused"), "--collection", "online",
                                   "--input", inp, "--batch_documents", str(a.batch),
                                   "--checkpoint", os.path.join(work, "ck.json")], env=env)
                    results["online"] = secs
                if "upsert" in paths:
                    c = Client(s.target)
                    c.create_collection("upsert")
                    t0 = time.time()
                    c.upsert("upsert", docs, batch_size=min(a.batch, 256), timeout=36000)
                    results["upsert"] = time.time() - t0
            finally:
                s.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = results.get("raw")
    lines = [f"{n:,} documents ({a.texts}), {a.threads} threads, "
             f"{os.path.basename(a.model.rstrip('/'))} in {precision}", "",
             "| path | documents/s | tokens/s | vs raw encoder |", "|---|---|---|---|"]
    for path in ("raw", "offline", "online", "upsert"):
        if path not in results:
            continue
        secs = results[path]
        row = {"path": path, "documents": n, "seconds": round(secs, 1),
               "docs_per_s": round(n / secs, 1),
               "tokens_per_s": round(tokens / secs) if tokens else None,
               "vs_raw": round(raw / secs, 2) if raw else None}
        print(json.dumps(row), flush=True)
        tps = f"{row['tokens_per_s']:,}" if row["tokens_per_s"] else "-"
        lines.append(f"| {path} | {row['docs_per_s']:,} | {tps} | {row['vs_raw'] or '-'} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
