#!/usr/bin/env python3
"""Ingestion speed through the server vs the raw encoder, same texts, same run (issue 14).

  .venv-clients/bin/python service/bench/ingest_bench.py [--build build] [--limit 0] \
      [--precision auto|fp32|bf16|int8] [--batch 64] [--threads 2]

Texts: the README demo's documents (installed Debian packages' descriptions from
/var/lib/dpkg/status, via clients/python/demo.py). Measures, in one run:
  raw:    build/encoder/diffrank-encode over the texts (the encoder alone, input order,
          --batch_size 32) at the server's embedder precision;
  server: a fresh diffrank-server (--precision as given) and a Python grpcio client
          streaming Upsert batches of --batch documents into a new collection
          (tokenize, embed, SQLite commit with fsync, FAISS add).
Prints documents/s, tokens/s and the ratio server / raw, and the padding waste of the
server's batches (real tokens / padded tokens, from its /metrics histograms).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from demo import documents  # noqa: E402
from diffrank_client import Client  # noqa: E402
from server import Server  # noqa: E402


def metric_sum(text, name, label):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--limit", type=int, default=0, help="0 = every installed package")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    docs = list(documents("status", a.limit or 10 ** 9))
    work = tempfile.mkdtemp(prefix="diffrank-ingest-")
    try:
        # The server, through the API.
        os.environ["DIFFRANK_SERVER"] = os.path.join(a.build, "service", "diffrank-server")
        s = Server(data_dir=os.path.join(work, "data"), keys=False,
                   extra_args=["--precision", a.precision, "--threads", str(a.threads)])
        try:
            c = Client(s.target)
            c.create_collection("ingest")
            t0 = time.time()
            c.upsert("ingest", docs, batch_size=a.batch, timeout=3600)
            server_s = time.time() - t0
            with urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics") as r:
                m = r.read().decode()
            info = c.info()
        finally:
            s.close()
        padded = metric_sum(m, "diffrank_batch_padded_tokens_sum", 'kind="document_embed"')
        precision = info.embedder.device
        # The raw encoder on the same texts, at the precision the server used.
        prec = {"float32": "fp32", "bfloat16": "bf16", "int8": "int8"}.get(
            precision.split("(")[-1].rstrip(")"), "fp32")
        inp = os.path.join(work, "texts.jsonl")
        with open(inp, "w") as f:
            for d in docs:
                text = (d.get("title", "") + " " + d["text"]).strip()
                f.write(json.dumps({"text": text}) + "\n")
        model = os.path.join(ROOT, "models", "diffrank-embed-v2")
        t0 = time.time()
        subprocess.run([os.path.join(a.build, "encoder", "diffrank-encode"), "--model", model,
                        "--input", inp, "--output", os.path.join(work, "out.safetensors"),
                        "--device", "cpu", "--precision", prec, "--batch_size", "32",
                        "--threads", str(a.threads)], check=True, capture_output=True)
        raw_s = time.time() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(docs)
    row = {"documents": n, "embedder": precision, "batch": a.batch,
           "server_docs_per_s": round(n / server_s, 1), "raw_docs_per_s": round(n / raw_s, 1),
           "server_over_raw": round(raw_s / server_s, 2),
           "server_padded_tokens": int(padded)}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
