"""Real sweeps of the real engine on a tiny sepsis system: pool vs Dask over TCP, kill + resume, failures.

Every sweep here runs ``scenarios/sweeps/tiny.toml`` (4 points x 2 replications of a 2-hospital, 21-day
SPOT system); the uninterrupted 2-worker process-pool sweep is the reference frame.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from models.registry import Registry
from sim import cli
from sim.domains.sepsis.model import get_model
from sim.sweeps.analysis import assemble
from sim.sweeps.runner import Job, run_engine
from sim.sweeps.session import run_sweep
from sim.sweeps.spec import build_design, parse_spec
from tests.conftest import ROOT

TINY = ROOT / "scenarios" / "sweeps" / "tiny.toml"
N_RUNS = 8
QUIET = ["--no-progress", "--no-figures"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A fresh model registry for the workers of this module (they inherit the environment)."""
    old = os.environ.get("PURGATORY_REGISTRY")
    root = tmp_path_factory.mktemp("registry")
    os.environ["PURGATORY_REGISTRY"] = str(root)
    get_model(parse_spec(TINY)[1].to_dict(), Registry(root))  # train once here, not in every worker
    yield os.environ["PURGATORY_REGISTRY"]
    if old is None:
        os.environ.pop("PURGATORY_REGISTRY", None)
    else:
        os.environ["PURGATORY_REGISTRY"] = old


@pytest.fixture(scope="module")
def reference(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pool") / "sweep"
    assert cli.main(["sweep", str(TINY), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    return out


def frame(out: Path, name: str = "runs.parquet") -> pd.DataFrame:
    return pd.read_parquet(out / name)


def test_pool_sweep_writes_tidy_runs_summary_and_figures(reference: Path) -> None:
    runs = frame(reference)
    assert list(runs.columns) == ["point", "rep", "seed", "model.threshold", "adoption.act_logit_base", "kpi",
                                  "value"]
    assert len(runs) == N_RUNS * 3 and runs[["point", "rep"]].drop_duplicates().shape[0] == N_RUNS
    spec, _ = parse_spec(TINY)
    assert sorted(runs["seed"].unique()) == sorted(spec.seeds)
    summary = frame(reference, "summary.parquet")
    assert len(summary) == 4 * 3 and (summary["n"] == 2).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    # lowering the alert threshold raises alerts and lowers their precision, at every adoption level
    ppv = summary[summary["kpi"] == "alert_ppv"].set_index(["model.threshold", "adoption.act_logit_base"])
    ppv = ppv["mean"]
    assert all(ppv[(0.2, a)] < ppv[(0.4, a)] for a in (0.0, 2.0))
    assert sorted(p.name for p in (reference / "figures").iterdir()) == [
        "act_rate.png", "alert_ppv.png", "lives_saved_per_year.png"]
    assert (reference / "sensitivity.parquet").exists()
    assert "Spearman" in (reference / "sensitivity.md").read_text()


def test_dask_local_cluster_over_tcp_gives_the_same_frame(reference: Path, tmp_path: Path) -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tcp",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "dask"
        assert cli.main(["sweep", str(TINY), "--scheduler", address, "--out", str(out), *QUIET]) == 0
    pd.testing.assert_frame_equal(frame(out), frame(reference), check_exact=True)
    pd.testing.assert_frame_equal(frame(out, "summary.parquet"), frame(reference, "summary.parquet"),
                                  check_exact=True)


def snapshot(parts: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in parts.iterdir() if not p.name.startswith(".tmp-")}


def test_killed_sweep_resumes_without_redoing_or_losing_runs(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    parts = out / "parts"
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(TINY), "--workers", "1", "--out", str(out), *QUIET]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if parts.exists() and len([p for p in os.listdir(parts) if not p.startswith(".tmp-")]) >= 2:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool worker, mid-sweep
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = snapshot(parts)
    assert 2 <= len(before) < N_RUNS, "the sweep must be killed half-way for this test to mean anything"
    assert not (out / "runs.parquet").exists()

    assert cli.main(["sweep", str(TINY), "--workers", "2", "--out", str(out), "--resume", *QUIET]) == 0
    after = snapshot(parts)
    assert {k: after[k] for k in before} == before  # finished runs were neither redone nor rewritten
    assert len(after) == N_RUNS
    manifest = pd.read_json(out / "manifest.json", typ="series")
    assert manifest["status"] == "complete"
    last = manifest["sessions"][-1]
    assert (last["skipped"], last["ran"], last["resume"]) == (len(before), N_RUNS - len(before), True)
    pd.testing.assert_frame_equal(frame(out), frame(reference), check_exact=True)
    # without --resume the folder is refused rather than mixed with a second sweep
    assert cli.main(["sweep", str(TINY), "--out", str(out), *QUIET]) == 2


def flaky(job: Job, overrides: dict, seed: int) -> dict[str, float]:
    """The real engine, except that one (point, seed) raises, as a crashing model or bad data would."""
    if overrides["model.threshold"] == 0.4 and overrides["adoption.act_logit_base"] == 2.0 and seed % 2:
        raise RuntimeError("feed outage: vitals table missing")
    return run_engine(job, overrides, seed)


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(reference: Path, tmp_path: Path) -> None:
    spec, base = parse_spec(TINY)
    design = build_design(spec)
    odd = [r for r, s in enumerate(spec.seeds) if s % 2]
    assert odd, "the test needs a replication with an odd seed"
    out = tmp_path / "flaky"
    stats = run_sweep(spec, base, design, out, workers=2, progress=False, target=f"{__name__}:flaky")
    assemble(spec, design, out, figures=False)
    assert (stats.ran, stats.failed) == (N_RUNS, len(odd))
    failures = frame(out, "failures.parquet")
    assert list(failures["point"]) == [3] * len(odd) and list(failures["rep"]) == odd
    assert (failures["error"] == "RuntimeError: feed outage: vitals table missing").all()
    ref = frame(reference)
    ok = ~((ref["point"] == 3) & ref["rep"].isin(odd))
    pd.testing.assert_frame_equal(frame(out), ref[ok].reset_index(drop=True), check_exact=True)
    # --resume --retry-failed runs only the failed ones again (here with the real target): the full frame
    stats = run_sweep(spec, base, design, out, workers=1, resume=True, retry_failed=True, progress=False)
    assemble(spec, design, out, figures=False)
    assert (stats.skipped, stats.ran, stats.failed) == (N_RUNS - len(odd), len(odd), 0)
    pd.testing.assert_frame_equal(frame(out), ref, check_exact=True)
    assert len(frame(out, "failures.parquet")) == 0
