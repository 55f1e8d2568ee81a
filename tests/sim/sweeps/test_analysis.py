"""Sweep analysis against closed forms (Sobol indices, Morris effects, t intervals) and part storage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from sim.sweeps.analysis import ci95, sensitivity, summarise
from sim.sweeps.runner import Job, Outcome, Task, execute, finished_runs, pool_outcomes, write_part
from sim.sweeps.spec import build_design, parse_spec
from tests.conftest import ROOT

BASE = (ROOT / "scenarios" / "sepsis_spot.toml").as_posix()
BOUNDS = {"model.threshold": (0.1, 0.5), "adoption.act_logit_base": (-1.0, 3.0),
          "treatment.mortality_odds_per_hour": (1.0, 1.5)}


def sampled_spec(tmp_path: Path, design: str, samples: int, reps: int = 1):
    axes = "".join(f'[[axis]]\nparam = "{p}"\nlow = {lo}\nhigh = {hi}\n' for p, (lo, hi) in BOUNDS.items())
    path = tmp_path / "s.toml"
    path.write_text(f'[sweep]\nname = "s"\nbase = "{BASE}"\nroot_seed = 3\nreplications = {reps}\n'
                    f'design = "{design}"\nsamples = {samples}\n{axes}')
    spec, _ = parse_spec(path)
    return spec, build_design(spec)


def synthetic_runs(design, f, reps: int = 1, noise: float = 0.0) -> pd.DataFrame:
    """Runs frame of KPI 'y' = f(u) with u the unit-scaled parameters (+ optional noise per replication)."""
    lows = np.array([b[0] for b in BOUNDS.values()])
    spans = np.array([b[1] - b[0] for b in BOUNDS.values()])
    u = (np.array(design.points, dtype=float) - lows) / spans
    y = f(u)
    gen = np.random.default_rng(0)
    rows = [{"point": p, "rep": r, "kpi": "y", "value": y[p] + noise * gen.standard_normal()}
            for p in range(len(y)) for r in range(reps)]
    return pd.DataFrame(rows)


def test_sobol_indices_match_the_closed_form(tmp_path: Path) -> None:
    # y = u0 * u1 with u ~ U(0, 1): S1 = 3/7 and ST = 4/7 for both; the third parameter is inert
    spec, design = sampled_spec(tmp_path, "sobol", 1024)
    runs = synthetic_runs(design, lambda u: u[:, 0] * u[:, 1])
    sens, caveats = sensitivity(spec, design, runs, np.random.default_rng(1), n_boot=200)
    s = sens.set_index("param")
    for p in ("model.threshold", "adoption.act_logit_base"):
        assert s.loc[p, "S1"] == pytest.approx(3 / 7, abs=0.06)
        assert s.loc[p, "ST"] == pytest.approx(4 / 7, abs=0.06)
        assert s.loc[p, "S1_ci_low"] < 3 / 7 < s.loc[p, "S1_ci_high"] + 0.02
    inert = s.loc["treatment.mortality_odds_per_hour"]
    assert abs(inert["S1"]) < 0.02 and inert["ST"] < 1e-12
    assert "N = 1024" in caveats and "negative" in caveats


def test_morris_mu_star_is_the_slope_of_a_linear_model(tmp_path: Path) -> None:
    spec, design = sampled_spec(tmp_path, "morris", 6)
    runs = synthetic_runs(design, lambda u: 3.0 * u[:, 0] - 1.0 * u[:, 1])
    sens, _ = sensitivity(spec, design, runs, np.random.default_rng(1), n_boot=100)
    s = sens.set_index("param")
    assert s["mu_star"].to_numpy() == pytest.approx([3.0, 1.0, 0.0], abs=1e-6)
    assert s["mu"].to_numpy() == pytest.approx([3.0, -1.0, 0.0], abs=1e-6)
    assert s["sigma"].to_numpy() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)


def test_summary_ci_is_the_student_t_interval(tmp_path: Path) -> None:
    _, design = sampled_spec(tmp_path, "lhs", 3)
    runs = synthetic_runs(design, lambda u: u[:, 0], reps=5, noise=1.0)
    for p in BOUNDS:
        runs[p] = runs["point"].map({i: pt[list(BOUNDS).index(p)] for i, pt in enumerate(design.points)})
    summary = summarise(runs, list(BOUNDS))
    v = runs[runs["point"] == 1]["value"].to_numpy()
    half = stats.t.ppf(0.975, 4) * v.std(ddof=1) / np.sqrt(5)
    row = summary[summary["point"] == 1].iloc[0]
    assert row["n"] == 5 and row["mean"] == pytest.approx(v.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((v.mean() - half, v.mean() + half))
    assert np.isnan(ci95(pd.Series([1.0]))[1])


def boom(job: Job, overrides: dict, seed: int) -> dict[str, float]:
    if overrides["x"] == 1:
        raise ValueError(f"no good at x = 1 (seed {seed})")
    return {"k": float(overrides["x"] * seed), "other": 0.0}


def test_a_run_that_raises_is_recorded_and_a_retry_replaces_it(tmp_path: Path) -> None:
    job = Job({}, "test", ("k",), target=f"{__name__}:boom")
    parts = tmp_path / "parts"
    parts.mkdir()
    bad = execute(job, Task(1, 0, 5, (("x", 1),)))
    assert bad.status == "error" and bad.error == "ValueError: no good at x = 1 (seed 5)"
    good = execute(job, Task(2, 0, 5, (("x", 2),)))
    assert good.status == "ok" and good.kpis == {"k": 10.0}  # only the spec's KPIs are kept
    write_part(parts, bad)
    write_part(parts, good)
    (parts / ".tmp-123-p000003-r0000.parquet").write_bytes(b"half a file")  # an interrupted write
    assert finished_runs(parts) == {"p000001-r0000", "p000002-r0000"}
    assert not (parts / ".tmp-123-p000003-r0000.parquet").exists()
    assert finished_runs(parts, include_failed=False) == {"p000002-r0000"}
    err = pq.read_table(parts / "p000001-r0000.error.parquet").to_pylist()
    assert err[0]["status"] == "error" and "x = 1" in err[0]["error"]
    write_part(parts, Outcome(bad.task, "ok", "", {"k": 1.0}))  # a successful retry replaces the error part
    assert sorted(p.name for p in parts.iterdir()) == ["p000001-r0000.parquet", "p000002-r0000.parquet"]


def test_an_unknown_kpi_stops_the_sweep_with_the_available_names() -> None:
    out = execute(Job({}, "test", ("k", "nope"), target=f"{__name__}:boom"), Task(2, 0, 5, (("x", 2),)))
    assert out.fatal and out.error.startswith("sweep.kpis: 'nope' is not a headline KPI; available: k, other")


def crash(job: Job, overrides: dict, seed: int) -> dict[str, float]:
    if overrides["x"] == 1:
        os._exit(3)  # the worker process dies, as on out-of-memory or a segfault in native code
    return {"k": float(overrides["x"])}


def test_a_run_that_kills_its_worker_is_blamed_alone_and_the_rest_complete() -> None:
    job = Job({}, "test", (), target=f"{__name__}:crash")
    tasks = [Task(p, 0, 1, (("x", p),)) for p in range(5)]
    outcomes = {o.task.point: o for o in pool_outcomes(job, tasks, workers=2)}
    assert sorted(outcomes) == list(range(5))
    assert outcomes[1].status == "error" and "worker process died" in outcomes[1].error
    assert all(outcomes[p].status == "ok" and outcomes[p].kpis == {"k": float(p)} for p in (0, 2, 3, 4))
