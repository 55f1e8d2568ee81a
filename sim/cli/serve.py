"""``purgatory serve``: serve registry models over the Open Inference Protocol (V2 REST).

Parses and checks the flags, loads the models (:mod:`models.server.loading`) and runs the server
(:mod:`models.server.runner`); ``--workers N`` starts N processes sharing the port.
"""

from __future__ import annotations

import argparse
import os

from models.registry import Registry
from models.server.app import ServerConfig
from models.server.batching import BatchConfig
from models.server.loading import load_models
from models.server.runner import serve_forever, start_workers, stop_workers
from sim.cli.args import Parser
from sim.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="purgatory serve", description=__doc__.split("\n")[0])
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
        children = start_workers(_worker, argv, args.workers - 1)
    print(
        f"models: {', '.join(f'{m.name}@{m.version}' for m in models.values())}; "
        f"batching {'on' if config.batching else 'off'}",
        flush=True,
    )
    try:
        serve_forever(models, config, args.host, args.port, reuse_port=args.workers > 1)
    finally:
        stop_workers(children, config.grace_s)
    return 0
