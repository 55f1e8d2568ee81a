"""``purgatory serve``: the Open Inference Protocol (KServe / Triton "V2") REST API over onnxruntime.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models`` (listing, as
KServe), ``POST /v2/repository/index``, ``GET /v2/models/{name}[/versions/{v}]``, ``.../ready``,
``POST .../infer``, and the extension ``GET /v2/stats`` (batch-size counters used to calibrate the
simulator). Errors are an HTTP status with ``{"error": "..."}``: 400 bad request, 401 missing/wrong
bearer token, 404 unknown model, 413 body over the limit (checked from Content-Length before reading),
503 queue full or shutting down, 504 request timeout. SIGTERM: readiness goes false, new requests get
503, in-flight ones finish within ``--grace`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import orjson
from aiohttp import web

from models.batching import BatchConfig, MicroBatcher, QueueFullError
from models.registry import Registry
from models.scorer import session_options
from sim.errors import UserError

HANDLE_SAMPLES = 20_000  # per model: recent handler times kept for the simulator's calibration
PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/v2"})
OUTPUTS = {"label": "INT64", "probabilities": "FP32"}
STATE = web.AppKey("state", dict)
MODELS = web.AppKey("models", dict)
#: requests always admitted, even when congested (they keep the handling-time estimate fresh)
MIN_ADMITTED = 8


@dataclass(frozen=True)
class ServerConfig:
    """Server settings. max_body_bytes: 413 above; timeout_s: 504 after; token: bearer token or None;
    batching: micro-batch (True) or score each request on its own in the handler (False); grace_s: how long
    in-flight requests may take to finish after SIGTERM; max_inflight: requests being handled at once
    (past it: 503 before the body is read, so an event loop facing thousands of connections stays short)."""

    max_body_bytes: int = 1 << 20
    timeout_s: float = 2.0
    token: str | None = None
    batching: bool = True
    batch: BatchConfig = field(default_factory=BatchConfig)
    grace_s: float = 10.0
    max_inflight: int = 256


class ServedModel:
    """One registry model: an onnxruntime session (1 intra-op thread) and its micro-batcher."""

    def __init__(self, name: str, version: str, onnx_path: Path, batch: BatchConfig):
        self.name, self.version = name, version
        self.session = ort.InferenceSession(
            str(onnx_path), session_options(1), providers=["CPUExecutionProvider"]
        )
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.n_features = int(inp.shape[1])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batcher = MicroBatcher(self.predict, batch)
        self.batcher.warm_up(np.zeros((1, self.n_features), dtype=np.float32))
        #: seconds from the infer handler's start to its 200 answer, most recent requests (for calibration)
        self.handle_times: deque[float] = deque(maxlen=HANDLE_SAMPLES)
        self.handled = 0

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """All model outputs for float32 rows ``X`` [N, F]."""
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: X}), strict=True))

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": self.input_name, "datatype": "FP32", "shape": [-1, self.n_features]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
        }


def load_models(registry: Registry, specs: list[str] | None, batch: BatchConfig) -> dict[str, ServedModel]:
    """Load ``NAME`` or ``NAME@KEY`` models from the registry (all names when ``specs`` is empty).

    A bare NAME picks its most recently written version. Raises UserError for an unknown name or key.
    """
    if not specs:
        specs = (
            sorted(p.name for p in registry.root.iterdir() if p.is_dir()) if registry.root.exists() else []
        )
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, _, key = spec.partition("@")
        versions = registry.versions(name)
        if not versions:
            raise UserError(f"--models: no model {name!r} in registry {registry.root}")
        if not key:
            key = max(versions, key=lambda k: (registry.root / name / k / "card.json").stat().st_mtime)
        elif key not in versions:
            raise UserError(f"--models: {name!r} has no version {key!r}; allowed: {', '.join(versions)}")
        entry = registry.load(name, key)
        models[name] = ServedModel(name, key, entry.onnx_path, batch)
    if not models:
        raise UserError(f"--models: registry {registry.root} holds no models to serve")
    return models


class InferError(ValueError):
    """An inference request that breaks the protocol or the model's signature (HTTP 400)."""


@dataclass(frozen=True)
class InferRequest:
    X: np.ndarray
    outputs: list[str]
    id: str | None


_F32_MAX = float(np.finfo(np.float32).max)


