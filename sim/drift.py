"""Drift schedules, declared as data in ``[[drift]]`` entries and applied to a domain's generator parameters.

Each entry shifts one parameter that the domain lists in ``DRIFTABLE`` (covariate shift: a vital-sign
offset; prior shift: an incidence; concept shift: how a latent state maps to outcomes; data faults: missing
rate, stuck sensor) at a chosen set of sites:

- ``sudden``: full magnitude from ``start_day``;
- ``incremental``: magnitude ramps linearly from 0 at ``start_day`` to full at ``end_day``;
- ``gradual``: each tick a site is in the new regime with a probability that ramps from 0 to 1 between
  ``start_day`` and ``end_day`` (the two regimes alternate before the new one settles);
- ``recurring``: full magnitude for ``duration_days`` every ``period_days`` from ``start_day``.

``op = "add"`` adds the magnitude, ``op = "mul"`` multiplies by ``1 + magnitude``. Entries compose in file
order. Every change point goes to the event log as ``drift_start`` / ``drift_end``.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import numpy as np

from sim.errors import ScenarioError
from sim.schema import Rule

ITEM_SCHEMA: dict[str, Rule] = {
    "param": Rule("str", doc="a generator parameter the domain lists as driftable"),
    "kind": Rule("str", "sudden", choices=("sudden", "gradual", "incremental", "recurring")),
    "op": Rule("str", "add", choices=("add", "mul")),
    "magnitude": Rule("float"),
    "start_day": Rule("int", 0, min=0),
    "end_day": Rule("int", -1, min=-1, doc="end of the ramp (gradual, incremental); -1: start_day + 1"),
    "period_days": Rule("int", 90, min=1, doc="recurring: days between episode starts"),
    "duration_days": Rule("int", 30, min=1, doc="recurring: days each episode lasts"),
    "sites": Rule("str", "all", doc="'all', or 'wave>=N', 'wave==N', 'wave<=N'"),
    "source": Rule("str", "", doc="why this drift, and its source"),
}

_SITES = re.compile(r"^(all|wave(>=|==|<=)(\d+))$")


def check(source: str, entries: list[dict], driftable: dict[str, str]) -> None:
    for i, e in enumerate(entries):
        if e["param"] not in driftable:
            raise ScenarioError(
                source,
                f"drift[{i}].param",
                e["param"],
                f"unknown parameter; driftable: {', '.join(sorted(driftable))}",
            )
        if not _SITES.match(e["sites"].replace(" ", "")):
            raise ScenarioError(
                source, f"drift[{i}].sites", e["sites"], "must be 'all', 'wave>=N', 'wave==N' or 'wave<=N'"
            )
        if e["kind"] in ("gradual", "incremental") and e["end_day"] != -1 and e["end_day"] <= e["start_day"]:
            raise ScenarioError(
                source, f"drift[{i}].end_day", e["end_day"], f"must be > start_day ({e['start_day']})"
            )
        if e["kind"] == "recurring" and e["duration_days"] > e["period_days"]:
            raise ScenarioError(
                source,
                f"drift[{i}].duration_days",
                e["duration_days"],
                f"must be <= period_days ({e['period_days']})",
            )


def site_mask(expr: str, wave: np.ndarray) -> np.ndarray:
    m = _SITES.match(expr.replace(" ", ""))
    if m.group(1) == "all":
        return np.ones(len(wave), dtype=bool)
    op, n = m.group(2), int(m.group(3))
    return {">=": wave >= n, "==": wave == n, "<=": wave <= n}[op]


class DriftSchedule:
    """Applies the scenario's drift entries to per-site parameter vectors."""

    def __init__(self, entries: list[dict], wave: np.ndarray, rng: np.random.Generator):
        self.entries = [dict(e) for e in entries]
        for e in self.entries:
            if e["end_day"] == -1:
                e["end_day"] = e["start_day"] + 1
            e["mask"] = site_mask(e["sites"], wave)
        self.rng = rng
        self.params = {e["param"] for e in self.entries}

    def intensity(self, e: dict, day: float) -> float:
        """Share of the magnitude in force on ``day`` (0..1), before gradual sampling."""
        if day < e["start_day"]:
            return 0.0
        if e["kind"] == "sudden":
            return 1.0
        if e["kind"] == "recurring":
            return 1.0 if (day - e["start_day"]) % e["period_days"] < e["duration_days"] else 0.0
        return float(min(1.0, (day - e["start_day"]) / (e["end_day"] - e["start_day"])))

    def apply(self, param: str, base: np.ndarray, t_hours: float) -> np.ndarray:
        """Per-site value of ``param`` at time ``t_hours`` given its undrifted per-site ``base``."""
        if param not in self.params:
            return base
        out = np.array(base, dtype=np.float64, copy=True)
        day = t_hours / 24.0
        for e in self.entries:
            if e["param"] != param:
                continue
            k = self.intensity(e, day)
            if k <= 0:
                continue
            share = np.where(e["mask"], 1.0, 0.0)
            # gradual: each site is in the new regime with probability k; otherwise k of the magnitude
            regime = (self.rng.random(len(out)) < k) if e["kind"] == "gradual" else k
            share = share * regime
            if e["op"] == "add":
                out += share * e["magnitude"]
            else:
                out *= 1.0 + share * e["magnitude"]
        return out

    def change_points(self, horizon_days: int) -> list[tuple[float, str, dict]]:
        """(day, kind, entry) of every start and end of a drift inside the horizon."""
        points = []
        for e in self.entries:
            if e["kind"] == "recurring":
                d = e["start_day"]
                while d < horizon_days:
                    points += [(d, "drift_start", e), (d + e["duration_days"], "drift_end", e)]
                    d += e["period_days"]
            else:
                points.append((e["start_day"], "drift_start", e))
                if e["kind"] in ("gradual", "incremental"):
                    points.append((e["end_day"], "drift_full", e))
        return sorted((p for p in points if p[0] < horizon_days), key=lambda p: p[0])

    def logger(self, ctx) -> Generator:
        """SimPy process writing change points to the event log when they happen."""
        for day, kind, e in self.change_points(ctx.horizon_days):
            yield ctx.env.timeout(max(0.0, day * 24.0 - ctx.env.now))
            detail = f"{e['param']} {e['kind']} {e['op']} {e['magnitude']:g} at sites {e['sites']}"
            ctx.events.log(ctx.env.now, kind, detail=detail, value=e["magnitude"])
