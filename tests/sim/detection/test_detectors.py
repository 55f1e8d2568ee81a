"""Batch drift statistics: exact vs scipy, nominal false-alarm rates on change-free data, power, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binom, ks_2samp, wasserstein_distance

from sim.detection.detectors import PSI_EPS, STATS, Reference, calibrate, compare
from sim.errors import UserError


def _data(rng: np.random.Generator, n: int, m: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    a = rng.standard_normal((n, 3))
    b = rng.standard_normal((m, 3)) + shift
    a[: n // 4, 2] = np.round(a[: n // 4, 2], 1)     # ties inside and across the samples
    b[: m // 4, 2] = np.round(b[: m // 4, 2], 1)
    return a, b


@pytest.mark.parametrize(("n", "m"), [(400, 400), (500, 170), (97, 1000)])
def test_statistics_match_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    a, b = _data(rng, n, m, shift=0.2)
    ref = Reference(a, bins=10)
    c = ref.compare(b)
    for k in range(3):
        r = ks_2samp(a[:, k], b[:, k], method="asymp")
        assert c["ks"][k] == pytest.approx(r.statistic, abs=1e-12)
        assert c["ks_pvalue"][k] == pytest.approx(r.pvalue, rel=0.05, abs=1e-3)
        w = wasserstein_distance(a[:, k], b[:, k]) / a[:, k].std()
        assert c["wasserstein"][k] == pytest.approx(w, rel=1e-9)
        e = ref.edges[k]                              # bins (e_i-1, e_i], as the monitor's quantile bins
        p = np.diff(np.r_[0, (a[:, k, None] <= e).sum(axis=0), n]) / n
        q = np.diff(np.r_[0, (b[:, k, None] <= e).sum(axis=0), m]) / m
        pe, qe = np.maximum(p, PSI_EPS), np.maximum(q, PSI_EPS)
        assert c["psi"][k] == pytest.approx(((qe - pe) * np.log(qe / pe)).sum(), rel=1e-9)
        assert c["js"][k] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-7)


def test_threads_give_identical_results_and_float32_works() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5000, 6)).astype(np.float32)
    b = (rng.standard_normal((4000, 6)) * 1.2).astype(np.float32)
    ref = Reference(a)
    one, two = ref.compare(b), Reference(a, threads=2).compare(b, threads=2)
    for s in (*STATS, "ks_pvalue"):
        np.testing.assert_array_equal(one[s], two[s])
    assert list(one.to_frame().columns) == [*STATS, "ks_pvalue"]


def test_change_free_alarm_rate_within_binomial_interval_of_level() -> None:
    """Every test with a nominal level alarms on change-free windows at that level (99.9% binomial band)."""
    level, features, seeds, n_ref, window = 0.05, 20, 30, 1000, 100
    alarms: dict[str, int] = {}
    for seed in range(seeds):
        rng = np.random.default_rng([7, seed])
        X = rng.standard_normal((n_ref, features))
        thr = calibrate(X, window, level=level, n_resamples=100, rng=rng)
        comp = Reference(X).compare(rng.standard_normal((window, features)))
        for s, hit in thr.alarms(comp).items():
            alarms[s] = alarms.get(s, 0) + int(hit.sum())
    trials = seeds * features
    lo, hi = binom.ppf(0.0005, trials, level), binom.isf(0.0005, trials, level)
    assert set(alarms) == {*STATS, "ks_p"}
    for s, k in alarms.items():
        assert lo <= k <= hi, f"{s}: {k}/{trials} alarms, expected {lo:.0f}..{hi:.0f} at level {level}"


def test_calibrated_tests_detect_a_half_sd_shift() -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((2000, 10))
    thr = calibrate(X, 200, level=0.01, n_resamples=100, rng=rng)
    comp = Reference(X).compare(rng.standard_normal((200, 10)) + 0.5)
    for s, hit in thr.alarms(comp).items():
        assert hit.mean() >= 0.9, s


def test_larger_shift_gives_larger_statistics() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20000, 4))
    ref = Reference(X)
    prev = None
    for shift in (0.0, 0.25, 0.5, 1.0):
        c = ref.compare(rng.standard_normal((20000, 4)) + shift)
        cur = np.array([c[s].mean() for s in STATS])
        if prev is not None:
            assert (cur > prev).all()
        prev = cur


def test_bad_input_raises_user_error() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    with pytest.raises(UserError, match="NaN"):
        compare(X, np.full((10, 3), np.nan))
    with pytest.raises(UserError, match="bins"):
        Reference(X, bins=1)
    with pytest.raises(UserError, match="columns"):
        Reference(X).compare(X[:, :2])
    with pytest.raises(UserError, match="level"):
        calibrate(X, 20, level=0.7, rng=rng)
    with pytest.raises(UserError, match="n_resamples"):
        calibrate(X, 20, level=0.01, n_resamples=50, rng=rng)


@pytest.mark.parametrize("case", range(6))
def test_screened_ks_on_large_samples_is_exact(case: int) -> None:
    """The grid-screened KS equals the all-points computation (and scipy) on large samples."""
    from sim.detection.detectors import _ks_statistic  # noqa: PLC0415 - private helper under test

    rng = np.random.default_rng([13, case])
    n, m = 40_000 + 7919 * case, 25_000 + 3 * case
    a = rng.standard_normal(n).astype(np.float32)
    b = (rng.standard_normal(m) + (0.0, 0.003, 0.03)[case % 3]).astype(np.float32)
    if case >= 3:
        a, b = np.round(a, 2), np.round(b, 2)
    got = _ks_statistic(np.sort(a), np.sort(b), grid_points=256)
    assert got == pytest.approx(ks_2samp(a, b, method="asymp").statistic, abs=1e-12)


def test_binned_stats_from_histograms_match_row_statistics() -> None:
    from sim.detection.detectors import binned_stats  # noqa: PLC0415

    rng = np.random.default_rng(17)
    a, b = rng.standard_normal((3000, 4)), rng.standard_normal((800, 4)) * 1.3
    ref = Reference(a)
    comp = ref.compare(b)
    count = [[np.diff(np.r_[0, (x[:, k, None] <= ref.edges[k]).sum(axis=0), len(x)]) for k in range(4)]
             for x in (a, b)]
    got = binned_stats(np.array(count[0]), np.array(count[1]))
    np.testing.assert_allclose(got["psi"], comp["psi"], rtol=1e-12)
    np.testing.assert_allclose(got["js"], comp["js"], rtol=1e-12)
    assert np.isnan(binned_stats(np.ones((1, 5)), np.zeros((1, 5)))["psi"]).all()
