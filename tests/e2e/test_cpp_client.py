"""The C++ client as another CMake project uses it: install the `client` component, build
tests/cpp_client against the installed package with find_package, run it against a real
server (create, streaming upsert, search, get, info, drop; retries against a dead server)."""
import os
import subprocess

from server import KEYS, Server, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("DIFFRANK_BUILD_DIR", os.path.join(ROOT, "build"))


def test_installed_package_builds_and_searches(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--component", "client", "--prefix",
                    str(prefix)], check=True, capture_output=True, text=True)
    assert (prefix / "lib" / "cmake" / "diffrank-client" / "diffrank-clientConfig.cmake").exists()
    assert (prefix / "include" / "diffrank" / "v1" / "diffrank.grpc.pb.h").exists()
    out = tmp_path / "build"
    r = subprocess.run(["cmake", "-S", os.path.join(ROOT, "tests", "cpp_client"), "-B", str(out),
                        "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    s = Server()
    try:
        r = subprocess.run([str(out / "consumer"), s.target, KEYS["admin"],
                            f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "top doc-123" in r.stdout
    finally:
        s.close()
