"""Three answers to "how much did the AI change the KPI?" from a staggered rollout, each with a 95% CI.

- :func:`naive`: before/after at the adopting sites (mean after go-live minus mean before). Biased by any time
  trend, because "after" is also "later".
- :func:`twfe`: the two-way fixed-effects regression ``y = site + period + beta * live``. Under staggered
  adoption it also compares late adopters with early adopters that are already treated ("forbidden
  comparisons"); when effects grow with time since adoption those comparisons pull beta down, even below 0.
- :func:`callaway_santanna`: Callaway & Sant'Anna (2021) group-time ATTs. For each adoption cohort ``g`` and
  period ``t``, the change in the cohort's outcome from ``g - 1`` to ``t`` minus the same change at control
  sites (never adopted, or not yet adopted by ``t``), aggregated by event time ``e = t - g`` and overall.

Inference is clustered by site: every estimate is linear in per-site terms (its influence function ``psi``),
the standard error is ``sqrt(sum psi^2 * n / (n - 1))`` and the CI uses Student's t with ``n - 1`` degrees of
freedom (``n`` sites contributing). Outcomes are in the panel's units per site and period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from sim.impact.panel import Panel

CONTROLS = ("not_yet", "never")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and 95% CI; ``truth`` is the simulator's effect on the same
    site-periods the estimator targets (NaN when the panel has no counterfactual)."""

    name: str
    value: float
    se: float
    ci_low: float
    ci_high: float
    truth: float = math.nan
    #: event time -> (estimate, ci_low, ci_high, truth), for event-study estimators
    by_event_time: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def covers(self) -> bool | None:
        """Whether the CI holds the true effect; None without a CI or a true effect."""
        if not all(map(math.isfinite, (self.ci_low, self.ci_high, self.truth))):
            return None
        return self.ci_low <= self.truth <= self.ci_high

    def as_dict(self) -> dict:
        return {"estimator": self.name, "estimate": self.value, "se": self.se, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "true_effect": self.truth,
                "bias": self.value - self.truth, "covers": self.covers}


