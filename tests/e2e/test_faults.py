"""Fault tests (issue 12): the disk filling up during ingest, and a corrupt
model file at start. Each starts its own server."""
import os
import shutil
import subprocess
import time

import grpc
import pytest

from diffrank_client import Client, pb
from server import KEYS, ROOT, Server


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0


def test_disk_full_during_ingest_is_clean_and_recovers(tmp_path):
    mnt = str(tmp_path / "small")
    if os.geteuid() != 0 or not mount_tmpfs(mnt, "3m"):
        pytest.skip("needs root and mount(2) for a small tmpfs (disk-full test)")
    data_dir = os.path.join(mnt, "data")
    s = Server(data_dir=data_dir)
    try:
        c = Client(s.target, api_key=KEYS["admin"])
        c.create_collection("full")
        acked, error = [], None
        for b in range(400):
            docs = [{"id": f"d{b}-{i}", "text": f"document {b} {i} " + "filler text " * 40}
                    for i in range(8)]
            try:
                c.upsert("full", docs)
                acked += [d["id"] for d in docs]
            except grpc.RpcError as e:
                error = e
                break
        assert error is not None, "3 MB should fill up"
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert "full" in error.details(), error.details()
        assert s.proc.poll() is None
        # Nothing acknowledged is lost; the failed batch left nothing behind.
        assert c.stats("full").info.documents == len(acked)
        got = c.get("full", acked[-3:] + [f"d{len(acked) // 8}-0"])
        assert [d.id for d in got.documents] == acked[-3:]
        assert len(c.search("full", "document filler", top_k=5).hits) == 5
        # Space returns: writes work again, and a restart finds everything.
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        c.upsert("full", [{"id": "after", "text": "written after space returned"}])
        assert s.stop() == 0
        s2 = Server(data_dir=data_dir)
        try:
            c2 = Client(s2.target, api_key=KEYS["admin"])
            assert c2.stats("full").info.documents == len(acked) + 1
            assert c2.search("full", "space returned", top_k=1).hits[0].id == "after"
        finally:
            s2.close()
    finally:
        s.close()
        subprocess.run(["umount", "-l", mnt])


@pytest.mark.parametrize("damage", ["truncate", "garbage-header", "missing"])
def test_a_corrupt_model_file_is_refused_at_start(tmp_path, damage):
    model = tmp_path / "model"
    shutil.copytree(os.path.join(ROOT, "models", "diffrank-embed-v2"), model)
    weights = model / "model.safetensors"
    if damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(os.path.getsize(weights) // 2)
    elif damage == "garbage-header":
        with open(weights, "r+b") as f:
            f.write(b"\xff" * 64)
    else:
        weights.unlink()
    s = Server(extra_args=["--embedder_model", str(model)], wait=False)
    try:
        assert s.proc.wait(120) == 2, s.logs()
        assert "model.safetensors" in s.logs(), s.logs()
    finally:
        s.close()
