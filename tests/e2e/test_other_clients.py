"""Clients that are not ours: Node @grpc/grpc-js (clients/node) and grpcurl
through server reflection (no .proto given to it)."""
import json
import os
import shutil
import subprocess

import pytest

from server import KEYS, ROOT

NODE_DIR = os.path.join(ROOT, "clients", "node")
GO_BIN = os.path.join(os.path.expanduser("~"), ".cache", "diffrank", "go-bin")


def tool(name):
    path = shutil.which(name) or os.path.join(GO_BIN, name)
    if not os.path.exists(path):
        pytest.fail(f"{name} is not installed: run scripts/install-deps.sh")
    return path


def test_node_grpc_js_calls_every_rpc(server):
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")):
        pytest.fail("clients/node/node_modules missing: run scripts/install-deps.sh")
    env = dict(os.environ, DIFFRANK_TARGET=server.target, DIFFRANK_ADMIN_KEY=KEYS["admin"])
    p = subprocess.run(["node", "--test", "e2e.test.js"], cwd=NODE_DIR, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def call(server, method, request, key="admin"):
    cmd = [tool("grpcurl"), "-plaintext", "-max-time", "30", "-d", json.dumps(request)]
    if key:
        cmd += ["-H", f"authorization: Bearer {KEYS[key]}"]
    return subprocess.run(cmd + [server.target, f"diffrank.v1.Diffrank/{method}"],
                          capture_output=True, text=True, timeout=60)


def test_grpcurl_discovers_the_api_by_reflection(server):
    p = subprocess.run([tool("grpcurl"), "-plaintext", server.target, "list"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "diffrank.v1.Diffrank" in p.stdout.split()
    p = subprocess.run([tool("grpcurl"), "-plaintext", server.target, "describe",
                        "diffrank.v1.SearchRequest"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "rerank_depth" in p.stdout, p.stderr


def test_grpcurl_calls_rpcs(server):
    p = call(server, "Info", {})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["embedder"]["role"] == "bi-encoder"
    assert call(server, "CreateCollection", {"name": "viagrpcurl"}).returncode == 0
    p = call(server, "Rerank", {"query": "capital of France",
                                "documents": ["Paris is the capital of France.", "Tea."]})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["results"][0].get("index", 0) == 0
    p = call(server, "Search", {"collection": "viagrpcurl", "query": "x"}, key="read")
    assert p.returncode == 0, p.stderr
    assert "hits" not in json.loads(p.stdout) and "timing" in json.loads(p.stdout)
    p = call(server, "DropCollection", {"name": "viagrpcurl"}, key="read")
    assert p.returncode != 0 and "PermissionDenied" in p.stderr
    p = call(server, "Search", {"collection": "viagrpcurl", "query": "x"}, key=None)
    assert p.returncode != 0 and "Unauthenticated" in p.stderr


def test_grpcurl_checks_health_through_reflection(server):
    """Issue 25 item 11: `list` showed grpc.health.v1.Health but calling it failed ("target
    server does not expose service"): reflection now serves its descriptor."""
    p = subprocess.run([tool("grpcurl"), "-plaintext", "-max-time", "30", server.target,
                        "grpc.health.v1.Health/Check"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"status": "SERVING"}
    p = subprocess.run([tool("grpcurl"), "-plaintext", server.target, "describe",
                        "grpc.health.v1.Health"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "rpc Watch" in p.stdout, p.stderr
