"""Run MLServer's LightGBM runtime (the peer V2 server) on a registry model, from its own venv.

The peer serves the *same* booster that our ONNX file was exported from (``booster.txt`` in the registry
entry), over the same V2 REST protocol, on 127.0.0.1. MLServer runs from ``results/peer-venv`` (made by
``perf/peer/setup_mlserver.sh``), never from the suite's environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER_VENV = ROOT / "results" / "peer-venv"


def write_repository(
    repo_dir: Path,
    models: dict[str, Path],
    *,
    port: int,
    grpc_port: int,
    metrics_port: int,
    parallel_workers: int = 0,
    max_batch: int = 0,
    max_batch_ms: float = 0.0,
) -> Path:
    """Write an MLServer model repository: one folder per model holding its booster and model-settings.

    ``parallel_workers = 0`` scores in the server process (MLServer's fastest setting for a small model on
    2 cores); ``max_batch > 0`` turns on MLServer's adaptive batching.
    """
    if repo_dir.exists():
        shutil.rmtree(repo_dir)
    repo_dir.mkdir(parents=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": parallel_workers,
        "debug": False,
        "metrics_endpoint": None,
    }
    (repo_dir / "settings.json").write_text(json.dumps(settings, indent=2))
    for name, booster in models.items():
        d = repo_dir / name
        d.mkdir()
        shutil.copy(booster, d / "model.bst")
        ms = {
            "name": name,
            "implementation": "mlserver_lightgbm.LightGBMModel",
            "parameters": {"uri": "./model.bst", "version": "v1"},
        }
        if max_batch > 0:
            ms.update(max_batch_size=max_batch, max_batch_time=max_batch_ms / 1000.0)
        (d / "model-settings.json").write_text(json.dumps(ms, indent=2))
    return repo_dir


def start(repo_dir: Path, port: int, log_path: Path, timeout_s: float = 120.0) -> subprocess.Popen:
    """Start ``mlserver start repo_dir``, wait for ``/v2/health/ready``; raises RuntimeError otherwise."""
    exe = PEER_VENV / "bin" / "mlserver"
    if not exe.exists():
        raise RuntimeError(f"{exe} is missing: run `bash perf/peer/setup_mlserver.sh` first")
    log = open(log_path, "w")  # noqa: SIM115 - the child process keeps writing to it
    # LightGBM's OpenMP pool spins on every core by default and starves the event loop on 2 cores: one
    # thread is the fair setting for single-row requests (and what MLServer's docs advise for small models).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(exe), "start", str(repo_dir)], stdout=log, stderr=subprocess.STDOUT, cwd=repo_dir, env=env
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlserver exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"mlserver not ready within {timeout_s} s; see {log_path}")


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """End a started MLServer (SIGTERM) and wait for it; safe to call twice."""
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=timeout_s)


@contextlib.contextmanager
def running(repo_dir: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """MLServer serving ``repo_dir`` on ``port`` for the duration of a ``with`` block (see :func:`start`)."""
    proc = start(repo_dir, port, log_path)
    try:
        yield proc
    finally:
        stop(proc)
