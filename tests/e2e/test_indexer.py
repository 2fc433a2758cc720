"""diffrank-index (issue 14): offline builds published into a running server,
resume after SIGKILL, publishing while searches run, malformed inputs."""
import concurrent.futures as cf
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import grpc
import pytest

from diffrank_client import Client, pb
from server import KEYS, ROOT, Server

INDEX = os.environ.get("DIFFRANK_INDEX", os.path.join(ROOT, "build", "indexer", "diffrank-index"))
LISA = os.path.join(ROOT, "..", "shared", "data", "lisa")


def run_index(*args, env_key=KEYS["admin"], check=True, **kw):
    env = dict(os.environ, DIFFRANK_API_KEY=env_key, OMP_NUM_THREADS="2")
    r = subprocess.run([INDEX, "--threads", "2", *args], capture_output=True, text=True,
                       env=env, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"diffrank-index exited {r.returncode}: {r.stderr}")
    return r


def rows(version_dir):
    con = sqlite3.connect(os.path.join(version_dir, "docs.sqlite"))
    try:
        return con.execute("SELECT id, title, text, metadata, vector FROM docs ORDER BY id").fetchall()
    finally:
        con.close()


def write_jsonl(path, docs):
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")


def test_offline_and_online_indexing_give_the_same_top10(tmp_path):
    # The first 1,500 LISA documents in the test command, every LISA query; the full
    # corpus (6,000 documents twice: 6.6 min on 2 cores, passed 2026-11-30) with
    #   DIFFRANK_LISA_DOCS=0 .venv-clients/bin/python -m pytest tests/e2e/test_indexer.py -k same_top10
    limit = int(os.environ.get("DIFFRANK_LISA_DOCS", "1500")) or 10 ** 9
    corpus = tmp_path / "lisa.jsonl"
    with open(os.path.join(LISA, "corpus.jsonl")) as src, open(corpus, "w") as dst:
        for i, line in enumerate(src):
            if i >= limit:
                break
            dst.write(line)
    docs = [json.loads(l) for l in open(corpus)]
    queries = [json.loads(l)["text"] for l in open(os.path.join(LISA, "queries.jsonl"))]
    data_dir = str(tmp_path / "data")
    # float32 on both sides: in bfloat16 a document's vector depends (at the
    # rounding level) on the padded batch it was computed in, and the two
    # modes batch differently, so near-ties could swap.
    s = Server(data_dir=data_dir, extra_args=["--precision", "float32"])
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        on = run_index("--data_dir", data_dir, "--collection", "online", "--input", str(corpus),
                       "--id_field", "_id", "--server", s.target, "--online",
                       "--checkpoint", str(tmp_path / "ck.json"))
        assert f"sent {len(docs)} documents" in on.stderr, on.stderr
        r = run_index("--data_dir", data_dir, "--collection", "offline", "--input", str(corpus),
                      "--id_field", "_id", "--server", s.target, "--precision", "fp32")
        assert "published" in r.stderr, r.stderr
        assert c.stats("offline").info.documents == len(docs)
        assert c.stats("online").info.documents == len(docs)
        for q in queries:
            a = [h.id for h in c.search("online", q, top_k=10, rerank=False).hits]
            b = [h.id for h in c.search("offline", q, top_k=10, rerank=False).hits]
            assert a == b, q
    finally:
        s.close()


