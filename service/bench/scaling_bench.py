#!/usr/bin/env python3
"""One server vs 3 shard servers + a router, same machine, same run (docs/scaling.md).

  .venv-clients/bin/python service/bench/scaling_bench.py [--docs 0] [--requests 200]

Loads LISA (../shared/data/lisa, every document unless --docs) once into one server and,
split by the router's id hash, into 3 shard servers (diffrank-index --shard i --shards 3,
the Indexed Job's command), then drives Search (hybrid, top_k 10, the default rerank depth)
with ghz at 1 and 8 concurrent clients, alternating topologies per round. Prints one JSON
object per measurement and the ratios router / single.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, HERE)
from server import KEYS, Server  # noqa: E402
from service_bench import ghz  # noqa: E402

LISA = os.path.join(ROOT, "..", "shared", "data", "lisa")
INDEX = os.path.join(ROOT, "build", "indexer", "diffrank-index")


def build(server, corpus, shard, shards):
    env = dict(os.environ, DIFFRANK_API_KEY=KEYS["admin"])
    subprocess.run([INDEX, "--data_dir", server.data_dir, "--collection", "lisa", "--input",
                    corpus, "--shard", str(shard), "--shards", str(shards), "--server",
                    server.target], check=True, env=env, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=0, help="0 = all of LISA")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ghz", default=os.path.expanduser("~/.cache/diffrank/go-bin/ghz"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="diffrank-scaling-")
    corpus = os.path.join(work, "lisa.jsonl")
    with open(os.path.join(LISA, "corpus.jsonl")) as src, open(corpus, "w") as dst:
        for i, line in enumerate(src):
            if a.docs and i >= a.docs:
                break
            d = json.loads(line)
            dst.write(json.dumps({"id": d["_id"], "title": d.get("title", ""),
                                  "text": d["text"]}) + "\n")
    queries = [json.loads(l)["text"][:500] for l in open(os.path.join(LISA, "queries.jsonl"))]
    # No API keys (ghz sends none); every server on this machine's 2 cores.
    single = Server(keys=False, wait=False)
    shards = [Server(keys=False, wait=False) for _ in range(3)]
    servers = [single] + shards
    try:
        for s in servers:
            s.wait_serving(timeout=300)
        router = Server(keys=False, extra_args=["--shards", ",".join(s.target for s in shards)])
        servers.append(router)
        build(single, corpus, 0, 1)
        for i, s in enumerate(shards):
            build(s, corpus, i, 3)
        data = [{"collection": "lisa", "query": q, "top_k": 10} for q in queries]
        results = {}
        for _ in range(a.rounds):
            for conc in map(int, a.concurrency.split(",")):
                for name, target in (("single", single.target), ("router", router.target)):
                    r = ghz(target, "Search", data, conc, a.requests, a.ghz)
                    results.setdefault((name, conc), []).append(r)
                    print(json.dumps({"topology": name, "concurrency": conc, **r}), flush=True)
        for conc in map(int, a.concurrency.split(",")):
            best = {n: max(results[(n, conc)], key=lambda r: r["rps"]) for n in ("single", "router")}
            print(json.dumps({"concurrency": conc,
                              "rps_ratio_router_over_single":
                                  round(best["router"]["rps"] / best["single"]["rps"], 3),
                              "p50_ratio": round(best["router"]["p50_ms"] / best["single"]["p50_ms"], 3),
                              "p99_ratio": round(best["router"]["p99_ms"] / best["single"]["p99_ms"], 3)}),
                  flush=True)
    finally:
        for s in reversed(servers):
            s.close()


if __name__ == "__main__":
    main()
