"""Operations: overload, graceful drain, crash durability, TLS, bad config.
Each test starts its own server."""
import concurrent.futures as cf
import os
import signal
import subprocess
import time

import grpc
import pytest

from diffrank_client import Client, pb
from server import KEYS, ROOT, Server


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def test_overload_refuses_quickly_and_keeps_serving():
    s = Server(config={"server": {"workers": 2, "max_pending": 4},
                       "batching": {"max_queue_rows": 40}})
    try:
        c = Client(s.target, api_key=KEYS["read"])
        docs = [f"passage number {i} about a topic that needs scoring" for i in range(20)]
        c.rerank("warm", docs)
        rss0 = rss_mb(s.proc.pid)

        def one(_):
            t0 = time.time()
            try:
                c.rerank("what is the topic?", docs, timeout=60)
                return "OK", time.time() - t0
            except grpc.RpcError as e:
                return e.code().name, time.time() - t0

        with cf.ThreadPoolExecutor(max_workers=64) as ex:
            results = list(ex.map(one, range(300)))
        codes = [r[0] for r in results]
        refused = [t for code, t in results if code == "RESOURCE_EXHAUSTED"]
        assert codes.count("OK") > 0, codes
        assert len(refused) > 0, codes
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, set(codes)
        assert sorted(refused)[len(refused) // 2] < 0.5, "refusals must be quick"
        assert s.proc.poll() is None
        assert rss_mb(s.proc.pid) - rss0 < 500, "memory grew under overload"
        assert len(c.rerank("still alive?", docs[:2]).results) == 2
    finally:
        s.close()


def wait_for(path, timeout=60):
    end = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_sigterm_drains_in_flight_work_and_exits_zero(tmp_path):
    # The Rerank is held in flight by the server's test hook until the test
    # releases it, however fast the machine is.
    release = str(tmp_path / "release")
    s = Server(env={"DIFFRANK_TEST_HOLD": f"Rerank:{release}"})
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        docs = [f"document {i} about padding" for i in range(20)]
        fut = c.stub.Rerank.future(pb.RerankRequest(query="q", documents=docs),
                                   metadata=c.metadata, timeout=300)
        wait_for(release + ".held")
        s.proc.send_signal(signal.SIGTERM)
        end = time.time() + 60
        while "draining" not in s.logs():
            assert time.time() < end, s.logs()
            time.sleep(0.05)
        # Draining: new calls are refused, the held one is still running.
        with pytest.raises(grpc.RpcError) as e:
            c.stub.Embed(pb.EmbedRequest(texts=["new"]), metadata=c.metadata, timeout=30)
        # UNAVAILABLE from the service while it drains; CANCELLED when gRPC's own shutdown
        # has begun (seen under load): either way the call is refused, not run.
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert not fut.done() and s.proc.poll() is None
        open(release, "w").close()
        r = fut.result()
        assert len(r.results) == 20  # in-flight work finished
        assert s.proc.wait(60) == 0
        assert "draining" in s.logs() and "stopped" in s.logs()
    finally:
        s.close()


def test_acknowledged_upserts_survive_sigkill():
    s = Server()
    data_dir = s.data_dir
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("durable")
        c.upsert("durable", [{"id": f"d{i}", "text": f"durable document {i}"} for i in range(100)],
                 batch_size=10)
        s.proc.kill()  # no drain, no snapshot
        s.proc.wait()
        s2 = Server(data_dir=data_dir)
        try:
            c2 = Client(s2.target, api_key=KEYS["admin"])
            assert c2.stats("durable").info.documents == 100
            hits = c2.search("durable", "durable document 42", top_k=3, rerank=False).hits
            assert "d42" in [h.id for h in hits]
        finally:
            s2.close()
    finally:
        s.close()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=diffrank-test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
                cwd=d)
    read = lambda n: open(os.path.join(d, n), "rb").read()  # noqa: E731
    return read


