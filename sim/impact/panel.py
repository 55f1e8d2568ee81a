"""A site x period panel of one run: the observed outcome, its counterfactual and when each site adopted.

The impact estimators see only what a real company would have: the outcome per site and period and the date
each site went live. The simulator also knows the counterfactual outcome (the same sites and days without the
AI), which gives the true effect the estimates are compared with; the estimators never read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError


@dataclass(frozen=True)
class Panel:
    """``y``/``y_cf``: outcome with and without the AI, shape (sites, periods); ``g``: first live period per
    site (``inf`` for a site never live); ``rolled_back``: sites that went offline again (analysed as
    adopted from their first go-live: intention to treat)."""

    y: np.ndarray
    y_cf: np.ndarray | None
    g: np.ndarray
    sites: list[str]
    rolled_back: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape

    def treated(self) -> np.ndarray:
        """(sites, periods) mask of site-periods at or after the site's first go-live."""
        return np.arange(self.y.shape[1])[None, :] >= self.g[:, None]

    def true_effect(self) -> np.ndarray:
        """(sites, periods) outcome minus counterfactual; raises if the panel has no counterfactual."""
        if self.y_cf is None:
            raise ValueError("this panel has no counterfactual outcome")
        return self.y - self.y_cf


def _matrix(df: pd.DataFrame, kpi: str, sites: list[str], n_periods: int) -> np.ndarray:
    sub = df[df["kpi"] == kpi]
    wide = sub.pivot_table(index="site", columns="period", values="value", aggfunc="sum", observed=True)
    return wide.reindex(index=sites, columns=range(n_periods)).fillna(0.0).to_numpy(dtype=float)


def from_kpis(
    kpis: pd.DataFrame,
    run_id: str,
    outcome: str,
    counterfactual: str | None,
    *,
    period_days: int,
    horizon_days: int,
) -> Panel:
    """Panel of ``run_id`` from a tidy ``kpis.parquet`` frame (``run_id, site, period, kpi, value``).

    Treatment: the first period with any ``live_days``. A trailing period shorter than ``period_days`` is
    dropped (it would look like a drop in every outcome). Raises :class:`UserError` if a KPI is missing.
    """
    df = kpis[kpis["run_id"].astype(str) == run_id]
    have = set(df["kpi"].astype(str).unique())
    for name in ("live_days", outcome, counterfactual):
        if name is not None and name not in have:
            have_txt = ", ".join(sorted(have))
            raise UserError(f"kpis.parquet: run {run_id!r} has no KPI {name!r} (has: {have_txt})")
    n_periods = horizon_days // period_days
    sites = sorted(df["site"].astype(str).unique(), key=lambda s: (len(s), s))  # H2 before H10
    live = _matrix(df, "live_days", sites, n_periods)
    y = _matrix(df, outcome, sites, n_periods)
    y_cf = None if counterfactual is None else _matrix(df, counterfactual, sites, n_periods)
    any_live = live > 0
    g = np.where(any_live.any(axis=1), np.argmax(any_live, axis=1), np.inf).astype(float)
    after = np.arange(n_periods)[None, :] >= g[:, None]
    rolled_back = (after & ~any_live).any(axis=1)
    return Panel(y, y_cf, g, sites, rolled_back)

