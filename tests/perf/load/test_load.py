"""The load generator against a real server on 127.0.0.1: small, bounded runs."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from models.pipeline import build_model
from models.registry import Registry
from models.server.app import ServerConfig, create_app
from models.server.batching import BatchConfig
from models.server.loading import load_models
from models.train import TrainConfig
from perf import load
from sim.cli import bench_load
from sim.errors import UserError

N_FEATURES = 6


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((2000, N_FEATURES)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + rng.standard_normal(2000) > 0).astype(int)
    reg = Registry(tmp_path_factory.mktemp("registry"))
    build_model(
        "m", X, y, [f"f{i}" for i in range(N_FEATURES)], TrainConfig(n_trees=30), seed=1, registry=reg
    )
    return reg


def with_server(registry: Registry, scenario, **config: object):
    """Run ``scenario(url)`` in the same event loop as a real server on a free port; return its result."""

    async def main():
        batch = config.pop("batch", BatchConfig())
        app = create_app(load_models(registry, ["m"], batch), ServerConfig(batch=batch, **config))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await scenario(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_open_loop_offers_the_poisson_rate_and_measures_from_the_schedule(registry: Registry) -> None:
    async def scenario(url: str) -> dict:
        target = await asyncio.to_thread(load.make_target, url, "m", 1)
        return await load.run_open(target, 400.0, 1.5, seed=3)

    res = with_server(registry, scenario)
    n = res["requests"]
    assert abs(n - 600) < 4 * np.sqrt(600)  # Poisson count for 400/s over 1.5 s
    assert res["by_status"] == {"200": n} and res["transport_errors"] == 0
    lat = res["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] < 1000
    assert res["achieved_rate"] == pytest.approx(n / 1.5)
    assert res["dispatch_lag_ms"]["p50"] < 20 and res["client_cpu_cores"] > 0
    assert load.passes(res, slo_ms=1000.0)


def test_closed_loop_keeps_c_requests_in_flight(registry: Registry) -> None:
    async def scenario(url: str) -> dict:
        target = await asyncio.to_thread(load.make_target, url, "m", 2)
        return await load.run_closed(target, 8, 1.0)

    res = with_server(registry, scenario)
    assert res["requests"] > 50 and res["by_status"] == {"200": res["requests"]}
    assert res["concurrency"] == 8 and res["connect_errors"] == 0


def test_failures_count_as_infinitely_slow() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = load.make_target(f"http://127.0.0.1:{port}", "m", n_features=3)
    res = asyncio.run(load.run_open(target, 100.0, 0.3, drain_s=1.0))
    assert res["transport_errors"] == res["requests"] > 0
    assert res["latency_ms"]["p50"] is None and not load.passes(res, 100.0)


def test_shed_requests_fail_the_slo(registry: Registry) -> None:
    """A server with room for one request sheds a burst with 503s; the p99 cannot pass."""

    async def scenario(url: str) -> dict:
        target = await asyncio.to_thread(load.make_target, url, "m", 3000, n_bodies=2)
        return await load.run_open(target, 300.0, 0.5, seed=1)

    res = with_server(registry, scenario, max_body_bytes=1 << 24, batch=BatchConfig(queue_limit=1))
    assert res["by_status"].get("503", 0) > 0 and not load.passes(res, 10_000.0)


def test_sweep_is_bounded_and_finds_a_passing_rate(registry: Registry) -> None:
    async def scenario(url: str) -> dict:
        target = await asyncio.to_thread(load.make_target, url, "m", 1)
        return await load.sweep(
            target, 1000.0, start=100.0, max_rate=300.0, step_s=0.4, refine=1, pause_s=0.05
        )

    res = with_server(registry, scenario)
    assert res["max_rate"] >= 225.0 and len(res["runs"]) <= 4
    assert all(r["pass"] for r in res["runs"] if r["target_rate"] <= res["max_rate"])


def test_targets_are_seeded_and_cli_writes_json_and_figure(registry: Registry, tmp_path: Path) -> None:
    a = load.make_target("http://127.0.0.1:1", "m", 1, seed=4, n_features=3)
    b = load.make_target("http://127.0.0.1:1", "m", 1, seed=4, n_features=3)
    assert a == b and len(set(a.requests)) == len(a.requests)
    body = json.loads(a.requests[0].split(b"\r\n\r\n", 1)[1])
    assert body["inputs"][0]["shape"] == [1, 3] and body["inputs"][0]["datatype"] == "FP32"
    with pytest.raises(UserError, match="--duration"):
        bench_load.main(["--model", "m", "--rate", "10", "--duration", "0"])
    with pytest.raises(UserError, match="--url"):
        bench_load.main(["--url", "ftp://x", "--model", "m", "--rate", "10"])

    async def scenario(url: str) -> int:
        argv = [
            "--url",
            url,
            "--model",
            "m",
            "--rate",
            "100,200",
            "--duration",
            "0.5",
            "--out",
            str(tmp_path),
        ]
        return await asyncio.to_thread(bench_load.main, argv)

    assert with_server(registry, scenario) == 0
    doc = json.loads((tmp_path / "load-m.json").read_text())
    assert [r["target_rate"] for r in doc["runs"]] == [100.0, 200.0]
    assert doc["meta"]["schema"] == load.SCHEMA and (tmp_path / "load-m.png").stat().st_size > 0
