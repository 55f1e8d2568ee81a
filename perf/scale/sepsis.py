"""Full-scale sepsis run: 172 hospitals, one simulated year, on this machine.

    python -m perf.scale.sepsis [--scenario scenarios/sepsis_spot.toml] [--seed 1]

Reports the wall time of one full-scale run (target: under 60 s on 2 cores), how much of it is onnxruntime
scoring, the rows scored and simulated patient-hours, and, as a same-run baseline, the time onnxruntime needs
to score the same number of rows in large in-memory batches (the floor for the model's share). Writes
results/bench/sepsis_scale.json.
"""

from __future__ import annotations

import argparse

import sim.domains.sepsis as dom
from models.scorer import OnnxScorer
from perf.scale.timing import big_batch_seconds, report_row, run_with_timed_scorers, write_report
from sim.domains.sepsis.model import get_model
from sim.scenario import load_scenario


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/sepsis_spot.toml")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    sc = load_scenario(args.scenario)
    entry = get_model(sc.to_dict())  # warm-up: train / load the model outside the timed run
    result, wall, timed = run_with_timed_scorers(dom, sc, args.seed)
    base = OnnxScorer(entry.onnx_path, threads=sc.get("model.threads"))
    floor = big_batch_seconds(base, timed[0].rows, scale=10.0, shift=50.0)
    hosp_days = sc.get("hospitals.count") * sc.get("scenario.horizon_days")
    write_report("sepsis_scale", {
        **report_row(sc, args.seed, wall, timed, floor),
        "hospitals": sc.get("hospitals.count"),
        "hospital_days_per_s": round(hosp_days / wall, 1),
        "septic_cases": result.headline["live_septic_cases"],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
