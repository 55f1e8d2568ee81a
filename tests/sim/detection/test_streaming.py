"""Streaming detectors: scalar and vectorised forms agree, ARL0 is measured and can be set by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.detection import streaming
from sim.detection.streaming import ADWIN, PageHinkley, Periodic, arl0, calibrate_arl0, first_alarm, make
from sim.errors import UserError


def _scalar_first(det, row: np.ndarray) -> int:
    for i, x in enumerate(row):
        if det.update(x):
            return i
    return -1


@pytest.mark.parametrize(("kind", "params"), [
    ("adwin", {"delta": 0.002}), ("adwin", {"delta": 0.5}), ("page_hinkley", {"threshold": 15.0}),
    ("page_hinkley", {"threshold": 10.0, "alpha": 0.999, "delta": 0.05}), ("periodic", {"period": 700}),
])
def test_vectorised_first_alarm_equals_scalar_detector(kind: str, params: dict) -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 2500))
    X[:6, 1200:] += 0.8                      # half the streams change, half do not
    X[6:9] = rng.random((3, 2500)) < 0.2     # Bernoulli error indicators
    vec = first_alarm(kind, X, **params)
    ref = np.array([_scalar_first(make(kind, **params), row) for row in X])
    np.testing.assert_array_equal(vec, ref)
    assert (vec[:6] >= 0).all()


def test_adwin_window_shrinks_to_the_new_regime() -> None:
    rng = np.random.default_rng(2)
    x = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
    det = ADWIN(delta=0.002)
    alarms = [i for i, v in enumerate(x) if det.update(v)]
    assert alarms and 3000 <= alarms[0] < 3200
    assert det.width < 1100                  # the old regime was dropped
    assert abs(det.mean - 0.5) < 0.06


def test_page_hinkley_resets_and_detects_a_decrease() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[rng.standard_normal(1000) + 1.0, rng.standard_normal(500) - 1.0]
    det = PageHinkley(threshold=80.0)
    alarms = [i for i, v in enumerate(x) if det.update(v)]
    assert alarms and 1000 <= alarms[0] < 1100
    assert det.n < 500


def test_periodic_dummy_ignores_data() -> None:
    det = Periodic(period=5, phase=2)
    hits = [i for i in range(20) if det.update(1e9)]
    assert hits == [2, 7, 12, 17]


@pytest.mark.parametrize(("kind", "target", "fixed"), [
    ("page_hinkley", 500.0, {"delta": 0.005}),
    ("adwin", 2000.0, {}),
])
def test_calibrated_threshold_hits_requested_arl0_on_fresh_streams(kind: str, target: float,
                                                                   fixed: dict) -> None:
    """Set by simulation on one set of change-free streams, the ARL0 holds on independent ones.

    Tolerance: 4 standard errors of the difference between the two exponential-MLE estimates.
    """
    rng = np.random.default_rng([11, len(kind)])
    S, T = 160, int(3 * target)
    params, fitted = calibrate_arl0(kind, target, rng.standard_normal((S, T)), **fixed)
    assert fitted == pytest.approx(target, rel=0.05)           # bisection converged on its own streams
    measured, se = arl0(kind, rng.standard_normal((S, T)), **params)
    fit_se = fitted / math.sqrt(S * (1 - math.exp(-T / target)))
    assert abs(measured - target) <= 4 * math.hypot(se, fit_se), (measured, se, params)


def test_default_parameters_report_measured_arl0() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 3000))
    a_ph, se_ph = arl0("page_hinkley", X, threshold=50.0)
    a_ad, _ = arl0("adwin", X, delta=0.002)
    assert 300 < a_ph < 5000 and se_ph > 0
    assert a_ad > a_ph                            # ADWIN's default delta is far more conservative
    assert arl0("periodic", X, period=700)[0] == 700


def test_larger_threshold_gives_larger_arl0() -> None:
    X = np.random.default_rng(6).standard_normal((80, 4000))
    vals = [arl0("page_hinkley", X, threshold=t)[0] for t in (10.0, 20.0, 40.0)]
    assert vals[0] < vals[1] < vals[2]
    vals = [arl0("adwin", X, delta=d)[0] for d in (1.0, 0.1, 0.001)]
    assert vals[0] < vals[1] < vals[2]


def test_bad_parameters_raise_user_error() -> None:
    with pytest.raises(UserError, match="delta"):
        ADWIN(delta=0.0)
    with pytest.raises(UserError, match="threshold"):
        PageHinkley(threshold=-1.0)
    with pytest.raises(UserError, match="unknown"):
        make("cusum2")
    X = np.random.default_rng(0).standard_normal((20, 200))
    with pytest.raises(UserError, match="ARL0 target"):
        calibrate_arl0("adwin", 50.0, X)
    assert set(streaming.DETECTORS) == set(streaming.TUNING)
