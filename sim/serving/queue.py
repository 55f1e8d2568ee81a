"""The engine's serving component: a scoring service as a batching multi-server queue.

``simulate(arrivals, config, curve, rng)`` replays an arrival process (seconds, sorted) through ``workers``
servers that each take up to ``max_batch`` queued requests at once (optionally holding up to ``max_delay_s``
after the oldest for a fuller batch), with a bound on requests in the system (past it: shed, HTTP 503) and a
timeout (requests still queued at the deadline are dropped; answers after it count as timed out, HTTP 504).
A batch of ``b`` takes ``curve.sample(b)`` seconds: ``fixed_s + per_item_s * b`` times a random factor
(exponential, lognormal, or resampled from measured multipliers). It returns each request's latency and fate,
from which :class:`ServingResult` gives percentiles, shed and timeout rates.

Calibration (``ServiceCurve.from_measurements``) uses what the load generator measures on the real server:
the per-request time at concurrency 1 (with its distribution) and the batch time at saturation.
``mmc_mean_wait`` is the M/M/c (Erlang C) check the tests compare against.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

DISTS = ("deterministic", "exponential", "lognormal", "empirical")


@dataclass(frozen=True)
class ServiceCurve:
    """Seconds one worker needs for a batch of b requests: ``(fixed_s + per_item_s * b) * factor``.

    ``dist`` picks the factor (mean 1): deterministic, exponential, lognormal with coefficient of variation
    ``cv``, or ``empirical`` (resampled from ``samples``, measured multipliers).
    """

    fixed_s: float
    per_item_s: float
    dist: str = "deterministic"
    cv: float = 0.0
    samples: tuple[float, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.dist not in DISTS:
            raise ValueError(f"dist (={self.dist!r}) must be one of {', '.join(DISTS)}")
        if self.fixed_s < 0 or self.per_item_s < 0 or self.fixed_s + self.per_item_s <= 0:
            raise ValueError(
                f"fixed_s (={self.fixed_s}) and per_item_s (={self.per_item_s}) must be >= 0, not both 0"
            )
        if self.dist == "empirical" and not self.samples:
            raise ValueError("dist 'empirical' needs samples")

    def mean(self, b: int) -> float:
        """Mean seconds for a batch of ``b``."""
        return self.fixed_s + self.per_item_s * b

    def factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random factors with mean 1."""
        if self.dist == "exponential":
            return rng.exponential(1.0, n)
        if self.dist == "lognormal" and self.cv > 0:
            s2 = math.log1p(self.cv**2)
            return rng.lognormal(-s2 / 2, math.sqrt(s2), n)
        if self.dist == "empirical":
            arr = np.asarray(self.samples)
            return arr[rng.integers(0, len(arr), n)] / arr.mean()
        return np.ones(n)

    @classmethod
    def from_server(cls, batch_rows: float, batch_s: float, model_fixed_s: float = 0.0) -> ServiceCurve:
        """Deterministic curve through one saturation point (``batch_rows`` per ``batch_s`` seconds) with the
        model call's fixed cost ``model_fixed_s``; pair with measured jitter in :func:`simulate`."""
        fixed = min(model_fixed_s, batch_s / 2)
        return cls(fixed, (batch_s - fixed) / batch_rows)

    @classmethod
    def from_measurements(cls, single_s: np.ndarray, batch_rows: float, batch_s: float) -> ServiceCurve:
        """Fit the curve from a concurrency-1 latency sample ``single_s`` (seconds, one per request) and one
        saturation point: mean batch ``batch_rows`` served every ``batch_s`` seconds (= rows / throughput).

        Raises ValueError for an empty sample or a saturation point below one row.
        """
        single_s = np.asarray(single_s, dtype=float)
        if single_s.size == 0 or batch_rows < 1:
            raise ValueError(
                f"need a non-empty sample (n={single_s.size}) and batch_rows (={batch_rows}) >= 1"
            )
        s1 = float(np.mean(single_s))
        per_item = max((batch_s - s1) / (batch_rows - 1), 0.0) if batch_rows > 1 else s1
        per_item = min(per_item, s1)
        return cls(s1 - per_item, per_item, "empirical", samples=tuple(np.sort(single_s)))


@dataclass(frozen=True)
class ServingConfig:
    """workers: parallel servers; max_batch: requests per batch (1 = no batching); max_delay_s: longest hold
    for a fuller batch; queue_limit: requests in the system before shedding (None = unbounded);
    timeout_s: deadline per request (None = none); overhead_s: latency added outside the queue (network)."""

    workers: int = 1
    max_batch: int = 1
    max_delay_s: float = 0.0
    queue_limit: int | None = None
    timeout_s: float | None = None
    overhead_s: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_batch < 1:
            raise ValueError(f"workers (={self.workers}) and max_batch (={self.max_batch}) must be >= 1")
        if self.queue_limit is not None and self.queue_limit < 1:
            raise ValueError(f"queue_limit (={self.queue_limit}) must be >= 1 or None")


SERVED, SHED, TIMED_OUT = 0, 1, 2


