"""Maintenance model metrics beside the business KPIs.

- Alerts: precision = true alerts / alerts, where an alert is true if a degradation failure of that unit's
  current life follows within the horizon; recall = failures with a true alert before them / failures.
- Lead time: days from the first true alert of a life to its (would-be) failure.
- RUL: RMSE and the PHM08 / C-MAPSS asymmetric score with ``d = predicted - true`` RUL:
  ``s = exp(-d / 13) - 1`` if ``d < 0`` else ``exp(d / 10) - 1`` (late predictions cost more). We report the
  sum over test units (as in the PHM08 challenge) and the mean (comparable across test-set sizes).
"""

from __future__ import annotations

import numpy as np


def phm08_score(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-unit PHM08 score terms for predicted and true RUL (same units, e.g. cycles or days)."""
    d = np.asarray(pred, dtype=float) - np.asarray(true, dtype=float)
    return np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)


def rul_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """RMSE, PHM08 score (sum and mean) and mean error of RUL predictions."""
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    s = phm08_score(pred, true)
    return {
        "rul_rmse": float(np.sqrt(np.mean((pred - true) ** 2))),
        "phm08_score_sum": float(s.sum()),
        "phm08_score_mean": float(s.mean()),
        "rul_bias": float(np.mean(pred - true)),
    }


def alert_precision_recall(
    alerts_true: float, alerts: float, failures_predicted: float, failures: float
) -> tuple[float, float]:
    """(precision, recall) of failure-within-horizon alerts; NaN where the denominator is zero."""
    prec = alerts_true / alerts if alerts > 0 else float("nan")
    rec = failures_predicted / failures if failures > 0 else float("nan")
    return prec, rec


def lead_time_summary(leads: np.ndarray) -> dict[str, float]:
    """Median, p10, p90 and max of lead times (days); NaN when empty."""
    leads = np.asarray(leads, dtype=float)
    if len(leads) == 0:
        return {k: float("nan") for k in ("median", "p10", "p90", "max")}
    return {
        "median": float(np.median(leads)),
        "p10": float(np.percentile(leads, 10)),
        "p90": float(np.percentile(leads, 90)),
        "max": float(leads.max()),
    }


def model_headline(extra: dict) -> dict[str, float]:
    """Model quality KPIs for ``summary.json``: AUROC from the model card, RUL RMSE and PHM08 score."""
    rul, card = extra.get("rul", {}), extra.get("model_card", {})
    nan = float("nan")
    return {
        "model_auroc": float(card.get("auroc", nan)),
        "rul_rmse_days": float(rul.get("rul_rmse", nan)),
        "phm08_score_mean": float(rul.get("phm08_score_mean", nan)),
        "phm08_score_sum": float(rul.get("phm08_score_sum", nan)),
    }
