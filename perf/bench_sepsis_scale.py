"""Full-scale sepsis run: 172 hospitals, one simulated year, on this machine.

    python -m perf.bench_sepsis_scale [--scenario scenarios/sepsis_spot.toml] [--seed 1]

Reports the wall time of one full-scale run (target: under 60 s on 2 cores), how much of it is onnxruntime
scoring, the rows scored and simulated patient-hours, and, as a same-run baseline, the time onnxruntime needs
to score the same number of rows in large in-memory batches (the floor for the model's share). Writes
results/bench/sepsis_scale.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from models.scorer import OnnxScorer
from sim.engine import run
from sim.scenario import load_scenario


class TimedScorer:
    """Wraps a scorer to count rows and time spent in onnxruntime."""

    def __init__(self, inner: OnnxScorer):
        self.inner, self.rows, self.seconds, self.calls = inner, 0, 0.0, 0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.predict_proba(X)
        self.seconds += time.perf_counter() - t0
        self.rows += len(X)
        self.calls += 1
        return out


def run_with_timed_scorers(module, scenario, seed: int) -> tuple[object, float, list[TimedScorer]]:
    """Run ``scenario`` with every ``module.OnnxScorer`` the domain creates wrapped in a TimedScorer.

    Returns (RunResult, wall seconds, the timed scorers).
    """
    timed: list[TimedScorer] = []
    original = module.OnnxScorer

    def factory(*a, **k):
        s = TimedScorer(original(*a, **k))
        timed.append(s)
        return s

    module.OnnxScorer = factory
    try:
        t0 = time.perf_counter()
        result = run(scenario, seed)
        wall = time.perf_counter() - t0
    finally:
        module.OnnxScorer = original
    return result, wall, timed


def big_batch_seconds(scorer: OnnxScorer, rows: int, scale: float = 1.0, shift: float = 0.0) -> float:
    """Seconds for ``scorer`` to score ``rows`` rows in 256k-row in-memory batches (the same-run baseline)."""
    X = np.random.default_rng(0).normal(size=(262_144, scorer.n_features)) * scale + shift
    X = X.astype(np.float32)
    t0 = time.perf_counter()
    done = 0
    while done < rows:
        m = min(len(X), rows - done)
        scorer.predict_proba(X[:m])
        done += m
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/sepsis_spot.toml")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    sc = load_scenario(args.scenario)
    # warm-up: train / load the model outside the timed run
    from sim.domains.sepsis.model import get_model  # noqa: PLC0415

    entry = get_model(sc.to_dict())

    import sim.domains.sepsis as dom  # noqa: PLC0415

    result, wall, timed = run_with_timed_scorers(dom, sc, args.seed)
    ts = timed[0]
    base = OnnxScorer(entry.onnx_path, threads=sc.get("model.threads"))
    floor = big_batch_seconds(base, ts.rows, scale=10.0, shift=50.0)
    hosp_days = sc.get("hospitals.count") * sc.get("scenario.horizon_days")
    out = {
        "scenario": sc.name,
        "seed": args.seed,
        "hospitals": sc.get("hospitals.count"),
        "days": sc.get("scenario.horizon_days"),
        "wall_s": round(wall, 2),
        "target_s": 60.0,
        "within_target": wall < 60.0,
        "onnx_rows": ts.rows,
        "onnx_calls": ts.calls,
        "onnx_s": round(ts.seconds, 2),
        "onnx_share_of_wall": round(ts.seconds / wall, 3),
        "baseline_big_batch_onnx_s": round(floor, 2),
        "ratio_run_wall_to_big_batch_scoring": round(wall / floor, 2),
        "hospital_days_per_s": round(hosp_days / wall, 1),
        "septic_cases": result.headline["live_septic_cases"],
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
    }
    path = Path("results/bench/sepsis_scale.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
