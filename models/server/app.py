"""The V2 inference server's HTTP application: routes, admission control, authentication, draining.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models`` (listing, as
KServe), ``POST /v2/repository/index``, ``GET /v2/models/{name}[/versions/{v}]``, ``.../ready``,
``POST .../infer``, and the extension ``GET /v2/stats`` (batch-size counters used to calibrate the
simulator). Errors are an HTTP status with ``{"error": "..."}``: 400 bad request, 401 missing/wrong
bearer token, 404 unknown model, 413 body over the limit (checked from Content-Length before reading),
503 queue full or shutting down, 504 request timeout. :func:`drain` is what SIGTERM triggers (see
:mod:`models.server.runner`): readiness goes false, new requests get 503, in-flight ones may finish.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from models.server.batching import BatchConfig, QueueFullError
from models.server.loading import ServedModel
from models.server.protocol import OUTPUTS, InferError, infer_response, parse_infer_request

PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/v2"})
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
        answer = web.Response(
            body=infer_response(model.name, model.version, out, req.outputs, req.id),
            content_type="application/json",
        )
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
