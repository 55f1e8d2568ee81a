"""The impact estimators on synthetic staggered panels with a known effect: CS unbiased and covering, naive
and TWFE visibly biased when there is a trend and effects grow with exposure; the influence-function SEs."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from sim.impact import estimators as est
from sim.impact import synthetic


def _study(design: synthetic.Design, reps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"naive": [], "twfe": [], "cs": []}
    for _ in range(reps):
        for key, e in zip(out, est.all_estimators(synthetic.panel(design, rng)), strict=True):
            out[key].append((e.value, e.truth, e.covers, e.se))
    return {k: np.array(v, float) for k, v in out.items()}


def test_cs_covers_and_naive_twfe_are_biased() -> None:
    """80 replications: CS coverage's 99% Clopper-Pearson interval holds 0.95, its mean bias is within 3 SEs
    of 0; naive and TWFE mean biases are more than 10 Monte Carlo SEs away from 0 (trend; growing effects)."""
    res = _study(synthetic.Design(), reps=80, seed=7)
    cs = res["cs"]
    k = int(cs[:, 2].sum())
    lo, hi = stats.binomtest(k, len(cs)).proportion_ci(0.99)
    assert lo <= 0.95 <= hi, f"CS coverage {k}/{len(cs)}"
    bias = cs[:, 0] - cs[:, 1]
    assert abs(bias.mean()) < 3 * bias.std(ddof=1) / math.sqrt(len(bias))
    for key in ("naive", "twfe"):
        b = res[key][:, 0] - res[key][:, 1]
        assert abs(b.mean()) > 10 * b.std(ddof=1) / math.sqrt(len(b)), key
        assert res[key][:, 2].mean() < 0.5, f"{key} CI should rarely cover under this design"
    assert (res["naive"][:, 0] - res["naive"][:, 1]).mean() > 0  # the upward trend counts as effect
    assert (res["twfe"][:, 0] - res["twfe"][:, 1]).mean() < 0  # already-treated controls absorb growth


def test_cs_standard_error_matches_the_spread_of_estimates() -> None:
    res = _study(synthetic.Design(), reps=60, seed=3)
    cs = res["cs"]
    ratio = np.mean(cs[:, 3]) / np.std(cs[:, 0] - cs[:, 1], ddof=1)
    assert 0.75 < ratio < 1.3


def test_without_trend_or_growth_all_three_agree_with_the_truth() -> None:
    design = replace(synthetic.Design(), trend=0.0, shock_sd=0.0, effect_growth=0.0)
    panel = synthetic.panel(design, np.random.default_rng(5))
    for e in est.all_estimators(panel):
        assert abs(e.value - e.truth) < 4 * e.se, e


def test_never_treated_controls_and_event_time_profile() -> None:
    rng = np.random.default_rng(11)
    design = synthetic.Design()
    fits = [est.callaway_santanna(synthetic.panel(design, rng), control="never") for _ in range(40)]
    assert sum(bool(f.covers) for f in fits) >= 33  # P(< 33 of 40 | coverage 0.95) < 0.01
    cs = fits[0]
    prof = cs.by_event_time
    assert -1 not in prof  # the base period g - 1 is the reference, not an estimate
    pre = [v for k, v in prof.items() if k < -1]
    assert all(lo <= 0.0 <= hi for _, lo, hi, _ in pre[-3:])  # parallel trends hold in the design
    assert prof[5][3] == pytest.approx(0.5 + 0.15 * 5)


def test_a_site_live_from_the_first_period_has_no_pre_period_for_cs() -> None:
    panel = synthetic.panel(synthetic.Design(cohorts=(0, 10)), np.random.default_rng(1))
    cells = est.group_time(panel)
    assert set(cells.g) == {10}


def test_unknown_control_is_refused() -> None:
    with pytest.raises(ValueError, match="control"):
        est.group_time(synthetic.panel(synthetic.Design(), np.random.default_rng(0)), control="all")
