"""Models per collection (issue 24, part 4), with the real server and models: a data
directory built by the previous default embedder (diffrank-embed-v2) keeps serving
after the upgrade to diffrank-embed-v3, new collections get the newest model or the one
they name, and `diffrank-index --reembed` moves a live collection to the new model while
searches run, none failing."""
import json
import os
import subprocess
import threading
import time

import grpc
import pytest

from diffrank_client import Client, pb
from server import KEYS, ROOT, Server

INDEX = os.environ.get("DIFFRANK_INDEX", os.path.join(ROOT, "build", "indexer", "diffrank-index"))
LISA = os.path.join(ROOT, "..", "shared", "data", "lisa")
V2 = "diffrank-embed-v2"
V3 = "diffrank-embed-v3"


def lisa(n):
    docs = []
    with open(os.path.join(LISA, "corpus.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            docs.append({"id": d["_id"], "title": d.get("title", ""), "text": d["text"],
                         "metadata": {"n": len(docs)}})
            if len(docs) == n:
                break
    return docs


def dense_ids(client, collection, queries):
    return [[h.id for h in client.search(collection, q, top_k=5, mode="dense",
                                         rerank=False).hits] for q in queries]


def code_of(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


def test_an_upgrade_keeps_old_collections_and_reembed_moves_them(tmp_path):
    data = str(tmp_path / "data")
    docs = lisa(120)
    queries = [d["text"][:120] for d in docs[:6]]

    # 1. The previous release: diffrank-embed-v2 is the default embedder.
    s = Server(data_dir=data,
               extra_args=["--embedder_model", os.path.join(ROOT, "models", V2)])
    try:
        admin = Client(s.target, api_key=KEYS["admin"])
        assert admin.create_collection("old").model == V2
        admin.upsert("old", docs)
        before = dense_ids(admin, "old", queries)
        assert sum(d["id"] in ids for d, ids in zip(docs, before)) >= 4, before
    finally:
        s.close()

    # 2. The upgrade: v3 is the default; "old" is still searched with v2.
    s = Server(data_dir=data)
    try:
        admin = Client(s.target, api_key=KEYS["admin"])
        info = admin.info()
        assert info.embedder.id == V3
        assert [m.id for m in info.embedders] == [V3, V2], info.embedders
        assert admin.stats("old").info.model == V2
        assert dense_ids(admin, "old", queries) == before
        assert admin.create_collection("new").model == V3
        assert admin.create_collection("pinned", model=V2).model == V2
        code, msg = code_of(lambda: admin.create_collection("x", model="no-such-model"))
        assert code == grpc.StatusCode.NOT_FOUND and "model" in msg, msg
        code, msg = code_of(lambda: admin.create_collection("x", model="../../etc"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "model" in msg, msg
        assert "x" not in [c.name for c in admin.list_collections().collections]
        code, msg = code_of(lambda: admin.embed(["t"], model="no-such-model"))
        assert code == grpc.StatusCode.NOT_FOUND and "model" in msg, msg
        # The vectors of each model: Embed names the model and says which one ran.
        e2 = admin.embed([docs[0]["text"]], kind=pb.EMBED_KIND_QUERY, model=V2)
        e3 = admin.embed([docs[0]["text"]], kind=pb.EMBED_KIND_QUERY)
        assert (e2.model, e3.model) == (V2, V3)
        # A v3 query vector said to be v3 is refused by the v2 collection; a v2 one
        # searches exactly like the text.
        code, msg = code_of(lambda: admin.search(
            "old", "q", mode="dense", rerank=False,
            query_vector=e3.embeddings[0].values, query_vector_model=V3))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and V2 in msg, msg
        r = admin.search("old", "", mode="dense", rerank=False, top_k=5,
                         query_vector=e2.embeddings[0].values, query_vector_model=V2)
        assert [h.id for h in r.hits] == dense_ids(admin, "old", [docs[0]["text"]])[0]

        # 3. Re-embed "old" with v3 while searches run: none fails.
        stop, errors, done = threading.Event(), [], [0]

        def search_loop():
            reader = Client(s.target, api_key=KEYS["read"])
            while not stop.is_set():
                try:
                    reader.search("old", queries[done[0] % len(queries)], top_k=3,
                                  rerank=False)
                    done[0] += 1
                except grpc.RpcError as e:
                    errors.append((e.code(), e.details()))

        t = threading.Thread(target=search_loop)
        t.start()
        try:
            r = subprocess.run([INDEX, "--threads", "2", "--reembed", "--collection", "old",
                                "--data_dir", data, "--server", s.target],
                               capture_output=True, text=True,
                               env=dict(os.environ, DIFFRANK_API_KEY=KEYS["admin"]))
        finally:
            stop.set()
            t.join()
        assert r.returncode == 0, r.stderr
        assert "published" in r.stderr, r.stderr
        assert errors == [] and done[0] > 0, (errors[:3], done[0])
        st = admin.stats("old")
        assert (st.info.model, st.info.documents) == (V3, len(docs))
        after = dense_ids(admin, "old", queries)
        assert sum(d["id"] in ids for d, ids in zip(docs, after)) >= 4, after
        assert after != before, "the v3 answers equal v2's: not re-embedded?"
        got = admin.get("old", [docs[5]["id"]]).documents[0]
        assert got.text == docs[5]["text"] and json.loads(got.metadata) == {"n": 5}
        # Writes now embed with v3 (the new document is found by its own text).
        admin.upsert("old", [{"id": "late", "text": "zebra crossing lights at night"}])
        hits = admin.search("old", "zebra crossing lights at night", mode="dense",
                            rerank=False, top_k=1).hits
        assert hits[0].id == "late"
        # A publish whose counters are stale (a write came after they were read) is
        # refused ABORTED and the live collection keeps everything.
        extra = tmp_path / "extra.jsonl"
        extra.write_text(json.dumps({"id": "x1", "text": "another version"}) + "\n")
        r = subprocess.run([INDEX, "--threads", "2", "--data_dir", data, "--collection", "old",
                            "--input", str(extra), "--no-publish"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        version = os.path.basename(r.stderr.strip().split()[-1])
        st = admin.stats("old")
        stale = pb.CollectionCounters(documents=st.info.documents - 1,
                                      index_vectors=st.index_vectors,
                                      dead_vectors=st.dead_vectors)
        code, msg = code_of(lambda: admin.stub.PublishCollection(
            pb.PublishCollectionRequest(name="old", version=version, if_unchanged=stale),
            **admin._kw(60)))
        assert code == grpc.StatusCode.ABORTED and "not published" in msg, msg
        assert admin.stats("old").info.documents == len(docs) + 1
        admin.upsert("old", [{"id": "later", "text": "writes go on after the refusal"}])
        # Again: nothing to do.
        r = subprocess.run([INDEX, "--reembed", "--collection", "old", "--data_dir", data,
                            "--server", s.target], capture_output=True, text=True,
                           env=dict(os.environ, DIFFRANK_API_KEY=KEYS["admin"]))
        assert r.returncode == 0 and "nothing to do" in r.stderr, r.stderr
    finally:
        s.close()

    # 4. A models directory without v2, while "pinned" needs it: the start is refused,
    # naming the model (serving it with another model would be wrong).
    only_v3 = tmp_path / "models"
    only_v3.mkdir()
    os.symlink(os.path.join(ROOT, "models", V3), only_v3 / V3)
    s = Server(data_dir=data, wait=False,
               extra_args=["--models_dir", str(only_v3),
                           "--embedder_model", str(only_v3 / V3)])
    try:
        s.proc.wait(120)
        assert s.proc.returncode != 0
        assert f'"{V2}"' in s.logs() and "pinned" in s.logs(), s.logs()
    finally:
        s.close()


def test_reembed_without_a_server_and_its_refusals(tmp_path):
    data = str(tmp_path / "data")
    docs = lisa(40)
    s = Server(data_dir=data,
               extra_args=["--embedder_model", os.path.join(ROOT, "models", V2)])
    try:
        admin = Client(s.target, api_key=KEYS["admin"])
        admin.create_collection("docs", index="HNSW16")
        admin.upsert("docs", docs)
        # A server holds the data directory: reading it directly is refused.
        r = subprocess.run([INDEX, "--reembed", "--collection", "docs", "--data_dir", data],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "--server" in r.stderr, r.stderr
    finally:
        s.close()
    for bad in (["--input", "x.jsonl"], ["--online", "--server", "127.0.0.1:1"]):
        r = subprocess.run([INDEX, "--reembed", "--collection", "docs", "--data_dir", data,
                            *bad], capture_output=True, text=True)
        assert r.returncode == 2 and "--reembed" in r.stderr, r.stderr
    r = subprocess.run([INDEX, "--reembed", "--collection", "nope", "--data_dir", data],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "nope" in r.stderr, r.stderr
    # No server runs: the data directory is read and published directly.
    r = subprocess.run([INDEX, "--threads", "2", "--reembed", "--collection", "docs",
                        "--data_dir", data], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = Server(data_dir=data)
    try:
        admin = Client(s.target, api_key=KEYS["admin"])
        st = admin.stats("docs")
        assert (st.info.model, st.info.documents, st.info.index) == (V3, len(docs), "HNSW16")
        assert [m.id for m in admin.info().embedders] == [V3], "v2 is no longer needed"
        hits = admin.search("docs", docs[3]["text"][:150], mode="dense", rerank=False,
                            top_k=5).hits
        assert docs[3]["id"] in [h.id for h in hits]
    finally:
        s.close()
