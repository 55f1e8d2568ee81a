"""``purgatory run SCENARIO.toml [--seeds N] [--root-seed S] [--out DIR] [--workers N]``."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from sim.cli.args import Parser, positive_int
from sim.rng import replication_seeds


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="purgatory run", description="Run a scenario over seeds and write its results.")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--seeds", type=positive_int("--seeds"), help="replications (default: [scenario] seeds)")
    p.add_argument("--root-seed", type=int, help="root seed (default: [scenario] root_seed)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<scenario name>)")
    p.add_argument("--workers", type=positive_int("--workers"), default=1, help="processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="do not print the summary table")
    return p


def _one(args: tuple[str, int]):
    from sim.engine import run  # noqa: PLC0415
    from sim.scenario import load_scenario  # noqa: PLC0415

    path, seed = args
    result = run(load_scenario(path), seed)
    result.details = {}  # in-memory state (generators, the scorer) does not cross processes
    return result


def print_summary(summary: dict, elapsed: float, out: Path) -> None:
    meta = summary["meta"]
    print(
        f"{meta['scenario']} ({meta['domain']}): {len(meta['seeds'])} seed(s), "
        f"root seed {meta['root_seed']}, "
        f"{meta['horizon_days']} days, {elapsed:.1f} s"
    )
    print(f"{'KPI':<44}{'mean':>12}{'95% CI':>26}")
    for k, v in summary["headline"].items():
        if v["mean"] is None:
            print(f"{k:<44}{'n/a':>12}")
            continue
        ci = f"[{v['ci_low']:.4g}, {v['ci_high']:.4g}]" if v["ci_low"] is not None else "1 seed, no CI"
        print(f"{k:<44}{v['mean']:>12.4g}{ci:>26}")
    print(
        f"wrote {out}/ (kpis.parquet, events.parquet, summary.json, {', '.join(summary.get('figures', []))})"
    )


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from sim.engine import run  # noqa: PLC0415
    from sim.results import write_results  # noqa: PLC0415
    from sim.scenario import domain_module, load_scenario  # noqa: PLC0415

    scenario = load_scenario(args.scenario)  # validates before anything runs or is written
    n = args.seeds or scenario.get("scenario.seeds")
    root = scenario.get("scenario.root_seed") if args.root_seed is None else args.root_seed
    seeds = replication_seeds(root, n)
    out = args.out or Path("results") / scenario.name
    t0 = time.perf_counter()
    if args.workers == 1:
        results = []
        for i, s in enumerate(seeds):
            results.append(run(scenario, s))
            print(f"\r  run {i + 1}/{n} done", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    else:
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_one, [(str(Path(args.scenario).resolve()), s) for s in seeds]))
    summary = write_results(out, scenario, results, root, domain_module(scenario).figures)
    if not args.quiet:
        print_summary(summary, time.perf_counter() - t0, out)
    return 0
