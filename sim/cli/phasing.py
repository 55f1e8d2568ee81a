"""``purgatory phasing SCENARIO.toml [--seeds N] [--bad KEY=VALUE ...] [--out DIR]``: big bang vs phased.

Runs the scenario's release and a bad release (the domain's default, or ``--bad`` overrides), each phased
and as a big bang, on the same seeds; prints the value at risk avoided and the cases exposed to the bad model
(what phasing bought) next to the time to full value and the value forgone (what it cost), and writes
``phasing.json`` and ``phasing.png`` to ``results/<scenario name>-phasing/`` (sim/rollout/compare.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sim.cli.args import Parser, positive_int


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="purgatory phasing", description="Big bang vs phased, for a good and a bad release.")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--seeds", type=positive_int("--seeds"), default=1, help="seeds per arm (default 1)")
    p.add_argument("--bad", action="append", default=[], metavar="KEY=VALUE",
                   help="override that makes the bad release (repeatable; default: the domain's)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<scenario name>-phasing)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from sim.rollout.compare import compare, fmt, parse_overrides  # noqa: PLC0415
    from sim.scenario import load_scenario  # noqa: PLC0415

    bad = parse_overrides(args.bad) if args.bad else None
    out = args.out or Path("results") / f"{load_scenario(args.scenario).name}-phasing"
    t0 = time.perf_counter()
    r = compare(args.scenario, out, seeds=args.seeds, bad=bad)
    seeds = "1 seed, no CI" if r["seeds"] == 1 else f"means of {r['seeds']} seeds"
    print(f"{r['scenario']}: big bang vs phased, bad release {r['bad_release']} ({seeds}, "
          f"{time.perf_counter() - t0:.1f} s)")
    print("what phasing bought:")
    print(f"  value at risk avoided (value a bad release destroys, big bang - phased): "
          f"{fmt(r['value_at_risk_avoided'])}")
    print(f"  cases exposed to the bad model: big bang {fmt(r['bad_model_exposure_big_bang'])}, "
          f"phased {fmt(r['bad_model_exposure_phased'])} (avoided {fmt(r['bad_model_exposure_avoided'])})")
    print("what it cost:")
    print(f"  days to full value: phased {r['days_to_full_value_phased']:.0f}, "
          f"big bang {r['days_to_full_value_big_bang']:.0f}")
    print(f"  value forgone on the good release: {fmt(r['value_forgone_by_phasing'])} "
          f"(big bang {fmt(r['value_good_big_bang'])}, phased {fmt(r['value_good_phased'])})")
    print(f"wrote {out}/ (phasing.json, phasing.png)")
    return 0
