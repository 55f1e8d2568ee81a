"""What the full-scale benchmarks share: time a run and its onnxruntime calls, a same-run baseline, a report.

A run's wall time is set beside the time onnxruntime needs to score the same number of rows in large
in-memory batches, measured in the same process right after (the floor for the model's share); the ratio is
what the report states, since these machines are noisy. Results go to ``results/bench/<name>.json``
(written atomically) with the machine they ran on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from models.scorer import OnnxScorer
from sim.engine import RunResult, run
from sim.scenario import Scenario

#: the wall-time goal of a full-scale run on 2 cores (seconds)
TARGET_S = 60.0


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


def run_with_timed_scorers(
    module, scenario: Scenario, seed: int
) -> tuple[RunResult, float, list[TimedScorer]]:
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


def report_row(
    scenario: Scenario, seed: int, wall: float, timed: list[TimedScorer], baseline_s: float
) -> dict:
    """The fields every full-scale row has: wall time against the target, onnxruntime's share, baseline."""
    rows, onnx_s = sum(t.rows for t in timed), sum(t.seconds for t in timed)
    return {
        "scenario": scenario.name,
        "seed": seed,
        "days": scenario.get("scenario.horizon_days"),
        "wall_s": round(wall, 2),
        "target_s": TARGET_S,
        "within_target": wall < TARGET_S,
        "onnx_rows": rows,
        "onnx_calls": sum(t.calls for t in timed),
        "onnx_s": round(onnx_s, 2),
        "onnx_share_of_wall": round(onnx_s / wall, 3),
        "baseline_big_batch_onnx_s": round(baseline_s, 2),
        "ratio_run_wall_to_big_batch_scoring": round(wall / baseline_s, 2),
    }


def machine() -> dict:
    """The machine a benchmark ran on, and how busy it was (1-minute load average)."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def write_report(name: str, doc: dict, out_dir: Path = Path("results/bench")) -> Path:
    """Write ``doc`` plus the machine to ``out_dir/<name>.json`` atomically, print it, return the path."""
    doc = {**doc, "machine": machine()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)
    print(json.dumps(doc, indent=2))
    return path
