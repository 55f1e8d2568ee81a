"""``purgatory bench batch``: batch scoring from 1k to 100M records, onnxruntime beside the alternatives.

Parses and checks the flags, then runs :func:`perf.batch.driver.run`. Writes ``batch.json`` and ``batch.png``
to ``--out`` (the batch benchmark's page in docs/ says how to read them).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from perf.batch import catalogue, data
from sim.cli.args import Parser
from sim.errors import UserError

DEFAULT_RECORDS = "1k,10k,100k,1M"
DEFAULT_RUNTIMES = ",".join(catalogue.RUNTIMES)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="purgatory bench batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="synthetic-200", help=f"one of: {', '.join(catalogue.names())}")
    p.add_argument("--records", default=DEFAULT_RECORDS, help="comma list of sizes, e.g. 1k,10k,1M,100M")
    p.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help="comma list from: " + DEFAULT_RUNTIMES)
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="where batch.json/.png go")
    p.add_argument("--data-dir", type=Path, default=None, help="generated Parquet (default OUT/data)")
    p.add_argument("--input", type=Path, default=None, help="score this Parquet, not generated data")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per runtime (all)")
    p.add_argument("--chunk-rows", type=int, default=262_144, help="rows per read/score/write chunk")
    p.add_argument("--memory-max", default="1M", help="largest size also scored in memory (baseline)")
    p.add_argument("--memory-min-s", type=float, default=1.0,
                   help="in-memory cases repeat passes until this many seconds (timing resolution)")
    p.add_argument("--paired-rounds", type=int, default=0,
                   help="also time all runtimes in one process, alternating, on the --memory-max rows")
    p.add_argument("--paired-only", action="store_true", help="skip the per-case runs (with --paired-rounds)")
    p.add_argument("--alt-max", default=None,
                   help="largest size for runtimes other than ort (and Dask); default: every size")
    p.add_argument("--nan-policy", choices=data.NAN_POLICIES, default="error",
                   help="rows with NaN/null features: error (default) or null score")
    p.add_argument("--dask-local", action="store_true", help="also score on a 2-worker LocalCluster")
    p.add_argument("--scheduler", default=None, help="also score on the Dask scheduler at ADDRESS")
    p.add_argument("--dask-workers", type=int, default=2, help="workers of --dask-local")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated feature data")
    p.add_argument("--registry", type=Path, default=None, help="model registry root")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.threads < 1 or args.chunk_rows < 1:
        raise UserError(f"--threads (={args.threads}) and --chunk-rows (={args.chunk_rows}) must be >= 1")
    args.sizes = sorted({data.parse_count(s) for s in args.records.split(",") if s.strip()})
    args.memory_max_n = data.parse_count(args.memory_max)
    args.alt_max_n = data.parse_count(args.alt_max) if args.alt_max else None
    args.runtime_list = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    bad = [r for r in args.runtime_list if r not in catalogue.RUNTIMES]
    if bad or not args.runtime_list:
        raise UserError(f"--runtimes = {args.runtimes!r}: allowed: {DEFAULT_RUNTIMES}")
    if args.input is not None and not args.input.exists():
        raise UserError(f"--input = {str(args.input)!r}: no such file")
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark; returns 0. Raises UserError for bad flags or bad input data."""
    from perf.batch.driver import run  # noqa: PLC0415 - the benchmark stack only once the flags are good

    return run(parse_args(argv))
