"""``purgatory sweep SPEC.toml [--workers N] [--scheduler ADDRESS | --dask-local] [--resume] [--out DIR]``.

Validates the spec (one clear error, exit 2, nothing run), runs every unfinished (point, replication) on a
local process pool (default), a Dask cluster at ``--scheduler`` or a local Dask cluster (``--dask-local``),
shows a progress bar (runs done, failures, ETA), then writes runs, summary, sensitivity and figures to
``--out`` (default ``results/<sweep name>/``). Exit code 0 when every run succeeded, 1 when some failed
(they are listed in failures.parquet), 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sim.cli.args import Parser
from sim.errors import UserError
from sim.sweeps.analysis import assemble
from sim.sweeps.session import run_sweep
from sim.sweeps.spec import build_design, parse_spec


def build_parser() -> argparse.ArgumentParser:
    """The ``purgatory sweep`` argument parser; bad flags raise UserError (exit 2)."""
    p = Parser(prog="purgatory sweep", description=__doc__.split("\n\n")[1])
    p.add_argument("spec", help="sweep spec (TOML), e.g. scenarios/sweeps/sepsis_levers.toml")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: CPU count); with --dask-local the number of Dask "
                        "workers; with --scheduler ignored (the cluster's worker threads are used)")
    backend = p.add_mutually_exclusive_group()
    backend.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    backend.add_argument("--dask-local", action="store_true",
                         help="start a local Dask cluster (TCP on 127.0.0.1)")
    p.add_argument("--resume", action="store_true",
                   help="continue a sweep in --out; finished runs are skipped")
    p.add_argument("--retry-failed", action="store_true", help="with --resume, run failed runs again")
    p.add_argument("--out", type=Path, default=None, help="output folder (default results/<sweep name>/)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    """Run a sweep; returns 0 (all runs ok), 1 (some runs failed). Raises UserError for bad input."""
    args = build_parser().parse_args(argv)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UserError(f"--workers {workers}: must be >= 1")
    if args.retry_failed and not args.resume:
        raise UserError("--retry-failed: only with --resume")
    spec, base = parse_spec(args.spec)
    design = build_design(spec)
    out = args.out if args.out is not None else Path("results") / spec.name
    n_runs = len(design.points) * spec.replications
    backend = "local Dask" if args.dask_local else "process pool"
    backend = f"Dask at {args.scheduler}" if args.scheduler else backend
    print(f"sweep {spec.name}: {len(design.points)} points x {spec.replications} replications = {n_runs} "
          f"runs "
          f"({spec.design} design, root seed {spec.root_seed}) on {backend} -> {out}", file=sys.stderr)
    stats = run_sweep(spec, base, design, out, workers=workers, scheduler=args.scheduler,
                      dask_local=args.dask_local, resume=args.resume, retry_failed=args.retry_failed,
                      progress=not args.no_progress)
    counts = assemble(spec, design, out, figures=not args.no_figures)
    busy = stats.wall_seconds * stats.workers
    overhead = busy / stats.run_seconds - 1 if stats.run_seconds else float("nan")
    print(f"sweep {spec.name}: ran {stats.ran}, skipped {stats.skipped} finished, failed {stats.failed} "
          f"(total failed {counts['runs_failed']}); {stats.wall_seconds:.1f} s wall on {stats.workers} "
          f"worker(s), "
          f"runs' own time {stats.run_seconds:.1f} s (wall x workers / own time - 1 = {overhead:+.1%})",
          file=sys.stderr)
    more = " ..." if len(counts["outputs"]) > 5 else ""
    print(f"outputs in {out}: {', '.join(counts['outputs'][:5])}{more}",
          file=sys.stderr)
    return 1 if counts["runs_failed"] else 0

