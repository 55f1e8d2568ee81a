"""``purgatory drift-eval``: streaming drift detectors on synthetic streams with known change points.

The protocol and its outputs are described in :mod:`sim.detection.evaluation`; this module parses and checks
the flags and runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli.args import Parser
from sim.detection import evaluation
from sim.errors import UserError


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = Parser(prog="purgatory drift-eval", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/drift-eval", help="output folder")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--arl0", type=float, default=2000.0, help="matched ARL0 target, items (>= 1200)")
    ap.add_argument("--streams", type=int, default=200, help="streams per shift size and for calibration")
    ap.add_argument("--shifts", default="0.1,0.25,0.5,1,2", help="comma-separated shift sizes in SD units")
    ap.add_argument("--change-min", type=int, default=500)
    ap.add_argument("--change-max", type=int, default=1500)
    ap.add_argument("--post", type=int, default=2000, help="items after the change before a miss")
    ap.add_argument("--batch-seeds", type=int, default=40, help="seeds for the batch level table; 0: skip")
    args = ap.parse_args(argv)
    try:
        args.shift_list = [float(s) for s in args.shifts.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--shifts (={args.shifts!r}) must be comma-separated numbers, "
                        "e.g. 0.5,1,2") from None
    if not args.shift_list or min(args.shift_list) <= 0:
        raise UserError(f"--shifts (={args.shifts!r}) must list positive shift sizes")
    if args.arl0 < 1200:
        raise UserError(f"--arl0 (={args.arl0:g}) must be >= 1200 items (ADWIN cannot alarm more often "
                        "on N(0,1) streams with delta <= 1)")
    if args.streams < 20:
        raise UserError(f"--streams (={args.streams}) must be >= 20")
    if not 0 < args.change_min <= args.change_max or args.post < 1:
        raise UserError(f"--change-min (={args.change_min}), --change-max (={args.change_max}) and --post "
                        f"(={args.post}) need 0 < change-min <= change-max and post >= 1")
    if args.batch_seeds < 0:
        raise UserError(f"--batch-seeds (={args.batch_seeds}) must be >= 0")
    return args


def main(argv: list[str]) -> int:
    """Run the evaluation and write its table, figure and metadata; returns the exit code."""
    args = _parse(argv)
    out = Path(args.out)
    md = evaluation.run(out, seed=args.seed, arl0=args.arl0, n_streams=args.streams, shifts=args.shift_list,
                        change_range=(args.change_min, args.change_max), post=args.post,
                        batch_seeds=args.batch_seeds,
                        settings={k: v for k, v in vars(args).items() if k != "shift_list"})
    print(md)
    print(f"wrote {out}/summary.csv, summary.md, arl0.csv, meta.json, drift_eval.png")
    return 0
