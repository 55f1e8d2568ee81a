"""Workshops as SimPy resources: dealer service bays (vans) or maintenance crews (machines).

Each site has one ``simpy.PriorityResource`` per arm (the world with the alert path and the same world
without it), with ``capacity`` parallel jobs. Breakdowns (priority 0) go before planned jobs (priority 1).
Durations are gamma-distributed with the configured mean and a coefficient of variation of 0.5; breakdown
durations are drawn per unit and failure count (``World.bd_factor``) so both arms share them.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.schema import Rule

SERVICE = {
    "capacity_per_100_units": Rule(
        "float",
        2.0,
        min=0.01,
        max=100,
        doc="parallel jobs (bays / crews) per 100 units at a site, at least 1",
    ),
    "breakdown_wait_hours": Rule(
        "float", 24.0, min=0, doc="failure to start of repair: recovery, diagnosis, parts"
    ),
    "breakdown_repair_hours": Rule(
        "float", 48.0, min=0.1, doc="repair of a failed unit (holds a bay / crew)"
    ),
    "sudden_repair_scale": Rule(
        "float", 0.6, min=0.01, max=10, doc="sudden failures' repair time multiplier"
    ),
    "planned_lead_hours": Rule(
        "float", 48.0, min=0, doc="alert acted on -> booked visit (unit keeps running)"
    ),
    "planned_repair_hours": Rule("float", 8.0, min=0.1, doc="planned replacement / inspection, parts staged"),
    "inspect_window_days": Rule(
        "float", 30.0, min=0, doc="at a visit, the part is replaced if its RUL <= this"
    ),
    "source": Rule("str", ""),
}

SHAPE = 4.0  # gamma shape: coefficient of variation 0.5


class Workshops:
    """Per-arm, per-site priority resources and the random durations of jobs."""

    def __init__(self, env: simpy.Environment, capacity: np.ndarray, cfg: dict, rng: np.random.Generator):
        self.cfg = cfg
        self.capacity = capacity
        self.res = [[simpy.PriorityResource(env, capacity=int(c)) for c in capacity] for _ in range(2)]
        self.rng = rng

    def duration(self, mean_hours: float) -> float:
        """A gamma-distributed duration (hours) of a planned job (arm 0 only)."""
        return float(self.rng.gamma(SHAPE, mean_hours / SHAPE)) if mean_hours > 0 else 0.0

    def queue_length(self, arm: int) -> np.ndarray:
        return np.array([len(r.queue) for r in self.res[arm]], dtype=float)


def capacity_for(units_per_site: np.ndarray, per_100: float) -> np.ndarray:
    """Parallel jobs per site: ``per_100`` per 100 units, at least 1."""
    return np.maximum(1, np.round(units_per_site * per_100 / 100.0)).astype(int)