def parse_infer_request(
    body: bytes, input_name: str, n_features: int, outputs: dict[str, str]
) -> InferRequest:
    """Validate a V2 JSON infer body against a model taking float32 ``input_name`` [N, n_features].

    ``data`` may be flat (row-major, as the protocol says) or nested by row. Raises InferError naming the
    field, the bad value and what is allowed: malformed JSON, wrong input name / datatype / shape, data
    that are not numbers, non-finite values or values beyond float32, unknown output names.
    """
    try:
        doc = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise InferError(f"body is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or len(doc["inputs"]) != 1:
        raise InferError("body must be an object whose 'inputs' is a list of exactly one tensor")
    tensor = doc["inputs"][0]
    if not isinstance(tensor, dict):
        raise InferError("inputs[0] must be an object with name, shape, datatype, data")
    if tensor.get("name") != input_name:
        raise InferError(f"inputs[0].name = {tensor.get('name')!r}: allowed: {input_name!r}")
    if tensor.get("datatype") != "FP32":
        raise InferError(f"inputs[0].datatype = {tensor.get('datatype')!r}: allowed: 'FP32'")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(type(d) is int for d in shape)
        or shape[0] < 1
        or shape[1] != n_features
    ):
        raise InferError(f"inputs[0].shape = {shape!r}: allowed: [N, {n_features}] with N >= 1")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InferError("inputs[0].data must be a list of numbers")
    if data and isinstance(data[0], list):
        data = [v for row in data if isinstance(row, list) for v in row]
    if len(data) != shape[0] * shape[1]:
        raise InferError(f"inputs[0].data has {len(data)} values; shape {shape} needs {shape[0] * shape[1]}")
    if not all(type(v) is float or type(v) is int for v in data):
        raise InferError("inputs[0].data must hold only numbers (no strings, booleans, nulls or lists)")
    X64 = np.asarray(data, dtype=np.float64)
    if not np.all(np.abs(X64) <= _F32_MAX):  # also false for NaN and +-inf
        raise InferError(
            "inputs[0].data holds NaN, infinite or beyond-float32 values; allowed: finite numbers"
        )
    wanted = doc.get("outputs")
    if wanted is None:
        names = list(outputs)
    elif isinstance(wanted, list) and all(isinstance(o, dict) for o in wanted):
        names = [o.get("name") for o in wanted]
        bad = [n for n in names if n not in outputs]
        if bad:
            raise InferError(f"outputs name = {bad[0]!r}: allowed: {', '.join(outputs)}")
    else:
        raise InferError("outputs must be a list of objects with a name")
    rid = doc.get("id")
    return InferRequest(X64.astype(np.float32).reshape(shape), names, None if rid is None else str(rid))


def _error(status: int, message: str, **headers: str) -> web.Response:
    if status == 503:  # shed load: tell well-behaved clients when to come back
        headers.setdefault("Retry-After", "1")
    return web.json_response({"error": message}, status=status, headers=headers or None)


