"""Sharded topology with real processes: 3 shard servers + routers on loopback.

The routers are diffrank-server in the router role (--shards); the reference is
one ordinary server holding every document. LISA's first DIFFRANK_LISA_DOCS
documents (default 1,500; 0 = all 5,999) and every LISA query.
"""
import json
import os
import threading
import time

import grpc
import pytest

from server import KEYS, Server
from diffrank_client import Client, pb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LISA = os.path.join(ROOT, "..", "shared", "data", "lisa")
FP32 = ["--precision", "float32", "--reranker_precision", "float32"]


def shard_of(doc_id, shards):
    """common/shard_hash.h in Python (FNV-1a 64, jump consistent hash)."""
    h = 14695981039346656037
    for b in doc_id.encode():
        h = ((h ^ b) * 1099511628211) & (2 ** 64 - 1)
    b, j = -1, 0
    while j < shards:
        b = j
        h = (h * 2862933555777941757 + 1) & (2 ** 64 - 1)
        j = int((b + 1) * (float(1 << 31) / float((h >> 33) + 1)))
    return b


def overlap(a, b):
    return len(set(a) & set(b)) / max(1, len(a))


def same_ranking(got, want, eps=1e-6):
    """Two dense hit lists rank alike: equal ids rank by rank, except inside a tie of want's
    scores (within eps) or at its cut-off tie. A flat index's inner product depends in its
    last bits on where a vector sits in the index (FAISS sums blocks of vectors with SIMD),
    so shards and one server can order an exact tie differently (seen: two LISA documents
    at 0.6681467890739441 and ...7294692993)."""
    g, w = [h.id for h in got], [h.id for h in want]
    if len(g) != len(w):
        return False
    s = [h.score for h in want]
    for i in range(len(w)):
        if g[i] == w[i]:
            continue
        tie = {w[j] for j in range(len(w)) if abs(s[j] - s[i]) <= eps}
        if g[i] not in tie and abs(s[i] - s[-1]) > eps:
            return False
    return True


def qrels():
    """LISA's graded judgments: {query id: {doc id: grade}}."""
    out = {}
    with open(os.path.join(LISA, "qrels.tsv")) as f:
        next(f)
        for line in f:
            q, d, g = line.split()[:3]
            out.setdefault(q, {})[d] = int(g)
    return out


def ndcg10(ranked, judged):
    import math
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


@pytest.fixture(scope="module")
def topology():
    limit = int(os.environ.get("DIFFRANK_LISA_DOCS", "1500")) or 10 ** 9
    docs = []
    with open(os.path.join(LISA, "corpus.jsonl")) as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            d = json.loads(line)
            docs.append({"id": d["_id"], "title": d.get("title", ""), "text": d["text"]})
    queries = [json.loads(l) for l in open(os.path.join(LISA, "queries.jsonl"))]
    shards = [Server(extra_args=FP32, wait=False) for _ in range(3)]
    single = Server(extra_args=FP32, wait=False)
    servers = list(shards) + [single]
    try:
        for s in servers:
            s.wait_serving(timeout=300)
        targets = ",".join(s.target for s in shards)
        router = Server(extra_args=FP32 + ["--shards", targets, "--shard_timeout_s", "2"])
        partial = Server(extra_args=FP32 + ["--shards", targets, "--shard_timeout_s", "2",
                                             "--shard_failure", "partial"])
        servers += [router, partial]
        r = Client(router.target, api_key=KEYS["admin"])
        one = Client(single.target, api_key=KEYS["admin"])
        r.create_collection("lisa")
        one.create_collection("lisa")
        assert r.upsert("lisa", docs, timeout=900).upserted == len(docs)
        assert one.upsert("lisa", docs, timeout=900).upserted == len(docs)
        yield {"shards": shards, "single": single, "router": router, "partial": partial,
               "docs": docs, "queries": queries, "r": r, "one": one, "servers": servers}
    finally:
        for s in servers:  # a restarted shard is first: its data dir is another's
            s.close()


def test_documents_live_on_the_shard_their_id_hashes_to(topology):
    t = topology
    docs, shards = t["docs"], t["shards"]
    assert t["r"].stats("lisa").info.documents == len(docs)
    for i, s in enumerate(shards):
        mine = [d["id"] for d in docs if shard_of(d["id"], 3) == i]
        c = Client(s.target, api_key=KEYS["admin"])
        assert c.stats("lisa").info.documents == len(mine)
        assert len(c.get("lisa", mine[:50]).documents) == min(50, len(mine))
    # Get through the router keeps the order asked and skips unknown ids.
    ids = [docs[5]["id"], "nope", docs[1]["id"], docs[900 % len(docs)]["id"]]
    got = t["r"].get("lisa", ids).documents
    assert [d.id for d in got] == [ids[0], ids[2], ids[3]]
    assert got[0].text == docs[5]["text"]
    # Paging through the router (issue 25 item 10) walks every shard's documents in id order,
    # as one server does.
    assert [d.id for d in t["r"].scan("lisa", page_size=97)] == sorted(d["id"] for d in docs)


