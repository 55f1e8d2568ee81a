"""What the domains' figures share: when a drift came and retrained versions landed; how uncertainty reads."""

from __future__ import annotations

import pandas as pd


def mark_drift_and_retrains(ax, events: pd.DataFrame | None, n_seeds: int, label: bool) -> None:
    """Shade the drift's ramp (first ``drift_start`` to last ``drift_full``; a sudden drift is a line) and
    tick each promotion of a retrained version (all seeds; thin lines), on an axis in weeks, so a trainer
    sees when the change came and when the fixes landed."""
    if events is None or events.empty:
        return
    start = events.loc[events["kind"] == "drift_start", "time_h"]
    full = events.loc[events["kind"] == "drift_full", "time_h"]
    if len(start):
        t0 = start.min() / 168.0
        end = max(full.max() if len(full) else start.max(), start.min()) / 168.0
        if end - t0 > 0.5:
            ax.axvspan(t0, end, color="#fdae61", alpha=0.25, label="drift ramps up" if label else None)
        else:
            ax.axvline(t0, color="#f46d43", lw=1.5, ls="--", label="drift starts" if label else None)
    promoted = events.loc[events["kind"] == "retrain_promoted", "time_h"]
    for i, t in enumerate(sorted(promoted)):
        ax.axvline(t / 168.0, color="#1a9850", lw=0.8, alpha=min(1.0, 3.0 / max(n_seeds, 1)),
                   label=f"retrained version promoted ({len(promoted)} in {n_seeds} seeds)"
                   if label and i == 0 else None)


def ci_text(h: dict, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """How a headline entry's uncertainty reads in a figure or a table: "mean of 10 seeds, 95% CI 23.9 to
    24.1%"; with one seed "1 seed, no CI" (a single run has no interval, and saying so beats a blank)."""
    n = h.get("n", 0)
    if h.get("ci_low") is None or h.get("ci_high") is None:
        return "1 seed, no CI" if n == 1 else f"{n} seeds, no CI"
    lo, hi = scale * h["ci_low"], scale * h["ci_high"]
    return f"mean of {n} seeds, 95% CI {lo:.{digits}f} to {hi:.{digits}f}{unit}"
