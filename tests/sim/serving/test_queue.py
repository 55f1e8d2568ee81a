"""The simulator's serving queue against queueing theory and against its own mechanisms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.serving import queue as serving
from sim.serving.queue import (
    SERVED,
    SHED,
    TIMED_OUT,
    ServiceCurve,
    ServingConfig,
    erlang_c,
    mmc_mean_wait,
    poisson_arrivals,
    simulate,
)

REPS = 25


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.8, 1.0, 1), (1.6, 1.0, 2), (3.0, 1.0, 4)])
def test_mean_wait_matches_erlang_c_within_a_confidence_interval(lam: float, mu: float, c: int) -> None:
    """M/M/c: exponential service, no batching, no limit. The theory lies in the 99% t-interval of the
    replication means (25 replications of 10,000 requests after a 1,000-request warm-up)."""
    curve = ServiceCurve(0.0, 1.0 / mu, "exponential")
    means = []
    for rep in range(REPS):
        rng = np.random.default_rng([rep, c])
        res = simulate(poisson_arrivals(lam, 11_000 / lam, rng), ServingConfig(workers=c), curve, rng)
        means.append(np.mean(res.wait[1000:]))
    means = np.asarray(means)
    half = stats.t.ppf(0.995, REPS - 1) * means.std(ddof=1) / np.sqrt(REPS)
    theory = mmc_mean_wait(lam, mu, c)
    assert abs(means.mean() - theory) <= half, (means.mean(), theory, half)


def test_erlang_c_closed_forms() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # 2 servers at 1 Erlang: 2 rho^2 / (1 + rho), rho = 1/2
    with pytest.raises(ValueError, match="offered load"):
        erlang_c(2, 2.0)


def test_batching_raises_capacity_when_each_call_has_a_fixed_cost() -> None:
    """5,000 req/s against 100 us per call + 150 us per request: one at a time needs 1.25 s of work per
    second (overload: sheds); batches amortise the call cost and keep up."""
    rng = np.random.default_rng(0)
    arrivals = poisson_arrivals(5000.0, 4.0, rng)
    curve = ServiceCurve(100e-6, 150e-6, "lognormal", cv=0.5)
    one = simulate(arrivals, ServingConfig(max_batch=1, queue_limit=500), curve, np.random.default_rng(1))
    many = simulate(arrivals, ServingConfig(max_batch=64, queue_limit=500), curve, np.random.default_rng(1))
    assert one.rate(SHED) > 0.1
    assert many.rate(SHED) == 0.0 and many.percentile(0.99, skip=1000) < 0.05


def test_queue_limit_sheds_and_timeout_drops_late_requests() -> None:
    arrivals = np.linspace(0.0, 1.0, 1001)  # 1,000 req/s against a 500 req/s server
    curve = ServiceCurve(0.0, 2e-3)
    shed = simulate(arrivals, ServingConfig(queue_limit=10), curve, np.random.default_rng(0))
    assert 0.4 < shed.rate(SHED) < 0.6 and np.nanmax(shed.wait) <= 10 * 2e-3 + 1e-12
    late = simulate(arrivals, ServingConfig(timeout_s=0.05), curve, np.random.default_rng(0))
    served = late.fate == SERVED
    assert late.rate(TIMED_OUT) > 0.4 and np.all(late.latency[served] <= 0.05)
    assert np.isinf(late.percentile(0.99))  # failures count as infinitely slow


def test_max_delay_holds_a_lone_request_then_serves_it() -> None:
    res = simulate(
        np.array([0.0, 0.5]),
        ServingConfig(max_batch=8, max_delay_s=0.01),
        ServiceCurve(0.0, 1e-3),
        np.random.default_rng(0),
    )
    np.testing.assert_allclose(res.start, [0.01, 0.51])
    np.testing.assert_allclose(res.latency, [0.011, 0.011])


def test_same_seed_same_result_and_calibration_fit() -> None:
    arrivals = poisson_arrivals(2000.0, 1.0, np.random.default_rng(5))
    sample = np.random.default_rng(6).gamma(4.0, 0.25e-3, 500)  # measured single-request seconds
    curve = ServiceCurve.from_measurements(sample, batch_rows=20.0, batch_s=20 / 8000)
    assert curve.mean(1) == pytest.approx(sample.mean())
    assert curve.mean(20) == pytest.approx(20 / 8000)
    cfg = ServingConfig(max_batch=64)
    a = simulate(arrivals, cfg, curve, np.random.default_rng(9)).summary()
    b = simulate(arrivals, cfg, curve, np.random.default_rng(9)).summary()
    assert a == b
    with pytest.raises(ValueError, match="sorted"):
        simulate(arrivals[::-1], cfg, curve, np.random.default_rng(0))


def test_tick_burst_beyond_capacity_turns_into_late_and_shed_predictions() -> None:
    """A top-of-the-hour burst: 20,000 scores in 1 s against ~10,000 req/s of capacity is late or shed;
    spread over a minute the same burst is all on time."""
    from sim.serving.queue import tick_outcome  # noqa: PLC0415

    curve = ServiceCurve.from_server(64, 64 / 10_000.0)
    cfg = ServingConfig(workers=1, max_batch=64, queue_limit=5000, timeout_s=2.0)
    burst = tick_outcome(20_000, 1.0, cfg, curve, np.random.default_rng(0), deadline_s=0.5)
    spread = tick_outcome(20_000, 60.0, cfg, curve, np.random.default_rng(0), deadline_s=0.5)
    assert burst["on_time"] < 0.8 and burst["shed"] > 0.2 and burst["late"] > 0
    assert spread["on_time"] == 1.0 and spread["p99_s"] < 0.05
    assert tick_outcome(0, 1.0, cfg, curve, np.random.default_rng(0), deadline_s=0.5)["on_time"] == 1.0


def test_idle_gaps_are_zero_while_busy_and_measure_idle_time_otherwise() -> None:
    arrival = np.array([0.0, 1.0, 1.5, 5.0])
    finish = np.array([2.0, 3.0, np.nan, 5.5])  # the third was never served
    gaps = serving.idle_gaps(arrival, finish)
    assert np.isinf(gaps[0]) and gaps[1] == 0.0 and gaps[2] == 0.0 and gaps[3] == pytest.approx(2.0)


def test_gap_jitter_draws_from_the_bin_of_each_idle_gap() -> None:
    rng = np.random.default_rng(3)
    gaps = rng.exponential(0.005, 4000)
    jitter = np.where(gaps > 0.002, 0.008, 0.0005) + rng.uniform(0, 1e-4, 4000)  # long sleeps cost more
    gj = serving.GapJitter.fit(gaps, jitter, bins=4)
    assert len(gj.edges) == 4 and sum(len(s) for s in gj.samples) == 4000
    short = gj.sample(np.full(1000, 0.0001), rng)
    long_ = gj.sample(np.full(1000, 0.05), rng)
    assert short.max() < 0.001 and long_.min() > 0.007
    # in the queue: busy periods (high load) get less jitter than a trickle of requests
    curve = serving.ServiceCurve(0.0, 0.0008)
    cfg = serving.ServingConfig(workers=1)
    med = {}
    for rate in (50.0, 1000.0):
        arr = serving.poisson_arrivals(rate, 20.0, np.random.default_rng(1))
        res = serving.simulate(arr, cfg, curve, np.random.default_rng(2), gj)
        med[rate] = float(np.median(res.jitter))
    assert med[1000.0] < med[50.0]
    with pytest.raises(ValueError):
        serving.GapJitter.fit(np.zeros(3), np.zeros(2))