@dataclass(frozen=True)
class GapJitter:
    """Measured latency outside the queue, by how long the system was idle before the request arrived.

    On a virtual machine an idle CPU is handed back to the hypervisor; waking it (and the client's and the
    server's event loops) costs more the longer it slept, so requests that arrive after a long idle gap pay
    more than requests that arrive while the server is busy. ``edges`` (seconds, increasing, starting at 0)
    split idle gaps into bins; ``samples[k]`` are the jitters (seconds) measured after a gap in bin k.
    Calibrate it from one low-load run (:meth:`fit`), where gaps of every length occur.
    """

    edges: tuple[float, ...]
    samples: tuple[tuple[float, ...], ...]

    @classmethod
    def fit(cls, gaps: np.ndarray, jitter: np.ndarray, bins: int = 5, min_per_bin: int = 50) -> GapJitter:
        """Bins at quantiles of ``gaps`` (at most ``bins``, each with >= ``min_per_bin`` samples)."""
        gaps, jitter = np.asarray(gaps, dtype=float), np.asarray(jitter, dtype=float)
        if len(gaps) != len(jitter) or len(gaps) == 0:
            raise ValueError(f"need equal, non-empty gaps (n={len(gaps)}) and jitter (n={len(jitter)})")
        k = int(max(1, min(bins, len(gaps) // max(min_per_bin, 1))))
        inner = np.unique(np.quantile(gaps, np.linspace(0, 1, k + 1)[1:-1]))
        edges = np.r_[0.0, inner[np.isfinite(inner) & (inner > 0)]]
        which = np.searchsorted(edges, gaps, side="right") - 1
        samples = tuple(tuple(jitter[which == b].tolist()) for b in range(len(edges)))
        return cls(tuple(edges.tolist()), samples)

    def sample(self, gaps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One jitter per request, drawn from the bin of its idle gap (seconds)."""
        which = np.searchsorted(np.asarray(self.edges), np.asarray(gaps, dtype=float), side="right") - 1
        out = np.zeros(len(which))
        for b, smp in enumerate(self.samples):
            k = which == b
            if k.any() and smp:
                out[k] = np.asarray(smp)[rng.integers(0, len(smp), int(k.sum()))]
        return out

    def summary(self) -> list[dict[str, float]]:
        """Per bin: the gap range (ms), samples, median and p99 jitter (ms)."""
        ends = [*self.edges[1:], math.inf]
        return [
            {"gap_from_ms": lo * 1e3, "gap_to_ms": hi * 1e3, "n": len(smp),
             "p50_ms": float(np.median(smp) * 1e3) if smp else math.nan,
             "p99_ms": float(np.quantile(smp, 0.99) * 1e3) if smp else math.nan}
            for lo, hi, smp in zip(self.edges, ends, self.samples, strict=True)
        ]


def idle_gaps(arrival: np.ndarray, finish: np.ndarray) -> np.ndarray:
    """Seconds each request's arrival came after every earlier request had finished (0 while busy; the
    first request's gap is infinite). ``finish`` may hold NaN for requests never served."""
    done = np.where(np.isnan(finish), -np.inf, finish)
    before = np.r_[-np.inf, np.maximum.accumulate(done)[:-1]] if len(done) else done
    return np.maximum(np.asarray(arrival, dtype=float) - before, 0.0)


@dataclass
class ServingResult:
    """Per-request arrival, start and finish (seconds; NaN when never served), fate (SERVED / SHED /
    TIMED_OUT) and optional added jitter (seconds)."""

    arrival: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    fate: np.ndarray
    overhead_s: float = 0.0
    jitter: np.ndarray | None = None

    @property
    def latency(self) -> np.ndarray:
        """Seconds from arrival to answer for every request; infinite when shed or timed out."""
        lat = self.finish - self.arrival + self.overhead_s
        if self.jitter is not None:
            lat = lat + self.jitter
        return np.where(self.fate == SERVED, lat, np.inf)

    @property
    def wait(self) -> np.ndarray:
        """Seconds queued before service (NaN when never served)."""
        return self.start - self.arrival

    def percentile(self, q: float, skip: int = 0) -> float:
        """Latency quantile ``q`` in seconds (failures as infinite), ignoring the first ``skip`` requests."""
        return float(np.quantile(self.latency[skip:], q, method="inverted_cdf"))

    def rate(self, fate: int) -> float:
        return float(np.mean(self.fate == fate)) if len(self.fate) else 0.0

    def summary(self, skip: int = 0) -> dict[str, float]:
        """p50 / p90 / p99 / p99.9 latency (ms), shed and timeout rates."""
        out = {f"p{q * 100:g}_ms": self.percentile(q, skip) * 1e3 for q in (0.5, 0.9, 0.99, 0.999)}
        return out | {"shed_rate": self.rate(SHED), "timeout_rate": self.rate(TIMED_OUT)}


def simulate(
    arrivals: np.ndarray,
    config: ServingConfig,
    curve: ServiceCurve,
    rng: np.random.Generator,
    jitter_samples: np.ndarray | GapJitter | None = None,
) -> ServingResult:
    """Run the queue over sorted ``arrivals`` (seconds); see the module docstring.

    ``jitter_samples`` (seconds): measured latency outside the server's queue (client, network, scheduler),
    resampled and added to each request's latency without using server capacity; a :class:`GapJitter`
    draws each request's jitter by the idle gap before it. Raises ValueError when
    the arrivals are not sorted."""
    arr = np.asarray(arrivals, dtype=float)
    n = len(arr)
    if n and np.any(np.diff(arr) < 0):
        raise ValueError("arrivals must be sorted")
    start, finish = np.full(n, np.nan), np.full(n, np.nan)
    fate = np.zeros(n, dtype=np.int8)
    factors = curve.factors(n + 16, rng)  # one per batch at most
    k = 0
    queue: deque[int] = deque()
    busy: list[tuple[float, int]] = []  # (finish time, batch size)
    free, in_system, i = config.workers, 0, 0
    timeout = config.timeout_s if config.timeout_s is not None else math.inf
    limit = config.queue_limit if config.queue_limit is not None else n + 1
    hold = math.inf

    def try_start(t: float, force: bool) -> float:
        nonlocal free, in_system, k
        while free > 0 and queue:
            while queue and t - arr[queue[0]] >= timeout:
                fate[queue.popleft()] = TIMED_OUT
                in_system -= 1
            if not queue:
                break
            if (
                not force
                and config.max_delay_s > 0
                and len(queue) < config.max_batch
                and t < arr[queue[0]] + config.max_delay_s
            ):
                return arr[queue[0]] + config.max_delay_s
            b = min(config.max_batch, len(queue))
            done = t + curve.mean(b) * factors[k % len(factors)]
            k += 1
            for _ in range(b):
                j = queue.popleft()
                start[j], finish[j] = t, done
                if done - arr[j] > timeout:
                    fate[j] = TIMED_OUT
            heapq.heappush(busy, (done, b))
            free -= 1
            force = False
        return math.inf

    while i < n or busy or queue:
        t_arr = arr[i] if i < n else math.inf
        t_done = busy[0][0] if busy else math.inf
        if t_done <= t_arr and t_done <= hold:
            _, b = heapq.heappop(busy)
            free += 1
            in_system -= b
            hold = try_start(t_done, False)
        elif hold <= t_arr:
            t, hold = hold, math.inf
            hold = try_start(t, True)
        else:
            if in_system >= limit:
                fate[i] = SHED
            else:
                queue.append(i)
                in_system += 1
                hold = try_start(t_arr, False)
            i += 1
    jitter = None
    if isinstance(jitter_samples, GapJitter):
        jitter = jitter_samples.sample(idle_gaps(arr, finish), rng)
    elif jitter_samples is not None and len(jitter_samples):
        jitter = np.asarray(jitter_samples, dtype=float)[rng.integers(0, len(jitter_samples), n)]
    return ServingResult(arr, start, finish, fate, config.overhead_s, jitter)


def poisson_arrivals(rate: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted Poisson arrival times (seconds) at ``rate`` per second over ``[0, duration_s)``."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate (={rate}) and duration_s (={duration_s}) must be > 0")
    n = rng.poisson(rate * duration_s)
    return np.sort(rng.uniform(0.0, duration_s, n))


def tick_outcome(
    n_requests: int,
    spread_s: float,
    config: ServingConfig,
    curve: ServiceCurve,
    rng: np.random.Generator,
    *,
    deadline_s: float,
) -> dict[str, float]:
    """What a tick's scoring burst meets: ``n_requests`` arriving uniformly over ``spread_s`` seconds (e.g.
    every patient scored at the top of the hour, or a quarter-end batch of contracts).

    Returns the fractions answered within ``deadline_s`` (``on_time``), answered late, shed and timed out, and
    the p99 latency in seconds (infinite when over 1% fail). One SimPy tick calls this once; its cost grows
    with ``n_requests`` (about a microsecond-scale Python step per request).
    """
    if n_requests <= 0:
        return {"on_time": 1.0, "late": 0.0, "shed": 0.0, "timed_out": 0.0, "p99_s": 0.0}
    arrivals = (
        np.sort(rng.uniform(0.0, max(spread_s, 0.0), n_requests)) if spread_s > 0 else np.zeros(n_requests)
    )
    res = simulate(arrivals, config, curve, rng)
    lat = res.latency
    on_time = float(np.mean(lat <= deadline_s))
    served = res.fate == SERVED
    return {
        "on_time": on_time,
        "late": float(np.mean(served & (lat > deadline_s))),
        "shed": res.rate(SHED),
        "timed_out": res.rate(TIMED_OUT),
        "p99_s": res.percentile(0.99),
    }


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with ``offered`` = lambda / mu Erlangs (< c)."""
    if not 0 <= offered < c:
        raise ValueError(f"offered load (={offered}) must be in [0, c={c})")
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= offered / k
        total += term
    last = term * offered / c * c / (c - offered)
    return last / (total + last)


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in queue (seconds) of M/M/c: Erlang C / (c mu - lambda)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)
