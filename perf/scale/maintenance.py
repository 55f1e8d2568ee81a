"""Full-scale maintenance runs: a Ford fleet-year and a full manufacturer rollout, on this machine.

    python -m perf.scale.maintenance [--fleet scenarios/ford_transit_fixed.toml]
        [--plant scenarios/plant_rollout.toml] [--seed 1]

For each run: wall time (target: under 60 s on 2 cores), the share spent in onnxruntime, rows scored and
unit-days simulated, and, as a same-run baseline, the time onnxruntime needs to score the same number of rows
in large in-memory batches (the floor for the model's share). Models are trained / loaded before timing.
Writes results/bench/maintenance_scale.json.
"""

from __future__ import annotations

import argparse

import sim.domains.fleet as fleet_dom
import sim.domains.plant as plant_dom
from perf.scale.timing import big_batch_seconds, report_row, run_with_timed_scorers, write_report
from sim.engine import run
from sim.scenario import apply_overrides, load_scenario


def timed_run(path: str, seed: int, module) -> dict:
    sc = load_scenario(path)
    # warm-up: train / load the models outside the timed run (a 1-day run builds every model)
    run(apply_overrides(sc, {"scenario.horizon_days": 1}), seed)
    result, wall, timed = run_with_timed_scorers(module, sc, seed)
    floor = big_batch_seconds(timed[0].inner, sum(t.rows for t in timed), scale=2.0)
    k = result.kpis
    unit_days = float(k[k["kpi"] == "unit_days"]["value"].sum())
    return {
        **report_row(sc, seed, wall, timed, floor),
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
    write_report("maintenance_scale", {
        "fleet_year": timed_run(args.fleet, args.seed, fleet_dom),
        "manufacturer_rollout": timed_run(args.plant, args.seed, plant_dom),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