def create_app(models: dict[str, ServedModel], config: ServerConfig | None = None) -> web.Application:
    """The aiohttp application serving ``models``; usable with aiohttp's test server or AppRunner."""
    config = config or ServerConfig()
    # handle_s: running mean of seconds from admission to answer; past half the timeout the server admits
    # only a few requests at a time (503 for the rest), so a starved event loop sheds instead of timing out.
    state = {"draining": False, "inflight": 0, "handle_s": 0.0}
    congested_s = config.timeout_s / 2

    @web.middleware
    async def guard(request: web.Request, handler):
        path = request.path
        if config.token is not None and path not in PUBLIC_PATHS:
            got = request.headers.get("Authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {config.token}".encode()):
                return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        if state["draining"] and path not in PUBLIC_PATHS:
            return _error(503, "server is shutting down", Connection="close")
        if path not in PUBLIC_PATHS and (
            state["inflight"] >= config.max_inflight
            or (state["inflight"] >= MIN_ADMITTED and state["handle_s"] > congested_s)
        ):
            return _error(503, f"server busy ({state['inflight']} requests in flight)")
        state["inflight"] += 1
        t0 = time.perf_counter()
        try:
            return await handler(request)
        finally:
            state["inflight"] -= 1
            state["handle_s"] = 0.95 * state["handle_s"] + 0.05 * (time.perf_counter() - t0)

    def model_or_404(request: web.Request) -> ServedModel:
        name = request.match_info["name"]
        model = models.get(name)
        version = request.match_info.get("version")
        if model is None or (version is not None and version != model.version):
            raise web.HTTPNotFound(
                text=json.dumps(
                    {"error": f"unknown model {name!r}" + (f" version {version!r}" if version else "")}
                ),
                content_type="application/json",
            )
        return model

    async def server_meta(_: web.Request) -> web.Response:
        return web.json_response(
            {"name": "purgatory", "version": "0.1.0", "extensions": ["repository_index"]}
        )

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": not state["draining"]}, status=503 if state["draining"] else 200)

    async def listing(_: web.Request) -> web.Response:
        return web.json_response({"models": sorted(models)})

    async def index(_: web.Request) -> web.Response:
        return web.json_response(
            [{"name": m.name, "version": m.version, "state": "READY"} for m in models.values()]
        )

    async def model_meta(request: web.Request) -> web.Response:
        return web.json_response(model_or_404(request).metadata())

    async def model_ready(request: web.Request) -> web.Response:
        model = model_or_404(request)
        return web.json_response({"name": model.name, "ready": not state["draining"]})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                name: {
                    **m.batcher.stats.to_json(),
                    "pending": m.batcher.pending,
                    "handled": m.handled,
                    "handle_s_recent": list(m.handle_times),
                }
                for name, m in models.items()
            }
        )

    async def infer(request: web.Request) -> web.Response:  # noqa: PLR0911 - one return per status
        t0 = time.perf_counter()
        model = model_or_404(request)
        length = request.content_length
        if length is not None and length > config.max_body_bytes:
            return _error(
                413,
                f"body of {length} bytes is over the limit of {config.max_body_bytes}",
                Connection="close",
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body is over the limit of {config.max_body_bytes} bytes", Connection="close")
        try:
            req = parse_infer_request(body, model.input_name, model.n_features, OUTPUTS)
        except InferError as err:
            return _error(400, str(err))
        if config.batching:
            # alone in the server: nobody to share a model call with, so skip the queue's hop
            out = model.batcher.direct(req.X) if state["inflight"] <= 1 else None
            if out is None:
                try:
                    fut = model.batcher.submit(req.X)
                except QueueFullError as err:
                    return _error(503, str(err))
                try:
                    async with asyncio.timeout(config.timeout_s):
                        out = await fut
                except TimeoutError:
                    return _error(504, f"inference did not finish within {config.timeout_s} s")
        else:
            if model.batcher.pending >= model.batcher.config.queue_limit:
                model.batcher.stats.shed += 1
                return _error(503, "queue full")
            model.batcher.pending += 1
            try:
                out = model.predict(req.X)
            finally:
                model.batcher.pending -= 1
        outputs = [
            {
                "name": name,
                "datatype": OUTPUTS[name],
                "shape": list(out[name].shape),
                "data": out[name].ravel().tolist(),
            }
            for name in req.outputs
        ]
        resp = {"model_name": model.name, "model_version": model.version, "outputs": outputs}
        if req.id is not None:
            resp["id"] = req.id
        answer = web.Response(body=orjson.dumps(resp), content_type="application/json")
        model.handle_times.append(time.perf_counter() - t0)
        model.handled += 1
        return answer

    async def on_startup(_: web.Application) -> None:
        for m in models.values():
            await m.batcher.start()

    async def on_cleanup(_: web.Application) -> None:
        for m in models.values():
            await m.batcher.stop()

    app = web.Application(middlewares=[guard], client_max_size=config.max_body_bytes)
    app[STATE] = state
    app[MODELS] = models
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_get("/v2", server_meta)
    r.add_get("/v2/health/live", live)
    r.add_get("/v2/health/ready", ready)
    r.add_get("/v2/models", listing)
    r.add_post("/v2/repository/index", index)
    r.add_get("/v2/stats", stats)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_get(base, model_meta)
        r.add_get(base + "/ready", model_ready)
        r.add_post(base + "/infer", infer)
    return app


async def drain(app: web.Application, grace_s: float) -> bool:
    """Stop taking requests (readiness false, 503) and wait up to ``grace_s`` for in-flight ones.

    Returns True when every in-flight request finished within the bound.
    """
    state = app[STATE]
    state["draining"] = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while state["inflight"] > 0 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return state["inflight"] == 0


async def serve(app: web.Application, host: str, port: int, grace_s: float, reuse_port: bool = False) -> None:
    """Run ``app`` until SIGTERM / SIGINT, then drain and stop. Prints ``serving on http://host:port``."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=min(grace_s, 1.0))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"serving on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    clean = await drain(app, grace_s)
    print(
        f"shutting down ({'all in-flight requests finished' if clean else 'grace period exceeded'})",
        flush=True,
    )
    await runner.cleanup()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purgatory serve", description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", nargs="*", default=None, help="NAME or NAME@KEY (default: every registry model)"
    )
    p.add_argument(
        "--registry", default=None, help="registry root (default results/registry or $PURGATORY_REGISTRY)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port (SO_REUSEPORT)")
    p.add_argument(
        "--token", default=None, help="require 'Authorization: Bearer TOKEN' (also $PURGATORY_TOKEN)"
    )
    p.add_argument("--no-batching", action="store_true", help="score each request on its own, in the handler")
    p.add_argument("--max-batch", type=int, default=64, help="most rows per onnxruntime call")
    p.add_argument("--max-delay-ms", type=float, default=0.0, help="wait after the oldest request for more")
    p.add_argument(
        "--queue-limit", type=int, default=2048, help="requests in the system per model; 503 past it"
    )
    p.add_argument(
        "--inline-us", type=float, default=BatchConfig.inline_us,
        help="batches estimated under this many microseconds of model time run on the event loop; larger"
             " ones in a thread (so HTTP handling continues on another core)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds before 504")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=None,
        help="shed (503) while the oldest queued request has waited longer (default: half of --timeout)",
    )
    p.add_argument("--max-body", type=int, default=1 << 20, help="bytes; 413 past it")
    p.add_argument("--grace", type=float, default=10.0, help="seconds in-flight requests get after SIGTERM")
    p.add_argument("--max-inflight", type=int, default=256, help="requests handled at once; 503 past it")
    return p


def config_from_args(args: argparse.Namespace, token: str | None) -> ServerConfig:
    """ServerConfig from parsed flags; raises UserError naming the bad flag."""
    for flag, value, low in (
        ("--max-batch", args.max_batch, 1),
        ("--queue-limit", args.queue_limit, 1),
        ("--max-body", args.max_body, 1),
        ("--workers", args.workers, 1),
        ("--max-inflight", args.max_inflight, 1),
    ):
        if value < low:
            raise UserError(f"{flag} = {value}: must be >= {low}")
    for flag, value in (("--timeout", args.timeout), ("--grace", args.grace)):
        if not value > 0:
            raise UserError(f"{flag} = {value}: must be > 0 seconds")
    if args.inline_us < 0:
        raise UserError(f"--inline-us = {args.inline_us}: must be >= 0")
    if args.max_delay_ms < 0:
        raise UserError(f"--max-delay-ms = {args.max_delay_ms}: must be >= 0")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise UserError(
            f"--host = {args.host!r}: binding beyond loopback needs --token (or $PURGATORY_TOKEN)"
        )
    return ServerConfig(
        max_body_bytes=args.max_body,
        timeout_s=args.timeout,
        token=token,
        batching=not args.no_batching,
        grace_s=args.grace,
        max_inflight=args.max_inflight,
        batch=BatchConfig(
            max_batch=args.max_batch,
            max_delay_ms=args.max_delay_ms,
            queue_limit=args.queue_limit,
            inline_us=args.inline_us,
            max_wait_ms=args.max_wait_ms if args.max_wait_ms is not None else args.timeout * 1e3 / 2,
        ),
    )


def run_loop(coro) -> None:
    """Run ``coro`` on uvloop (libuv: less event-loop cost per request) where installed, else asyncio."""
    try:
        import uvloop  # noqa: PLC0415 - optional: not on Windows
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _worker(argv: list[str]) -> None:
    main(argv, _child=True)


def main(argv: list[str], _child: bool = False) -> int:
    """Entry point of ``purgatory serve``; raises UserError for bad flags or unknown models."""
    args = _parser().parse_args(argv)
    token = args.token or os.environ.get("PURGATORY_TOKEN")
    config = config_from_args(args, token)
    models = load_models(Registry(args.registry), args.models, config.batch)
    children = []
    if args.workers > 1 and not _child:
        if args.port == 0:
            raise UserError("--port = 0: several --workers need a fixed port to share")
        ctx = mp.get_context("spawn")
        children = [ctx.Process(target=_worker, args=(argv,), daemon=False) for _ in range(args.workers - 1)]
        for c in children:
            c.start()
    print(
        f"models: {', '.join(f'{m.name}@{m.version}' for m in models.values())}; "
        f"batching {'on' if config.batching else 'off'}",
        flush=True,
    )
    try:
        run_loop(
            serve(
                create_app(models, config), args.host, args.port, config.grace_s, reuse_port=args.workers > 1
            )
        )
    finally:
        for c in children:
            c.terminate()
        for c in children:
            c.join(config.grace_s + 5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
