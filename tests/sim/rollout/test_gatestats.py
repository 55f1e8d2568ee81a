"""Gate statistics: the uncorrected gate's false-rollback rate over 25 looks matches the binomial value; the
mSPRT gate stays at or below alpha over any number of looks; both catch a large regression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.rollout import gatestats as gs
from sim.rollout import sequential

REPS = 20_000  # a binomial SE of ~0.003 on a rate near 0.72: a wrong design or formula fails


def _ci(rate: float, reps: int, level: float = 0.999) -> tuple[float, float]:
    return stats.binomtest(round(rate * reps), reps).proportion_ci(level)


def test_a_a_fixed_gate_checked_25_times_matches_the_binomial_value() -> None:
    expected = gs.false_rollback_fixed(0.05, 25)
    assert expected == pytest.approx(0.7226, abs=1e-4)
    r = gs.summarise(gs.GateDesign(kind="fixed", alpha=0.05, looks=25), 0.0, REPS, np.random.default_rng(1))
    lo, hi = _ci(r["rollback_rate"], REPS)
    assert lo <= expected <= hi, r


def test_a_a_cumulative_gate_is_inflated_but_not_binomial() -> None:
    r = gs.summarise(gs.GateDesign(kind="cumulative", looks=25), 0.0, REPS, np.random.default_rng(2))
    lo, hi = _ci(r["rollback_rate"], REPS)
    assert lo > 0.05 * 3  # repeated looks at growing data: several times alpha
    assert hi < gs.false_rollback_fixed(0.05, 25)  # correlated looks: below the independent-looks value


@pytest.mark.parametrize("looks", [25, 200])
def test_a_a_msprt_gate_stays_at_or_below_alpha_over_any_number_of_looks(looks) -> None:
    design = gs.GateDesign(kind="msprt", alpha=0.05, looks=looks, n_per_look=50, tau=0.2)
    r = gs.summarise(design, 0.0, REPS, np.random.default_rng(3))
    lo, _ = _ci(r["rollback_rate"], REPS)
    assert lo <= 0.05, r


def test_a_b_regression_is_caught_and_costs_cases_and_time() -> None:
    for kind in gs.KINDS:
        r = gs.summarise(gs.GateDesign(kind=kind), -0.1, 4000, np.random.default_rng(4))
        assert r["missed_regression_rate"] < 0.01, r
        assert 0 < r["cases_exposed"] < 25 * 200
    fast = gs.GateDesign(kind="msprt", promote_margin=0.05)
    early = gs.summarise(fast, 0.0, 4000, np.random.default_rng(5))
    late = gs.summarise(gs.GateDesign(kind="msprt"), 0.0, 4000, np.random.default_rng(5))
    assert early["days_to_full_rollout"] < late["days_to_full_rollout"] == 25 * 7.0


def test_confidence_sequence_and_p_values_are_consistent() -> None:
    xbar, n, s2, t2, a = np.array([0.0, 0.05, -0.2]), np.array([100, 400, 900]), 1.0, 0.01, 0.05
    r = sequential.radius(n, s2, t2, a)
    outside = np.abs(xbar) > r
    assert (sequential.decide(xbar, n, 0.0, s2, t2, alpha=a) != 0).tolist() == outside.tolist()
    p = sequential.always_valid_p(xbar, n, 0.0, s2, t2)
    assert np.all(np.diff(p) <= 0) and np.all((p > 0) & (p <= 1))
    assert np.isinf(sequential.radius(0, s2, t2, a))


def test_bad_design_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        gs.GateDesign(kind="bayes")
    with pytest.raises(ValueError, match="invalid"):
        gs.GateDesign(alpha=1.5)
