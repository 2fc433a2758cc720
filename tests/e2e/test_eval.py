"""`diffrank eval --beir DIR` (the CLI, through the real API) agrees with scripts/eval (the
harness: PyTorch reference embeddings in float32, FTS5 BM25, RRF, the C++ reranking tool) within
0.005 on nDCG@10, Recall@100 and MRR@10 for every mode on every ../shared/data collection."""
import json
import os
import subprocess

import pytest

from server import Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "data")
CLI = os.environ.get("DIFFRANK_CLI", os.path.join(ROOT, "build", "clients", "cpp", "diffrank"))
COLLECTIONS = ["cranfield", "cisi", "cacm", "lisa"]
EMBEDDER = os.path.join(ROOT, "models", "diffrank-embed-v2")
SYSTEMS = {"bm25": "lexical", "dense": "dense", "hybrid": "hybrid",
           "hybrid+rerank": "hybrid+rerank"}


@pytest.fixture(scope="module")
def srv():
    # float32 embeddings as the harness's reference; the reranker in the precision the
    # harness's C++ tool is given below. Both sides pin diffrank-embed-v2 (6 layers): this
    # test checks that the CLI and the harness agree, and the 12-layer default would add
    # ~10 min to the test command; the v3 figures are in docs/results.md.
    s = Server(keys=False, extra_args=["--precision", "float32",
                                       "--reranker_precision", "bfloat16",
                                       "--embedder_model", EMBEDDER])
    yield s
    s.close()


@pytest.mark.parametrize("name", COLLECTIONS)
def test_cli_eval_equals_scripts_eval(srv, name):
    beir = os.path.join(DATA, name)
    r = subprocess.run([CLI, "--server", srv.target, "--timeout", "3600", "eval", "--beir", beir],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr
    cli = {j["system"]: j for j in map(json.loads, r.stdout.splitlines())}
    r = subprocess.run([os.path.join(ROOT, "scripts", "eval"), "--beir", beir, "--systems",
                        ",".join(SYSTEMS), "--precision", "bfloat16", "--biencoder", EMBEDDER],
                       capture_output=True, text=True, timeout=3600,
                       env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert r.returncode == 0, r.stderr
    ref = {j["system"]: j for j in map(json.loads, r.stdout.splitlines()) if "system" in j}
    for system, mode in SYSTEMS.items():
        for metric in ("ndcg@10", "recall@100", "mrr@10"):
            a, b = cli[mode][metric], ref[system][metric]
            assert abs(a - b) <= 0.005, (name, mode, metric, a, b)
        assert cli[mode]["queries"] == ref[system]["queries"]
