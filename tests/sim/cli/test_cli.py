"""The purgatory command line: outputs of `run`, and one-line errors for bad scenario files and flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, TINY

PURGATORY = [sys.executable, "-m", "sim.cli"]


def _run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PURGATORY, *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )


def test_run_writes_results_summary_and_figures(tmp_path) -> None:
    out = tmp_path / "res"
    proc = _run(["run", str(TINY), "--seeds", "2", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "sepsis_mortality_relative_reduction" in proc.stdout
    for name in (
        "kpis.parquet",
        "events.parquet",
        "summary.json",
        "mortality_by_week.png",
        "adoption_by_wave.png",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    meta = summary["meta"]
    for key in ("schema_version", "package_version", "git_commit", "scenario_hash", "seeds", "root_seed"):
        assert key in meta
    assert len(meta["seeds"]) == 2
    for kpi in ("sepsis_mortality_relative_reduction", "lives_saved_per_year", "physionet_utility"):
        h = summary["headline"][kpi]
        assert h["n"] == 2 and h["ci_low"] <= h["mean"] <= h["ci_high"]
    kpis = pd.read_parquet(out / "kpis.parquet")
    assert {"run_id", "seed", "site", "wave", "period", "kpi", "value"} <= set(kpis.columns)
    assert kpis["seed"].nunique() == 2
    # same scenario and seeds again: identical KPI frame
    proc2 = _run(["run", str(TINY), "--seeds", "2", "--out", str(tmp_path / "again"), "--quiet"])
    assert proc2.returncode == 0, proc2.stderr
    pd.testing.assert_frame_equal(kpis, pd.read_parquet(tmp_path / "again" / "kpis.parquet"))


BAD = [
    ("[hospitals]\ncolour = 'red'\n", "hospitals.colour", "unknown key"),
    ("[hospitals]\ncount = 'many'\n", "hospitals.count", "must be an integer"),
    ("[treatment]\nmortality_odds_per_hour = 3.0\n", "treatment.mortality_odds_per_hour", "<= 1.5"),
    ("[model]\nthreshold = -0.1\n", "model.threshold", ">= 0"),
    ("[rollout]\nwaves = [2, 3]\n", "rollout.waves", "must add up to the number of sites"),
    ("[[drift]]\nparam = 'weather'\nmagnitude = 1.0\n", "drift[0].param", "unknown parameter"),
    ("[monitor]\non_alarm = 'panic'\n", "monitor.on_alarm", "one of"),
    ("[scenario\n", "<toml>", "valid TOML"),
]


@pytest.mark.parametrize(("body", "key", "allowed"), BAD)
def test_bad_scenario_gives_one_line_exit_2_and_writes_nothing(tmp_path, body, key, allowed) -> None:
    bad = tmp_path / "bad.toml"
    header = f'[scenario]\nextends = "{TINY}"\nname = "bad"\n'
    bad.write_text(body if body.startswith("[scenario") else header + body)
    out = tmp_path / "out"
    proc = _run(["run", str(bad), "--out", str(out)])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(bad) in lines[0] and key in lines[0] and allowed in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "missing.toml"], "file not found"),
        (["run", str(TINY), "--seeds", "0"], "--seeds"),
        (["run", str(TINY), "--seeds", "lots"], "--seeds"),
        (["run"], "scenario"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(args, needle) -> None:
    proc = _run(args)
    assert proc.returncode == 2
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
