"""``purgatory sweep SPEC.toml [--workers N] [--scheduler ADDRESS | --dask-local] [--resume] [--out DIR]``.

Validates the spec (one clear error, exit 2, nothing run), runs every unfinished (point, replication) on a
local process pool (default), a Dask cluster at ``--scheduler`` or a local Dask cluster (``--dask-local``),
shows a progress bar (runs done, failures, ETA), then writes runs, summary, sensitivity and figures to
``--out`` (default ``results/<sweep name>/``). Exit code 0 when every run succeeded, 1 when some failed
(they are listed in failures.parquet), 2 for bad input.

:func:`run_sweep` is the same thing for programs: it checks the output folder, writes the plan
(``manifest.json``, ``design.parquet``), streams the runs through :mod:`sim.sweep_runner` and records the
session; :func:`sim.sweep_analysis.assemble` then writes the tables and figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sim.engine import git_commit, package_version
from sim.errors import UserError
from sim.scenario import Scenario
from sim.sweep import Design, SweepSpec, build_design, parse_spec
from sim.sweep_analysis import assemble
from sim.sweep_runner import (
    DEFAULT_TARGET,
    DaskBackend,
    Outcome,
    dask_outcomes,
    finished_runs,
    iter_tasks,
    make_job,
    pool_outcomes,
    run_id,
    write_atomic,
    write_part,
)


@dataclass
class SweepStats:
    """Counts and times of one session of a sweep (seconds)."""

    total: int = 0
    skipped: int = 0
    ran: int = 0
    failed: int = 0
    wall_seconds: float = 0.0
    run_seconds: float = 0.0  # sum of the runs' own time inside the workers
    run_cpu_seconds: float = 0.0  # sum of the workers' CPU time for the runs
    startup_seconds: float = 0.0  # wall time to the first result minus its own time (process start, imports)
    backend: str = "pool"
    workers: int = 1


def _write_json(path: Path, obj: dict) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"))


def _plan(spec: SweepSpec, base: Scenario, design: Design) -> dict:
    return {"schema_version": 1, "sweep": spec.name, "description": spec.description,
            "spec_source": spec.source,
            "spec_hash": spec.hash, "spec": spec.raw, "base_scenario": str(spec.base_path),
            "base_scenario_hash": base.hash, "package_version": package_version(), "git_commit": git_commit(),
            "root_seed": spec.root_seed, "replications": spec.replications, "seeds": spec.seeds,
            "design": spec.design, "params": list(spec.params), "n_points": len(design.points),
            "n_runs": len(design.points) * spec.replications, "kpis": list(spec.kpis)}


def _design_table(design: Design) -> pa.Table:
    cols: dict[str, Any] = {"point": pa.array(range(len(design.points)), pa.int32())}
    for j, name in enumerate(design.params):
        cols[name] = [pt[j] for pt in design.points]
    cols["block"] = design.blocks
    cols["row"] = pa.array(design.rows, pa.int32())
    return pa.table(cols)


def check_out(spec: SweepSpec, out: Path, resume: bool) -> list[dict]:
    """Check (writing nothing) that ``out`` is new, or with ``resume`` the same sweep; its past sessions.

    Raises UserError for a folder that holds a sweep without ``--resume`` or a sweep of a changed spec.
    """
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if not resume:
            raise UserError(f"--out {out}: holds a sweep already ({old.get('sweep')!r}); pass --resume to "
                            "continue it or choose another --out")
        if old.get("spec_hash") != spec.hash:
            raise UserError(f"--resume {out}: the spec or its base scenario changed since this sweep started "
                            f"(spec hash {str(old.get('spec_hash'))[:12]} != {spec.hash[:12]}); "
                            "use another --out")
        return list(old.get("sessions", []))
    if (out / "parts").exists():
        raise UserError(f"--out {out}: has parts/ but no manifest.json; not a sweep folder")
    return []


def init_out(spec: SweepSpec, base: Scenario, design: Design, out: Path, sessions: list[dict]) -> dict:
    """Write the plan (manifest.json, design.parquet) and create parts/. Returns the manifest."""
    plan = _plan(spec, base, design) | {"sessions": sessions, "status": "running"}
    (out / "parts").mkdir(parents=True, exist_ok=True)
    write_atomic(out / "design.parquet", lambda p: pq.write_table(_design_table(design), p))
    _write_json(out / "manifest.json", plan)
    return plan


def run_sweep(spec: SweepSpec, base: Scenario, design: Design, out: Path, *, workers: int = 1,
              scheduler: str | None = None, dask_local: bool = False, resume: bool = False,
              retry_failed: bool = False, progress: bool = True, target: str = DEFAULT_TARGET,
              on_result: Callable[[SweepStats], None] | None = None) -> SweepStats:
    """Run every unfinished run of the sweep, writing a part as each finishes (assemble the outputs after).

    ``target`` ("module:function", called as ``f(job, overrides, seed) -> headline dict``) replaces the
    engine, e.g. for tests; ``on_result(stats)`` is called after each run's part is written. Raises
    UserError, before anything is written, for an output folder that belongs to another sweep or an
    unreachable scheduler.
    """
    out = Path(out)
    sessions = check_out(spec, out, resume)
    use_dask = bool(scheduler or dask_local)
    stats = SweepStats(workers=workers, backend="dask" if use_dask else "pool")
    with DaskBackend(scheduler, workers) if use_dask else contextlib.nullcontext() as client:
        manifest = init_out(spec, base, design, out, sessions)
        parts = out / "parts"
        done = finished_runs(parts, include_failed=not retry_failed)
        stats.total = manifest["n_runs"]
        stats.skipped = sum(1 for p in range(len(design.points)) for r in range(spec.replications)
                            if run_id(p, r) in done)
        job = make_job(spec, base, target)
        tasks = iter_tasks(design, spec.seeds, done)
        if client is not None:
            stats.workers = len(client.nthreads())
            outcomes = dask_outcomes(job, tasks, client, f"sweep-{spec.hash[:10]}")
        else:
            outcomes = pool_outcomes(job, tasks, workers)
        bar = tqdm(total=stats.total, initial=stats.skipped, unit="run", disable=not progress,
                   dynamic_ncols=True, desc=spec.name, smoothing=0.05)
        bar.set_postfix(workers=stats.workers, failed=0)
        t0 = time.perf_counter()
        session = {"resume": resume, "backend": stats.backend, "skipped": stats.skipped,
                   "git_commit": git_commit(), "package_version": package_version()}
        interrupted, stopped_by = True, ""
        try:
            _consume(outcomes, parts, stats, bar, on_result)
            interrupted = False
        except UserError as err:
            stopped_by = str(err)
            raise
        finally:
            outcomes.close()  # stops the pool (or releases the cluster's futures) on any exit
            bar.close()
            stats.wall_seconds = time.perf_counter() - t0
            manifest["sessions"].append(session | {"ran": stats.ran, "failed": stats.failed,
                                                   "interrupted": interrupted})
            manifest["status"] = "interrupted" if interrupted else "assembling"
            if stopped_by:
                manifest |= {"status": "stopped", "error": stopped_by}
            _write_json(out / "manifest.json", manifest)
    timing = {"backend": stats.backend, "workers": stats.workers, "ran": stats.ran,
              "wall_seconds": stats.wall_seconds, "run_seconds": stats.run_seconds,
              "run_cpu_seconds": stats.run_cpu_seconds,
              "startup_seconds": stats.startup_seconds}
    _write_json(out / "timing.json", timing)
    return stats


def _consume(outcomes: Iterator[Outcome], parts: Path, stats: SweepStats, bar: Any,
             on_result: Callable[[SweepStats], None] | None) -> None:
    t0 = time.perf_counter()
    for out in outcomes:
        if out.fatal:
            raise UserError(out.error)
        if stats.ran == 0:
            stats.startup_seconds = max(0.0, time.perf_counter() - t0 - out.seconds)
        write_part(parts, out)
        stats.ran += 1
        stats.run_seconds += out.seconds
        stats.run_cpu_seconds += out.cpu_seconds
        if out.status != "ok":
            stats.failed += 1
            bar.set_postfix(failed=stats.failed, last_error=out.error[:60], refresh=False)
        bar.update(1)
        if on_result is not None:
            on_result(stats)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # bad flags: one line, exit 2, like every other user error
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``purgatory sweep`` argument parser; bad flags raise UserError (exit 2)."""
    p = _Parser(prog="purgatory sweep", description=__doc__.split("\n\n")[1])
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
