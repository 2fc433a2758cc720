"""The diffrank CLI (clients/cpp/tools/diffrank_main.cc) against a real server: every command,
JSON output off a terminal, the key from the environment or a file (never argv), and the
documented exit codes."""
import json
import os
import subprocess

import pytest

from server import KEYS, Server, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("DIFFRANK_CLI", os.path.join(ROOT, "build", "clients", "cpp", "diffrank"))


@pytest.fixture(scope="module")
def srv():
    s = Server()
    yield s
    s.close()


def run(srv, *args, key="admin", stdin=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFRANK_API_KEY")}
    if key:
        env["DIFFRANK_API_KEY"] = KEYS[key]
    env.update(env_extra or {})
    return subprocess.run([CLI, "--server", srv.target, *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=120)


def test_every_command(srv, tmp_path):
    assert run(srv, "health").stdout.strip() == '{"status": "SERVING"}'
    info = json.loads(run(srv, "info").stdout)
    assert info["embedder"]["role"] == "bi-encoder"
    assert json.loads(run(srv, "collections", "create", "cli").stdout)["name"] == "cli"
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in [
        {"id": "a", "text": "The Danube flows through Vienna and Budapest.", "metadata": '{"k": 1}'},
        {"id": "b", "text": "Sourdough bread needs a starter.", "metadata": '{"k": 2}'},
        {"id": "c", "text": "Budapest has thermal baths.", "metadata": '{"k": 2}'}]) + "\n")
    up = json.loads(run(srv, "upsert", "cli", str(docs)).stdout)
    assert int(up["upserted"]) == 3
    up = json.loads(run(srv, "upsert", "cli", stdin='{"id": "d", "text": "from stdin"}\n').stdout)
    assert int(up["upserted"]) == 1
    hits = json.loads(run(srv, "search", "cli", "which river passes Vienna?", "--top-k", "2",
                          "--text").stdout)["hits"]
    assert hits[0]["id"] == "a" and "Danube" in hits[0]["text"]
    lex = json.loads(run(srv, "search", "cli", "sourdough", "--mode", "lexical",
                         "--no-rerank").stdout)["hits"]
    assert lex[0]["id"] == "b"
    got = json.loads(run(srv, "get", "cli", "c", "zz").stdout)["documents"]
    assert [d["id"] for d in got] == ["c"]
    emb = json.loads(run(srv, "embed", "--query", "hello", "world").stdout)
    assert len(emb["embeddings"]) == 2 and emb["dimension"] == 384
    rr = json.loads(run(srv, "rerank", "capital of France", "Tea is hot",
                        "Paris is the capital of France").stdout)
    assert rr["results"][0]["index"] == 1
    assert int(json.loads(run(srv, "delete", "cli", "--filter",
                              '{"field": "k", "eq": 2}').stdout)["deleted"]) == 2
    assert int(json.loads(run(srv, "delete", "cli", "a").stdout)["deleted"]) == 1
    stats = json.loads(run(srv, "collections", "stats", "cli").stdout)
    assert int(stats["info"]["documents"]) == 1
    names = [c["name"] for c in json.loads(run(srv, "collections", "list").stdout)["collections"]]
    assert "cli" in names
    assert run(srv, "collections", "drop", "cli").returncode == 0


def test_key_from_a_file_and_exit_codes(srv, tmp_path):
    key = tmp_path / "key"
    key.write_text(KEYS["read"] + "\n")
    r = run(srv, "--api-key-file", str(key), "collections", "list", key=None)
    assert r.returncode == 0, r.stderr
    r = run(srv, "collections", "list", key=None,
            env_extra={"DIFFRANK_API_KEY_FILE": str(key)})
    assert r.returncode == 0, r.stderr
    assert run(srv, "collections", "list", key=None).returncode == 5       # no key
    assert run(srv, "collections", "create", "x", key="read").returncode == 5  # role
    assert run(srv, "search", "missing", "q").returncode == 4
    assert run(srv, "collections", "create", "bad name!").returncode == 6
    assert run(srv, "search").returncode == 2                              # usage
    assert run(srv, "search", "c", "q", "--mode", "fuzzy").returncode == 2
    assert run(srv, "delete", "c").returncode == 2                        # neither ids nor filter
    assert run(srv, "upsert", "c", "/nonexistent").returncode == 2
    bad = run(srv, "upsert", "c", stdin="{not json\n")
    assert bad.returncode == 2 and "stdin" in bad.stderr or "-:1" in bad.stderr
    dead = subprocess.run([CLI, "--server", f"127.0.0.1:{free_port()}", "--timeout", "1", "info"],
                          capture_output=True, text=True, timeout=60)
    assert dead.returncode == 3


def test_usage_errors_read_as_a_person_would_write_them(srv):
    """Issue 25 item 12: `--top-k 0` answered with a 300-digit range; a missing key did not
    say which variable to set; subcommand options had no descriptions or defaults."""
    r = run(srv, "search", "c", "q", "--top-k", "0")
    assert r.returncode == 2 and "not in range 1 to 1000" in r.stderr, r.stderr
    assert len(r.stderr) < 400, r.stderr
    r = run(srv, "collections", "list", key=None)
    assert r.returncode == 5 and "DIFFRANK_API_KEY" in r.stderr, r.stderr
    h = run(srv, "search", "--help")
    assert "hits to return" in h.stdout and "10" in h.stdout, h.stdout
    # One flag style: either spelling works, and a typo gets a suggestion.
    r = run(srv, "search", "nosuch", "q", "--top_k", "3")
    assert r.returncode == 4, r.stderr  # parsed; the collection is missing
    r = run(srv, "search", "c", "q", "--top-kk", "3")
    assert r.returncode == 2 and "did you mean --top-k?" in r.stderr, r.stderr
