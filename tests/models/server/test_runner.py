"""The server as a process: SIGTERM drains in-flight requests within the grace period, then it exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import numpy as np

from models.registry import Registry
from models.server.runner import ServerProcess
from tests.conftest import ROOT
from tests.models.server.conftest import N_FEATURES, _raw, body


def test_sigterm_drains_in_flight_requests_then_exits(registry: Registry) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = ServerProcess(["--registry", str(registry.root), "--grace", "1.5"], cwd=ROOT, env=env)
    proc, port = server.proc, server.port
    try:
        full = json.dumps(body(np.zeros((1, N_FEATURES)))).encode()
        head = (
            f"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(full)}\r\n\r\n"
        ).encode()
        finishing = socket.create_connection(("127.0.0.1", port), timeout=5)
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        finishing.sendall(head + full[:10])  # in flight: headers and part of the body
        stuck.sendall(head + full[:10])  # in flight and never finished: bounded by --grace
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert _raw(port, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 503")
        assert _raw(port, head + full).startswith(b"HTTP/1.1 503")
        finishing.sendall(full[10:])
        assert finishing.recv(65536).startswith(b"HTTP/1.1 200")
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 1.5 + 4  # grace, then at most 1 s to close connections
        assert "grace period exceeded" in proc.stdout.read()
        finishing.close()
        stuck.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
