"""Benchmark: a local sweep of >= 200 short runs of the real engine on 1 and on 2 worker processes.

The sweeps run the same spec (a small sepsis system: alert threshold x adoption grid x replications) in
the same process, one after the other, in ABBA order (1, N, N, 1 workers, summed per worker count, so a
background load that drifts linearly hits both alike; ``--no-abba``: 1, N), with the model trained and
registered before any timing. Reports

- speedup = wall time on 1 worker / wall time on 2 workers;
- runner overhead = (wall x workers - sum of the runs' own time) / sum of the runs' own time, i.e. every
  worker-second not spent inside ``engine.run``: process start and imports, pickling, IPC, waiting, writing
  parts; plus the parent's CPU time per run;
- worker start-up (time to the first result minus that run's own time: process start, imports, model
  load) and the overhead without it, since it is paid once per worker whatever the sweep's size;
- worker-hours per 10,000 runs of this size;
- that both sweeps gave identical frames (row for row).

Writes ``results/bench-sweep/bench.json``. Not part of the default test run.

    python -m perf.bench_sweep [--runs 200] [--horizon-days 28] [--workers 2] [--run-costs [--full]]

``--run-costs`` also times one run of each example spec in ``scenarios/sweeps/`` (and with ``--full`` one
run of the full 172-hospital, one-year SPOT scenario) for the docs' cost table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from sim.domains.sepsis.model import get_model
from sim.provenance import git_commit
from sim.sweeps.analysis import assemble
from sim.sweeps.session import SweepStats, run_sweep
from sim.sweeps.spec import build_design, parse_spec

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "sepsis_spot.toml"
THRESHOLDS = [0.1, 0.2, 0.3, 0.45, 0.6]
ADOPTION = [-1.0, 0.0, 1.0, 2.0, 3.0]


def spec_text(runs: int, horizon_days: int) -> str:
    reps = math.ceil(runs / (len(THRESHOLDS) * len(ADOPTION)))
    return f"""[sweep]
