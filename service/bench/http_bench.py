#!/usr/bin/env python3
"""HTTP/JSON front vs gRPC, same server, same run (docs/benchmarks.md "HTTP front").

  .venv-clients/bin/python service/bench/http_bench.py [--requests 400] [--tls]

Embed (one text per call: what a RAG framework sends for a query) through gRPC Embed (ghz)
and through OpenAI's POST /v1/embeddings (hey, float JSON), and Search (hybrid, top_k 10, no
rerank, so the transport is a visible share) through gRPC Search (ghz) and POST
/v1/collections/{name}/search (hey), at 1 and 16 concurrent clients, alternating per round.
Both tools are Go load generators with keep-alive connections. Prints one JSON object per
run and the median-latency ratios HTTP / gRPC. --tls serves both ports with TLS (a test CA made
with openssl; ghz trusts it; hey skips verification) to price HTTPS against gRPC over TLS.
"""
import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, HERE)
from server import Server, free_port  # noqa: E402
from diffrank_client import Client  # noqa: E402
from service_bench import ghz  # noqa: E402

GOBIN = os.path.expanduser("~/.cache/diffrank/go-bin")
QUERY = "which passage explains how the index is rebuilt after a crash?"


def hey(url, body, concurrency, total):
    # -host without the port: hey uses the Host value as the TLS server name, and GnuTLS
    # refuses an SNI holding ":port" (RFC 6066 allows host names only).
    p = subprocess.run([os.path.join(GOBIN, "hey"), "-host", "127.0.0.1",
                        "-n", str(total), "-c", str(concurrency),
                        "-m", "POST", "-T", "application/json", "-d", json.dumps(body),
                        "-o", "csv", url], capture_output=True, text=True, timeout=3600)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    lat = sorted(float(r["response-time"]) * 1000 for r in rows)
    codes = {}
    for r in rows:
        codes[r["status-code"]] = codes.get(r["status-code"], 0) + 1
    span = max(float(r["offset"]) + float(r["response-time"]) for r in rows)
    return {"rps": len(rows) / span, "p50_ms": statistics.median(lat),
            "p99_ms": lat[int(0.99 * (len(lat) - 1))], "codes": codes, "count": len(rows)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--tls", action="store_true", help="TLS on both ports")
    a = ap.parse_args()
    port = free_port()
    args, creds, cacert = ["--http_listen", f"127.0.0.1:{port}"], None, None
    pki = tempfile.TemporaryDirectory()
    if a.tls:
        from test_operations import make_pki
        make_pki(pki.name)
        cacert = os.path.join(pki.name, "ca.pem")
        args += ["--tls_cert", os.path.join(pki.name, "server.pem"),
                 "--tls_key", os.path.join(pki.name, "server.key")]
        creds = grpc.ssl_channel_credentials(open(cacert, "rb").read())
    s = Server(keys=False, extra_args=args, wait=False)
    s.wait_serving(credentials=creds)
    http = f"{'https' if a.tls else 'http'}://127.0.0.1:{port}"
    try:
        c = Client(s.target, timeout=600, credentials=creds)
        c.create_collection("bench")
        docs = [{"id": f"d{i}", "text": f"document {i}: the index is rebuilt from SQLite "
                 f"after a crash; passage {i} talks about topic {i % 37}"} for i in range(2000)]
        c.upsert("bench", docs, timeout=600)
        cases = {
            "embed": ({"texts": [QUERY]}, "Embed", "/v1/embeddings", {"input": QUERY,
                                                                    "encoding_format": "float"}),
            "search": ({"collection": "bench", "query": QUERY, "top_k": 10, "rerank": False},
                       "Search", "/v1/collections/bench/search",
                       {"query": QUERY, "top_k": 10, "rerank": False}),
        }
        med = {}
        for _ in range(a.rounds):
            for name, (gbody, method, path, hbody) in cases.items():
                for conc in map(int, a.concurrency.split(",")):
                    g = ghz(s.target, method, gbody, conc, a.requests,
                            os.path.join(GOBIN, "ghz"), cacert)
                    h = hey(http + path, hbody, conc, a.requests)
                    for proto, r in (("grpc", g), ("http", h)):
                        med.setdefault((name, conc, proto), []).append(r["p50_ms"])
                        print(json.dumps({"call": name, "concurrency": conc, "transport": proto,
                                          **r}), flush=True)
        for name in cases:
            for conc in map(int, a.concurrency.split(",")):
                g = statistics.median(med[(name, conc, "grpc")])
                h = statistics.median(med[(name, conc, "http")])
                print(json.dumps({"call": name, "concurrency": conc, "tls": a.tls, "grpc_p50_ms": round(g, 2),
                                  "http_p50_ms": round(h, 2), "http_over_grpc": round(h / g, 3)}),
                      flush=True)
    finally:
        s.close()
        pki.cleanup()


if __name__ == "__main__":
    main()
