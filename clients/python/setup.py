"""Generates the gRPC stubs into diffrank_client/gen before packaging (pyproject.toml has
the metadata). The proto is the repository's proto/ (a source checkout). Build outputs
(build/, *.egg-info) go to a temporary directory, not into the source tree."""
import os
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")


class GenerateThenBuild(build_py):
    def run(self):
        out = os.path.join(HERE, "diffrank_client", "gen")
        os.makedirs(out, exist_ok=True)
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={PROTO_ROOT}",
                        f"--python_out={out}", f"--grpc_python_out={out}",
                        os.path.join(PROTO_ROOT, "diffrank", "v1", "diffrank.proto")], check=True)
        for d in ("", "diffrank", os.path.join("diffrank", "v1")):
            open(os.path.join(out, d, "__init__.py"), "a").close()
        super().run()


_SCRATCH = tempfile.mkdtemp(prefix="diffrank-client-build-")
setup(cmdclass={"build_py": GenerateThenBuild},
      options={"build": {"build_base": os.path.join(_SCRATCH, "build")},
               "egg_info": {"egg_base": _SCRATCH}})
