"""Starts a real diffrank-server on loopback for end-to-end tests.

Environment: DIFFRANK_SERVER (binary; default build/service/diffrank-server),
DIFFRANK_EMBEDDER / DIFFRANK_RERANKER (model dirs; default: the bundled ones).
"""
import os
import socket
import subprocess
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS = {"read": "read-key-0123456789", "write": "write-key-0123456789",
        "admin": "admin-key-0123456789"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir=None, extra_args=(), keys=True, config=None, wait=True,
                 port=None, env=None):
        self.tmp = tempfile.TemporaryDirectory()
        self.data_dir = data_dir or os.path.join(self.tmp.name, "data")
        # Ports picked here (bind to 0, close) can be taken by another process before the
        # server binds them; the server then refuses to start (SO_REUSEPORT is off), and
        # wait_serving starts it again on fresh ports. A port the caller chose is kept.
        self.auto_port = port is None
        self.relaunches = 0
        self.port, self.metrics_port = port or free_port(), free_port()
        binary = os.environ.get("DIFFRANK_SERVER",
                                os.path.join(ROOT, "build", "service", "diffrank-server"))
        args = [binary, "--data_dir", self.data_dir]
        if "--threads" not in extra_args:
            args += ["--threads", "2"]
        for flag, var in (("--embedder_model", "DIFFRANK_EMBEDDER"),
                          ("--reranker_model", "DIFFRANK_RERANKER")):
            if os.environ.get(var) and flag not in extra_args:
                args += [flag, os.environ[var]]
        if keys:
            path = os.path.join(self.tmp.name, "keys")
            with open(path, "w") as f:
                f.write("".join(f"{role} {key}\n" for role, key in KEYS.items()))
            args += ["--api_keys", path]
        if config:
            import json
            path = os.path.join(self.tmp.name, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            args += ["--config", path]
        self.args = args + list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.log_path = os.path.join(self.tmp.name, "server.log")
        self.log = open(self.log_path, "w")
        self._launch()
        if wait:
            self.wait_serving()

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def _launch(self):
        self.proc = subprocess.Popen(
            self.args + ["--listen", self.target,
                         "--metrics_listen", f"127.0.0.1:{self.metrics_port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    def wait_serving(self, timeout=120, credentials=None):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                if (self.auto_port and self.relaunches < 5 and
                        "(in use or not a local address)" in self.logs()):
                    self.relaunches += 1
                    self.port, self.metrics_port = free_port(), free_port()
                    self._launch()
                    continue
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.logs()}")
            channel = (grpc.secure_channel(self.target, credentials) if credentials
                       else grpc.insecure_channel(self.target))
            try:
                r = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            finally:
                channel.close()
            time.sleep(0.2)
        raise RuntimeError(f"server not SERVING after {timeout}s: {self.logs()}")

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=15, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop()
        self.log.close()
        self.tmp.cleanup()
