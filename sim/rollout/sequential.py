"""Always-valid sequential tests: the mixture sequential probability ratio test (mSPRT) with a normal mixture.

For a running mean ``xbar`` of ``n`` observations with variance ``sigma2`` and the null value ``theta0``, the
mixture likelihood ratio over a N(theta0, tau^2) prior on the effect is (Robbins 1970; Johari et al. 2017)

    Lambda_n = sqrt(sigma2 / s) * exp(n^2 tau^2 (xbar - theta0)^2 / (2 sigma2 s)),  s = sigma2 + n tau^2

``Lambda`` is a martingale under the null, so by Ville's inequality ``P(sup_n Lambda_n >= 1/alpha) <= alpha``:
rejecting whenever ``Lambda_n >= 1/alpha`` keeps the error at most ``alpha`` however often one looks, and
``p_n = min(1, 1 / max_{k<=n} Lambda_k)`` is an always-valid p-value. Inverting the test gives a confidence
sequence ``xbar +- radius(n)`` that holds at all ``n`` simultaneously with probability ``1 - alpha``.
All functions are vectorised over numpy arrays.
"""

from __future__ import annotations

import numpy as np


def log_lambda(xbar, n, theta0: float, sigma2, tau2: float):
    """log of the mixture likelihood ratio; ``n`` may be 0 (gives 0)."""
    xbar, n, sigma2 = np.asarray(xbar, float), np.asarray(n, float), np.asarray(sigma2, float)
    s = sigma2 + n * tau2
    return 0.5 * np.log(sigma2 / s) + (n**2) * tau2 * (xbar - theta0) ** 2 / (2.0 * sigma2 * s)


def always_valid_p(xbar, n, theta0: float, sigma2, tau2: float, *, axis: int = -1):
    """Always-valid p-values along ``axis`` (the looks): ``min(1, 1 / running max of Lambda)``."""
    lam = np.exp(np.minimum(log_lambda(xbar, n, theta0, sigma2, tau2), 700.0))
    if lam.ndim == 0:
        return np.minimum(1.0, 1.0 / lam)
    return np.minimum(1.0, 1.0 / np.maximum.accumulate(lam, axis=axis))


def radius(n, sigma2, tau2: float, alpha: float):
    """Half-width of the (1 - alpha) confidence sequence after ``n`` observations (``inf`` at ``n = 0``)."""
    n, sigma2 = np.asarray(n, float), np.asarray(sigma2, float)
    s = sigma2 + n * tau2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 2.0 * sigma2 * s / (n**2 * tau2) * np.log(np.sqrt(s / sigma2) / alpha)
    return np.where(n > 0, np.sqrt(r2), np.inf)


def decide(xbar, n, theta0: float, sigma2, tau2: float, *, alpha: float):
    """-1 where the data show the mean below ``theta0``, +1 above, 0 not yet decided (mSPRT at ``alpha``)."""
    hit = log_lambda(xbar, n, theta0, sigma2, tau2) >= np.log(1.0 / alpha)
    return np.where(hit, np.sign(np.asarray(xbar, float) - theta0), 0).astype(int)
