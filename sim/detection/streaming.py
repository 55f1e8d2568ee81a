"""Streaming change detectors (ADWIN, Page-Hinkley, a periodic dummy) and ARL0 calibration by simulation.

Each detector exists twice, with identical arithmetic:

- a scalar object with ``update(x) -> bool`` (True: change detected at this item) and ``reset()``, for a
  monitor that sees one value (an error indicator, a daily statistic, a score) at a time;
- ``first_alarm(X) -> int [S]``: the 0-based index of the first alarm on each of S independent streams
  ``X`` [S, T] (-1: none), vectorised over the streams, for the evaluation harness. Detectors are causal, so
  padding a stream past its end changes no alarm before the end.

``ADWIN`` is ADWIN2 of Bifet & Gavaldà (2007) as in MOA and river: an exponential histogram of at most
``max_buckets`` buckets per size, every ``clock`` items each cut between buckets is tested with
``|mu0 - mu1| > sqrt(2 m v ln(2 ln W / delta)) + 2/3 ln(2 ln W / delta) m`` (m = 1/(n0-mmin+1) +
1/(n1-mmin+1), v the window variance), and the oldest bucket is dropped while a cut holds. The vectorised
version relies on a fact of the algorithm: before its first alarm, the bucket structure depends only on the
number of items, so every stream shares it. ``PageHinkley`` is the two-sided Page-Hinkley test on deviations
from the running mean, with tolerance ``delta``, fading factor ``alpha`` and ``min_instances`` (as in river);
``Periodic`` alarms every ``period`` items whatever the data: the baseline any detector must beat.
No river or numba: plain numpy; the scalar ADWIN takes ~5 us per item.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from sim.errors import UserError


def _adwin_cuts(sizes: np.ndarray, totals: np.ndarray, width: int, total: np.ndarray, *,
                variance: np.ndarray, delta: float, min_len: int) -> np.ndarray:
    """Whether any cut between buckets (oldest first: [B] sizes, [B, ...] totals) holds; shape of total."""
    n0 = np.cumsum(sizes)[:-1].astype(np.float64)
    u0 = np.cumsum(totals, axis=0)[:-1]
    n1 = width - n0
    u1 = total - u0
    ok = (n0 >= min_len) & (n1 >= min_len)
    if totals.ndim > 1:
        n0, n1, ok = n0[:, None], n1[:, None], ok[:, None]
    dd = math.log(2.0 * math.log(width) / delta)
    with np.errstate(divide="ignore", invalid="ignore"):   # cuts with too few items are masked by ok
        mrec = 1.0 / (n0 - min_len + 1) + 1.0 / (n1 - min_len + 1)
        eps = np.sqrt(2.0 * mrec * (variance / width) * dd) + 2.0 / 3.0 * dd * mrec
        return (ok & (np.abs(u0 / n0 - u1 / n1) > eps)).any(axis=0)


class ADWIN:
    """ADaptive WINdowing change detector (ADWIN2) for a stream of real values (typically in [0, 1]).

    ``delta`` (0 < delta <= 1): confidence; smaller means fewer false alarms and later detection.
    ``clock``: items between checks; ``max_buckets``: buckets per size; ``min_window``: items each side
    of a cut; ``grace``: items before the first check.
    """

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5, min_window: int = 5,
                 grace: int = 10):
        if not 0 < delta <= 1:
            raise UserError(f"ADWIN delta (={delta}) must be in (0, 1]")
        self.delta, self.clock, self.max_buckets = float(delta), int(clock), int(max_buckets)
        self.min_window, self.grace = int(min_window), int(grace)
        self.reset()

    def reset(self) -> None:
        """Forget everything (an empty window)."""
        # levels[i]: [total, variance] of each 2**i-item bucket, oldest first
        self.levels: list[list[list[float]]] = [[]]
        self.width, self.total, self.variance, self.tick = 0, 0.0, 0.0, 0

    @property
    def mean(self) -> float:
        return self.total / self.width if self.width else 0.0

    def update(self, x: float) -> bool:
        """Add one value; True if a change was detected (the window then holds only the recent regime)."""
        x = float(x)
        self.width += 1
        if self.width > 1:
            d = x - self.total / (self.width - 1)
            self.variance += (self.width - 1) * d * d / self.width
        self.total += x
        self.levels[0].append([x, 0.0])
        for i, level in enumerate(self.levels):
            if len(level) <= self.max_buckets:
                break
            (t1, v1), (t2, v2) = level.pop(0), level.pop(0)
            size = float(2**i)
            d = t1 / size - t2 / size
            if i + 1 == len(self.levels):
                self.levels.append([])
            self.levels[i + 1].append([t1 + t2, v1 + v2 + size * size * d * d / (2 * size)])
        self.tick += 1
        if self.tick % self.clock or self.width <= self.grace:
            return False
        detected = False
        while self.width > self.grace:
            order = [(2**i, b) for i in range(len(self.levels) - 1, -1, -1) for b in self.levels[i]]
            sizes = np.array([s for s, _ in order], dtype=np.int64)
            totals = np.array([b[0] for _, b in order])
            if len(order) < 2 or not _adwin_cuts(sizes, totals, self.width, self.total,
                                                 variance=self.variance, delta=self.delta,
                                                 min_len=self.min_window):
                break
            detected = True
            self._drop_oldest()
        return detected

    def _drop_oldest(self) -> None:
        top = len(self.levels) - 1
        t, v = self.levels[top].pop(0)
        size = 2**top
        self.width -= size
        self.total -= t
        if self.width > 0:
            d = t / size - self.total / self.width
            self.variance -= v + size * self.width * d * d / (size + self.width)
        else:
            self.variance = 0.0
        while len(self.levels) > 1 and not self.levels[-1]:
            self.levels.pop()

    @staticmethod
    def first_alarm(X: np.ndarray, *, delta: float = 0.002, clock: int = 32, max_buckets: int = 5,
                    min_window: int = 5, grace: int = 10) -> np.ndarray:
        """Index of the first alarm on each row of ``X`` [S, T] (-1: none); same arithmetic as ``update``."""
        X = np.asarray(X, dtype=np.float64)
        S, T = X.shape
        first = np.full(S, -1, dtype=np.int64)
        levels: list[list[list[np.ndarray]]] = [[]]
        total, variance = np.zeros(S), np.zeros(S)
        for t in range(T):
            x = X[:, t]
            width = t + 1
            if width > 1:
                d = x - total / (width - 1)
                variance = variance + (width - 1) * d * d / width
            total = total + x
            levels[0].append([x, np.zeros(S)])
            for i, level in enumerate(levels):
                if len(level) <= max_buckets:
                    break
                (t1, v1), (t2, v2) = level.pop(0), level.pop(0)
                size = float(2**i)
                d = t1 / size - t2 / size
                if i + 1 == len(levels):
                    levels.append([])
                levels[i + 1].append([t1 + t2, v1 + v2 + size * size * d * d / (2 * size)])
            if width % clock or width <= grace:
                continue
            order = [(2**i, b) for i in range(len(levels) - 1, -1, -1) for b in levels[i]]
            sizes = np.array([s for s, _ in order], dtype=np.int64)
            totals = np.stack([b[0] for _, b in order])
            hit = _adwin_cuts(sizes, totals, width, total, variance=variance, delta=delta, min_len=min_window)
            hit &= first < 0
            first[hit] = t
            if (first >= 0).all():
                break
        return first


class PageHinkley:
    """Two-sided Page-Hinkley test for a change in the mean of a stream.

    With running mean ``mu_t`` (all items since the last reset), ``U_t = alpha U_{t-1} + (x_t - mu_t -
    delta)`` and ``L_t = alpha L_{t-1} + (x_t - mu_t + delta)``; an alarm when, after ``min_instances``
    items, ``U_t - min(0, U_1..U_t) > threshold`` (an increase) or ``max(0, L_1..L_t) - L_t > threshold``
    (a decrease). Units of ``delta`` and ``threshold``: those of x. The detector resets after an alarm.
    """

    def __init__(self, threshold: float = 50.0, delta: float = 0.005, alpha: float = 1.0,
                 min_instances: int = 30):
        if threshold <= 0 or not 0 < alpha <= 1:
            raise UserError(f"PageHinkley threshold (={threshold}) must be > 0 "
                            f"and alpha (={alpha}) in (0, 1]")
        self.threshold, self.delta, self.alpha = float(threshold), float(delta), float(alpha)
        self.min_instances = int(min_instances)
        self.reset()

    def reset(self) -> None:
        self.n, self.sum, self.up, self.up_min, self.down, self.down_max = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def update(self, x: float) -> bool:
        """Add one value; True (and reset) if the mean has changed."""
        x = float(x)
        self.n += 1
        self.sum += x
        dev = x - self.sum / self.n
        self.up = self.alpha * self.up + (dev - self.delta)
        self.down = self.alpha * self.down + (dev + self.delta)
        self.up_min = min(self.up_min, self.up)
        self.down_max = max(self.down_max, self.down)
        if self.n >= self.min_instances and (self.up - self.up_min > self.threshold
                                             or self.down_max - self.down > self.threshold):
            self.reset()
            return True
        return False

    @staticmethod
    def first_alarm(X: np.ndarray, *, threshold: float = 50.0, delta: float = 0.005, alpha: float = 1.0,
                    min_instances: int = 30) -> np.ndarray:
        """Index of the first alarm on each row of ``X`` [S, T] (-1: none); same arithmetic as ``update``."""
        X = np.asarray(X, dtype=np.float64)
        dev = X - np.cumsum(X, axis=1) / np.arange(1, X.shape[1] + 1)
        if alpha == 1.0:
            up, down = np.cumsum(dev - delta, axis=1), np.cumsum(dev + delta, axis=1)
        else:
            up = lfilter([1.0], [1.0, -alpha], dev - delta, axis=1)
            down = lfilter([1.0], [1.0, -alpha], dev + delta, axis=1)
        alarm = (up - np.minimum(np.minimum.accumulate(up, axis=1), 0.0) > threshold)
        alarm |= np.maximum(np.maximum.accumulate(down, axis=1), 0.0) - down > threshold
        alarm[:, : min_instances - 1] = False
        return np.where(alarm.any(axis=1), alarm.argmax(axis=1), -1)


class Periodic:
    """Dummy detector: an alarm every ``period`` items, whatever the data (ARL0 = ``period`` exactly).

    ``phase``: items already counted when the detector starts (its first alarm comes ``period - phase``
    items in); after each alarm it counts from 0.
    """

    def __init__(self, period: int = 1000, phase: int = 0):
        if period < 1 or not 0 <= phase < period:
            raise UserError(f"Periodic period (={period}) must be >= 1 and phase (={phase}) in [0, period)")
        self.period = int(period)
        self.reset()
        self.n = int(phase)

    def reset(self) -> None:
        self.n = 0

    def update(self, x: float) -> bool:
        """Count one item (its value is ignored by design); True every ``period`` items."""
        self.n += 1
        if self.n >= self.period:
            self.n = 0
            return True
        return False

    @staticmethod
    def first_alarm(X: np.ndarray, *, period: int = 1000, phase: int | np.ndarray = 0) -> np.ndarray:
        """Index ``period - 1 - phase`` on every row (``phase`` [S] or scalar, 0 <= phase < period)."""
        S, T = np.shape(X)
        fa = np.broadcast_to(int(period) - 1 - np.asarray(phase, dtype=np.int64), (S,)).copy()
        fa[fa >= T] = -1
        return fa


DETECTORS: dict[str, type] = {"adwin": ADWIN, "page_hinkley": PageHinkley, "periodic": Periodic}
#: the parameter that sets each detector's false-alarm rate, and whether raising it raises ARL0
TUNING: dict[str, tuple[str, bool]] = {"adwin": ("delta", False), "page_hinkley": ("threshold", True),
                                       "periodic": ("period", True)}


def make(kind: str, **params: float) -> ADWIN | PageHinkley | Periodic:
    """A scalar detector by name (``adwin``, ``page_hinkley``, ``periodic``); UserError if unknown."""
    if kind not in DETECTORS:
        raise UserError(f"detector {kind!r} is unknown; allowed: {', '.join(DETECTORS)}")
    return DETECTORS[kind](**params)


def first_alarm(kind: str, X: np.ndarray, **params: float) -> np.ndarray:
    """Vectorised first alarm of detector ``kind`` on each row of ``X`` [S, T] (-1: none)."""
    if kind not in DETECTORS:
        raise UserError(f"detector {kind!r} is unknown; allowed: {', '.join(DETECTORS)}")
    return DETECTORS[kind].first_alarm(X, **params)


def arl0(kind: str, X: np.ndarray, **params: float) -> tuple[float, float]:
    """Measured ARL0 (items to the first alarm) on change-free streams ``X`` [S, T], and its standard error.

    Streams without an alarm are censored at T; the estimate is the exponential maximum likelihood one,
    ``sum(min(run length, T)) / alarms`` (the plain mean when every stream alarms), standard error
    ``ARL0 / sqrt(alarms)``. Infinite when no stream alarms.
    """
    fa = first_alarm(kind, X, **params)
    alarms = int((fa >= 0).sum())
    exposure = float(np.where(fa >= 0, fa + 1, X.shape[1]).sum())
    if alarms == 0:
        return math.inf, math.inf
    est = exposure / alarms
    return est, est / math.sqrt(alarms)


def calibrate_arl0(kind: str, target: float, X: np.ndarray, iterations: int = 16,
                   **fixed: float) -> tuple[dict[str, float], float]:
    """Set ``kind``'s tuning parameter so that its ARL0 on change-free streams ``X`` [S, T] is ``target``.

    Bisection (in log space) on ``TUNING[kind]`` with common random numbers (the same streams for every
    candidate), so the measured ARL0 is monotone in the parameter. Use T >= 3 x target so censoring is
    light. Returns the full parameter dict and the ARL0 measured with it. Raises UserError when the target
    is outside what the parameter's range can reach.
    """
    name, increasing = TUNING[kind]
    if kind == "periodic":
        return {**fixed, "period": round(target)}, float(round(target))
    lo, hi = {"adwin": (1e-12, 1.0), "page_hinkley": (1e-2, 1e4)}[kind]

    def measure(v: float) -> float:
        return arl0(kind, X, **{**fixed, name: v})[0]

    ends = measure(lo), measure(hi)
    reach = (min(ends), max(ends))
    if not reach[0] <= target <= reach[1]:
        raise UserError(f"ARL0 target (={target:g}) is outside what {kind} reaches on these streams "
                        f"({reach[0]:.0f}..{reach[1]:.0f} items); change the target or the stream length")
    a, b = math.log(lo), math.log(hi)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        above = measure(math.exp(mid)) > target
        if above == increasing:
            b = mid
        else:
            a = mid
    best = math.exp(0.5 * (a + b))
    return {**fixed, name: best}, measure(best)
