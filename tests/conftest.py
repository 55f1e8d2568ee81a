"""Shared fixtures: small scenarios and cached runs (the sepsis model trains once per registry)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from sim.engine import RunResult, run
from sim.scenario import Scenario, apply_overrides, load_scenario

ROOT = Path(__file__).resolve().parent.parent
#: the tests' small scenario files
SCENARIOS = ROOT / "tests" / "scenarios"
TINY = SCENARIOS / "sepsis_tiny.toml"

#: the tiny sepsis scenario's seed-1 headline and KPI sum, pinned: a change that moves them changes
#: behaviour (the layout moves and default options must not)
PINNED = {
    "sepsis_mortality_relative_reduction": 0.23782639902714275,
    "sepsis_mortality_relative_reduction_wave_2": 0.23498037772238545,
    "lives_saved_per_year": 111.59451124344838,
    "alert_ppv": 0.13820090274127614,
    "act_rate": 0.895282138068012,
    "physionet_utility": 0.48653619449179386,
    "monitor_alarms": 2.0,
}
# live_days is recorded at midday since the engine stopped losing the horizon's last day: +2 site-days
PINNED_KPI_SUM = 444719.8012760126


@cache
def tiny() -> Scenario:
    return load_scenario(TINY)


def tiny_with(**overrides: object) -> Scenario:
    """The tiny scenario with dotted overrides; pass keys with '__' for '.' (e.g. model__threshold=0.2)."""
    return apply_overrides(tiny(), {k.replace("__", "."): v for k, v in overrides.items()})


@cache
def tiny_run(seed: int = 1) -> RunResult:
    return run(tiny(), seed)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
