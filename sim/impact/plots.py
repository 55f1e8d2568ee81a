"""Figures of ``purgatory impact``: the rollout timeline, the event study with the true effect, the estimator
table (bias and CI coverage)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: event kinds drawn on the timeline: marker, colour, legend text
DECISIONS = {
    "gate_passed": ("^", "#1a9850", "gate passed: next wave goes live"),
    "gate_failed": ("x", "#d73027", "gate failed: hold, check again"),
    "gate_inconclusive": ("d", "#fdae61", "gate inconclusive"),
    "gate_paused": ("|", "#f46d43", "paused for human review"),
    "gate_resumed": ("o", "#4575b4", "review done: checks resume"),
    "rollback": ("v", "k", "rollback: wave taken offline"),
    "rollout_stalled": ("s", "0.3", "rollout stalled"),
}


def rollout_timeline(events: pd.DataFrame, run_id: str, *, n_waves: int, horizon_days: int, title: str,
                     out: Path) -> Path:
    """One row per wave: when its sites were live (bar), and every gate decision for that wave (markers)."""
    ev = events[events["run_id"].astype(str) == run_id]
    fig, ax = plt.subplots(figsize=(10, 2.2 + 0.4 * n_waves))
    live = ev[ev["kind"] == "site_live"]
    for w in range(n_waves):
        starts = live.loc[live["value"] == w, "day"]
        if len(starts):
            ends = ev.loc[(ev["kind"] == "rollback") & (ev["value"] == w), "day"]
            end = ends.min() if len(ends) else horizon_days
            n_sites = int((live["value"] == w).sum())
            ax.barh(w, end - starts.min(), left=starts.min(), height=0.5, color="#91bfdb")
            ax.text(starts.min() + 1, w, f"{n_sites} site(s) live", va="center", fontsize=8)
    seen = set()
    for kind, (marker, color, label) in DECISIONS.items():
        rows = ev[ev["kind"] == kind]
        if rows.empty:
            continue
        y = rows["value"].to_numpy(float) + (0.35 if kind != "rollback" else -0.35)
        ax.scatter(rows["day"], y, marker=marker, color=color, s=40, zorder=3,
                   label=f"{label} ({len(rows)})" if kind not in seen else None)
        seen.add(kind)
    ax.set_yticks(range(n_waves), [f"wave {w}" + (" (pilot)" if w == 0 else "") for w in range(n_waves)])
    ax.set_ylim(n_waves - 0.4, -0.7)
    ax.set_xlim(0, horizon_days)
    ax.set_xlabel("day of the simulated year(s)")
    sub = "bars: the wave's sites live; markers: gate decisions about that wave"
    ax.set_title(f"{title}\n{sub}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if seen:
        fig.legend(fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.1 if seen else 0, 1, 1))
    p = out / "rollout_timeline.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def event_study(profile: dict[str, tuple], label: str, period_days: int, *, title: str, out: Path,
                name: str = "event_study.png") -> Path:
    """Callaway-Sant'Anna ATT by periods since go-live with 95% CIs, and the simulator's true effect."""
    items = sorted((int(k), v) for k, v in profile.items())
    e = np.array([k for k, _ in items])
    vals = np.array([v for _, v in items], float)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(-0.5, color="0.5", lw=0.8, ls=":")
    ax.fill_between(e, vals[:, 1], vals[:, 2], color="#4575b4", alpha=0.2, label="95% CI (clustered by site)")
    ax.plot(e, vals[:, 0], "o-", color="#4575b4", ms=3, label="estimate: Callaway-Sant'Anna ATT(e)")
    ax.plot(e, vals[:, 3], "-", color="#d73027", lw=2, label="true effect (simulator's counterfactual)")
    ax.set_xlabel(f"periods of {period_days} days since go-live (e < 0: before; should be near 0)")
    ax.set_ylabel(f"effect on {label}")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out / name
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def estimator_table(rows: list[dict], title: str, out: Path, name: str = "estimator_table.png") -> Path:
    """A table figure: each estimator's mean estimate, true effect, bias and CI coverage over runs."""
    cells = [[r["estimator"], str(r["runs"]), f"{r['mean_estimate']:.4g}", f"{r['mean_true_effect']:.4g}",
              f"{r['mean_bias']:+.3g}",
              "no CI" if r["ci_coverage"] != r["ci_coverage"] else f"{r['ci_coverage']:.0%}"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.4 * len(rows)))
    ax.axis("off")
    tab = ax.table(cellText=cells, colLabels=["estimator", "runs", "estimate", "true effect", "bias",
                                              "95% CI covers truth"], loc="center", cellLoc="center",
                   colWidths=[0.42, 0.07, 0.12, 0.12, 0.1, 0.17])
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    tab.scale(1, 1.4)
    ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.02, "true effect: the simulator's outcome minus its counterfactual, averaged over the "
             "site-periods each estimator targets; coverage: share of runs whose 95% CI holds it", fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    p = out / name
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
