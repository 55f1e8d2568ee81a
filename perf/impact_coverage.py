"""Coverage study: 200 synthetic staggered rollouts with a time trend and effects that grow with time since
go-live; bias and 95% CI coverage of naive before/after, two-way fixed effects and Callaway-Sant'Anna.

The panel (``sim/impact/synthetic.py``): 60 sites, 30 periods, go-live cohorts at periods 8, 14 and 20 plus
a quarter of sites never live; a common trend of 0.3 per period with period shocks; the effect is 0.5 at
go-live and grows by 0.15 per period. Prints one row per estimator (mean estimate, mean true effect, mean bias
with its Monte Carlo SE, RMSE, coverage with its binomial 95% CI) and writes
``results/impact-coverage/coverage.json`` and ``coverage_table.png``.

    python -m perf.impact_coverage [--reps 200] [--seed 20250101] [--control not_yet|never]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy import stats

from sim.impact import estimators, synthetic
from sim.impact.plots import estimator_table


def study(reps: int, seed: int, control: str, design: synthetic.Design | None = None) -> list[dict]:
    """Bias and coverage per estimator over ``reps`` replications (one random stream per replication)."""
    design = design or synthetic.Design()
    rows: dict[str, list[tuple[float, float, bool]]] = {}
    for ss in np.random.SeedSequence(seed).spawn(reps):
        for e in estimators.all_estimators(synthetic.panel(design, np.random.default_rng(ss)), control):
            rows.setdefault(e.name, []).append((e.value, e.truth, bool(e.covers)))
    out = []
    for name, vals in rows.items():
        a = np.array(vals, float)
        bias = a[:, 0] - a[:, 1]
        k = int(a[:, 2].sum())
        lo, hi = stats.binomtest(k, reps).proportion_ci(0.95)
        out.append({"estimator": name, "reps": reps, "mean_estimate": float(a[:, 0].mean()),
                    "mean_true_effect": float(a[:, 1].mean()), "bias": float(bias.mean()),
                    "bias_mc_se": float(bias.std(ddof=1) / math.sqrt(reps)),
                    "rmse": float(np.sqrt(np.mean(bias**2))), "coverage": k / reps,
                    "coverage_ci": [float(lo), float(hi)]})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--control", choices=estimators.CONTROLS, default="not_yet")
    p.add_argument("--out", type=Path, default=Path("results/impact-coverage"))
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = study(a.reps, a.seed, a.control)
    print(f"{a.reps} replications, seed {a.seed}, {a.control.replace('_', '-')}-treated controls "
          f"(trend 0.3/period; effect 0.5 + 0.15/period since go-live)")
    print(f"{'estimator':<48}{'estimate':>9}{'true':>8}{'bias':>8}{'MC SE':>7}{'RMSE':>7}{'coverage':>10}"
          f"{'95% CI':>16}")
    for r in rows:
        ci = f"[{r['coverage_ci'][0]:.3f}, {r['coverage_ci'][1]:.3f}]"
        print(f"{r['estimator']:<48}{r['mean_estimate']:>9.3f}{r['mean_true_effect']:>8.3f}{r['bias']:>8.3f}"
              f"{r['bias_mc_se']:>7.3f}{r['rmse']:>7.3f}{r['coverage']:>10.3f}{ci:>16}")
    print(f"{time.perf_counter() - t0:.2f} s")
    a.out.mkdir(parents=True, exist_ok=True)
    table = [{"estimator": r["estimator"], "runs": r["reps"], "mean_estimate": r["mean_estimate"],
              "mean_true_effect": r["mean_true_effect"], "mean_bias": r["bias"], "ci_coverage": r["coverage"]}
             for r in rows]
    title = f"Synthetic staggered rollouts ({a.reps} replications): trend + effects growing with exposure"
    fig = estimator_table(table, title, a.out, "coverage_table.png")
    print(f"wrote {a.out}/coverage.json, {fig.name}")
    (a.out / "coverage.json").write_text(json.dumps({"args": vars(a) | {"out": str(a.out)}, "rows": rows},
                                                    indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
