"""``purgatory bench load``: open- and closed-loop HTTP load against an Open Inference Protocol server.

Open loop (``--rate``): Poisson arrivals, latency from the scheduled send time. Closed loop
(``--concurrency``): C users. ``--sweep-slo-ms``: the highest open-loop rate whose p99 meets the SLO. The
generator is the package :mod:`perf.load`; results go to ``--out`` as ``load-<label>.json`` and ``.png``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from perf.load.closed_loop import run_closed
from perf.load.open_loop import run_open, sweep
from perf.load.report import meta, write_results
from perf.load.requests import make_target
from sim.cli.args import Parser
from sim.errors import UserError


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v]
    except ValueError:
        raise UserError(f"{flag} = {text!r}: allowed: positive numbers separated by commas") from None
    if not values or min(values) <= 0:
        raise UserError(f"{flag} = {text!r}: allowed: positive numbers separated by commas")
    return values


def main(argv: list[str]) -> int:
    """Entry point of ``purgatory bench load``; raises UserError for bad flags or an unreachable server."""
    p = Parser(prog="purgatory bench load", description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", required=True)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", help="open loop: req/s (comma list for several runs)")
    mode.add_argument("--concurrency", help="closed loop: connections (comma list for a sweep)")
    mode.add_argument("--sweep-slo-ms", type=float, help="find the highest open-loop rate with p99 <= this")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (at most 600)")
    p.add_argument("--rows", type=int, default=1, help="rows per request")
    p.add_argument("--slo-ms", type=float, default=100.0, help="SLO for goodput")
    p.add_argument("--start-rate", type=float, default=500.0)
    p.add_argument("--max-rate", type=float, default=50_000.0)
    p.add_argument("--max-conns", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--token", default=None)
    p.add_argument("--label", default=None, help="results file name part (default: the model)")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 600:
        raise UserError(f"--duration = {args.duration}: allowed: 0 < seconds <= 600")
    if args.rows < 1 or args.max_conns < 1:
        raise UserError(f"--rows = {args.rows}, --max-conns = {args.max_conns}: both must be >= 1")
    target = make_target(args.url, args.model, args.rows, seed=args.seed, token=args.token)
    doc = {
        "meta": meta(args.seed),
        "url": args.url,
        "model": args.model,
        "rows": args.rows,
        "slo_ms": args.sweep_slo_ms or args.slo_ms,
    }
    if args.sweep_slo_ms:
        doc.update(
            asyncio.run(
                sweep(
                    target,
                    args.sweep_slo_ms,
                    start=args.start_rate,
                    max_rate=args.max_rate,
                    step_s=args.duration,
                    seed=args.seed,
                    max_conns=args.max_conns,
                )
            )
        )
    elif args.rate:
        rates = _floats(args.rate, "--rate")
        doc["runs"] = [
            asyncio.run(
                run_open(
                    target, r, args.duration, seed=args.seed, max_conns=args.max_conns, slo_ms=args.slo_ms
                )
            )
            for r in rates
        ]
    else:
        conc = [int(c) for c in _floats(args.concurrency, "--concurrency")]
        doc["runs"] = [asyncio.run(run_closed(target, c, args.duration, slo_ms=args.slo_ms)) for c in conc]
    path = write_results(doc, Path(args.out), args.label or args.model)
    for r in doc["runs"]:
        lat = r["latency_ms"]
        print(
            f"{r['mode']:6} {r.get('target_rate', r.get('concurrency')):>8g}"
            f"  achieved {r['achieved_rate']:8.0f}/s"
            f"  p50 {lat['p50']}  p99 {lat['p99']}  p99.9 {lat['p99.9']} ms  status {r['by_status']}"
            f"  client cpu {r['client_cpu_cores']:.2f}"
        )
    if args.sweep_slo_ms:
        print(f"highest rate with p99 <= {args.sweep_slo_ms:g} ms: {doc['max_rate']:.0f} req/s")
    print(f"wrote {path}")
    return 0
