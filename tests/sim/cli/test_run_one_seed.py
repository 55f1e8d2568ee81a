"""``purgatory run --seeds 1`` for every scenario family: the summary and figures say "1 seed, no CI"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import main as purgatory
from tests.conftest import SCENARIOS

FAMILIES = {
    "sepsis_tiny": ("sepsis_mortality_relative_reduction", ["mortality_by_week.png", "adoption_by_wave.png"]),
    "fleet_tiny": ("failures_predicted_share", ["rollout_funnel.png", "downtime_by_site.png"]),
    "plant_tiny": ("unplanned_downtime_relative_reduction", ["rollout_funnel.png", "alerts_vs_actions.png"]),
    "sepsis_serving_tiny": ("serving_shed_share", ["mortality_by_week.png"]),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_one_seed_runs_end_to_end_and_says_it_has_no_ci(name: str, tmp_path: Path, capsys) -> None:
    kpi, figures = FAMILIES[name]
    out = tmp_path / name
    assert purgatory(["run", str(SCENARIOS / f"{name}.toml"), "--seeds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert kpi in printed and "1 seed, no CI" in printed
    summary = json.loads((out / "summary.json").read_text())
    h = summary["headline"][kpi]
    assert h["n"] == 1 and h["mean"] is not None and h["ci_low"] is None and h["ci_high"] is None
    for fig in figures:
        assert (out / fig).stat().st_size > 10_000, fig