name = "bench_sweep"
base = "{BASE.as_posix()}"
root_seed = 1
replications = {reps}
design = "grid"
kpis = ["lives_saved_per_year", "alert_ppv", "act_rate"]
[sweep.fixed]
"scenario.horizon_days" = {horizon_days}
"hospitals.count" = 2
"hospitals.beds_median" = 60.0
"hospitals.beds_min" = 20.0
"hospitals.beds_max" = 80.0
"rollout.waves" = [1, 1]
"rollout.min_dwell_days" = 14
"rollout.gate_window_days" = 14
"model.train_septic_patients" = 300
"model.train_nonseptic_patients" = 600
"model.train_max_hours" = 96
"model.n_trees" = 20
[[axis]]
param = "model.threshold"
values = {THRESHOLDS}
[[axis]]
param = "adoption.act_logit_base"
values = {ADOPTION}
"""


def trivial(job: object, overrides: dict, seed: int) -> dict[str, float]:
    """A run that does no work: what remains of a sweep's time is the runner's own cost."""
    return {"k": float(seed % 7), "x": float(overrides["model.threshold"])}


def rss_mb() -> float:
    import psutil  # noqa: PLC0415 - only for the memory check

    return psutil.Process().memory_info().rss / 2**20


def runner_cost(n_runs: int, workers: int, tmp: Path) -> dict:
    """Zero-work runs through the whole runner: per-run cost (ms) and parent memory at 10% and 100%."""
    path = tmp / "trivial.toml"
    values = [round(0.01 * i, 2) for i in range(1, 51)]
    path.write_text(f'[sweep]\nname = "runner_cost"\nbase = "{BASE.as_posix()}"\nroot_seed = 1\n'
                    f'replications = {math.ceil(n_runs / 50)}\n[[axis]]\nparam = "model.threshold"\n'
                    f"values = {values}\n")
    spec, base = parse_spec(path)
    design = build_design(spec)
    total = len(design.points) * spec.replications
    marks: dict[str, float] = {}

    def probe(stats: SweepStats) -> None:
        if stats.ran in (total // 10, total):
            marks[f"rss_mb_at_{stats.ran}"] = rss_mb()

    stats = run_sweep(spec, base, design, tmp / "trivial", workers=workers, progress=False,
                      target=f"{__name__}:trivial", on_result=probe)
    wall = stats.wall_seconds - stats.startup_seconds
    return {"runs": stats.ran, "workers": workers, "wall_s": stats.wall_seconds,
            "startup_s": stats.startup_seconds, "ms_per_run": 1000 * wall / stats.ran, **marks}


def run_costs(include_full: bool) -> list[dict]:
    """CPU and wall seconds of one run (first point, first seed) of each example spec, and of full SPOT."""
    from sim import engine  # noqa: PLC0415
    from sim.scenario import apply_overrides, load_scenario  # noqa: PLC0415

    cases = []
    for path in sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")):
        spec, base = parse_spec(path)
        cases.append((path.stem, apply_overrides(base, build_design(spec).overrides(0)), spec.seeds[0]))
    if include_full:
        cases.append(("sepsis_spot (172 hospitals, 365 days)", load_scenario(BASE), 1))
    rows = []
    for name, scenario, seed in cases:
        if scenario.get("model.kind") == "onnx":
            get_model(scenario.to_dict())  # training is not part of a run's cost
        t0, c0 = time.perf_counter(), time.process_time()
        engine.run(scenario, seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"case": name, "hospitals": scenario.get("hospitals.count"),
                     "days": scenario.get("scenario.horizon_days"), "model": scenario.get("model.kind"),
                     "wall_s": wall, "cpu_s": cpu, "cpu_hours_per_10k_runs": 10_000 * cpu / 3600})
        print(f"one run of {name}: {cpu:.2f} s CPU ({wall:.2f} s wall) -> 10,000 runs = "
              f"{rows[-1]['cpu_hours_per_10k_runs']:.1f} CPU-hours", flush=True)
    return rows


def combine(phases: list[dict]) -> dict:
    """Sum the sweeps of one worker count (ABBA order cancels a linear drift in the machine's load)."""
    if len(phases) == 1:
        return phases[0]
    keys = ("runs", "failed", "wall_s", "own_s", "own_cpu_s", "startup_s")
    tot = {k: sum(p[k] for p in phases) for k in keys}
    w = phases[0]["workers"]
    wall_after = tot["wall_s"] - tot["startup_s"]
    return tot | {"workers": w, "own_per_run_s": tot["own_s"] / tot["runs"],
                  "cpu_per_run_s": tot["own_cpu_s"] / tot["runs"],
                  "overhead": (tot["wall_s"] * w - tot["own_s"]) / tot["own_s"],
                  "overhead_after_startup": (wall_after * w - tot["own_s"]) / tot["own_s"],
                  "parent_cpu_ms_per_run": sum(p["parent_cpu_ms_per_run"] * p["runs"] for p in phases)
                  / tot["runs"],
                  "assemble_s": max(p["assemble_s"] for p in phases)}


def parent_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(spec, base, design, out: Path, workers: int) -> dict:
    cpu0 = parent_cpu()
    stats = run_sweep(spec, base, design, out, workers=workers, progress=False)
    cpu = parent_cpu() - cpu0
    t0 = time.perf_counter()
    assemble(spec, design, out, figures=False)
    assemble_s = time.perf_counter() - t0
    n = stats.ran
    wall_after = stats.wall_seconds - stats.startup_seconds
    return {"workers": workers, "runs": n, "failed": stats.failed, "wall_s": stats.wall_seconds,
            "own_s": stats.run_seconds, "own_per_run_s": stats.run_seconds / n,
            "own_cpu_s": stats.run_cpu_seconds, "cpu_per_run_s": stats.run_cpu_seconds / n,
            "overhead": (stats.wall_seconds * workers - stats.run_seconds) / stats.run_seconds,
            "startup_s": stats.startup_seconds,
            "overhead_after_startup": (wall_after * workers - stats.run_seconds) / stats.run_seconds,
            "parent_cpu_ms_per_run": 1000 * cpu / n, "assemble_s": assemble_s,
            "loadavg_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.bench_sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="at least this many runs (default 200)")
    ap.add_argument("--horizon-days", type=int, default=28, help="simulated days per run (default 28)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trivial-runs", type=int, default=5000,
                    help="zero-work runs: the runner's own per-run cost and memory (0: skip)")
    ap.add_argument("--abba", action=argparse.BooleanOptionalAction, default=True,
                    help="run 1, N, N, 1 workers and sum per worker count (cancels drifting background load)")
    ap.add_argument("--run-costs", action="store_true",
                    help="also time one run of each example spec (first point) for the cost table")
    ap.add_argument("--full", action="store_true", help="with --run-costs, also one full SPOT run (minutes)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench-sweep")
    args = ap.parse_args(argv)
    costs = run_costs(args.full) if args.run_costs else []
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        spec_path = tmp / "bench_sweep.toml"
        spec_path.write_text(spec_text(args.runs, args.horizon_days))
        spec, base = parse_spec(spec_path)
        design = build_design(spec)
        get_model(base.to_dict())  # train + register outside the timed sweeps (workers load it)
        load0 = os.getloadavg()[0]
        order = [1, args.workers, args.workers, 1] if args.abba else [1, args.workers]
        phases = [one(spec, base, design, tmp / f"phase{i}-w{w}", w) for i, w in enumerate(order)]
        res1 = combine([p for p in phases if p["workers"] == 1])
        resn = combine([p for p in phases if p["workers"] == args.workers])
        frames = [pd.read_parquet(tmp / f"phase{i}-w{w}" / "runs.parquet") for i, w in enumerate(order)]
        same = all(f.equals(frames[0]) for f in frames[1:])
        cost = runner_cost(args.trivial_runs, args.workers, tmp) if args.trivial_runs else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    speedup = res1["wall_s"] / resn["wall_s"]
    per_run = (res1["own_s"] + resn["own_s"]) / (res1["runs"] + resn["runs"])
    cpu_per_run = (res1["own_cpu_s"] + resn["own_cpu_s"]) / (res1["runs"] + resn["runs"])
    result = {
        "benchmark": "sweep", "schema_version": 1, "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_before": load0,
        "horizon_days": args.horizon_days, "order": order, "phases": phases, "results": [res1, resn],
        "speedup": speedup,
        "identical_frames": bool(same), "worker_hours_per_10k_runs": 10_000 * per_run / 3600,
        "worker_hours_per_10k_runs_incl_overhead": 10_000 * per_run * (1 + resn["overhead"]) / 3600,
        "cpu_hours_per_10k_runs": 10_000 * cpu_per_run / 3600,
        "runner_cost_zero_work_runs": cost, "run_costs": costs,
    }
    print(f"{'workers':>7} {'runs':>5} {'wall s':>8} {'own s':>8} {'own/run s':>9} {'overhead':>9} "
          f"{'startup s':>9} {'after su':>9} {'parent ms/run':>13}")
    for r in (res1, resn):
        print(f"{r['workers']:>7} {r['runs']:>5} {r['wall_s']:>8.1f} {r['own_s']:>8.1f} "
              f"{r['own_per_run_s']:>9.3f} {r['overhead']:>8.1%} {r['startup_s']:>9.1f} "
              f"{r['overhead_after_startup']:>8.1%} {r['parent_cpu_ms_per_run']:>13.2f}")
    share = {r["workers"]: r["own_cpu_s"] / r["wall_s"] for r in (res1, resn)}
    result["cores_used"] = share
    print(f"cores the sweep actually got (runs' CPU time / wall): {share[1]:.2f} on 1 worker, "
          f"{share[args.workers]:.2f} on {args.workers} "
          "(a speedup needs idle cores: compare with the load average)")
    print(f"speedup {args.workers} vs 1 worker: {speedup:.2f}x (target >= 1.7x); runner overhead "
          f"{res1['overhead']:.1%} (1 worker), {resn['overhead']:.1%} ({args.workers} workers) "
          "(target <= 5%); "
          f"frames identical: {same}; 10,000 runs of this size: {result['worker_hours_per_10k_runs']:.2f} "
          f"worker-hours ({result['cpu_hours_per_10k_runs']:.2f} CPU-hours); "
          f"load average before {load0:.2f} on {os.cpu_count()} CPUs")
    if cost:
        print(f"runner's own cost ({cost['runs']} zero-work runs on {cost['workers']} workers): "
              f"{cost['ms_per_run']:.2f} ms per run after {cost['startup_s']:.1f} s start-up; parent RSS "
              + ", ".join(f"{v:.0f} MB at {k.rsplit('_', 1)[1]} runs" for k, v in cost.items() if "rss" in k))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
