#!/usr/bin/env python3
"""Service benchmark with ghz (the standard gRPC load tool), against a real
diffrank-server on loopback.

  .venv-clients/bin/python service/bench/service_bench.py [--docs 100000] [--phase embed,load,search]

embed:  Embed throughput through gRPC (ghz, 32 documents per request) vs the raw
        encoder (diffrank-encode, batch 32, same texts, same threads), rounds
        alternating in one run; reports texts/s and the ratio.
load:   a --docs document collection of real passages (train/build_data.py output:
        corpus passages, SQuAD, BEIR, Debian, then WordNet glosses), built once offline
        by diffrank-bench-load into --work (full text stored and BM25-indexed; vectors
        from the first --embed-tokens tokens, which search latency does not depend on);
search: Search (hybrid, top_k 10) latency p50/p99 at
        1, 4 and 16 concurrent clients for rerank depth 0, 5, 10, 20 and 50, using
        held-out SQuAD questions as queries, with the mean time per stage (queue, embed,
        retrieve, fetch, rerank) from the server's stage histogram over each run.
Prints one JSON object per measurement.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, HERE)
from server import Server  # noqa: E402
from diffrank_client import Client  # noqa: E402

PROTO = ["--proto", os.path.join(ROOT, "proto", "diffrank", "v1", "diffrank.proto"),
         "--import-paths", os.path.join(ROOT, "proto")]


def ghz(target, call, data, concurrency, total, tool, cacert=None):
    """ghz over plaintext, or TLS trusting `cacert` (a PEM file) when given."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
    security = ["--cacert", cacert] if cacert else ["--insecure"]
    p = subprocess.run([tool, *security, *PROTO, "--call", f"diffrank.v1.Diffrank.{call}",
                        "--data-file", f.name, "-c", str(concurrency), "-n", str(total),
                        "--connections", "1", "--timeout", "60s", "-O", "json", target],
                       capture_output=True, text=True, timeout=3600)
    os.unlink(f.name)
    if p.returncode != 0 and not p.stdout:
        raise RuntimeError(p.stderr)
    r = json.loads(p.stdout)
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    return {"rps": r["rps"], "p50_ms": lat.get(50), "p99_ms": lat.get(99),
            "codes": r.get("statusCodeDistribution", {}), "count": r["count"]}


