"""Open loop: Poisson arrivals at a target rate, latency from each request's *scheduled* send time.

A slow server or a busy client cannot hide queueing (no coordinated omission): a request that could not be
sent on time counts its wait. :func:`sweep` finds the highest rate whose p99 meets an SLO (geometric ramp,
then bisection). Garbage collection is off inside the measurement window; the client's dispatch lag (actual
minus scheduled send time) is reported beside every result.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from perf.load.client import Client, MeasurementWindow, drain
from perf.load.report import passes, summarize
from perf.load.requests import Target

MAX_REQUESTS = 3_000_000  # per run: bounds memory (a few float64 arrays) and time


async def run_open(
    target: Target,
    rate: float,
    duration: float,
    *,
    seed: int = 0,
    max_conns: int = 2000,
    drain_s: float = 5.0,
    slo_ms: float = 100.0,
    raw: bool = False,
) -> dict:
    """Open loop: Poisson arrivals at ``rate`` req/s for ``duration`` s; returns :func:`summarize`'s dict
    (``raw``: plus the answered requests' latencies in seconds under ``raw_latency_ok_s``)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=min(MAX_REQUESTS, int(rate * duration * 1.2) + 100))
    offsets = np.cumsum(gaps)
    offsets = offsets[offsets < duration]
    n = len(offsets)
    client = Client(target, n, max_conns)
    lag = np.zeros(n)
    with MeasurementWindow() as window:
        try:
            t0 = time.perf_counter() + 0.02
            client.sched[:] = t0 + offsets
            i = 0
            while i < n:
                now = time.perf_counter()
                while i < n and client.sched[i] <= now:
                    lag[i] = now - client.sched[i]
                    client.submit(i)
                    i += 1
                if i < n:
                    await asyncio.sleep(max(0.0, client.sched[i] - time.perf_counter()))
            await drain(client, n, t0 + duration + drain_s)
        finally:
            client.close()
    stats = summarize(client, n, duration, window.cpu_s / duration, slo_ms=slo_ms, raw=raw)
    stats.update(
        mode="open",
        offered_rate=n / duration,
        target_rate=rate,
        seed=seed,
        dispatch_lag_ms={
            "p50": float(np.median(lag) * 1e3) if n else 0.0,
            "p99": float(np.quantile(lag, 0.99) * 1e3) if n else 0.0,
            "max": float(lag.max() * 1e3) if n else 0.0,
        },
    )
    return stats


async def sweep(
    target: Target,
    slo_ms: float,
    *,
    start: float,
    max_rate: float,
    step_s: float,
    seed: int = 0,
    growth: float = 1.5,
    refine: int = 3,
    max_conns: int = 2000,
    pause_s: float = 1.0,
) -> dict:
    """Highest Poisson rate whose p99 stays within ``slo_ms``: geometric ramp, then bisection.

    At most ``log(max/start)/log(growth) + 1 + refine`` runs of ``step_s`` seconds each (when ``start``
    fails, up to 4 halvings look below it first). Returns ``{"max_rate": ..., "runs": [...]}`` (max_rate 0
    when even ``start / 16`` fails).
    """
    runs: list[dict] = []

    async def one(rate: float) -> bool:
        stats = await run_open(
            target, rate, step_s, seed=seed + len(runs), max_conns=max_conns, slo_ms=slo_ms
        )
        stats["pass"] = passes(stats, slo_ms)
        runs.append(stats)
        await asyncio.sleep(pause_s)  # let the server drain between steps
        return stats["pass"]

    best, fail, rate = 0.0, None, start
    while rate <= max_rate:
        if await one(rate):
            best, rate = rate, rate * growth
        else:
            fail = rate
            break
    for _ in range(4 if best == 0 else 0):  # even the start failed: look down, halving
        rate = fail / 2
        if await one(rate):
            best = rate
            break
        fail = rate
    if fail is not None and best > 0:
        for _ in range(refine):
            mid = (best + fail) / 2
            if await one(mid):
                best = mid
            else:
                fail = mid
    return {"slo_ms": slo_ms, "max_rate": best, "first_failing_rate": fail, "runs": runs}
