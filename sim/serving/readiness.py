"""Serving readiness: the capacity a scenario needs at full rollout (the ``purgatory readiness`` command).

States (1) the peak request rate the scenario needs once every site is live, (2) the capacity of one server
worker, measured (from the serving benchmark's calibration, ``results/bench/serving-compare.json``) or given,
and (3) the workers needed so that the simulated p99 stays within the SLO at the peak times a headroom factor.

The peak rate comes from the scenario's domain: a domain module may define
``serving_demand(scenario) -> {"peak_rate": req/s, "basis": "how it was derived"}``. Until a domain does,
``--peak-rate`` gives it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.errors import UserError
from sim.scenario import domain_module
from sim.serving.queue import ServiceCurve, ServingConfig, poisson_arrivals, simulate

DEFAULT_CALIBRATION = Path("results/bench/serving-compare.json")
MAX_WORKERS = 256


def peak_demand(scenario: object, override: float | None) -> tuple[float, str]:
    """Peak request rate (req/s) and its basis; raises UserError when neither the domain nor the flag says."""
    if override is not None:
        return override, "--peak-rate"
    hook = getattr(domain_module(scenario), "serving_demand", None)
    if hook is None:
        raise UserError(
            f"{scenario.source}: domain {scenario.domain!r} has no serving_demand(scenario) hook; "
            "give the peak request rate with --peak-rate REQ_PER_S"
        )
    demand = hook(scenario)
    return float(demand["peak_rate"]), str(demand.get("basis", f"domain {scenario.domain}"))


def worker_curve(
    calibration: Path | None, capacity: float | None, max_batch: int
) -> tuple[ServiceCurve, str, int]:
    """One worker's service curve, its source and the largest batch to simulate: from ``capacity`` req/s at
    saturation (batches of ``max_batch``), or from a measured calibration file, whose curve is fitted at the
    mean batch measured at saturation and is not extrapolated beyond it (a light model's requests hardly
    batch: HTTP handling, not the model, is the cost). Raises UserError when the file is missing or
    malformed."""
    if capacity is not None:
        if capacity <= 0:
            raise UserError(f"--capacity = {capacity}: must be > 0 requests per second")
        return (ServiceCurve.from_server(max_batch, max_batch / capacity), f"--capacity {capacity:g} req/s",
                max_batch)
    path = calibration or DEFAULT_CALIBRATION
    try:
        cal = json.loads(path.read_text())["calibration"]
        sat = cal["saturation"]
        curve = ServiceCurve(cal["curve"]["fixed_s"], cal["curve"]["per_item_s"])
    except (OSError, KeyError, ValueError) as err:
        raise UserError(
            f"--calibration = {str(path)!r}: cannot read a serving calibration ({err}); run "
            "`python -m perf.peer.compare` or give --capacity REQ_PER_S"
        ) from None
    return (
        curve,
        f"measured, {path}: {sat['throughput']:.0f} req/s at saturation, "
        f"mean batch {sat['mean_batch_rows']:.1f}",
        max(1, min(max_batch, int(np.ceil(sat["mean_batch_rows"])))),
    )


def p99_at(
    rate: float, workers: int, curve: ServiceCurve, max_batch: int, *, seed: int, duration_s: float
) -> float:
    """Simulated p99 latency (seconds; failures infinite) at Poisson ``rate`` with ``workers`` workers."""
    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals(rate, duration_s, rng)
    lognormal = ServiceCurve(curve.fixed_s, curve.per_item_s, "lognormal", cv=0.5)
    res = simulate(
        arrivals, ServingConfig(workers=workers, max_batch=max_batch, timeout_s=2.0), lognormal, rng
    )
    return res.percentile(0.99, skip=len(arrivals) // 10)


def workers_needed(
    rate: float,
    curve: ServiceCurve,
    slo_s: float,
    max_batch: int,
    *,
    seed: int = 0,
    max_requests: int = 200_000,
) -> int:
    """Fewest workers whose simulated p99 at ``rate`` is within ``slo_s``; UserError past MAX_WORKERS."""
    duration = min(30.0, max_requests / rate)
    per_worker = max_batch / curve.mean(max_batch)
    workers = max(1, int(np.ceil(rate / per_worker)))
    while workers <= MAX_WORKERS:
        if p99_at(rate, workers, curve, max_batch, seed=seed, duration_s=duration) <= slo_s:
            return workers
        workers += 1
    raise UserError(f"peak rate {rate:.0f} req/s needs more than {MAX_WORKERS} workers at this capacity")