def passages(data_dir, n):
    """Unique real passages: corpus passages and SQuAD / BEIR / Debian positives first
    (long, like RAG chunks), WordNet glosses, then generated documents only to fill up to n."""
    seen, out, glosses = set(), [], []
    with open(os.path.join(data_dir, "unlabeled.jsonl")) as f:
        rows = [(json.loads(line)["text"], "unlabeled") for line in f]
    with open(os.path.join(data_dir, "pairs.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            rows.append((j["positive"], j["source"]))
    for t, source in rows:
        if t in seen:
            continue
        seen.add(t)
        (glosses if source.startswith("wordnet") else out).append(t)
    out += glosses
    if len(out) < n:
        # Where build_data.py found fewer passages (no WordNet on the machine), fill up with
        # documents generated from the apt catalog's descriptions (ingest_bench.py).
        from ingest_bench import generated
        out += [d["text"] for d in generated(n - len(out))]
    return out[:n]


def load_collection(a, texts):
    """Builds <work>/data/bench offline once (diffrank-bench-load; see its header)."""
    path = os.path.join(a.work, "data", "bench")
    if os.path.exists(os.path.join(path, "manifest.json")):
        return
    jsonl = os.path.join(a.work, "bench_texts.jsonl")
    with open(jsonl, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    t0 = time.time()
    subprocess.run([os.path.join(ROOT, "build", "service", "diffrank-bench-load"), "--model",
                    a.embedder, "--input", jsonl, "--dir", path + ".tmp", "--embed_tokens",
                    str(a.embed_tokens)], check=True)
    os.rename(path + ".tmp", path)
    print(json.dumps({"loaded": len(texts), "seconds": round(time.time() - t0)}),
          file=sys.stderr, flush=True)


def bench_embed(a, target, texts):
    batch = 32
    reqs = [{"texts": texts[s:s + batch], "kind": "EMBED_KIND_DOCUMENT"}
            for s in range(0, len(texts), batch)]
    jsonl = os.path.join(a.work, "embed_texts.jsonl")
    with open(jsonl, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    encode = os.path.join(ROOT, "build", "encoder", "diffrank-encode")
    raw, grpc_ = [], []
    for _ in range(a.rounds):
        p = subprocess.run([encode, "--model", a.embedder, "--input", jsonl, "--output",
                            os.path.join(a.work, "raw.safetensors"), "--batch_size", str(batch)],
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
        raw.append(json.loads(p.stderr.strip().splitlines()[-1])["rows_per_s"])
        r = ghz(target, "Embed", reqs, a.embed_concurrency, len(reqs), a.ghz)
        grpc_.append(r["rps"] * batch)
    out = {"bench": "embed", "texts": len(texts), "texts_per_request": batch,
           "concurrency": a.embed_concurrency, "raw_texts_per_s": round(statistics.median(raw), 1),
           "grpc_texts_per_s": round(statistics.median(grpc_), 1)}
    out["ratio"] = round(out["grpc_texts_per_s"] / out["raw_texts_per_s"], 3)
    print(json.dumps(out), flush=True)


def stage_totals(metrics_port):
    """{stage: (seconds, count)} from the server's diffrank_stage_duration_seconds histogram."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    out = {}
    for line in text.decode().splitlines():
        for suffix, idx in (("_sum", 0), ("_count", 1)):
            head = "diffrank_stage_duration_seconds" + suffix + "{"
            if line.startswith(head):
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                out.setdefault(stage, [0.0, 0.0])[idx] = float(line.rsplit(" ", 1)[1])
    return out


def bench_search(a, target, metrics_port):
    c = Client(target, timeout=3600)
    docs = c.stats("bench").info.documents
    queries = []
    with open(os.path.join(a.data, "squad_heldout.jsonl")) as f:
        for line in f:
            queries.append(json.loads(line)["query"])
            if len(queries) >= 200:
                break
    for depth in a.depths:
        for conc in a.concurrency:
            data = [{"collection": "bench", "query": q, "top_k": 10, "rerank": depth > 0,
                     "rerank_depth": depth} for q in queries]
            n = max(a.min_requests, 10 * conc)
            before = stage_totals(metrics_port)
            r = ghz(target, "Search", data, conc, n, a.ghz)
            after = stage_totals(metrics_port)
            # Mean milliseconds per call of each stage during this run.
            stages = {k: round(1000 * (v[0] - before.get(k, [0, 0])[0]) /
                               max(1.0, v[1] - before.get(k, [0, 0])[1]), 2)
                      for k, v in after.items() if v[1] > before.get(k, [0, 0])[1]}
            print(json.dumps({"bench": "search", "documents": docs, "mode": "hybrid",
                              "rerank_depth": depth, "concurrency": conc, **r,
                              "stage_mean_ms": stages, "server_args": a.server_arg}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100000)
    ap.add_argument("--phase", default="embed,search")
    ap.add_argument("--data", default=os.path.expanduser("~/.cache/diffrank/data"))
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/diffrank/bench/service"))
    ap.add_argument("--ghz", default=os.path.expanduser("~/.cache/diffrank/go-bin/ghz"))
    ap.add_argument("--embedder", default=os.path.join(ROOT, "models", "diffrank-embed-v3"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--embed-texts", type=int, default=1024)
    ap.add_argument("--embed-tokens", type=int, default=32,
                    help="tokens embedded per bench document (load phase only)")
    ap.add_argument("--embed-concurrency", type=int, default=2)
    ap.add_argument("--depths", type=lambda s: [int(x) for x in s.split(",")], default=[0, 5, 10, 20, 50])
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    ap.add_argument("--min-requests", type=int, default=60)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra diffrank-server flag (repeatable), e.g. --server-arg=--precision=bfloat16")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not os.path.exists(os.path.join(a.data, "pairs.jsonl")):
        sys.exit(f"{a.data} has no pairs.jsonl: run train/build_data.py --out {a.data}")
    texts = passages(a.data, a.docs)
    if "load" in a.phase or "search" in a.phase:
        load_collection(a, texts)
    server = Server(data_dir=os.path.join(a.work, "data"), keys=False,
                    extra_args=["--threads", str(a.threads), "--embedder_model", a.embedder,
                                *a.server_arg])
    try:
        if "embed" in a.phase:
            bench_embed(a, server.target, texts[:a.embed_texts])
        if "search" in a.phase:
            bench_search(a, server.target, server.metrics_port)
    finally:
        server.close()


if __name__ == "__main__":
    main()
