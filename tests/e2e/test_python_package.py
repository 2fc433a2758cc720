"""clients/python as an installed package (pip install, stubs generated at build time): the
sync and asyncio clients against a real server, and the retry policy against a dead one."""
import os
import subprocess
import sys
import textwrap

from server import KEYS, Server, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SCRIPT = textwrap.dedent('''
    import asyncio, sys, time
    import grpc
    import diffrank_client
    from diffrank_client import AsyncClient, Client, RetryPolicy, pb
    assert "site" in diffrank_client.__file__ or "pkg" in diffrank_client.__file__, diffrank_client.__file__
    target, key, dead = sys.argv[1:4]
    with Client(target, api_key=key) as c:
        c.create_collection("pkg")
        docs = [{"id": f"d{i}", "text": f"filler passage {i}"} for i in range(100)]
        docs[42] = {"id": "d42", "text": "The Rhine flows through Basel."}
        assert c.upsert("pkg", docs, batch_size=32).batches == 4
        assert c.search("pkg", "which river passes Basel?", top_k=1).hits[0].id == "d42"
        assert [d.id for d in c.get("pkg", ["d1", "nope"]).documents] == ["d1"]

    async def main():
        async with AsyncClient(target, api_key=key) as a:
            rs = await asyncio.gather(*[a.search("pkg", "Basel river", top_k=1) for _ in range(8)])
            assert all(r.hits[0].id == "d42" for r in rs)
            assert (await a.stats("pkg")).info.documents == 100
            assert (await a.delete("pkg", ids=["d1", "d2"])).deleted == 2
            await a.drop_collection("pkg")
            try:
                await a.stats("pkg")
                raise SystemExit("stats of a dropped collection succeeded")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
    asyncio.run(main())

    # A dead server: retried (3 attempts), then UNAVAILABLE, within the deadline.
    nobody = Client(dead, timeout=2.0, retry=RetryPolicy(max_attempts=3, initial_backoff=0.2))
    t0 = time.monotonic()
    try:
        nobody.info()
        raise SystemExit("a dead server answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()
    took = time.monotonic() - t0
    assert took < 2.5, took
    print("package ok", round(took, 2))
''')


def test_pip_installed_package_sync_async_and_retries(tmp_path):
    src = os.path.join(ROOT, "clients", "python")
    before = set(os.listdir(src))
    target = tmp_path / "pkg"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--target", str(target),
                        os.path.join(ROOT, "clients", "python")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # Issue 25 item 14: installing left build/ and *.egg-info in the source tree.
    assert set(os.listdir(src)) - before == set(), set(os.listdir(src)) - before
    assert (target / "diffrank_client" / "py.typed").exists()
    assert (target / "diffrank_client" / "gen" / "diffrank" / "v1" / "diffrank_pb2.py").exists()
    s = Server()
    try:
        env = dict(os.environ, PYTHONPATH=str(target))
        r = subprocess.run([sys.executable, "-c", SCRIPT, s.target, KEYS["admin"],
                            f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                           env=env, cwd=str(tmp_path), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "package ok" in r.stdout
    finally:
        s.close()
