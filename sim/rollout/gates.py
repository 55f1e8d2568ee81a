"""Gate metrics and decisions: pass, fail, inconclusive (ask a human) or wait (a sequential test undecided).

A ``threshold`` gate reads its metric over the last ``gate_window_days``: inside ``[min, max]`` it passes,
outside ``[fail_min, fail_max]`` it fails, in between (or with no data) it is inconclusive. With the default
bounds (``fail_min = -inf``, ``fail_max = inf``) and ``on_inconclusive = "fail"`` this is the engine's
original pass/fail gate. An ``msprt`` gate reads a proportion ``a/b`` over everything since the wave went
live, treats the denominator as that many trials and runs the always-valid mSPRT (``sequential.py``) against
``min``: evidence above passes, evidence below fails, neither waits for more data. Caveat: where a domain
weights sampled records (sepsis: each simulated non-septic patient stands for 1 / sample_fraction), the
weighted denominator overstates the trials and the test is more eager than its nominal alpha.
"""

from __future__ import annotations

import math

import numpy as np

from sim.rollout import sequential

#: how gate outcomes combine: the worst one wins
SEVERITY = {"pass": 0, "wait": 1, "inconclusive": 2, "fail": 3}


def metric_value(kpi, expr: str, sites: np.ndarray, day_from: int, day_to: int) -> float:
    """Evaluate a gate metric over ``sites`` and days ``[day_from, day_to)``; NaN if there is no data."""
    if len(sites) == 0 or day_to <= day_from:
        return math.nan
    if "/" in expr:
        num, den = expr.split("/")
        d = kpi.window(den, sites, day_from, day_to)
        return kpi.window(num, sites, day_from, day_to) / d if d > 0 else math.nan
    return kpi.window(expr, sites, day_from, day_to) / (len(sites) * (day_to - day_from))


def threshold(gate: dict, value: float) -> str:
    """Outcome of a threshold gate for one metric value."""
    if math.isnan(value):
        return "inconclusive"
    if gate["min"] <= value <= gate["max"]:
        return "pass"
    if value < gate["fail_min"] or value > gate["fail_max"]:
        return "fail"
    return "inconclusive"


def msprt(kpi, gate: dict, sites: np.ndarray, day_from: int, day_to: int) -> tuple[str, str]:
    """Outcome and detail of an msprt gate on the data since ``day_from``."""
    num, den = gate["metric"].split("/")
    n = kpi.window(den, sites, day_from, day_to) if len(sites) and day_to > day_from else 0.0
    if n <= 0:
        return "wait", f"{gate['metric']}: no data yet WAIT"
    xbar = kpi.window(num, sites, day_from, day_to) / n
    p0 = gate["min"]
    sigma2, tau2 = p0 * (1.0 - p0), gate["tau"] ** 2
    sign = int(sequential.decide(xbar, n, p0, sigma2, tau2, alpha=gate["alpha"]))
    p = float(sequential.always_valid_p(xbar, n, p0, sigma2, tau2))
    outcome = {1: "pass", -1: "fail", 0: "wait"}[sign]
    text = f"{gate['metric']}={xbar:.3g} vs {p0:.3g} (n={n:.0f}, always-valid p={p:.3g}) {outcome.upper()}"
    return outcome, text


def evaluate(ctx, gates: list[dict], sites: np.ndarray, day: int, window: int, *, since: int,
             pause: bool) -> tuple[str, str]:
    """Combined outcome of ``gates`` at ``day`` and a detail string with every value seen.

    ``since``: the day the wave under the gate went live (msprt gates read from there). ``pause``: whether an
    inconclusive outcome is reported as such; if not, it is a failure, labelled FAIL as before.
    """
    parts, worst = [], "pass"
    for g in gates:
        if g["test"] == "msprt":
            outcome, text = msprt(ctx.kpi, g, sites, since, day)
        else:
            v = metric_value(ctx.kpi, g["metric"], sites, day - window, day)
            outcome = threshold(g, v)
            if outcome == "inconclusive" and not pause:
                outcome = "fail"
            mark = {"pass": "", "fail": " FAIL", "inconclusive": " INCONCLUSIVE"}[outcome]
            text = f"{g['metric']}={v:.3g}{mark}"
        parts.append(text)
        worst = max(worst, outcome, key=SEVERITY.__getitem__)
    return worst, "; ".join(parts)
