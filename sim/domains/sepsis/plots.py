"""Figures a trainer can show: mortality with and without SPOT by rollout wave, and adoption over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.figmarks import ci_text, mark_drift_and_retrains


def _weekly(kpis: pd.DataFrame, names: list[str], by: list[str]) -> pd.DataFrame:
    sub = kpis[kpis["kpi"].isin(names)]
    out = sub.groupby([*by, "kpi"], observed=True)["value"].sum().unstack("kpi")
    return out.reindex(columns=names, fill_value=0.0)


def _silent_sites(events: pd.DataFrame | None, weeks: np.ndarray, n_seeds: int) -> np.ndarray | None:
    """Mean number of hospitals scored silently at each week start (each site from its ``site_silent`` to its
    ``site_live`` event); None when no run used silent mode."""
    if events is None or events.empty or not (events["kind"] == "site_silent").any():
        return None
    key = ["seed", "site"]
    start = events.loc[events["kind"] == "site_silent", [*key, "time_h"]]
    live = events.loc[events["kind"] == "site_live", [*key, "time_h"]].rename(columns={"time_h": "live_h"})
    spans = start.merge(live.groupby(key, observed=True, as_index=False).min(), on=key, how="left")
    t0 = spans["time_h"].to_numpy() / 168.0
    t1 = spans["live_h"].fillna(np.inf).to_numpy() / 168.0
    return ((weeks[:, None] >= t0) & (weeks[:, None] < t1)).sum(axis=1) / n_seeds


def figures(kpis: pd.DataFrame, events: pd.DataFrame, summary: dict, out_dir: Path) -> list[Path]:
    """Write PNG figures to ``out_dir`` and return their paths. ``kpis`` holds all seeds."""
    out_dir = Path(out_dir)
    period_days = summary["meta"]["report_period_days"]
    n_seeds = kpis["seed"].nunique()
    paths = []

    # 1. mortality at hospitals with SPOT live vs the same patients without it, and the rollout
    per = _weekly(
        kpis,
        ["live_deaths_expected", "live_deaths_expected_cf", "live_septic_cases", "live_days"],
        ["period"],
    )
    horizon = summary["meta"]["horizon_days"]
    days_in_period = np.minimum(period_days, horizon - per.index.to_numpy() * period_days)
    sites_live = per["live_days"] / (days_in_period * n_seeds)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_live = 100 * per["live_deaths_expected"] / per["live_septic_cases"]
        m_cf = 100 * per["live_deaths_expected_cf"] / per["live_septic_cases"]
    weeks = per.index.to_numpy() * period_days / 7.0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True, height_ratios=[2, 1])
    ax1.plot(weeks, m_cf, color="#b2182b", lw=2, label="same patients, standard screening only")
    ax1.plot(weeks, m_live, color="#2166ac", lw=2, label="with SPOT alerts (as simulated)")
    ax1.fill_between(
        weeks, m_live, m_cf, where=m_cf >= m_live, color="#92c5de", alpha=0.4, label="deaths avoided"
    )
    mark_drift_and_retrains(ax1, events, n_seeds, label=True)
    rr = summary["headline"]["sepsis_mortality_relative_reduction"]
    ax1.set_ylabel("sepsis mortality (%)\nat hospitals with SPOT live")
    ax1.set_title(
        f"{summary['meta']['scenario']}: sepsis mortality {100 * rr['mean']:.1f}% lower where SPOT is "
        f"live ({ci_text(rr, 100, unit='%')})",
        fontsize=10,
    )
    ax1.legend(loc="lower left", fontsize=9)
    ax1.set_ylim(bottom=0)
    ax1.grid(alpha=0.3)
    ax2.step(weeks, sites_live, where="post", color="k", label="live (alerts shown)")
    silent = _silent_sites(events, weeks, n_seeds)
    if silent is not None:
        ax2.step(weeks, silent, where="post", color="0.45", ls="--", label="scored silently before go-live")
        ax2.legend(loc="upper left", fontsize=9)
    ax2.set_ylabel("hospitals\n(mean over seeds)")
    ax2.set_xlabel("week of the simulated year")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    p = out_dir / "mortality_by_week.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    # 2. adoption by wave: share of alerts acted on and alert precision
    wv = _weekly(kpis, ["alerts", "alerts_acted", "alerts_true"], ["wave", "period"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    cmap = plt.get_cmap("viridis")
    waves = sorted(wv.index.get_level_values("wave").unique())
    for w in waves:
        d = wv.loc[w]
        d = d[d["alerts"] > 0]
        x = d.index.to_numpy() * period_days / 7.0
        label = "pilot (wave 0)" if w == 0 else f"wave {w}"
        color = cmap(w / max(len(waves) - 1, 1))
        ax1.plot(x, 100 * d["alerts_acted"] / d["alerts"], color=color, label=label)
        ax2.plot(x, 100 * d["alerts_true"] / d["alerts"], color=color, label=label)
    for ax in (ax1, ax2):
        mark_drift_and_retrains(ax, events, n_seeds, label=ax is ax2)
    ax1.set_title("alerts acted on by clinicians (%)", fontsize=10)
    ax2.set_title("alerts that found sepsis: precision (%)", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_xlabel("week of the simulated year")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8, title="rollout wave")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    p = out_dir / "adoption_by_wave.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
