"""Gate statistics: false-rollback rate (A/A), missed-regression rate (A/B), days to full rollout and cases
exposed to the new model, for an uncorrected gate (each look tests its own window), a dashboard gate (each
look tests all data so far) and the always-valid mSPRT gate, with and without early promotion.

A release is watched for ``--looks`` weekly looks with ``--n-per-look`` cases between looks; effects are in
standard deviations of one case's KPI difference (new minus old; negative = regression). Prints a table and
the analytic value of the uncorrected gate, writes ``results/gate-stats/gate_stats.json``.

    python -m perf.gate_stats [--reps 20000] [--looks 25] [--n-per-look 200] [--alpha 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sim.rollout import gatestats as gs

EFFECTS = [0.0, -0.05, -0.1, -0.2]


def designs(looks: int, n: int, alpha: float) -> dict[str, gs.GateDesign]:
    return {
        "uncorrected, each look its own window": gs.GateDesign("fixed", alpha, looks, n),
        "uncorrected, all data so far": gs.GateDesign("cumulative", alpha, looks, n),
        "mSPRT (always valid)": gs.GateDesign("msprt", alpha, looks, n, tau=0.1),
        "mSPRT + promote when CS > -0.05": gs.GateDesign("msprt", alpha, looks, n, tau=0.1,
                                                          promote_margin=0.05),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20000)
    p.add_argument("--looks", type=int, default=25)
    p.add_argument("--n-per-look", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("results/gate-stats"))
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    named = designs(a.looks, a.n_per_look, a.alpha)
    rows = []
    for i, (name, d) in enumerate(named.items()):
        rows += [{"gate": name, **r} for r in gs.table([d], EFFECTS, a.reps, a.seed + i)]
    print(f"{a.reps} replications per cell, {a.looks} weekly looks, {a.n_per_look} cases per look, "
          f"alpha {a.alpha}; effect in SDs of one case (0 = A/A)")
    head = f"{'effect':>7}{'rolled back':>13}{'missed':>9}{'days to full':>14}{'cases exposed':>15}"
    print(f"{'gate':<40}{head}")
    for r in rows:
        missed = "" if r["effect"] == 0 else f"{r['missed_regression_rate']:.3f}"
        rate = f"{r['rollback_rate']:>9.3f}±{1.96 * r['rollback_rate_se']:.3f}"
        print(f"{r['gate']:<40}{r['effect']:>7.2f}{rate}"
              f"{missed:>9}{r['days_to_full_rollout']:>14.1f}{r['cases_exposed']:>15.0f}")
    exact = gs.false_rollback_fixed(a.alpha, a.looks)
    print(f"analytic A/A false-rollback rate of the uncorrected windowed gate: 1 - (1 - {a.alpha})^{a.looks} "
          f"= {exact:.4f}; mSPRT nominal level {a.alpha}")
    print(f"{time.perf_counter() - t0:.2f} s")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gate_stats.json").write_text(json.dumps({"args": vars(a) | {"out": str(a.out)}, "rows": rows,
                                                       "analytic_fixed": exact}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
