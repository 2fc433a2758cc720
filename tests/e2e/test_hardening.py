"""Issue 12 at the server level: each test starts its own diffrank-server on
loopback and replays one failure an outside probe found (second server on a
data directory, /metrics under slow clients and after drops, Upsert streams
during SIGTERM, oversized stream messages, concurrent admin calls on one name,
abandoned large Embed calls)."""
import concurrent.futures as cf
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest

from diffrank_client import Client, pb
from server import KEYS, Server


def scrape(port, key=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read().decode()


def test_second_server_on_the_same_data_dir_is_refused():
    a = Server()
    try:
        b = Server(data_dir=a.data_dir, wait=False)
        try:
            assert b.proc.wait(60) == 2
            assert "in use by another diffrank process" in b.logs(), b.logs()
        finally:
            b.close()
        c = Client(a.target, api_key=KEYS["admin"])
        c.create_collection("still")
        assert c.info().version
    finally:
        a.close()


def test_metrics_survive_slow_clients_need_a_key_and_forget_dropped_collections():
    s = Server(extra_args=["--metrics_require_key"])
    slow = []
    try:
        for _ in range(32):  # the probe used 8
            sock = socket.create_connection(("127.0.0.1", s.metrics_port))
            sock.sendall(b"G")
            slow.append(sock)
        for sock in slow:
            sock.sendall(b"E")
        t0 = time.time()
        with pytest.raises(urllib.error.HTTPError) as e:
            scrape(s.metrics_port)
        assert e.value.code == 401
        status, body = scrape(s.metrics_port, KEYS["read"])
        assert status == 200 and time.time() - t0 < 3
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("gone")
        c.upsert("gone", [{"id": "1", "text": "a document"}])
        assert 'collection="gone"' in scrape(s.metrics_port, KEYS["read"])[1]
        c.drop_collection("gone")
        assert 'collection="gone"' not in scrape(s.metrics_port, KEYS["read"])[1]
        # /healthz stays open for probes.
        with urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/healthz") as r:
            assert r.status == 200
    finally:
        for sock in slow:
            sock.close()
        s.close()


def test_upsert_streams_stop_at_sigterm_and_report_what_was_committed(tmp_path):
    data_dir = str(tmp_path / "data")
    s = Server(data_dir=data_dir, config={"server": {"drain_timeout_s": 30}})
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("drain")
        hold = threading.Event()

        def batches():
            yield pb.UpsertRequest(collection="drain",
                                   documents=[pb.Document(id=f"d{i}", text="doc") for i in range(3)])
            hold.wait(60)  # an idle stream: the client sends nothing more

        fut = c.stub.Upsert.future(batches(), metadata=c.metadata, timeout=90)
        deadline = time.time() + 30
        while c.stats("drain").info.documents < 3 and time.time() < deadline:
            time.sleep(0.1)
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as e:
            fut.result()
        hold.set()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert "1 batches with 3 documents are committed" in e.value.details()
        assert s.proc.wait(30) == 0
        assert time.time() - t0 < 10, "an idle stream must not hold the drain"
    finally:
        s.close()
    # The three acknowledged documents are there after the restart.
    s2 = Server(data_dir=data_dir)
    try:
        c = Client(s2.target, api_key=KEYS["admin"])
        assert c.stats("drain").info.documents == 3
    finally:
        s2.close()


def test_second_signal_exits_at_once():
    s = Server()
    try:
        c = Client(s.target, api_key=KEYS["read"])
        docs = [f"document {i} " + "padding words " * 60 for i in range(400)]
        fut = c.stub.Rerank.future(pb.RerankRequest(query="q", documents=docs),
                                   metadata=c.metadata, timeout=120)
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(10) == 130
        assert time.time() - t0 < 5
        assert "exiting now" in s.logs()
        fut.cancel()
    finally:
        s.close()


def test_oversized_stream_message_reports_what_was_committed():
    s = Server(config={"limits": {"max_request_bytes": 300000, "max_text_bytes": 200000}})
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("big")
        reqs = [pb.UpsertRequest(collection="big", documents=[pb.Document(id="small", text="ok")]),
                pb.UpsertRequest(collection="big", documents=[
                    pb.Document(id=f"b{i}", text="word " * 30000) for i in range(3)])]
        with pytest.raises(grpc.RpcError) as e:
            c.stub.Upsert(iter(reqs), metadata=c.metadata, timeout=60)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        assert "limits.max_request_bytes" in e.value.details(), e.value.details()
        assert "1 batches with 1 documents are committed" in e.value.details()
        assert c.stats("big").info.documents == 1
    finally:
        s.close()


def test_concurrent_admin_calls_on_one_name_give_clean_codes(tmp_path):
    data_dir = str(tmp_path / "data")
    s = Server(data_dir=data_dir)
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        allowed = {"OK", "NOT_FOUND", "ALREADY_EXISTS"}
        stop = time.time() + 8
        codes = []

        def call(fn):
            try:
                fn()
                return "OK"
            except grpc.RpcError as e:
                if e.code().name not in allowed:
                    return f"{e.code().name}: {e.details()}"
                return e.code().name

        def admin_loop():
            while time.time() < stop:
                codes.append(call(lambda: c.create_collection("race")))
                codes.append(call(lambda: c.drop_collection("race")))

        def write_loop(w):
            i = 0
            while time.time() < stop:
                i += 1
                codes.append(call(lambda: c.upsert("race", [
                    {"id": f"{w}-{i}-{k}", "text": f"race document {k}"} for k in range(4)])))

        def search_loop():
            while time.time() < stop:
                codes.append(call(lambda: c.search("race", "race document", top_k=3)))
                codes.append(call(lambda: c.stats("race")))

        with cf.ThreadPoolExecutor(max_workers=5) as ex:
            fs = [ex.submit(admin_loop), ex.submit(write_loop, 0), ex.submit(write_loop, 1),
                  ex.submit(search_loop), ex.submit(search_loop)]
            for f in fs:
                f.result()
        bad = [x for x in codes if x not in allowed]
        assert not bad, bad[:5]
        assert codes.count("OK") > 10
        assert s.proc.poll() is None
    finally:
        s.close()
    # The node restarts cleanly on what the race left.
    s2 = Server(data_dir=data_dir)
    try:
        Client(s2.target, api_key=KEYS["admin"]).list_collections()
    finally:
        s2.close()


def test_abandoned_large_embed_calls_free_the_workers():
    # Measured against one such call's own time on this machine, so the verdict does not
    # depend on its speed: six calls abandoned a third of the way in must not keep the
    # workers for the ~5 call-times their work would take; at most the batch already
    # running (about one call-time) may finish.
    s = Server(config={"server": {"workers": 4}})
    try:
        c = Client(s.target, api_key=KEYS["read"])
        c.embed(["warm up"])
        texts = ["word " * 200000] * 25  # 25 MB per call, 1 MB per text
        t0 = time.time()
        c.embed(texts, truncate=True, timeout=600)
        one_call = time.time() - t0

        def big(_):
            try:
                c.embed(texts, truncate=True, timeout=max(one_call / 3, 0.05))
            except grpc.RpcError as e:
                return e.code().name
            return "OK"

        with cf.ThreadPoolExecutor(max_workers=6) as ex:
            codes = list(ex.map(big, range(6)))
        assert "DEADLINE_EXCEEDED" in codes, codes
        t0 = time.time()
        c.embed(["a small call after the abandoned ones"], timeout=600)
        waited = time.time() - t0
        assert waited < 2.5 * one_call, (
            f"workers still busy: {waited:.1f}s after the abandoned calls; one whole call "
            f"takes {one_call:.1f}s here")
    finally:
        s.close()

