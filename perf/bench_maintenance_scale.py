"""Full-scale maintenance runs: a Ford fleet-year and a full manufacturer rollout, on this machine.

    python -m perf.bench_maintenance_scale [--fleet scenarios/ford_transit_fixed.toml]
        [--plant scenarios/plant_rollout.toml] [--seed 1]

For each run: wall time (target: under 60 s on 2 cores), the share spent in onnxruntime, rows scored and
unit-days simulated, and, as a same-run baseline, the time onnxruntime needs to score the same number of rows
in large in-memory batches (the floor for the model's share). Models are trained / loaded before timing.
Writes results/bench/maintenance_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import sim.domains.fleet as fleet_dom
import sim.domains.plant as plant_dom
from perf.bench_sepsis_scale import big_batch_seconds, run_with_timed_scorers
from sim.engine import run
from sim.scenario import apply_overrides, load_scenario


def timed_run(path: str, seed: int, module) -> dict:
    sc = load_scenario(path)
    # warm-up: train / load the models outside the timed run (a 1-day run builds every model)
    run(apply_overrides(sc, {"scenario.horizon_days": 1}), seed)
    result, wall, timed = run_with_timed_scorers(module, sc, seed)
    rows, onnx_s = sum(t.rows for t in timed), sum(t.seconds for t in timed)
    floor = big_batch_seconds(timed[0].inner, rows, scale=2.0)
    k = result.kpis
    unit_days = float(k[k["kpi"] == "unit_days"]["value"].sum())
    return {
        "scenario": sc.name,
        "seed": seed,
        "days": sc.get("scenario.horizon_days"),
        "wall_s": round(wall, 2),
        "target_s": 60.0,
        "within_target": wall < 60.0,
        "onnx_rows": rows,
        "onnx_calls": sum(t.calls for t in timed),
        "onnx_s": round(onnx_s, 2),
        "onnx_share_of_wall": round(onnx_s / wall, 3),
        "baseline_big_batch_onnx_s": round(floor, 2),
        "ratio_run_wall_to_big_batch_scoring": round(wall / floor, 2),
        "unit_days": unit_days,
        "unit_days_per_s": round(unit_days / wall, 1),
        "furthest_rollout_wave": result.headline["furthest_rollout_wave"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", default="scenarios/ford_transit_fixed.toml")
    ap.add_argument("--plant", default="scenarios/plant_rollout.toml")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    out = {
        "fleet_year": timed_run(args.fleet, args.seed, fleet_dom),
        "manufacturer_rollout": timed_run(args.plant, args.seed, plant_dom),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
    }
    path = Path("results/bench/maintenance_scale.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
