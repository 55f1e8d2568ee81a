"""Execute a sweep's (point x replication) runs on a local process pool or a Dask cluster; store each part.

(The ``purgatory sweep`` command and :func:`sim.sweeps.session.run_sweep` drive this module.)

Layout of the output folder (``results/<sweep>/`` by default)::

    manifest.json          the plan (spec, hashes, seeds, design size), status and one entry per session
    design.parquet         point -> parameter values (and the sensitivity blocks)
    parts/<run>.parquet    one file per finished run, written atomically (temporary file + os.replace)
    parts/<run>.error.parquet   a run that raised: its error message (the sweep goes on)
    runs.parquet, failures.parquet, summary.parquet, sensitivity.parquet, figures/   written at the end

Workers return a run's headline KPIs (a few numbers) to the client, which writes the part: parts land on
the client's disk whatever the backend, so a Dask cluster needs no shared filesystem. At most
``2 x workers`` runs are in flight, so memory stays flat however many runs a sweep has. A part on disk is
a finished run: ``--resume`` skips it, a kill loses nothing else. The final frame is sorted by point,
replication and KPI, so it is identical row for row whatever the backend and worker count.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim import engine
from sim.errors import UserError
from sim.scenario import Scenario, apply_overrides, validate

if TYPE_CHECKING:  # workers import this module: keep scipy (sim.sweeps.spec's samplers) out of them
    from sim.sweeps.spec import Design, SweepSpec

DEFAULT_TARGET = "sim.sweeps.runner:run_engine"
PART_SCHEMA = pa.schema([("point", pa.int32()), ("rep", pa.int32()), ("seed", pa.int64()),
                         ("status", pa.string()), ("error", pa.string()), ("kpi", pa.string()),
                         ("value", pa.float64())])


@dataclass(frozen=True)
class Job:
    """What every run of a sweep shares: the base scenario (plain dict, picklable) and the KPIs to keep."""

    base: dict
    source: str
    kpis: tuple[str, ...]
    target: str = DEFAULT_TARGET


@dataclass(frozen=True)
class Task:
    """One run: design point, replication number, its seed and the point's overrides."""

    point: int
    rep: int
    seed: int
    overrides: tuple[tuple[str, Any], ...]

    @property
    def run_id(self) -> str:
        return run_id(self.point, self.rep)


@dataclass
class Outcome:
    """What a worker sends back: status, error message, the kept KPIs and the run's own time."""

    task: Task
    status: str  # "ok" | "error"
    error: str = ""
    kpis: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # the run's own wall time inside the worker
    cpu_seconds: float = 0.0  # the worker's CPU time for the run (unaffected by other load on the machine)
    fatal: bool = False  # a spec error that every run would hit (unknown KPI): the sweep stops


def run_id(point: int, rep: int) -> str:
    """Stable run name, also the part's file name: ``p000012-r0003``."""
    return f"p{point:06d}-r{rep:04d}"


def make_job(spec: SweepSpec, base: Scenario, target: str = DEFAULT_TARGET) -> Job:
    """The picklable part of a sweep that every worker needs."""
    return Job(base.to_dict(), base.source, spec.kpis, target)


def run_engine(job: Job, overrides: dict[str, Any], seed: int) -> dict[str, float]:
    """The default run target: the base scenario with ``overrides``, one engine run, its headline KPIs."""
    scenario = apply_overrides(validate(job.source, job.base), overrides, source="sweep point")
    return engine.run(scenario, seed).headline


def _target(name: str) -> Callable[[Job, dict[str, Any], int], dict[str, float]]:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def execute(job: Job, task: Task) -> Outcome:
    """Run one task in a worker; any exception becomes an ``error`` outcome carrying its message."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        headline = _target(job.target)(job, dict(task.overrides), task.seed)
    except Exception as err:  # a failing run is recorded; the sweep goes on
        msg = f"{type(err).__name__}: {err}"[:4000]
        return Outcome(task, "error", msg, {}, time.perf_counter() - t0, time.process_time() - c0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    missing = [k for k in job.kpis if k not in headline]
    if missing:
        msg = f"sweep.kpis: {missing[0]!r} is not a headline KPI; available: {', '.join(sorted(headline))}"
        return Outcome(task, "error", msg, {}, seconds, cpu, fatal=True)
    kpis = {str(k): float(headline[k]) for k in (job.kpis or headline)}
    return Outcome(task, "ok", "", kpis, seconds, cpu)


# ---------------------------------------------------------------- storage

def part_path(parts: Path, rid: str, ok: bool = True) -> Path:
    """Where a run's part lives (``<run>.parquet``, or ``<run>.error.parquet`` for a failed run)."""
    return parts / (f"{rid}.parquet" if ok else f"{rid}.error.parquet")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write via ``write(tmp)`` to a temporary file in the same folder, then rename over ``path``."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_part(parts: Path, out: Outcome) -> Path:
    """One run's rows, atomically; a successful retry removes the run's old error part."""
    t = out.task
    names = sorted(out.kpis) if out.status == "ok" else [""]
    n = len(names)
    cols = {"point": [t.point] * n, "rep": [t.rep] * n, "seed": [t.seed] * n, "status": [out.status] * n,
            "error": [out.error] * n, "kpi": names, "value": [out.kpis.get(k, float("nan")) for k in names]}
    table = pa.table(cols, schema=PART_SCHEMA)
    path = part_path(parts, t.run_id, out.status == "ok")
    write_atomic(path, lambda p: pq.write_table(table, p, compression="none", use_dictionary=False,
                                                write_statistics=False, store_schema=False))  # ~1.5 ms
    if out.status == "ok":
        part_path(parts, t.run_id, ok=False).unlink(missing_ok=True)
    return path