def test_router_answers_as_one_server(topology):
    t = topology
    r, one = t["r"], t["one"]
    judged = qrels()
    dense_equal, lex, hyb, rer = 0, [], [], []
    ndcg = {"lexical_router": 0.0, "lexical_one": 0.0, "hybrid_router": 0.0, "hybrid_one": 0.0}
    for query in t["queries"]:
        q, grades = query["text"], judged.get(query["_id"], {})
        a = r.search("lisa", q, top_k=10, mode=pb.SEARCH_MODE_DENSE, rerank=False).hits
        b = one.search("lisa", q, top_k=10, mode=pb.SEARCH_MODE_DENSE, rerank=False).hits
        # dense is exact: cosine scores merge across shards
        assert same_ranking(a, b), (q, [(h.id, h.score) for h in a],
                                    [(h.id, h.score) for h in b])
        dense_equal += 1
        for mode, acc, name in ((pb.SEARCH_MODE_LEXICAL, lex, "lexical"),
                                (pb.SEARCH_MODE_HYBRID, hyb, "hybrid")):
            a = [h.id for h in r.search("lisa", q, top_k=10, mode=mode, rerank=False).hits]
            b = [h.id for h in one.search("lisa", q, top_k=10, mode=mode, rerank=False).hits]
            acc.append(overlap(a, b))
            ndcg[name + "_router"] += ndcg10(a, grades) / len(t["queries"])
            ndcg[name + "_one"] += ndcg10(b, grades) / len(t["queries"])
        ra = r.search("lisa", q, top_k=10, rerank_depth=20)
        rb = one.search("lisa", q, top_k=10, rerank_depth=20)
        assert ra.reranked == 20 and not ra.missing_shards
        rer.append(overlap([h.id for h in ra.hits], [h.id for h in rb.hits]))
        # The same document gets the same cross-encoder score on both paths.
        sb = {h.id: h.rerank_score for h in rb.hits if h.HasField("rerank_score")}
        for h in ra.hits:
            if h.HasField("rerank_score") and h.id in sb:
                assert abs(h.rerank_score - sb[h.id]) < 1e-3, (q, h.id)
    n = len(t["queries"])
    summary = {"queries": n, "dense_equal": dense_equal,
               "lexical_overlap": sum(lex) / n, "hybrid_overlap": sum(hyb) / n,
               "rerank_overlap": sum(rer) / n, "docs": len(t["docs"]), **ndcg}
    print(json.dumps(summary))
    # The documented effect of per-shard BM25 statistics (docs/scaling.md):
    # 0.897 of the lexical top-10 shared with one server at 500 documents per
    # shard (smaller shards, larger effect); hybrid and reranked lists 0.94+.
    assert summary["lexical_overlap"] >= 0.85, summary
    assert summary["hybrid_overlap"] >= 0.9, summary
    assert summary["rerank_overlap"] >= 0.9, summary


def query_embed_batches(server):
    import re
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    m = re.search(r'diffrank_batch_rows_count\{kind="query_embed"\} (\d+)', text)
    return int(m.group(1)) if m else 0


def test_the_router_embeds_each_query_once_and_shards_search_its_vector(topology):
    t = topology
    r, one = t["r"], t["one"]
    before = [query_embed_batches(s) for s in t["shards"]]
    router_before = query_embed_batches(t["router"])
    qs = [q["text"] for q in t["queries"][:5]]
    for q in qs:
        for mode in (pb.SEARCH_MODE_DENSE, pb.SEARCH_MODE_HYBRID):
            r.search("lisa", q, top_k=10, mode=mode, rerank=False)
    assert [query_embed_batches(s) for s in t["shards"]] == before  # no shard embedded
    assert query_embed_batches(t["router"]) >= router_before + len(qs)
    # A caller's own query_vector (SearchRequest.query_vector) through the router equals
    # the text search; DENSE without rerank needs no text.
    for q in qs:
        vec = list(one.embed([q], kind=pb.EMBED_KIND_QUERY).embeddings[0].values)
        want = one.search("lisa", q, top_k=10, mode=pb.SEARCH_MODE_DENSE, rerank=False).hits
        got = r.search("lisa", "", top_k=10, mode=pb.SEARCH_MODE_DENSE, rerank=False,
                       query_vector=[2 * v for v in vec])
        assert same_ranking(got.hits, want), q
    with pytest.raises(grpc.RpcError) as e:
        r.search("lisa", "", top_k=10, mode=pb.SEARCH_MODE_DENSE, query_vector=vec)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "query is required with a query_vector" in e.value.details()