def test_tls_and_mutual_tls(tmp_path):
    d = str(tmp_path)
    read = make_pki(d)
    s = Server(extra_args=["--tls_cert", f"{d}/server.pem", "--tls_key", f"{d}/server.key"],
               keys=False, wait=False)
    try:
        s.wait_serving(credentials=grpc.ssl_channel_credentials(read("ca.pem")))
        c = Client(s.target, credentials=grpc.ssl_channel_credentials(read("ca.pem")))
        assert c.info().embedder.role == "bi-encoder"
        with pytest.raises(grpc.RpcError):
            Client(s.target).info(timeout=3)  # plaintext to a TLS port
    finally:
        s.close()
    s = Server(extra_args=["--tls_cert", f"{d}/server.pem", "--tls_key", f"{d}/server.key",
                           "--tls_client_ca", f"{d}/ca.pem"], keys=False, wait=False)
    try:
        mtls = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        s.wait_serving(credentials=mtls)
        assert Client(s.target, credentials=mtls).info().reranker.role == "cross-encoder"
        with pytest.raises(grpc.RpcError):
            Client(s.target, credentials=grpc.ssl_channel_credentials(read("ca.pem"))).info(timeout=3)
    finally:
        s.close()


def test_int8_reranker_serves_and_ranks():
    s = Server(extra_args=["--reranker_precision", "int8"], keys=False)
    try:
        c = Client(s.target)
        assert "int8" in c.info().reranker.device
        docs = ["Tea is brewed from leaves.", "The capital of France is Paris.",
                "Paris is the capital and largest city of France."]
        r = c.rerank("What is the capital of France?", docs)
        assert r.results[-1].index == 0  # the unrelated passage last
    finally:
        s.close()


@pytest.mark.parametrize("args,needle", [
    (["--listen", "nonsense"], "listen"),
    (["--device", "tpu"], "device"),
    (["--embedder_model", "/nonexistent"], "embedder_model"),
    (["--api_keys", "/nonexistent/keys"], "api_keys_file"),
    (["--tls_cert", "/etc/hostname"], "tls.key_file"),
    (["--reranker_precision", "int4"], "reranker_precision"),
    (["--device", "cuda", "--reranker_precision", "int8"], "int8"),
    (["--shards", "127.0.0.1:1,shard-2"], "router.shards[1]"),
    (["--http_listen", "nonsense"], "http_listen"),
    (["--shards", "127.0.0.1:1", "--shard_failure", "maybe"], "router.shard_failure"),
    (["--shards", "127.0.0.1:1", "--shard_timeout_s", "0"], "router.shard_timeout_s"),
    (["--shards", "127.0.0.1:1", "--shard_timeout_s", "soon"], "shard_timeout_s"),
])
def test_bad_settings_fail_at_start_naming_the_setting(args, needle):
    binary = os.environ.get("DIFFRANK_SERVER", os.path.join(ROOT, "build", "service", "diffrank-server"))
    p = subprocess.run([binary, "--data_dir", "/tmp/diffrank-bad-settings", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert needle in p.stderr, p.stderr


def test_garbage_tls_files_fail_at_start_naming_the_file(tmp_path):
    """A certificate/key pair that does not match, and a client CA with no certificate in it,
    are named at start (gRPC and libmicrohttpd would only say they cannot listen)."""
    d = str(tmp_path)
    make_pki(d)
    binary = os.environ.get("DIFFRANK_SERVER", os.path.join(ROOT, "build", "service", "diffrank-server"))
    for extra, needle in ((["--tls_key", f"{d}/client.key"], "not a PEM certificate and matching key"),
                          (["--tls_key", f"{d}/server.key", "--tls_client_ca", "/etc/hostname",
                            "--http_listen", "127.0.0.1:0"], "tls.client_ca_file")):
        p = subprocess.run([binary, "--data_dir", f"{d}/data", "--tls_cert", f"{d}/server.pem",
                            *extra], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and needle in p.stderr, p.stderr


def test_the_harness_restarts_a_server_whose_picked_port_was_taken(monkeypatch):
    """The e2e harness picks free ports by binding to 0; another process can take one before
    the server binds it (a CI run failed so: "Address already in use"), and the server then
    refuses to start. Server.wait_serving starts it again on fresh ports."""
    import socket as _socket
    import server as harness
    busy = _socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    real, calls = harness.free_port, []

    def first_taken():
        calls.append(1)
        return taken if len(calls) == 1 else real()

    monkeypatch.setattr(harness, "free_port", first_taken)
    s = harness.Server()
    try:
        assert s.relaunches == 1 and s.port != taken, s.logs()
        assert "in use or not a local address" in s.logs()
    finally:
        s.close()
        busy.close()
