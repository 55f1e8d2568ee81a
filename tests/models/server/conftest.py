"""Fixtures of the server tests: a tiny model in a temporary registry, V2 bodies, an in-process server."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from models.pipeline import build_model
from models.registry import Registry
from models.server.app import ServerConfig, create_app
from models.server.batching import BatchConfig
from models.server.loading import load_models
from models.train import TrainConfig

N_FEATURES = 8


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, N_FEATURES)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.standard_normal(3000) > 0).astype(int)
    reg = Registry(tmp_path_factory.mktemp("registry"))
    build_model(
        "tiny", X, y, [f"f{i}" for i in range(N_FEATURES)], TrainConfig(n_trees=60), seed=3, registry=reg
    )
    return reg


def body(rows: np.ndarray, **over: object) -> dict:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}
    tensor.update(over)
    return {"inputs": [tensor]}


def run(registry: Registry, scenario, **config: object) -> None:
    """Serve the registry's model on 127.0.0.1 (free port) and run ``scenario(session, base_url, app)``."""
    batch = config.pop("batch", BatchConfig())
    cfg = ServerConfig(batch=batch, **config)

    async def main() -> None:
        app = create_app(load_models(registry, ["tiny"], batch), cfg)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session, f"http://127.0.0.1:{server.port}", app)
        finally:
            await server.close()

    asyncio.run(main())


async def assert_serving(session: aiohttp.ClientSession, url: str) -> None:
    rows = np.zeros((1, N_FEATURES), dtype=np.float32)
    async with session.post(f"{url}/v2/models/tiny/infer", json=body(rows)) as r:
        assert r.status == 200, await r.text()


def _raw(port: int, payload: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
        return b"".join(chunks)
