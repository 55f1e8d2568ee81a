"""One session of a sweep: check the output folder, write the plan, stream the runs, record the session.

:func:`run_sweep` checks ``out`` (a new folder, or ``resume`` of the same plan), writes the plan
(``manifest.json``, ``design.parquet``), streams every unfinished (point, replication) through
:mod:`sim.sweeps.runner` on a local process pool, a Dask cluster at ``scheduler`` or a local Dask cluster,
shows a progress bar and records the session in the manifest; :func:`sim.sweeps.analysis.assemble` then
writes the tables and figures. The command is ``purgatory sweep`` (:mod:`sim.cli.sweep`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sim.errors import UserError
from sim.provenance import git_commit, package_version
from sim.scenario import Scenario
from sim.sweeps.runner import (
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
from sim.sweeps.spec import Design, SweepSpec


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