def _finish(name: str, value: float, psi: np.ndarray, truth: float, level: float = 0.95) -> Estimate:
    n = int(np.count_nonzero(psi))
    if n < 2 or not math.isfinite(value):
        return Estimate(name, value, math.nan, math.nan, math.nan, truth)
    se = math.sqrt(float(np.sum(psi**2)) * n / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return Estimate(name, value, se, value - half, value + half, truth)


def naive(panel: Panel) -> Estimate:
    """Before/after at sites with at least one period before and after go-live, weighted by periods after
    (so it targets the same site-periods as the true effect it is compared with)."""
    y, g = panel.y, panel.g
    n_periods = y.shape[1]
    ok = np.isfinite(g) & (g >= 1) & (g < n_periods)
    if not ok.any():
        return Estimate("naive before/after", math.nan, math.nan, math.nan, math.nan)
    after = panel.treated()
    d = np.full(len(g), np.nan)
    w = np.zeros(len(g))
    for i in np.flatnonzero(ok):
        d[i] = y[i, after[i]].mean() - y[i, ~after[i]].mean()
        w[i] = after[i].sum()
    value = float(np.nansum(w * d) / w.sum())
    psi = np.where(ok, w * (np.nan_to_num(d) - value) / w.sum(), 0.0)
    truth = _true_mean(panel, after & ok[:, None])
    return _finish("naive before/after", value, psi, truth)


def twfe(panel: Panel) -> Estimate:
    """``beta`` of ``y ~ site + period + live`` on a balanced panel (two-way demeaning), site-clustered."""
    y = panel.y
    d = panel.treated().astype(float)

    def demean(x: np.ndarray) -> np.ndarray:
        return x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()

    dd, yy = demean(d), demean(y)
    denom = float(np.sum(dd**2))
    if denom == 0:
        return Estimate("two-way fixed effects", math.nan, math.nan, math.nan, math.nan)
    beta = float(np.sum(dd * yy) / denom)
    psi = np.sum(dd * (yy - beta * dd), axis=1) / denom
    return _finish("two-way fixed effects", beta, psi, _true_mean(panel, panel.treated()))


def _true_mean(panel: Panel, mask: np.ndarray) -> float:
    if panel.y_cf is None or not mask.any():
        return math.nan
    return float(panel.true_effect()[mask].mean())


@dataclass
class _Cells:
    """Group-time cells: cohort, period, estimate, influence (sites,), cohort size, true effect."""

    g: list[int] = field(default_factory=list)
    t: list[int] = field(default_factory=list)
    att: list[float] = field(default_factory=list)
    psi: list[np.ndarray] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    truth: list[float] = field(default_factory=list)


def group_time(panel: Panel, control: str = "not_yet") -> _Cells:
    """ATT(g, t) for every cohort with a pre-period and every period with controls (base period ``g - 1``)."""
    if control not in CONTROLS:
        raise ValueError(f"control (={control!r}) must be one of {CONTROLS}")
    y, g = panel.y, panel.g
    n_sites, n_periods = y.shape
    eff = panel.true_effect() if panel.y_cf is not None else None
    cells = _Cells()
    periods = np.arange(n_periods)
    for c in sorted({int(v) for v in g[np.isfinite(g)] if 1 <= v < n_periods}):
        tr = g == c
        base = c - 1
        dy = y - y[:, [base]]
        if control == "never":
            ctrl = np.broadcast_to(~np.isfinite(g)[:, None], y.shape)
        else:
            ctrl = (g[:, None] > np.maximum(periods, base)[None, :]) & ~tr[:, None]
        n_c = ctrl.sum(axis=0)
        n_g = int(tr.sum())
        m_t = dy[tr].mean(axis=0)
        m_c = np.where(n_c > 0, (dy * ctrl).sum(axis=0) / np.maximum(n_c, 1), np.nan)
        for t in np.flatnonzero((n_c > 0) & (periods != base)):
            psi = np.zeros(n_sites)
            psi[tr] = (dy[tr, t] - m_t[t]) / n_g
            psi[ctrl[:, t]] -= (dy[ctrl[:, t], t] - m_c[t]) / n_c[t]
            cells.g.append(c)
            cells.t.append(int(t))
            cells.att.append(float(m_t[t] - m_c[t]))
            cells.psi.append(psi)
            cells.size.append(n_g)
            cells.truth.append(float(eff[tr, t].mean()) if eff is not None else math.nan)
    return cells


def _aggregate(cells: _Cells, pick: np.ndarray) -> tuple[float, np.ndarray, float]:
    w = np.asarray(cells.size, float) * pick
    w = w / w.sum()
    att = float(np.dot(w, cells.att))
    psi = np.tensordot(w, np.asarray(cells.psi), axes=1)
    truth = float(np.dot(w, cells.truth))
    return att, psi, truth


def callaway_santanna(panel: Panel, control: str = "not_yet", max_event_time: int | None = None) -> Estimate:
    """Overall ATT (cells after adoption weighted by cohort size) and the event-time profile.

    ``max_event_time`` limits the event times reported in ``by_event_time`` (all are used overall).
    """
    name = f"Callaway-Sant'Anna ({control.replace('_', '-')}-treated controls)"
    cells = group_time(panel, control)
    if not cells.att:
        return Estimate(name, math.nan, math.nan, math.nan, math.nan)
    e = np.asarray(cells.t) - np.asarray(cells.g)
    post = e >= 0
    if not post.any():
        return Estimate(name, math.nan, math.nan, math.nan, math.nan)
    att, psi, truth = _aggregate(cells, post)
    overall = _finish(name, att, psi, truth)
    profile = {}
    for k in sorted(set(e.tolist())):
        if max_event_time is not None and abs(k) > max_event_time:
            continue
        est = _finish(name, *_aggregate(cells, e == k))
        profile[int(k)] = (est.value, est.ci_low, est.ci_high, est.truth)
    return Estimate(name, overall.value, overall.se, overall.ci_low, overall.ci_high, truth, profile)


def all_estimators(panel: Panel, control: str = "not_yet") -> list[Estimate]:
    """Naive, TWFE and Callaway-Sant'Anna on one panel."""
    return [naive(panel), twfe(panel), callaway_santanna(panel, control)]
