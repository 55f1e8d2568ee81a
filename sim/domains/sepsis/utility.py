"""PhysioNet/CinC Challenge 2019 normalised utility, with the official parameters.

Reyna et al., "Early Prediction of Sepsis From Clinical Data: The PhysioNet/Computing in Cardiology
Challenge 2019", Crit Care Med 2020; official ``evaluate_sepsis_score.py``: dt_early = -12 h,
dt_optimal = -6 h, dt_late = +3 h, max_u_tp = 1, min_u_fn = -2, u_fp = -0.05, u_tn = 0. ``t_sepsis`` is the
onset (the first positive label + 6 h); hours after ``t_sepsis + 3`` of a septic patient score 0.

Rows here are hourly predictions; ``weight`` lets sampled non-septic patients stand for the ones not
simulated (see the domain's sampling note). The score is a ratio of sums, so it can be accumulated.
"""

from __future__ import annotations

import numpy as np

DT_EARLY, DT_OPTIMAL, DT_LATE = -12.0, -6.0, 3.0
MAX_U_TP, MIN_U_FN, U_FP, U_TN = 1.0, -2.0, -0.05, 0.0


def row_utilities(tau: np.ndarray, septic: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-row utility of the predictions, of the best predictor and of inaction.

    ``tau`` = hour - t_sepsis (ignored for non-septic rows).
    """
    m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY)
    b1 = -m1 * DT_EARLY
    m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL)
    b2 = -m2 * DT_LATE
    m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL)
    b3 = -m3 * DT_OPTIMAL
    early = tau <= DT_OPTIMAL
    mid = (tau > DT_OPTIMAL) & (tau <= DT_LATE)
    tp_early = np.maximum(m1 * tau + b1, U_FP)
    tp_mid = m2 * tau + b2
    fn_mid = m3 * tau + b3
    u_if_pred = np.where(early, tp_early, np.where(mid, tp_mid, 0.0))
    u_if_not = np.where(mid, fn_mid, 0.0)
    best_pred = (tau >= DT_EARLY) & (tau <= DT_LATE)
    u_sep_obs = np.where(pred, u_if_pred, u_if_not)
    u_sep_best = np.where(best_pred, u_if_pred, u_if_not)
    obs = np.where(septic, u_sep_obs, np.where(pred, U_FP, U_TN))
    best = np.where(septic, u_sep_best, U_TN)
    inaction = np.where(septic, u_if_not, U_TN)
    return obs, best, inaction


class UtilityAccumulator:
    """Weighted sums of observed, best and inaction utility; ``normalised()`` gives U_norm."""

    def __init__(self) -> None:
        self.obs = self.best = self.inaction = 0.0

    def add(self, tau: np.ndarray, septic: np.ndarray, pred: np.ndarray, weight: np.ndarray) -> None:
        o, b, i = row_utilities(tau, septic, pred)
        self.obs += float(np.dot(o, weight))
        self.best += float(np.dot(b, weight))
        self.inaction += float(np.dot(i, weight))

    def normalised(self) -> float:
        d = self.best - self.inaction
        return (self.obs - self.inaction) / d if d != 0 else float("nan")
