"""Output of the big bang vs phased comparison: ``phasing.json`` and ``phasing.png``, written whole or not at
all (a temporary sibling folder renamed into place)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sim.rollout.compare import fmt
from sim.staging import staged_folder

COLORS = {"phased": "#1a9850", "big_bang": "#d73027"}
LABELS = {"phased": "phased (gated waves)", "big_bang": "big bang (all sites at once)"}


def _panel(ax, arms: dict, release: str, key: str, seeds: int) -> None:
    for strategy in ("phased", "big_bang"):
        rows = arms[(release, strategy)]
        curves = [r[key] for r in rows]
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], axis=0)
        weeks = (np.arange(n) + 1) * rows[0]["period_days"] / 7.0
        for c in curves if seeds > 1 else []:
            ax.plot(weeks, c[:n], color=COLORS[strategy], lw=0.6, alpha=0.35)
        ax.plot(weeks, mean, color=COLORS[strategy], lw=2.2, label=LABELS[strategy])
    ax.set_xlabel("week")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def figure(arms: dict, result: dict, spec: dict, out: Path) -> Path:
    """Left: value realised by the good release over time; right: cases exposed to the bad release."""
    seeds = int(result["seeds"])
    unit = spec["label"].split(" per ")[0]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8))
    _panel(a, arms, "good", "value_curve", seeds)
    a.set_ylabel(f"cumulative {unit} avoided")
    full = result["days_to_full_value_phased"]
    if np.isfinite(full):
        a.axvline(full / 7.0, color=COLORS["phased"], ls=":", lw=1)
        a.text(full / 7.0, a.get_ylim()[1] * 0.5, f" phased: all sites\n live on day {full:.0f}", fontsize=8)
    a.set_title(f"Good release: phasing forgoes {fmt(result['value_forgone_by_phasing'])} {unit} avoided",
                fontsize=10)
    _panel(b, arms, "bad", "exposure_curve", seeds)
    b.set_ylabel(f"cumulative {spec.get('exposure_label', spec['exposure'])} handled by the bad release")
    b.set_title(f"Bad release ({', '.join(f'{k}={v}' for k, v in result['bad_release'].items())}): "
                f"phasing spares {fmt(result['bad_model_exposure_avoided'])} "
                f"{spec.get('exposure_label', 'cases')}\n(phased: "
                f"{result['bad_release_sites_live_at_end_phased']:.0f} sites on the bad release at the end)",
                fontsize=10)
    seeds_txt = "1 seed, no CI" if seeds == 1 else f"mean of {seeds} seeds (thin lines: each seed)"
    fig.suptitle(f"{result['scenario']}: big bang vs phased. Value at risk avoided by phasing: "
                 f"{fmt(result['value_at_risk_avoided'])} {unit} ({seeds_txt})", fontsize=11)
    fig.tight_layout()
    p = out / "phasing.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write(arms: dict, result: dict, spec: dict, out: Path) -> None:
    """Write ``phasing.json`` and ``phasing.png`` into ``out`` atomically."""
    with staged_folder(out) as tmp:
        result["figures"] = [figure(arms, result, spec, tmp).name]
        per_seed = {f"{r}/{s}": [{k: v for k, v in row.items() if not k.endswith("_curve")} for row in rows]
                    for (r, s), rows in arms.items()}
        text = json.dumps(result | {"per_seed": per_seed}, indent=2, default=float)
        (tmp / "phasing.json").write_text(text)
