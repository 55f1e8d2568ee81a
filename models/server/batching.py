"""Adaptive micro-batching: many small inference requests share one onnxruntime call.

A single batcher task per model takes every request that is queued when it becomes free (up to ``max_batch``
rows), optionally waiting up to ``max_delay_ms`` after the oldest request for more, and runs the model once on
the concatenated rows. Batches grow with load on their own: while one batch is scored, the next one queues.
Batches whose estimated cost is below ``inline_us`` (default 1 ms) run on the event loop: waking another
thread cost 0.3-2 ms of CPU on this 2-core VM, more than a 64-row batch of a 200-tree ensemble. Larger ones
run in a dedicated thread (onnxruntime releases the GIL), so HTTP handling continues on the other core.

The queue is bounded by ``queue_limit`` requests in the system (queued + being scored): past it
``submit`` raises :class:`QueueFullError` at once, which the server turns into 503. Requests whose caller
gave up (timeout, disconnect) are skipped, never scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

#: predict(X float32 [N, F]) -> {output name: array with N rows}
PredictFn = Callable[[np.ndarray], dict[str, np.ndarray]]
#: longest time (seconds) inline batches run back to back before the event loop gets a turn
TURN_S = 0.005


class QueueFullError(Exception):
    """The model's bounded queue is full: the request is shed (HTTP 503)."""


@dataclass(frozen=True)
class BatchConfig:
    """Micro-batching settings.

    max_batch: most rows per model call; max_delay_ms: longest wait after the oldest queued request for more
    (0 = take what is queued, the adaptive default); queue_limit: most requests in the system per model;
    inline_us: batches whose estimated model time is below this many microseconds run on the event loop;
    max_wait_ms: shed new requests while the oldest queued one has waited longer than this (None = never),
    so that an overloaded server answers 503 at once instead of 504 after the timeout;
    direct_us: a request whose estimated model time is below this many microseconds, arriving while nothing is
    queued or being scored, is scored at once in its handler (see :meth:`MicroBatcher.direct`).
    """

    max_batch: int = 64
    max_delay_ms: float = 0.0
    queue_limit: int = 2048
    inline_us: float = 1000.0
    max_wait_ms: float | None = None
    direct_us: float = 50.0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch (={self.max_batch}) must be >= 1")
        if self.max_delay_ms < 0:
            raise ValueError(f"max_delay_ms (={self.max_delay_ms}) must be >= 0")
        if self.queue_limit < 1:
            raise ValueError(f"queue_limit (={self.queue_limit}) must be >= 1")


@dataclass
class BatchStats:
    """Counters for calibration: batches by size (rows) and model seconds spent per batch size."""

    batches: dict[int, int] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    skipped: int = 0
    shed: int = 0

    def record(self, rows: int, seconds: float) -> None:
        self.batches[rows] = self.batches.get(rows, 0) + 1
        self.seconds[rows] = self.seconds.get(rows, 0.0) + seconds

    def to_json(self) -> dict:
        n = sum(self.batches.values())
        rows = sum(k * v for k, v in self.batches.items())
        return {
            "batches": n,
            "rows": rows,
            "mean_batch_rows": rows / n if n else 0.0,
            "model_seconds": sum(self.seconds.values()),
            "skipped": self.skipped,
            "shed": self.shed,
            "by_size": {str(k): [self.batches[k], self.seconds[k]] for k in sorted(self.batches)},
        }


class _Item:
    __slots__ = ("X", "fut", "t")

    def __init__(self, X: np.ndarray, fut: asyncio.Future, t: float):
        self.X, self.fut, self.t = X, fut, t


