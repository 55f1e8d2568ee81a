"""Shared fixtures: small scenarios and cached runs (the sepsis model trains once per registry)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from sim.engine import RunResult, run
from sim.scenario import Scenario, apply_overrides, load_scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "scenarios" / "sepsis_tiny.toml"


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
