"""Synthetic staggered-adoption panels with a known effect, for checking the estimators' bias and coverage.

``y[i, t] = site_i + trend * t + shock_t + effect(t - g_i) + noise``: parallel trends hold (every site shares
the trend and the period shocks), the effect starts at ``effect_at_0`` on go-live and grows by
``effect_growth`` per period since adoption, and adoption is staggered over cohorts plus never-adopters. This
is the setting in which before/after (the trend) and two-way fixed effects (growing effects) are biased.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.impact.panel import Panel


@dataclass(frozen=True)
class Design:
    """A staggered rollout: ``cohorts`` are go-live periods; ``never_share`` of sites never go live."""

    n_sites: int = 60
    n_periods: int = 30
    #: go-live periods, sites split evenly between them after the never-live share
    cohorts: tuple[int, ...] = (8, 14, 20)
    never_share: float = 0.25
    #: outcome units: sd of the site levels, trend per period, sd of the shocks all sites share per period
    site_sd: float = 2.0
    trend: float = 0.3
    shock_sd: float = 0.5
    #: sd of the idiosyncratic noise per site and period
    noise_sd: float = 1.0
    #: effect on go-live and its growth per period since go-live
    effect_at_0: float = 0.5
    effect_growth: float = 0.15


def assign_cohorts(design: Design) -> np.ndarray:
    """Go-live period per site (``inf`` = never), fixed by the design (same split in every replication)."""
    n_never = round(design.never_share * design.n_sites)
    rest = design.n_sites - n_never
    per = np.array_split(np.arange(rest), len(design.cohorts))
    g = np.full(design.n_sites, np.inf)
    for c, idx in zip(design.cohorts, per, strict=True):
        g[idx] = c
    return g


def panel(design: Design, rng: np.random.Generator) -> Panel:
    """One replication: outcome, counterfactual and go-live periods."""
    g = assign_cohorts(design)
    t = np.arange(design.n_periods)
    site = rng.normal(0.0, design.site_sd, design.n_sites)[:, None]
    period = (design.trend * t + rng.normal(0.0, design.shock_sd, design.n_periods))[None, :]
    noise = rng.normal(0.0, design.noise_sd, (design.n_sites, design.n_periods))
    y_cf = site + period + noise
    exposure = t[None, :] - g[:, None]
    effect = np.where(exposure >= 0, design.effect_at_0 + design.effect_growth * np.maximum(exposure, 0), 0.0)
    return Panel(y_cf + effect, y_cf, g, [f"S{i + 1}" for i in range(design.n_sites)],
                 np.zeros(design.n_sites, bool))