def finished_runs(parts: Path, include_failed: bool = True) -> set[str]:
    """Run ids with a part on disk (temporary files of an interrupted write are removed, not counted)."""
    done = set()
    if not parts.exists():
        return done
    for entry in os.scandir(parts):
        name = entry.name
        if name.startswith(".tmp-"):
            os.unlink(entry.path)
        elif name.endswith(".error.parquet"):
            if include_failed:
                done.add(name[: -len(".error.parquet")])
        elif name.endswith(".parquet"):
            done.add(name[: -len(".parquet")])
    return done


def iter_tasks(design: Design, seeds: list[int], skip: set[str]) -> Iterator[Task]:
    """Tasks in design order, lazily (point-major), leaving out the run ids in ``skip``."""
    for p in range(len(design.points)):
        ov = tuple(design.overrides(p).items())
        for r, seed in enumerate(seeds):
            if run_id(p, r) not in skip:
                yield Task(p, r, int(seed), ov)


# ---------------------------------------------------------------- backends

def pool_outcomes(job: Job, tasks: Iterable[Task], workers: int) -> Iterator[Outcome]:
    """Run tasks on a spawn-context process pool with at most ``2 x workers`` in flight.

    A worker process that dies (out of memory, a crash in native code) breaks the pool and takes every
    in-flight run with it. The pool is rebuilt and those runs are retried one at a time, so the run that
    kills its worker again is recorded as failed and the innocent ones complete; then the sweep goes on.
    """
    ctx = multiprocessing.get_context("spawn")
    window = 2 * workers
    it = iter(tasks)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    inflight: dict[cf.Future, Task] = {}
    try:
        while True:
            while len(inflight) < window and (task := next(it, None)) is not None:
                inflight[pool.submit(execute, job, task)] = task
            if not inflight:
                return
            done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            lost = []
            for fut in done:
                task = inflight.pop(fut)
                try:
                    yield fut.result()
                except cf.process.BrokenProcessPool:
                    lost.append(task)
            if not lost:
                continue
            lost += list(inflight.values())
            inflight.clear()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)  # one at a time: exact blame
            for task in sorted(lost, key=lambda t: (t.point, t.rep)):
                try:
                    yield pool.submit(execute, job, task).result()
                except cf.process.BrokenProcessPool:
                    yield Outcome(task, "error", "worker process died during this run (e.g. out of memory or "
                                  "a crash in native code)")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
            pool.shutdown(wait=True)
            pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def dask_outcomes(job: Job, tasks: Iterable[Task], client: Any, key_prefix: str) -> Iterator[Outcome]:
    """Run tasks on a Dask cluster (``client``) with at most ``2 x threads`` in flight."""
    from distributed import as_completed  # noqa: PLC0415 - dask only when asked for

    window = 2 * max(1, sum(client.nthreads().values()))
    job_future = client.scatter(job, broadcast=True, hash=False)
    it = iter(tasks)

    def submit(task: Task) -> Any:
        fut = client.submit(execute, job_future, task, key=f"{key_prefix}-{task.run_id}", pure=False)
        fut.task = task  # type: ignore[attr-defined]
        return fut

    first = [submit(t) for t in (next(it, None) for _ in range(window)) if t is not None]
    ac = as_completed(first)
    for fut in ac:
        task = fut.task
        try:
            out = fut.result()
        except Exception as err:  # e.g. KilledWorker: recorded as failed
            out = Outcome(task, "error", f"{type(err).__name__}: {err}"[:4000])
        fut.release()
        yield out
        nxt = next(it, None)
        if nxt is not None:
            ac.add(submit(nxt))


class DaskBackend:
    """Context manager giving a Dask client: to ``scheduler`` (an address) or to a local TCP cluster."""

    def __init__(self, scheduler: str | None, workers: int):
        self.scheduler, self.workers = scheduler, workers
        self.cluster = self.client = None

    def __enter__(self) -> Any:
        from distributed import Client, LocalCluster  # noqa: PLC0415 - dask only when asked for

        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="20s")
            else:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", protocol="tcp", dashboard_address=None)
                self.client = Client(self.cluster)
        except OSError as err:
            raise UserError(f"--scheduler {self.scheduler}: cannot connect to a Dask scheduler ({err})"
                            ) from None
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
