#!/usr/bin/env python3
"""The README's main job: load Debian's package catalog into a running
diffrank-server through the real API, then show reranked searches with timings.

  clients/python/demo.py [--target 127.0.0.1:50051] [--source status|catalog] [--limit N]
--source status (default): the installed packages (/var/lib/dpkg/status, on
every Debian machine); catalog: every package apt knows (`apt-cache dumpavail`).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from diffrank_client import Client  # noqa: E402

QUERIES = [
    "compress files into an archive",
    "library for parsing XML documents",
    "secure shell client to log into remote machines",
    "tool to download files from the web",
    "manage time zones and daylight saving",
    "regular expression library",
]


def parse_deb822(text):
    """Yields the fields of each paragraph (Description keeps its continuation lines)."""
    para, key = {}, None
    for line in text.splitlines():
        if not line.strip():
            if para:
                yield para
            para, key = {}, None
        elif line[0] in " \t" and key:
            para[key] += "\n" + line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            para[key] = value.strip()
    if para:
        yield para


def documents(source, limit):
    if source == "status":
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as f:
            text = f.read()
    else:
        text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                              check=True).stdout
    seen = set()
    for p in parse_deb822(text):
        name, desc = p.get("Package"), p.get("Description", "")
        if not name or not desc or name in seen:
            continue
        seen.add(name)
        short, _, long_ = desc.partition("\n")
        long_ = "\n".join("" if l.strip() == "." else l.strip() for l in long_.splitlines())
        yield {"id": name, "title": f"{name}: {short}", "text": long_.strip() or short,
               "metadata": json.dumps({"section": p.get("Section", ""),
                                       "priority": p.get("Priority", ""),
                                       "version": p.get("Version", "")})}
        if limit and len(seen) >= limit:
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="127.0.0.1:50051")
    ap.add_argument("--api-key", default=os.environ.get("DIFFRANK_API_KEY"))
    ap.add_argument("--collection", default="debian-packages")
    ap.add_argument("--source", choices=["status", "catalog"], default="status")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--query", action="append", help="search these instead of the examples")
    a = ap.parse_args()
    c = Client(a.target, api_key=a.api_key, timeout=600)
    info = c.info()
    print(f"server {info.version}: embedder {info.embedder.id} ({info.embedder.architecture}, "
          f"{info.embedder.device}), reranker {info.reranker.id} ({info.reranker.architecture})")
    try:
        c.create_collection(a.collection)
        print(f"created collection {a.collection}")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    docs = list(documents(a.source, a.limit))
    t0 = time.time()
    r = c.upsert(a.collection, docs, batch_size=64)
    secs = time.time() - t0
    print(f"upserted {r.upserted} package descriptions in {r.batches} batches, {secs:.1f} s "
          f"({r.upserted / max(secs, 1e-9):.0f} docs/s, acknowledged = durable)")
    for q in a.query or QUERIES:
        res = c.search(a.collection, q, top_k=3, include_text=False)
        t = res.timing
        print(f"\n? {q}\n  total {t.total_us / 1000:.1f} ms (embed {t.embed_us / 1000:.1f}, "
              f"retrieve {t.retrieve_us / 1000:.1f}, fetch {t.fetch_us / 1000:.1f}, rerank "
              f"{t.rerank_us / 1000:.1f} for {res.reranked} candidates)")
        for i, h in enumerate(res.hits, 1):
            title = c.get(a.collection, [h.id]).documents[0].title
            stage = (f"rerank {h.rerank_score:+.2f}" if h.HasField("rerank_score")
                     else "retrieval order")  # past the rerank depth
            print(f"  {i}. {title[:90]}  ({stage})")


if __name__ == "__main__":
    main()