def test_the_router_passes_on_the_unknown_filter_field_warning(topology):
    # Issue 25 item 4's gap: a filter on a field no document has matches nothing and the
    # answer says so; through the router too (a field is unknown when no shard has it).
    t = topology
    for c in (t["r"], t["one"]):
        for mode in ("hybrid", "dense", "lexical"):
            r = c.search("lisa", t["queries"][0]["text"], top_k=5, mode=mode, rerank=False,
                         filter={"field": "tenant", "eq": "acme"})
            assert len(r.hits) == 0
            assert len(r.warnings) == 1 and '"tenant"' in r.warnings[0], (mode, r.warnings)


def test_a_collection_of_another_model_through_the_router(topology):
    # Issue 24 part 4: a collection built by diffrank-embed-v2 on the shards; the router
    # (default v3) loads v2 and embeds the query with it, so it answers as one v2 server.
    t = topology
    r, one = t["r"], t["one"]
    docs = t["docs"][:200]
    try:
        assert r.create_collection("old", model="diffrank-embed-v2").model == "diffrank-embed-v2"
        one.create_collection("old", model="diffrank-embed-v2")
        r.upsert("old", docs, timeout=900)
        one.upsert("old", docs, timeout=900)
        for s in t["shards"]:
            assert Client(s.target, api_key=KEYS["admin"]).stats("old").info.model == \
                "diffrank-embed-v2"
        for q in [q["text"] for q in t["queries"][:5]]:
            a = [h.id for h in r.search("old", q, top_k=10, mode=pb.SEARCH_MODE_DENSE,
                                        rerank=False).hits]
            b = [h.id for h in one.search("old", q, top_k=10, mode=pb.SEARCH_MODE_DENSE,
                                          rerank=False).hits]
            assert a == b, q
        assert "diffrank-embed-v2" in [m.id for m in r.info().embedders]
    finally:
        for c in (r, one):
            try:
                c.drop_collection("old")
            except grpc.RpcError:
                pass


