"""The ``[serving]`` engine section: a domain's scoring traffic goes through a simulated scoring service.

When ``enabled``, a domain calls :meth:`Serving.deliver` once per scoring tick with the rows it scores (their
sites and sampling weights). The tick's real-world requests are ``sum(weight) * requests_per_row`` (times
``surge_factor`` on surge days); they arrive uniformly over ``spread_s`` seconds at a service of ``workers``
workers batching up to ``max_batch`` (:func:`sim.serving.queue.simulate`: queue limit, timeout, a service
curve ``fixed_ms + per_item_ms * batch`` with random factors). Each request ends on time (answered within
``deadline_ms``), late, shed (HTTP 503) or timed out (504). ``deliver`` returns which rows' predictions arrive
on time, drawing one outcome per row with the tick's on-time share (a row of weight 33 stands for 33 patients;
one draw per row is unbiased), and records ``serving_*`` KPIs per site and day as expected request counts.

Approximation (documented, tested against the exact simulation in tests/sim/serving/test_service.py):
simulating every request of every tick is too slow at full scale (~80k requests per hour over 8,760 hours),
and load changes slowly (census, waves going live), so outcomes are cached on a log-spaced grid of tick loads
(``bucket_ratio`` apart). A grid point's outcome is the mean over replications of the exact simulation of a
burst of that many requests (replications until ``bucket_min_requests`` requests are simulated, at most
:data:`MAX_REPS`), each from its own random stream keyed by the grid index, so a point's value does not depend
on the order in which ticks visit it. A tick's load between two grid points gets the interpolation (linear in
log load) of their outcomes. Per run, each visited grid point is simulated once.

``enabled = false`` (the default) touches nothing: no stream, no KPI, no headline key.
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import ScenarioError
from sim.schema import Rule
from sim.serving.queue import SERVED, SHED, TIMED_OUT, ServiceCurve, ServingConfig, simulate

SCHEMA: dict[str, Rule] = {
    "enabled": Rule("bool", False, doc="false: predictions arrive instantly (no serving model)"),
    "workers": Rule("int", 1, min=1, max=4096, doc="parallel server workers"),
    "max_batch": Rule("int", 1, min=1, max=65536, doc="requests per model call (1 = no batching)"),
    "max_delay_ms": Rule("float", 0.0, min=0, max=60_000, doc="longest hold for a fuller batch"),
    "queue_limit": Rule("int", 0, min=0, doc="requests in the system before shedding (503); 0 = unbounded"),
    "timeout_ms": Rule("float", 0.0, min=0, doc="request deadline at the server (504); 0 = none"),
    "fixed_ms": Rule("float", 0.86, min=0, max=60_000, doc="service curve: ms per model call"),
    "per_item_ms": Rule("float", 0.49, min=0, max=60_000, doc="service curve: ms per request in a batch"),
    "dist": Rule("str", "lognormal", choices=("deterministic", "exponential", "lognormal"),
                 doc="random factor (mean 1) on each batch's service time"),
    "cv": Rule("float", 0.5, min=0, max=10, doc="lognormal: coefficient of variation of the factor"),
    "deadline_ms": Rule("float", 60_000.0, min=0.001, doc="answers later than this are useless this tick"),
    "spread_s": Rule("float", 900.0, min=0, max=86_400, doc="a tick's requests arrive over these seconds"),
    "requests_per_row": Rule("float", 1.0, min=0, max=10_000,
                             doc="real requests per scored real-world row (e.g. messages per patient-hour)"),
    "surge_every_days": Rule("int", 0, min=0, max=3650, doc="surge period (0 = no surges)"),
    "surge_days": Rule("int", 0, min=0, max=3650, doc="the last surge_days of every period surge"),
    "surge_factor": Rule("float", 1.0, min=0, max=1000, doc="demand multiplier on surge days"),
    "bucket_ratio": Rule("float", 1.05, min=1.001, max=2.0, doc="approximation: load grid spacing"),
    "bucket_min_requests": Rule("int", 20_000, min=1, max=10_000_000,
                                doc="approximation: requests simulated per grid point (replications)"),
    "source": Rule("str", "", doc="citations (service curve: the serving benchmark)"),
}

#: KPIs recorded per site and day when serving is enabled (expected real-world request counts)
KPIS = {
    "serving_requests": "sum",
    "serving_on_time": "sum",
    "serving_late": "sum",
    "serving_shed": "sum",
    "serving_timed_out": "sum",
    "serving_p99_ms": "max",
}
MAX_REPS = 16
#: rates (req/s) divide a tick's requests by spread_s, at least this (a burst at one instant has no rate)
MIN_SPREAD_S = 0.1
OUTCOMES = ("on_time", "late", "shed", "timed_out", "p99_ms")


def check(source: str, cfg: dict) -> None:
    """Cross-field rules of a validated ``[serving]`` table; raises ScenarioError."""
    if cfg["fixed_ms"] + cfg["per_item_ms"] <= 0:
        raise ScenarioError(source, "serving.per_item_ms", cfg["per_item_ms"],
                            "fixed_ms and per_item_ms must not both be 0 (a service takes time)")
    if cfg["surge_every_days"] > 0 and not 0 < cfg["surge_days"] < cfg["surge_every_days"]:
        raise ScenarioError(source, "serving.surge_days", cfg["surge_days"],
                            f"must be > 0 and < surge_every_days ({cfg['surge_every_days']}) with surges on")


def config_of(cfg: dict) -> tuple[ServingConfig, ServiceCurve]:
    """The :mod:`sim.serving.queue` queue and curve a ``[serving]`` table describes."""
    queue = ServingConfig(
        workers=cfg["workers"],
        max_batch=cfg["max_batch"],
        max_delay_s=cfg["max_delay_ms"] / 1e3,
        queue_limit=cfg["queue_limit"] or None,
        timeout_s=cfg["timeout_ms"] / 1e3 or None,
    )
    curve = ServiceCurve(cfg["fixed_ms"] / 1e3, cfg["per_item_ms"] / 1e3, cfg["dist"], cfg["cv"])
    return queue, curve


def burst_outcome(n: int, cfg: dict, rng: np.random.Generator) -> np.ndarray:
    """Exact simulation of one burst of ``n`` requests: [on_time, late, shed, timed_out, answered p99 ms]."""
    if n <= 0:
        return np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    queue, curve = config_of(cfg)
    spread = cfg["spread_s"]
    arrivals = np.sort(rng.uniform(0.0, spread, n)) if spread > 0 else np.zeros(n)
    res = simulate(arrivals, queue, curve, rng)
    lat = res.latency
    served = res.fate == SERVED
    ok = lat <= cfg["deadline_ms"] / 1e3
    p99 = float(np.quantile(lat[served], 0.99, method="inverted_cdf")) * 1e3 if served.any() else 0.0
    return np.array([ok.mean(), (served & ~ok).mean(), np.mean(res.fate == SHED),
                     np.mean(res.fate == TIMED_OUT), p99])


class Serving:
    """The serving model inside one run: cached burst outcomes, per-tick delivery, KPIs and totals."""

    def __init__(self, cfg: dict, streams, kpi, horizon_days: int):
        self.cfg = cfg
        self.kpi = kpi
        self.rng = streams.generator("serving")
        self.grid_seed = streams.int_seed("serving.grid")
        self.log_ratio = math.log(cfg["bucket_ratio"])
        self.cache: dict[int, np.ndarray] = {}
        self.daily = np.zeros((horizon_days, len(OUTCOMES) - 1))  # request counts by outcome, per day
        self.daily_requests = np.zeros(horizon_days)
        self.peak_p99_ms = 0.0
        self.peak_rate = 0.0
        self.worst_on_time = 1.0

    @classmethod
    def from_ctx(cls, ctx) -> Serving | None:
        """The run's serving model, or None when ``[serving]`` is disabled (call after ``setup_sites``)."""
        cfg = dict(ctx.scenario.section("serving"))
        if not cfg["enabled"]:
            return None
        return cls(cfg, ctx.streams, ctx.kpi, ctx.horizon_days)

    def surge(self, day: int) -> float:
        """Demand multiplier on ``day``: ``surge_factor`` in the last ``surge_days`` of each period."""
        every = self.cfg["surge_every_days"]
        if every > 0 and day % every >= every - self.cfg["surge_days"]:
            return self.cfg["surge_factor"]
        return 1.0

    def grid_point(self, i: int) -> np.ndarray:
        """Mean outcome of bursts of ``round(bucket_ratio ** i)`` requests (cached, own stream per point)."""
        out = self.cache.get(i)
        if out is None:
            n = round(math.exp(i * self.log_ratio))
            reps = min(MAX_REPS, max(1, math.ceil(self.cfg["bucket_min_requests"] / max(n, 1))))
            rng = np.random.default_rng([self.grid_seed, i])
            out = self.cache[i] = np.mean([burst_outcome(n, self.cfg, rng) for _ in range(reps)], axis=0)
        return out

    def outcome(self, load: float) -> np.ndarray:
        """Outcome fractions (and answered p99 ms) for a tick of ``load`` requests, from the cached grid."""
        if load < 0.5:
            return np.array([1.0, 0.0, 0.0, 0.0, 0.0])
        x = math.log(load) / self.log_ratio
        i = math.floor(x)
        lo, hi = self.grid_point(i), self.grid_point(i + 1)
        return lo + (x - i) * (hi - lo)

    def deliver(self, t_hours: float, sites: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """One scoring tick at hour ``t_hours``: rows at ``sites`` with sampling ``weights`` send requests.

        Returns a boolean mask: the rows whose prediction arrives within the deadline. Records the tick's
        ``serving_*`` KPIs (expected real requests per site and outcome) for the day.
        """
        day = int(t_hours // 24)
        per_site = np.bincount(sites, weights=weights, minlength=self.kpi.values.shape[1])
        per_site *= self.cfg["requests_per_row"] * self.surge(day)
        load = float(per_site.sum())
        out = self.outcome(load)
        on_time = min(max(float(out[0]), 0.0), 1.0)
        kpi = self.kpi
        kpi.add_site_vector("serving_requests", per_site, day)
        for k, name in enumerate(("on_time", "late", "shed", "timed_out")):
            kpi.add_site_vector(f"serving_{name}", per_site * out[k], day)
        kpi.set_max("serving_p99_ms", np.where(per_site > 0, out[4], 0.0), day)
        if 0 <= day < len(self.daily):
            self.daily[day] += load * out[:4]
            self.daily_requests[day] += load
        self.peak_p99_ms = max(self.peak_p99_ms, float(out[4]))
        self.peak_rate = max(self.peak_rate, load / max(self.cfg["spread_s"], MIN_SPREAD_S))
        self.worst_on_time = min(self.worst_on_time, on_time)
        if on_time >= 1.0:
            return np.ones(len(sites), dtype=bool)
        return self.rng.random(len(sites)) < on_time

    def headline(self) -> dict[str, float]:
        """Run totals: shares of requests by outcome, the worst tick's p99 of answered requests and on-time
        share, and the peak request rate (req/s over the tick's spread)."""
        total = float(self.daily_requests.sum())
        shares = self.daily.sum(axis=0) / total if total > 0 else np.full(4, float("nan"))
        return {
            "serving_on_time_share": float(shares[0]),
            "serving_late_share": float(shares[1]),
            "serving_shed_share": float(shares[2]),
            "serving_timed_out_share": float(shares[3]),
            "serving_on_time_share_worst_tick": self.worst_on_time,
            "serving_p99_ms_peak": self.peak_p99_ms,
            "serving_peak_rate": self.peak_rate,
            "serving_grid_points": float(len(self.cache)),
        }
