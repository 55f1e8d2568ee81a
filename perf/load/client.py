"""The load generator's HTTP/1.1 client: keep-alive connections on asyncio protocols, one request in flight
each.

Lean by design (a Python client on the same cores can otherwise be the bottleneck): pre-built request bytes,
callbacks instead of tasks, Content-Length framing only. :class:`Client` keeps every request's scheduled,
sent and answered time and status in numpy arrays; the open and closed loops drive it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque

import numpy as np
import psutil

from perf.load.requests import Target


class Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; parses Content-Length responses."""

    def __init__(self, client: Client):
        self.client, self.transport, self.buf, self.current = client, None, bytearray(), -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def send(self, i: int) -> None:
        self.current = i
        self.client.sent_at[i] = time.perf_counter()
        self.transport.write(self.client.target.requests[i % len(self.client.target.requests)])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        pos = head.find(b"content-length:")
        if pos < 0:  # this client only speaks Content-Length framing
            self.transport.close()
            return
        length = int(head[pos + 15 : head.find(b"\r\n", pos) if head.find(b"\r\n", pos) > 0 else None])
        if len(self.buf) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buf[: end + 4 + length]
        retry = head.find(b"retry-after:")
        retry_s = float(head[retry + 12 : head.find(b"\r\n", retry) % (len(head) + 1)]) if retry >= 0 else 0.0
        i, self.current = self.current, -1
        self.client.done(self, i, status, b"connection: close" not in head, retry_s)

    def connection_lost(self, exc: Exception | None) -> None:
        i, self.current = self.current, -1
        self.client.lost(self, i)


class Client:
    """Connection pool + per-request records (scheduled, sent, done time and status)."""

    def __init__(self, target: Target, n: int, max_conns: int, closed_until: float | None = None):
        self.target, self.max_conns, self.closed_until = target, max_conns, closed_until
        self.sched = np.zeros(n)
        self.sent_at = np.zeros(n)
        self.done_at = np.full(n, np.nan)
        self.status = np.zeros(n, dtype=np.int16)  # 0 = no answer, -1 = transport error
        self.idle: list[Conn] = []
        self.waiting: deque[int] = deque()
        self.n_conns = 0
        self.next_closed = 0
        self.connect_errors = 0
        self.loop = asyncio.get_running_loop()

    def submit(self, i: int) -> None:
        if self.idle:
            self.idle.pop().send(i)
            return
        self.waiting.append(i)
        if self.n_conns < self.max_conns:
            self.n_conns += 1
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: Conn(self), self.target.host, self.target.port
            )
        except OSError:
            self.n_conns -= 1
            self.connect_errors += 1
            if self.waiting:
                i = self.waiting.popleft()
                self.done_at[i], self.status[i] = time.perf_counter(), -1
            return
        self._free(conn)

    def _free(self, conn: Conn) -> None:
        if self.closed_until is not None:
            if time.perf_counter() < self.closed_until and self.next_closed < len(self.sched):
                i = self.next_closed
                self.next_closed += 1
                self.sched[i] = time.perf_counter()
                conn.send(i)
            else:
                conn.transport.close()
            return
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)

    def done(self, conn: Conn, i: int, status: int, keep_alive: bool, retry_s: float = 0.0) -> None:
        self.done_at[i], self.status[i] = time.perf_counter(), status
        if not keep_alive:
            conn.transport.close()
        elif self.closed_until is not None and retry_s > 0:  # a closed-loop user honours Retry-After
            self.loop.call_later(min(retry_s, 5.0), self._free, conn)
        else:
            self._free(conn)

    def lost(self, conn: Conn, i: int) -> None:
        if i >= 0:
            self.done_at[i], self.status[i] = time.perf_counter(), -1
        if conn in self.idle:
            self.idle.remove(conn)
        self.n_conns -= 1
        keep_users = self.closed_until is not None and time.perf_counter() < self.closed_until
        if keep_users or (self.waiting and self.n_conns < self.max_conns):
            self.n_conns += 1
            self.loop.create_task(self._open())

    def close(self) -> None:
        for c in self.idle:
            c.transport.close()
        self.idle.clear()


async def drain(client: Client, n: int, until: float) -> None:
    while time.perf_counter() < until and np.isnan(client.done_at[:n]).any():
        await asyncio.sleep(0.02)


class MeasurementWindow:
    """Context manager around a run's measurement: garbage collection off inside it (its pauses looked like
    server stalls at a few thousand requests per second) and the client's CPU seconds across it
    (:attr:`cpu_s`, reported beside every result)."""

    def __enter__(self) -> MeasurementWindow:
        self.cpu_s = 0.0
        self._cpu0, self._gc_was = psutil.Process().cpu_times(), gc.isenabled()
        gc.collect()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._gc_was:
            gc.enable()
        cpu = psutil.Process().cpu_times()
        self.cpu_s = cpu.user + cpu.system - self._cpu0.user - self._cpu0.system