def test_interrupted_runs_resume_to_the_same_result(tmp_path):
    rng = random.Random(7)
    words = "river bank money gold water stone bridge light paper glass".split()
    docs = [{"id": f"d{i}", "title": f"title {i}",
             "text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 60))),
             "metadata": {"n": i}} for i in range(1200)]
    inp = str(tmp_path / "docs.jsonl")
    write_jsonl(inp, docs)
    common = ["--collection", "c", "--input", inp, "--no-publish", "--chunk_documents", "100"]
    ref = run_index("--data_dir", str(tmp_path / "ref"), *common)
    ref_dir = ref.stderr.strip().rsplit(" ", 1)[1]
    kills = 0
    data_dir = str(tmp_path / "killed")
    for delay in (3.0, 6.0, 9.0):
        p = subprocess.Popen([INDEX, "--threads", "2", "--data_dir", data_dir, *common],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1, "the run finished before any kill: make it longer"
    done = run_index("--data_dir", data_dir, *common)
    assert "resumed after" in done.stderr or kills == 0, done.stderr
    got_dir = done.stderr.strip().rsplit(" ", 1)[1]
    assert rows(got_dir) == rows(ref_dir)
    assert len(rows(got_dir)) == len(docs)


def test_publishing_while_searches_run_fails_no_search(tmp_path):
    data_dir = str(tmp_path / "data")
    s = Server(data_dir=data_dir)
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("live")
        c.upsert("live", [{"id": f"old{i}", "text": f"old document {i} about rivers"}
                          for i in range(50)])
        inp = str(tmp_path / "new.jsonl")
        write_jsonl(inp, [{"id": f"new{i}", "text": f"new document {i} about rivers"}
                          for i in range(300)])
        stop, errors, count = threading.Event(), [], [0]

        def searcher():
            r = Client(s.target, api_key=KEYS["read"])
            while not stop.is_set():
                try:
                    assert r.search("live", "rivers", top_k=5).hits
                    count[0] += 1
                except Exception as e:  # noqa: BLE001 - any failure counts
                    errors.append(repr(e))
        threads = [threading.Thread(target=searcher) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            run_index("--data_dir", data_dir, "--collection", "live", "--input", inp,
                      "--server", s.target)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
        assert count[0] > 5
        hits = c.search("live", "rivers", top_k=5).hits
        assert all(h.id.startswith("new") for h in hits)
        assert c.stats("live").info.documents == 300
        # Publishing needs the admin role.
        r = run_index("--data_dir", data_dir, "--collection", "live", "--input", inp,
                      "--server", s.target, env_key=KEYS["read"], check=False)
        assert r.returncode == 3 and "admin" in r.stderr, r.stderr
    finally:
        s.close()


def test_malformed_inputs_are_reported_and_nothing_half_published(tmp_path):
    data_dir = str(tmp_path / "data")
    inp = tmp_path / "mixed.jsonl"
    with open(inp, "wb") as f:
        f.write(b'{"id": "a", "text": "good one"}\n')
        f.write(b'{"id": "b", "text": broken\n')
        f.write(b'{"text": "no id"}\n')
        f.write(b'{"id": "a", "text": "duplicate"}\n')
        f.write(b'{"id": "c", "text": "bad \xff\xfe utf8"}\n')
        f.write(b'{"id": "d", "text": "' + b"x" * (100 << 20) + b'"}\n')  # a 100 MB line
        f.write(b'{"id": "e", "text": "good two", "metadata": [1]}\n')
        f.write(b'{"id": "f", "text": "good three"}\n')
    fail = run_index("--data_dir", data_dir, "--collection", "m", "--input", str(inp),
                     "--on-error", "fail", check=False)
    assert fail.returncode == 1, fail.stderr
    assert f"{inp}:2" in fail.stderr
    assert not os.path.exists(os.path.join(data_dir, "m"))
    assert not os.listdir(os.path.join(data_dir, ".staging"))
    ok = run_index("--data_dir", data_dir, "--collection", "m", "--input", str(inp))
    for line, why in ((2, "not a JSON object"), (3, "missing or empty \"id\""),
                      (4, "duplicate id \"a\""), (5, "not a JSON object"),
                      (6, "line longer than"), (7, "metadata")):
        assert f"{inp}:{line}" in ok.stderr and why in ok.stderr, (line, ok.stderr)
    assert "2 documents, 6 bad records" in ok.stderr or "2 documents" in ok.stderr, ok.stderr
    assert os.path.exists(os.path.join(data_dir, "m", "manifest.json"))
    missing = run_index("--data_dir", data_dir, "--collection", "m", "--input",
                        str(tmp_path / "absent.jsonl"), check=False)
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    bad_name = run_index("--data_dir", data_dir, "--collection", "../x", "--input", str(inp),
                         check=False)
    assert bad_name.returncode == 2 and "--collection" in bad_name.stderr


def test_online_mode_retries_busy_servers_and_resumes(tmp_path):
    # One worker and a one-slot queue: most of 8 batches in flight are refused
    # RESOURCE_EXHAUSTED at first and must be retried.
    s = Server(config={"server": {"workers": 1, "max_pending": 1}})
    try:
        docs = [{"id": f"d{i}", "text": f"document {i} about rivers and banks"}
                for i in range(600)]
        inp = str(tmp_path / "docs.jsonl")
        write_jsonl(inp, docs)
        ck = str(tmp_path / "ck.json")
        common = ["--data_dir", str(tmp_path / "unused"), "--collection", "busy", "--input", inp,
                  "--server", s.target, "--online", "--checkpoint", ck,
                  "--batch_documents", "20", "--in_flight", "8"]
        # Interrupt once, then finish: nothing lost, no duplicate.
        p = subprocess.Popen([INDEX, *common], stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, DIFFRANK_API_KEY=KEYS["admin"]))
        time.sleep(4)
        p.send_signal(signal.SIGKILL)
        p.wait()
        r = run_index(*common)
        assert "sent" in r.stderr, r.stderr
        c = Client(s.target, api_key=KEYS["admin"])
        assert c.stats("busy").info.documents == len(docs)
        got = c.get("busy", [d["id"] for d in docs[:200]])
        assert len(got.documents) == 200
        assert not os.path.exists(ck)
        # A read key cannot write: the server's refusal ends the run (exit 3).
        bad = run_index(*common, env_key=KEYS["read"], check=False)
        assert bad.returncode == 3, bad.stderr
    finally:
        s.close()


def test_directory_tree_is_chunked_with_overlap(tmp_path):
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    words = [f"river{i} bank" for i in range(300)]
    original = "# Title\n\n" + " ".join(words) + "\n"
    (root / "long.md").write_text(original)
    (root / "sub" / "short.txt").write_text("rivers and banks")
    (root / "skip.bin").write_text("not indexed")
    data_dir = str(tmp_path / "data")
    run_index("--data_dir", data_dir, "--collection", "notes", "--input", str(root),
              "--chunk_tokens", "64", "--chunk_overlap", "16")
    s = Server(data_dir=data_dir)
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        n = c.stats("notes").info.documents
        assert n > 5, n  # ~900 tokens in windows of 64
        ids = [f"long.md#{i}" for i in range(n - 1)] + ["sub/short.txt#0"]
        got = {d.id: d for d in c.get("notes", ids).documents}
        assert sorted(got) == sorted(ids)  # nothing else (skip.bin is not .txt/.md)
        assert got["sub/short.txt#0"].text == "rivers and banks"
        texts = [got[f"long.md#{i}"].text for i in range(n - 1)]
        pos = 0
        for i, t in enumerate(texts):
            start = original.find(t)
            assert start >= 0, f"chunk {i} is not a substring of the file"
            assert start <= pos, f"chunk {i} leaves a gap"
            if i > 0:
                assert start < pos, f"chunk {i} does not overlap chunk {i - 1}"
            pos = start + len(t)
            meta = json.loads(got[f"long.md#{i}"].metadata)
            assert meta["source_id"] == "long.md" and meta["chunk"] == i
        assert pos == len(original.rstrip("\n"))  # the last chunk ends the file
    finally:
        s.close()


@pytest.mark.parametrize("args,needle", [
    (["--chunk_tokens", "-1"], "--chunk_tokens"),
    (["--chunk_tokens", "10", "--chunk_overlap", "10"], "--chunk_overlap"),
    (["--format", "xml"], "--format"),
    (["--on-error", "ignore"], "on-error"),
    (["--precision", "int4"], "precision"),
    (["--chunk_documents", "0"], "--chunk_documents"),
    (["--batch_rows", "-3"], "--batch_rows"),
    (["--online"], "--online needs --server"),
    (["--online", "--server", "127.0.0.1:1", "--batch_documents", "0"], "--batch_documents"),
    (["--online", "--server", "127.0.0.1:1", "--in_flight", "0"], "--in_flight"),
    (["--online", "--server", "127.0.0.1:1", "--tls_ca", "/nonexistent.pem"], "nonexistent.pem"),
    (["--index", "HNSW1"], "HNSW1"),
    (["--model", "/nonexistent-model"], "nonexistent-model"),
    (["--threads", "lots"], "threads"),
])
def test_bad_flags_are_refused_with_exit_2(tmp_path, args, needle):
    inp = str(tmp_path / "d.jsonl")
    write_jsonl(inp, [{"id": "a", "text": "x"}])
    r = run_index("--data_dir", str(tmp_path / "data"), "--collection", "c", "--input", inp,
                  *args, check=False, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert needle in r.stderr, r.stderr
