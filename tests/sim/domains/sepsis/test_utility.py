"""PhysioNet/CinC 2019 utility with the official parameters, on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from sim.domains.sepsis.utility import UtilityAccumulator, row_utilities


def _patient(pred_hours: set[int], t_sepsis: int | None, n: int = 40) -> tuple:
    t = np.arange(n, dtype=float)
    septic = np.full(n, t_sepsis is not None)
    tau = t - (t_sepsis if t_sepsis is not None else 0)
    pred = np.array([h in pred_hours for h in range(n)])
    return tau, septic, pred


def test_official_piecewise_values() -> None:
    tau = np.array([-20.0, -12, -9, -6, -3, 0, 3, 4])
    septic = np.ones_like(tau, dtype=bool)
    obs_pos, _, _ = row_utilities(tau, septic, np.ones_like(septic))
    obs_neg, _, _ = row_utilities(tau, septic, np.zeros_like(septic))
    # TP: tau <= -6: max((tau + 12)/6, -0.05); -6 < tau <= 3: (3 - tau)/9; later: 0
    np.testing.assert_allclose(obs_pos, [-0.05, 0.0, 0.5, 1.0, 6 / 9, 3 / 9, 0.0, 0.0])
    # FN: tau <= -6: 0; -6 < tau <= 3: -2 (tau + 6)/9; later: 0
    np.testing.assert_allclose(obs_neg, [0, 0, 0, 0, -2 * 3 / 9, -2 * 6 / 9, -2 * 9 / 9, 0])
    fp, _, _ = row_utilities(np.zeros(3), np.zeros(3, bool), np.ones(3, bool))
    np.testing.assert_allclose(fp, -0.05)


def test_normalised_utility_is_one_for_best_and_zero_for_inaction() -> None:
    best, none = UtilityAccumulator(), UtilityAccumulator()
    for t_sep in (20, 25):
        tau, septic, _ = _patient(set(), t_sep)
        best_pred = (tau >= -12) & (tau <= 3)
        best.add(tau, septic, best_pred, np.ones(len(tau)))
        none.add(tau, septic, np.zeros(len(tau), bool), np.ones(len(tau)))
    tau, septic, _ = _patient(set(), None)
    best.add(tau, septic, np.zeros(len(tau), bool), np.ones(len(tau)))
    none.add(tau, septic, np.zeros(len(tau), bool), np.ones(len(tau)))
    assert best.normalised() == pytest.approx(1.0)
    assert none.normalised() == pytest.approx(0.0)


def test_weights_stand_for_unsimulated_patients() -> None:
    """One non-septic patient with weight 3 scores like three identical patients with weight 1."""
    a, b = UtilityAccumulator(), UtilityAccumulator()
    tau_s, sep_s, _ = _patient(set(), 20)
    pred_s = tau_s >= -4
    tau_n, sep_n, _ = _patient(set(), None)
    pred_n = np.arange(len(tau_n)) % 7 == 0
    a.add(tau_s, sep_s, pred_s, np.ones(len(tau_s)))
    a.add(tau_n, sep_n, pred_n, np.full(len(tau_n), 3.0))
    b.add(tau_s, sep_s, pred_s, np.ones(len(tau_s)))
    for _ in range(3):
        b.add(tau_n, sep_n, pred_n, np.ones(len(tau_n)))
    assert a.normalised() == pytest.approx(b.normalised())
    assert 0 < a.normalised() < 1
