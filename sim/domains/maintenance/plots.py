"""Figures a trainer can show for the maintenance domains (all seeds of a run pooled).

1. ``rollout_funnel.png``: sites live over time (each seed faint, the mean bold) with gate decisions.
2. ``downtime_by_site.png``: unplanned downtime per unit-week at each deployed site, without the alert path
   (the same units, common random numbers) and with it.
3. ``alerts_vs_actions.png``: weekly alerts -> delivered -> acted on -> failures prevented, and per site the
   alert volume per group (line / 100 vans) per week against the share acted on and the precision.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.figmarks import ci_text, mark_drift_and_retrains


def _by(kpis: pd.DataFrame, names: list[str], by: list[str]) -> pd.DataFrame:
    sub = kpis[kpis["kpi"].isin(names)]
    out = sub.groupby([*by, "kpi"], observed=True)["value"].sum().unstack("kpi")
    return out.reindex(columns=names, fill_value=0.0).fillna(0.0)


def rollout_funnel(
    kpis: pd.DataFrame, events: pd.DataFrame, summary: dict, out: Path, site_label: str
) -> Path:
    period = summary["meta"]["report_period_days"]
    horizon = summary["meta"]["horizon_days"]
    live = _by(kpis, ["live_days"], ["seed", "period"])["live_days"].unstack("seed")
    live = live[(live.index.to_numpy() + 1) * period <= horizon] / period  # whole periods only
    weeks = live.index.to_numpy() * period / 7.0
    n_sites = kpis["site"].nunique()
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for s in live.columns:
        ax.step(weeks, live[s], where="post", color="0.7", lw=0.8)
    ax.step(
        weeks, live.mean(axis=1), where="post", color="k", lw=2.2, label=f"{site_label}s live (mean of seeds)"
    )
    marks = {
        "gate_passed": ("^", "#1a9850", "gate passed"),
        "gate_failed": ("x", "#d73027", "gate failed"),
        "rollout_stalled": ("s", "k", "rollout stalled"),
    }
    for kind, (marker, color, label) in marks.items():
        ev = events[events["kind"] == kind]
        if len(ev):
            y = np.interp(ev["day"] / 7.0, weeks, live.mean(axis=1))
            jitter = (ev["seed"].rank(method="dense").to_numpy() - 1) * 0.08
            ax.scatter(
                ev["day"] / 7.0,
                y + 0.15 + jitter,
                marker=marker,
                color=color,
                s=28,
                label=f"{label} ({len(ev)} over {kpis['seed'].nunique()} seeds)",
                zorder=3,
            )
    ax.set_ylim(0, n_sites + 1)
    ax.set_xlabel("week")
    ax.set_ylabel(f"{site_label}s live")
    ax.set_title(
        f"{summary['meta']['scenario']}: rollout funnel (furthest wave, mean "
        f"{summary['headline']['furthest_rollout_wave']['mean']:.1f})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out / "rollout_funnel.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def _groups(kpis: pd.DataFrame, names: list[str], by_wave: bool) -> tuple[pd.DataFrame, list[str]]:
    """KPI sums per site (fixed waves) or per rollout wave (sites differ by seed), live groups only, in wave
    order, with tick labels."""
    if by_wave:
        d = _by(kpis, names, ["wave"])
        d = d[d["live_unit_days"] > 0].sort_index()
        return d, ["pilot (wave 0)" if w == 0 else f"wave {w}" for w in d.index]
    d = _by(kpis, names, ["site"])
    d = d[d["live_unit_days"] > 0]
    wave = kpis.drop_duplicates("site").set_index("site")["wave"]
    d = d.loc[sorted(d.index, key=lambda s: (wave[s], s))]
    return d, [f"{s}\n(wave {wave[s]})" for s in d.index]


def downtime_by_site(
    kpis: pd.DataFrame, summary: dict, out: Path, site_label: str, unit_label: str, *, by_wave: bool = False
) -> Path:
    names = ["live_unplanned_downtime_h", "live_unplanned_downtime_cf_h", "live_unit_days"]
    d, labels = _groups(kpis, names, by_wave)
    per = 7.0 / d["live_unit_days"]
    x = np.arange(len(d))
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(d) + 3), 4.8))
    ax.bar(
        x - 0.2,
        d["live_unplanned_downtime_cf_h"] * per,
        0.4,
        color="#b2182b",
        label="without the alert path (same units)",
    )
    ax.bar(x + 0.2, d["live_unplanned_downtime_h"] * per, 0.4, color="#2166ac", label="with the alert path")
    red = 1 - d["live_unplanned_downtime_h"] / d["live_unplanned_downtime_cf_h"]
    for xi, r, h in zip(x, red, d["live_unplanned_downtime_cf_h"] * per, strict=True):
        ax.text(xi, h * 1.02, f"-{100 * r:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(f"unplanned downtime, hours per {unit_label}-week")
    h = summary["headline"].get("unplanned_downtime_relative_reduction", {})
    ttl = f"{summary['meta']['scenario']}: unplanned downtime at deployed {site_label}s while live"
    if h.get("mean") is not None:
        ttl += f"\n(overall -{100 * h['mean']:.1f}%, {ci_text(h, 100, unit='%')})"
    ax.set_title(ttl, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    p = out / "downtime_by_site.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def alerts_vs_actions(
    kpis: pd.DataFrame,
    summary: dict,
    out: Path,
    site_label: str,
    group_label: str,
    *,
    units_per_group: float,
    by_wave: bool = False,
    events: pd.DataFrame | None = None,
) -> Path:
    period = summary["meta"]["report_period_days"]
    n_seeds = kpis["seed"].nunique()
    names = ["alerts", "alerts_true", "alerts_delivered", "alerts_acted", "replacements", "live_failures"]
    w = _by(kpis, names, ["period"]) / n_seeds
    w = w[(w.index.to_numpy() + 1) * period <= summary["meta"]["horizon_days"]]  # whole periods only
    weeks = w.index.to_numpy() * period / 7.0
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    styles = [
        ("alerts", "alerts raised", "k"),
        ("alerts_true", "of which true (failure within horizon)", "0.5"),
        ("alerts_delivered", "delivered to the people who act", "#4575b4"),
        ("alerts_acted", "acted on (visit booked)", "#1a9850"),
        ("replacements", "failures prevented (part replaced)", "#d73027"),
        ("live_failures", "breakdowns that still happened", "#fdae61"),
    ]
    for col, label, color in styles:
        ax1.plot(weeks, w[col], label=label, color=color, lw=1.6)
    mark_drift_and_retrains(ax1, events, n_seeds, label=True)
    ax1.set_xlabel("week")
    ax1.set_ylabel(f"per {period}-day period (mean of {n_seeds} seeds)")
    ax1.set_title("alerts vs actions at deployed sites", fontsize=10)
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    s, labels = _groups(kpis, ["alerts", "alerts_acted", "alerts_true", "live_unit_days"], by_wave)
    vol = s["alerts"] / (s["live_unit_days"] / units_per_group) * 7.0
    x = np.arange(len(s))
    ax2.bar(x, vol, color="0.6", label=f"alerts per {group_label} per week")
    ax2.set_ylabel(f"alerts per {group_label} per week")
    ax2.set_xticks(x, labels, fontsize=7)
    ax3 = ax2.twinx()
    with np.errstate(invalid="ignore", divide="ignore"):
        ax3.plot(x, 100 * s["alerts_acted"] / s["alerts"], "o-", color="#1a9850", label="share acted on (%)")
        ax3.plot(x, 100 * s["alerts_true"] / s["alerts"], "s--", color="#d73027", label="precision (%)")
    ax3.set_ylim(0, 100)
    ax3.set_ylabel("%")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax2.set_title(f"per {'rollout wave' if by_wave else site_label} while live", fontsize=10)
    fig.tight_layout()
    p = out / "alerts_vs_actions.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
