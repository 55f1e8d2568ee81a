"""Closed loop: C users, each sending its next request when its last answer arrives.

Throughput under a fixed number of users; its latency is just users / throughput (Little's law), so latency
claims come from the open loop (:mod:`perf.load.open_loop`).
"""

from __future__ import annotations

import asyncio
import time

from perf.load.client import Client, MeasurementWindow, drain
from perf.load.open_loop import MAX_REQUESTS
from perf.load.report import summarize
from perf.load.requests import Target


async def run_closed(
    target: Target,
    concurrency: int,
    duration: float,
    *,
    drain_s: float = 5.0,
    slo_ms: float = 100.0,
    raw: bool = False,
) -> dict:
    """Closed loop: ``concurrency`` users, each sending its next request on the last one's answer (after a
    503's ``Retry-After``, at most 5 s, as a well-behaved client does; a closed connection is reopened).

    ``raw`` adds the answered requests' latencies (seconds, numpy) under ``raw_latency_ok_s``."""
    with MeasurementWindow() as window:
        t0 = time.perf_counter()
        client = Client(target, MAX_REQUESTS, concurrency, closed_until=t0 + duration)
        try:
            client.n_conns = concurrency
            opens = [client.loop.create_task(client._open()) for _ in range(concurrency)]
            await asyncio.sleep(duration)
            await asyncio.gather(*opens)
            await drain(client, client.next_closed, time.perf_counter() + drain_s)
        finally:
            client.close()
    stats = summarize(client, client.next_closed, duration, window.cpu_s / duration, slo_ms=slo_ms, raw=raw)
    stats.update(mode="closed", concurrency=concurrency, connect_errors=client.connect_errors)
    return stats