class MicroBatcher:
    """Queue + batcher task for one model. Create, ``await start()``, ``submit``, ``await stop()``."""

    def __init__(self, predict: PredictFn, config: BatchConfig | None = None):
        self.predict = predict
        self.config = config or BatchConfig()
        self.stats = BatchStats()
        self.pending = 0  # requests queued or being scored
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort")
        self._us_per_row = 10.0  # running estimate of model time per row (microseconds)
        self._scoring = False  # a batch is being scored (inline or in the thread)
        self._directs = 0  # requests scored by ``direct`` so far
        self._cycle_s = 0.0  # running estimate of wall seconds per request served while backlogged

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Cancel the batcher; queued requests fail with CancelledError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            item = self._queue.popleft()
            if not item.fut.done():
                item.fut.cancel()
        self._executor.shutdown(wait=True)

    def submit(self, X: np.ndarray) -> asyncio.Future:
        """Queue ``X`` (float32 [N, F]); the future resolves to the model outputs for these rows.

        Raises QueueFullError when ``queue_limit`` requests are already in the system, or when the oldest
        queued request has waited, or a new one would wait (queue length x measured seconds per request
        while backlogged), more than ``max_wait_ms``. Cancelling the future
        (e.g. ``asyncio.wait_for`` timing out) drops the request before it is scored.
        """
        if self.pending >= self.config.queue_limit:
            self.stats.shed += 1
            raise QueueFullError(
                f"queue full ({self.pending} requests in the system, limit {self.config.queue_limit})"
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        max_wait = self.config.max_wait_ms
        if max_wait is not None and self._queue:
            waited_ms = (now - self._queue[0].t) * 1e3
            expected_ms = self.pending * self._cycle_s * 1e3
            if max(waited_ms, expected_ms) > max_wait:
                self.stats.shed += 1
                raise QueueFullError(f"overloaded: queued requests would wait over {max_wait:g} ms")
        fut = loop.create_future()
        self.pending += 1
        self._queue.append(_Item(X, fut, now))
        self._wake.set()
        return fut

    def warm_up(self, X: np.ndarray, calls: int = 5) -> None:
        """Run the model a few times on ``X`` before serving (first calls are slow: lazy initialisation) and
        start the per-row time estimate from the fastest call; nothing is recorded in the stats."""
        best = min(self._timed(X)[1] for _ in range(max(calls, 1)))
        self._us_per_row = best * 1e6 / max(len(X), 1)

    def direct(self, X: np.ndarray) -> dict[str, np.ndarray] | None:
        """Score ``X`` at once, in the caller, when that cannot delay anyone and batching cannot help: nothing
        is queued or being scored and the estimated model time is below ``direct_us`` (the server also asks
        only when this request is the only one in flight). Returns None otherwise (then ``submit``).

        For a model that scores a row in ~10 us the hop through the queue (a future, a task switch, a
        timeout handle) costs more than the model call it would share, so a light model's lone requests skip
        it; as soon as requests overlap, they batch.
        """
        if self._queue or self._scoring or len(X) * self._us_per_row >= self.config.direct_us:
            return None
        out, seconds = self._timed(X)
        self.stats.record(len(X), seconds)
        self._us_per_row = 0.8 * self._us_per_row + 0.2 * (seconds * 1e6 / len(X))
        self._directs += 1  # the batcher's next cycle did not serve everything since its last one
        return out

    def _timed(self, X: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
        t0 = time.perf_counter()
        out = self.predict(X)
        return out, time.perf_counter() - t0

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        while self._queue and rows < self.config.max_batch:
            item = self._queue[0]
            if batch and rows + len(item.X) > self.config.max_batch:
                break
            self._queue.popleft()
            if item.fut.done():  # caller gave up: never score it
                self.pending -= 1
                self.stats.skipped += 1
                continue
            batch.append(item)
            rows += len(item.X)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.config.max_delay_ms / 1000.0
        last_start, last_rows, last_directs = 0.0, 0, 0
        turn_start = time.perf_counter()
        while True:
            backlogged = bool(self._queue)
            if not backlogged:
                self._wake.clear()
                await self._wake.wait()
                turn_start = time.perf_counter()
            if delay > 0 and len(self._queue) < self.config.max_batch:
                await asyncio.sleep(delay)
                turn_start = time.perf_counter()
            batch = self._take()
            if not batch:
                continue
            now = time.perf_counter()
            # a busy cycle: everything the loop did per row served (not when requests were scored directly
            # in between: the time since the last batch then served more rows than it counted)
            if backlogged and last_rows and self._directs == last_directs:
                per_row = (now - last_start) / last_rows
                self._cycle_s = per_row if self._cycle_s == 0 else 0.9 * self._cycle_s + 0.1 * per_row
            last_start, last_rows, last_directs = now, sum(len(it.X) for it in batch), self._directs
            X = batch[0].X if len(batch) == 1 else np.concatenate([it.X for it in batch])
            inline = len(X) * self._us_per_row < self.config.inline_us
            self._scoring = True
            try:
                if inline:
                    out, seconds = self._timed(X)
                else:
                    out, seconds = await loop.run_in_executor(self._executor, self._timed, X)
                    turn_start = time.perf_counter()
            except Exception as err:  # a model failure fails this batch's requests, not the server
                for it in batch:
                    if not it.fut.done():
                        it.fut.set_exception(err)
                self.pending -= len(batch)
                continue
            finally:
                self._scoring = False
            self._deliver(batch, out, seconds)
            # Inline batches drain the backlog back to back for up to TURN_S, so that scoring keeps pace
            # with the HTTP parsing done between turns; then the loop gets its turn.
            if inline and (not self._queue or time.perf_counter() - turn_start > TURN_S):
                await asyncio.sleep(0)
                turn_start = time.perf_counter()

    def _deliver(self, batch: list[_Item], out: dict[str, np.ndarray], seconds: float) -> None:
        rows = sum(len(it.X) for it in batch)
        self.stats.record(rows, seconds)
        self._us_per_row = 0.8 * self._us_per_row + 0.2 * (seconds * 1e6 / rows)
        start = 0
        for it in batch:
            stop = start + len(it.X)
            if not it.fut.done():
                it.fut.set_result({k: v[start:stop] for k, v in out.items()})
            start = stop
        self.pending -= len(batch)
