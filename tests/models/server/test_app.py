"""The HTTP application: endpoints, answers equal to onnxruntime's, statuses for bad requests and load."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np

from models.registry import Registry
from models.scorer import OnnxScorer
from models.server.app import MODELS
from models.server.batching import BatchConfig
from tests.models.server.conftest import N_FEATURES, _raw, assert_serving, body, run


def test_protocol_endpoints_and_results_match_onnxruntime(registry: Registry) -> None:
    rows = np.random.default_rng(1).standard_normal((5, N_FEATURES)).astype(np.float32)
    entry = registry.load("tiny", registry.versions("tiny")[0])
    expected = OnnxScorer(entry.onnx_path).predict_proba(rows)

    async def scenario(s: aiohttp.ClientSession, url: str, _app) -> None:
        for path, want in (
            ("/v2/health/live", {"live": True}),
            ("/v2/health/ready", {"ready": True}),
            ("/v2/models", {"models": ["tiny"]}),
        ):
            async with s.get(url + path) as r:
                assert r.status == 200 and await r.json() == want
        async with s.get(f"{url}/v2/models/tiny") as r:
            meta = await r.json()
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES]}]
        async with s.get(f"{url}/v2/models/tiny/ready") as r:
            assert (await r.json())["ready"] is True
        async with s.post(f"{url}/v2/repository/index") as r:
            assert (await r.json())[0]["name"] == "tiny"
        req = body(rows) | {"id": "r1", "outputs": [{"name": "probabilities"}]}
        async with s.post(f"{url}/v2/models/tiny/versions/{meta['versions'][0]}/infer", json=req) as r:
            out = await r.json()
        assert out["id"] == "r1" and [o["name"] for o in out["outputs"]] == ["probabilities"]
        proba = np.asarray(out["outputs"][0]["data"], dtype=np.float32).reshape(out["outputs"][0]["shape"])
        np.testing.assert_allclose(proba[:, 1], expected, rtol=0, atol=1e-7)

    run(registry, scenario)


def test_concurrent_single_rows_share_batches_and_get_their_own_answers(registry: Registry) -> None:
    rows = np.random.default_rng(2).standard_normal((300, N_FEATURES)).astype(np.float32)
    entry = registry.load("tiny", registry.versions("tiny")[0])
    expected = OnnxScorer(entry.onnx_path).predict_proba(rows)

    async def scenario(s: aiohttp.ClientSession, url: str, app) -> None:
        async def one(i: int) -> float:
            async with s.post(f"{url}/v2/models/tiny/infer", json=body(rows[i : i + 1])) as r:
                assert r.status == 200
                return (await r.json())["outputs"][1]["data"][1]

        got = await asyncio.gather(*(one(i) for i in range(len(rows))))
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, rtol=0, atol=1e-7)
        stats = app[MODELS]["tiny"].batcher.stats.to_json()
        assert stats["rows"] == len(rows) and stats["mean_batch_rows"] > 1.5, stats

    # direct_us = 0: every request goes through the queue (as for a model whose rows cost >= direct_us)
    run(registry, scenario, batch=BatchConfig(direct_us=0.0))


def test_a_light_models_lone_requests_skip_the_queue(registry: Registry) -> None:
    """The tiny model scores a row in microseconds: requests that find nothing queued are scored at once in
    their handler (one row per call), with the same answers."""
    rows = np.random.default_rng(4).standard_normal((20, N_FEATURES)).astype(np.float32)
    entry = registry.load("tiny", registry.versions("tiny")[0])
    expected = OnnxScorer(entry.onnx_path).predict_proba(rows)

    async def scenario(s: aiohttp.ClientSession, url: str, app) -> None:
        batcher = app[MODELS]["tiny"].batcher
        queued = []
        submit = batcher.submit
        batcher.submit = lambda X: queued.append(len(X)) or submit(X)
        got = []
        for i in range(len(rows)):
            async with s.post(f"{url}/v2/models/tiny/infer", json=body(rows[i : i + 1])) as r:
                got.append((await r.json())["outputs"][1]["data"][1])
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, rtol=0, atol=1e-7)
        assert queued == [] and batcher.stats.batches == {1: len(rows)} and batcher.pending == 0, queued

    # the tiny model takes ~10-40 us a call here; a generous direct_us keeps scheduler hiccups (which move the
    # running estimate) from making this test flaky: it checks the mechanism, not the default's tuning
    run(registry, scenario, batch=BatchConfig(direct_us=2000.0))


BAD_BODIES = [
    (b"{not json", 400),
    (json.dumps(body(np.zeros((1, N_FEATURES + 1)))).encode(), 400),  # wrong shape
    (json.dumps(body(np.zeros((2, N_FEATURES)), shape=[1, N_FEATURES])).encode(), 400),  # data/shape mismatch
    (json.dumps(body(np.zeros((1, N_FEATURES)), datatype="INT64")).encode(), 400),
    (json.dumps(body(np.zeros((1, N_FEATURES)), name="x")).encode(), 400),
    (json.dumps(body(np.zeros((1, N_FEATURES)), data=["a"] * N_FEATURES)).encode(), 400),
    (json.dumps(body(np.full((1, N_FEATURES), np.nan))).encode(), 400),  # json.dumps writes NaN
    (json.dumps(body(np.full((1, N_FEATURES), 1e300))).encode(), 400),  # beyond float32
    (json.dumps(body(np.zeros((1, N_FEATURES))) | {"outputs": [{"name": "nope"}]}).encode(), 400),
    (json.dumps({"inputs": []}).encode(), 400),
]


def test_bad_requests_get_their_status_and_the_server_keeps_serving(registry: Registry) -> None:
    async def scenario(s: aiohttp.ClientSession, url: str, _app) -> None:
        for raw, status in BAD_BODIES:
            async with s.post(
                f"{url}/v2/models/tiny/infer", data=raw, headers={"Content-Type": "application/json"}
            ) as r:
                assert r.status == status, raw[:80]
                assert "error" in await r.json()
            await assert_serving(s, url)
        for path in ("/v2/models/nope/infer", "/v2/models/tiny/versions/0000/infer"):
            async with s.post(url + path, json=body(np.zeros((1, N_FEATURES)))) as r:
                assert r.status == 404 and "unknown model" in (await r.json())["error"]
        async with s.get(f"{url}/v2/models/nope") as r:
            assert r.status == 404
        await assert_serving(s, url)

    run(registry, scenario)


def test_oversized_body_is_refused_before_reading_and_disconnects_are_survived(registry: Registry) -> None:
    async def scenario(s: aiohttp.ClientSession, url: str, _app) -> None:
        port = int(url.rsplit(":", 1)[1])
        head = "POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        # announced 50 MB, nothing sent: the answer comes from Content-Length alone
        resp = await asyncio.to_thread(_raw, port, (head + "Content-Length: 50000000\r\n\r\n").encode())
        assert resp.startswith(b"HTTP/1.1 413"), resp[:100]

        # chunked body with no Content-Length, over the limit while reading
        async def chunks():
            for _ in range(4):
                yield b"0," * 20_000

        async with s.post(
            f"{url}/v2/models/tiny/infer", data=chunks(), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 413
        # client disconnects mid-body, and after sending a whole request
        await asyncio.to_thread(_raw, port, (head + 'Content-Length: 1000\r\n\r\n{"inputs":').encode(), False)
        full = json.dumps(body(np.zeros((500, N_FEATURES)))).encode()
        await asyncio.to_thread(
            _raw, port, (head + f"Content-Length: {len(full)}\r\n\r\n").encode() + full, False
        )
        await asyncio.sleep(0.05)
        await assert_serving(s, url)

    run(registry, scenario, max_body_bytes=100_000)


def test_full_queue_sheds_with_503_and_slow_inference_times_out_with_504(registry: Registry) -> None:
    big = np.random.default_rng(3).standard_normal((60_000, N_FEATURES)).astype(np.float32)

    async def scenario(s: aiohttp.ClientSession, url: str, app) -> None:
        batcher = app[MODELS]["tiny"].batcher
        slow = asyncio.ensure_future(s.post(f"{url}/v2/models/tiny/infer", json=body(big)))
        for _ in range(1000):
            if batcher.pending:
                break
            await asyncio.sleep(0.005)
        async with s.post(f"{url}/v2/models/tiny/infer", json=body(big[:1])) as r:
            assert r.status == 503 and "queue full" in (await r.json())["error"]
        async with await slow as r:
            assert r.status == 504
        for _ in range(1000):  # the model call finishes, then the queue has room again
            if not batcher.pending:
                break
            await asyncio.sleep(0.005)
        await assert_serving(s, url)

    run(
        registry,
        scenario,
        timeout_s=0.01,
        max_body_bytes=1 << 24,
        batch=BatchConfig(max_batch=64, queue_limit=1),
    )


def test_bearer_token_is_required_when_set(registry: Registry) -> None:
    async def scenario(s: aiohttp.ClientSession, url: str, _app) -> None:
        req = body(np.zeros((1, N_FEATURES)))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}):
            async with s.post(f"{url}/v2/models/tiny/infer", json=req, headers=headers) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        async with s.get(f"{url}/v2/health/live") as r:
            assert r.status == 200
        async with s.post(
            f"{url}/v2/models/tiny/infer", json=req, headers={"Authorization": "Bearer secret"}
        ) as r:
            assert r.status == 200

    run(registry, scenario, token="secret")


def test_requests_past_max_inflight_are_refused_before_reading(registry: Registry) -> None:
    async def scenario(s: aiohttp.ClientSession, url: str, _app) -> None:
        port = int(url.rsplit(":", 1)[1])
        head = "POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode())  # in flight, waiting for the rest of its body
        await writer.drain()
        await asyncio.sleep(0.1)
        async with s.post(f"{url}/v2/models/tiny/infer", json=body(np.zeros((1, N_FEATURES)))) as r:
            assert r.status == 503 and "busy" in (await r.json())["error"]
        writer.close()
        await asyncio.sleep(0.1)
        await assert_serving(s, url)

    run(registry, scenario, max_inflight=1)