def test_admin_calls_reach_every_shard(topology):
    t = topology
    r = t["r"]
    r.create_collection("tmp")
    with pytest.raises(grpc.RpcError) as e:
        r.create_collection("tmp")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    names = [c.name for c in r.list_collections().collections]
    assert names == ["lisa", "tmp"]
    for s in t["shards"]:
        assert "tmp" in [c.name for c in Client(s.target, api_key=KEYS["admin"])
                         .list_collections().collections]
    docs = [{"id": f"t{i}", "text": f"document number {i}", "metadata": json.dumps({"k": i % 2})}
            for i in range(30)]
    assert r.upsert("tmp", docs).upserted == 30
    assert r.delete("tmp", ids=["t1", "t2", "zz"]).deleted == 2
    assert r.delete("tmp", filter=json.dumps({"field": "k", "eq": 0})).deleted == 14
    assert r.stats("tmp").info.documents == 14
    r.drop_collection("tmp")
    with pytest.raises(grpc.RpcError) as e:
        r.stats("tmp")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # A bad document refuses the whole batch (no shard commits its part, as on one
    # server), and the error names the caller's index.
    bad = [{"id": f"b{i}", "text": "x"} for i in range(6)] + [{"id": "m", "text": "x",
                                                               "metadata": "[1]"}]
    with pytest.raises(grpc.RpcError) as e:
        r.upsert("lisa", bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "documents[6]" in e.value.details(), e.value.details()
    assert r.stats("lisa").info.documents == len(t["docs"])
    assert not r.get("lisa", [f"b{i}" for i in range(6)]).documents
    # Keys are checked at the router and again by the shards.
    with pytest.raises(grpc.RpcError) as e:
        Client(t["router"].target, api_key=KEYS["read"]).create_collection("nope")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_indexed_job_builds_each_shards_part_and_the_router_serves_it(topology, tmp_path):
    """What deploy/k8s/overlays/sharded's Indexed Job runs, once per completion index."""
    import subprocess
    t = topology
    index = os.environ.get("DIFFRANK_INDEX",
                           os.path.join(ROOT, "build", "indexer", "diffrank-index"))
    docs = t["docs"][:240]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    key_file = tmp_path / "key"
    key_file.write_text(KEYS["admin"] + "\n")  # a mounted Secret, not the environment
    env = {k: v for k, v in os.environ.items() if k != "DIFFRANK_API_KEY"}
    env.update(DIFFRANK_API_KEY_FILE=str(key_file), OMP_NUM_THREADS="2")
    for i, s in enumerate(t["shards"]):
        r = subprocess.run([index, "--threads", "2", "--precision", "fp32",
                            "--data_dir", s.data_dir, "--collection", "bulk",
                            "--input", str(corpus), "--shard", str(i), "--shards", "3",
                            "--server", s.target], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        mine = [d["id"] for d in docs if shard_of(d["id"], 3) == i]
        c = Client(s.target, api_key=KEYS["admin"])
        assert c.stats("bulk").info.documents == len(mine)
    r = t["r"]
    assert r.stats("bulk").info.documents == len(docs)
    for d in docs[:10]:
        hits = r.search("bulk", d["title"] + " " + d["text"], top_k=1,
                        mode=pb.SEARCH_MODE_DENSE, rerank=False).hits
        assert hits[0].id == d["id"]
    bad = subprocess.run([index, "--data_dir", str(tmp_path), "--collection", "x", "--input",
                          str(corpus), "--shard", "3", "--shards", "3"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--shard" in bad.stderr
    r.drop_collection("bulk")


def test_a_killed_shard_fails_fast_by_policy_and_loses_nothing(topology):
    t = topology
    shards, docs = t["shards"], t["docs"]
    fail = Client(t["router"].target, api_key=KEYS["admin"])
    part = Client(t["partial"].target, api_key=KEYS["admin"])
    down = shards[2]
    # Acknowledged writes just before the kill must survive it.
    late = [{"id": f"late-{i}", "text": f"written just before the crash {i}"} for i in range(40)]
    assert fail.upsert("lisa", late).upserted == 40
    on_down = [d["id"] for d in late if shard_of(d["id"], 3) == 2]
    assert on_down
    deadline = 3.0
    results, stop = [], threading.Event()

    def load(client, name):
        qs = [q["text"] for q in t["queries"]]
        i = 0
        while not stop.is_set():
            t0 = time.time()
            try:
                resp = client.search("lisa", qs[i % len(qs)], top_k=10, rerank=False,
                                     timeout=deadline)
                results.append((name, t0, time.time() - t0, "OK", list(resp.missing_shards)))
            except grpc.RpcError as e:
                results.append((name, t0, time.time() - t0, e.code().name, e.details()))
            i += 1

    threads = [threading.Thread(target=load, args=(c, n))
               for c, n in ((fail, "fail"), (part, "partial"), (fail, "fail"), (part, "partial"))]
    for th in threads:
        th.start()
    time.sleep(2)
    killed_at = time.time()
    down.proc.kill()
    down.proc.wait()
    time.sleep(4)
    # Writes owned by the dead shard are refused, naming it; others commit.
    with pytest.raises(grpc.RpcError) as e:
        fail.upsert("lisa", [{"id": on_down[0], "text": "during the outage"}])
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down.target in e.value.details()
    alive_id = next(f"x{i}" for i in range(100) if shard_of(f"x{i}", 3) != 2)
    assert fail.upsert("lisa", [{"id": alive_id, "text": "written during the outage"}]).upserted == 1
    stop.set()
    for th in threads:
        th.join()
    assert max(r[2] for r in results) < deadline + 1.0, "a call hung past its deadline"
    after = [r for r in results if r[1] > killed_at + 1.0]
    assert after
    for name, _, _, code, extra in after:
        if name == "fail":
            assert code == "UNAVAILABLE" and down.target in extra, (code, extra)
        else:
            assert code == "OK" and extra == [down.target], (code, extra)
    # Restart on the same port and data directory: it serves again, nothing lost.
    again = Server(data_dir=down.data_dir, extra_args=FP32, port=down.port)
    t["servers"].insert(0, again)
    try:
        end = time.time() + 15
        while True:
            try:
                resp = fail.search("lisa", "library catalog", top_k=5, rerank=False)
                break
            except grpc.RpcError:
                if time.time() > end:
                    raise
                time.sleep(0.25)
        assert not resp.missing_shards
        # Each router redials on its own back-off (<= 2 s): wait for the partial one too.
        end = time.time() + 15
        while part.search("lisa", "library catalog", rerank=False).missing_shards:
            assert time.time() < end, "the partial router never saw the restarted shard"
            time.sleep(0.25)
        total = len(docs) + len(late) + 1
        assert fail.stats("lisa").info.documents == total
        assert [d.id for d in fail.get("lisa", on_down).documents] == on_down
    finally:
        pass  # the fixture closes `again` before the server whose data it reuses
