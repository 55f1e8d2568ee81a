"""Performance estimation without labels: confidence-based (in the spirit of NannyML's CBPE).

If a model's probabilities are calibrated, ``P(y = 1 | p) = p``, then for alerts at ``p >= threshold`` the
expected confusion matrix of a window is known before any label arrives::

    E[TP] = sum(p over alerts)      E[FP] = sum(1 - p over alerts)
    E[FN] = sum(p over non-alerts)  E[TN] = sum(1 - p over non-alerts)

giving expected precision (exact: the alert count is known), accuracy (exact) and recall and F1 (ratios of
expectations, as in NannyML). Uncertainty: labels are independent Bernoulli(p), so the realised metrics
can be drawn by simulation (``n_draws``); their 2.5-97.5 percentiles form the interval, and for precision
and accuracy there is also the closed-form Poisson-binomial standard error.

Calibration: scores are first mapped through an isotonic regression fitted on a labelled reference
(``CBPE.fit``). The estimate stays right under covariate shift (the score distribution moves but
``P(y | score)`` does not) and is blind to concept drift (``P(y | score)`` changes): it cannot replace
delayed labels, only bridge the wait for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression

from sim.errors import UserError

METRICS = ("precision", "recall", "accuracy", "f1")


def _check(scores: np.ndarray, what: str) -> np.ndarray:
    p = np.asarray(scores, dtype=np.float64).ravel()
    if p.size == 0 or np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise UserError(f"{what} must be a non-empty array of probabilities in [0, 1] without NaN")
    return p


def realised(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall, accuracy and F1 of alerts ``scores >= threshold`` against 0/1 ``labels``."""
    s = np.asarray(scores).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    a = s >= threshold
    tp, fp, fn = float((a & y).sum()), float((a & ~y).sum()), float((~a & y).sum())
    tn = float(len(y)) - tp - fp - fn
    return _metrics(tp, fp, fn, tn)


def _metrics(tp: object, fp: object, fn: object, tn: object) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.divide(tp, tp + fp)
        rec = np.divide(tp, tp + fn)
        acc = np.divide(tp + tn, tp + fp + fn + tn)
        f1 = np.divide(2 * tp, 2 * tp + fp + fn)
    return {"precision": prec, "recall": rec, "accuracy": acc, "f1": f1}


@dataclass
class Estimate:
    """Expected metrics of one window, their intervals, and the window's size and alert count."""

    n: int
    alerts: int
    expected: dict[str, float]
    se: dict[str, float]
    interval: dict[str, tuple[float, float]] = field(default_factory=dict)


def expected(p: np.ndarray, alerts: np.ndarray, *, rng: np.random.Generator | None = None,
             n_draws: int = 0) -> Estimate:
    """Expected metrics given calibrated probabilities ``p`` [n] and the boolean ``alerts`` [n] raised.

    ``n_draws`` > 0 (with ``rng``) adds simulated 95% intervals for every metric; raises UserError when
    ``n_draws`` is given without ``rng``.
    """
    a = np.asarray(alerts, dtype=bool)
    pa, pn = p[a], p[~a]
    k = int(a.sum())
    exp = _metrics(pa.sum(), (1 - pa).sum(), pn.sum(), (1 - pn).sum())
    se = {"precision": float(np.sqrt((pa * (1 - pa)).sum()) / k) if k else np.nan,
          "accuracy": float(np.sqrt((p * (1 - p)).sum()) / p.size)}
    out = Estimate(n=int(p.size), alerts=k, expected={m: float(v) for m, v in exp.items()}, se=se)
    if n_draws:
        if rng is None:
            raise UserError("n_draws > 0 needs an explicit numpy Generator (rng=...)")
        draws: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
        chunk = max(1, 4_000_000 // p.size)
        for start in range(0, n_draws, chunk):
            y = rng.random((min(chunk, n_draws - start), p.size)) < p
            dtp, dfn = (y & a).sum(axis=1), (y & ~a).sum(axis=1)
            for m, v in _metrics(dtp, k - dtp, dfn, (p.size - k) - dfn).items():
                draws[m].append(v)
        for m in METRICS:
            v = np.concatenate(draws[m])
            v = v[~np.isnan(v)]
            out.interval[m] = ((float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))) if v.size
                               else (np.nan, np.nan))
    return out


def estimate(proba: np.ndarray, threshold: float, *, rng: np.random.Generator | None = None,
             n_draws: int = 0) -> Estimate:
    """Expected precision, recall, accuracy and F1 of alerts ``proba >= threshold`` (calibrated proba).

    Raises UserError on probabilities outside [0, 1] or NaN.
    """
    p = _check(proba, "proba")
    return expected(p, p >= threshold, rng=rng, n_draws=n_draws)


class CBPE:
    """Calibrate scores on a labelled reference, then estimate a window's performance without labels."""

    def __init__(self, threshold: float, calibrate: bool = True):
        if not 0 <= threshold <= 1:
            raise UserError(f"CBPE threshold (={threshold}) must be in [0, 1]")
        self.threshold = float(threshold)
        self.calibrate = calibrate
        self._iso: IsotonicRegression | None = None
        self.reference: Estimate | None = None

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> CBPE:
        """Fit the isotonic calibration on reference ``scores`` and 0/1 ``labels``; returns self."""
        s = _check(scores, "reference scores")
        y = np.asarray(labels).ravel()
        if y.shape != s.shape or not np.isin(y, (0, 1)).all():
            raise UserError(f"reference labels (shape={y.shape}) must be 0/1 and match the scores "
                            f"(shape={s.shape})")
        if self.calibrate:
            self._iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        self.reference = self.estimate(s)
        return self

    def proba(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``scores`` (unchanged when calibration is off)."""
        s = _check(scores, "scores")
        return self._iso.predict(s) if self._iso is not None else s

    def estimate(self, scores: np.ndarray, *, rng: np.random.Generator | None = None,
                 n_draws: int = 0) -> Estimate:
        """Expected metrics of a window of raw ``scores``; alerts are ``raw score >= threshold``."""
        s = _check(scores, "scores")
        return expected(self.proba(s), s >= self.threshold, rng=rng, n_draws=n_draws)
