"""``purgatory bench load``: an open- and closed-loop HTTP load generator for Open Inference Protocol servers.

Open loop: Poisson arrivals at a target rate; each request's latency runs from its *scheduled* send time, so a
slow server or a busy client cannot hide queueing (no coordinated omission). Closed loop: C connections, each
sending its next request when the last answer arrives. Percentiles are exact (every latency is kept; runs are
bounded in count and time). Requests that fail (non-200, transport error, no answer by the end of the drain)
count as infinitely slow in the percentiles, so shedding never flatters a p99.

The client is a lean HTTP/1.1 keep-alive client on asyncio protocols (one request in flight per connection,
pre-built request bytes, callbacks instead of tasks), with garbage collection off inside the measurement
window; its CPU use and dispatch lag (actual minus scheduled send time) are reported beside every result.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import subprocess
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil

from sim.errors import UserError
from sim.serving import idle_gaps

MAX_REQUESTS = 3_000_000  # per run: bounds memory (a few float64 arrays) and time
SCHEMA = "purgatory.bench.load/1"


@dataclass(frozen=True)
class Target:
    """Where and what to send: host, port, and a few pre-built HTTP requests cycled through."""

    host: str
    port: int
    requests: tuple[bytes, ...]
    model: str


def infer_body(rows: np.ndarray, input_name: str = "input") -> bytes:
    """V2 JSON infer body for float32 rows [N, F]."""
    doc = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": [float(v) for v in rows.ravel()],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def make_target(
    url: str,
    model: str,
    rows: int = 1,
    *,
    seed: int = 0,
    token: str | None = None,
    n_bodies: int = 64,
    n_features: int | None = None,
    path: str | None = None,
) -> Target:
    """Build a Target: reads the model's input shape from ``GET /v2/models/{model}`` unless ``n_features``.

    Bodies are ``rows`` rows of seeded standard normal features; ``n_bodies`` different ones are cycled so
    the model does not score one row over and over (branch predictors would flatter it). Raises UserError
    when the server cannot be reached or does not know the model.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UserError(f"--url = {url!r}: allowed: http://HOST:PORT")
    host, port = parts.hostname, parts.port or 80
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    input_name = "input"
    if n_features is None:
        try:
            req = urllib.request.Request(f"http://{host}:{port}/v2/models/{model}", headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                meta = json.loads(resp.read())
        except OSError as err:
            raise UserError(
                f"--url/--model: cannot read metadata of model {model!r} at {url}: {err}"
            ) from None
        inp = meta["inputs"][0]
        input_name, n_features = inp["name"], int(inp["shape"][-1])
    rng = np.random.default_rng(seed)
    path = path or f"/v2/models/{model}/infer"
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    reqs = []
    for _ in range(n_bodies):
        body = infer_body(rng.standard_normal((rows, n_features)).astype(np.float32), input_name)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        reqs.append(head.encode() + body)
    return Target(host, port, tuple(reqs), model)


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; parses Content-Length responses."""

    def __init__(self, client: _Client):
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


class _Client:
    """Connection pool + per-request records (scheduled, sent, done time and status)."""

    def __init__(self, target: Target, n: int, max_conns: int, closed_until: float | None = None):
        self.target, self.max_conns, self.closed_until = target, max_conns, closed_until
        self.sched = np.zeros(n)
        self.sent_at = np.zeros(n)
        self.done_at = np.full(n, np.nan)
        self.status = np.zeros(n, dtype=np.int16)  # 0 = no answer, -1 = transport error
        self.idle: list[_Conn] = []
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
                lambda: _Conn(self), self.target.host, self.target.port
            )
        except OSError:
            self.n_conns -= 1
            self.connect_errors += 1
            if self.waiting:
                i = self.waiting.popleft()
                self.done_at[i], self.status[i] = time.perf_counter(), -1
            return
        self._free(conn)

    def _free(self, conn: _Conn) -> None:
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

    def done(self, conn: _Conn, i: int, status: int, keep_alive: bool, retry_s: float = 0.0) -> None:
        self.done_at[i], self.status[i] = time.perf_counter(), status
        if not keep_alive:
            conn.transport.close()
        elif self.closed_until is not None and retry_s > 0:  # a closed-loop user honours Retry-After
            self.loop.call_later(min(retry_s, 5.0), self._free, conn)
        else:
            self._free(conn)

    def lost(self, conn: _Conn, i: int) -> None:
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


async def _drain(client: _Client, n: int, until: float) -> None:
    while time.perf_counter() < until and np.isnan(client.done_at[:n]).any():
        await asyncio.sleep(0.02)


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
    client = _Client(target, n, max_conns)
    lag = np.zeros(n)
    cpu0, gc_was = psutil.Process().cpu_times(), gc.isenabled()
    gc.collect()
    gc.disable()
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
        await _drain(client, n, t0 + duration + drain_s)
    finally:
        if gc_was:
            gc.enable()
        client.close()
    cpu = psutil.Process().cpu_times()
    stats = summarize(
        client,
        n,
        duration,
        (cpu.user + cpu.system - cpu0.user - cpu0.system) / duration,
        slo_ms=slo_ms,
        raw=raw,
    )
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
    cap = MAX_REQUESTS
    cpu0, gc_was = psutil.Process().cpu_times(), gc.isenabled()
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    client = _Client(target, cap, concurrency, closed_until=t0 + duration)
    try:
        client.n_conns = concurrency
        opens = [client.loop.create_task(client._open()) for _ in range(concurrency)]
        await asyncio.sleep(duration)
        await asyncio.gather(*opens)
        n = client.next_closed
        await _drain(client, n, time.perf_counter() + drain_s)
    finally:
        if gc_was:
            gc.enable()
        client.close()
    cpu = psutil.Process().cpu_times()
    stats = summarize(
        client,
        client.next_closed,
        duration,
        (cpu.user + cpu.system - cpu0.user - cpu0.system) / duration,
        slo_ms=slo_ms,
        raw=raw,
    )
    stats.update(mode="closed", concurrency=concurrency, connect_errors=client.connect_errors)
    return stats


def summarize(
    client: _Client, n: int, duration: float, client_cpu: float, *, slo_ms: float = 100.0, raw: bool = False
) -> dict:
    """Counts by status, achieved rate, goodput (200 within ``slo_ms``), exact latency percentiles in ms
    (failures count as infinite, reported as null)."""
    status = client.status[:n]
    lat = client.done_at[:n] - client.sched[:n]
    ok = status == 200
    lat_all = np.where(ok, lat, np.inf)
    codes, counts = np.unique(status, return_counts=True)
    pct = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)):
        v = float(np.quantile(lat_all, q, method="inverted_cdf")) * 1e3 if n else float("nan")
        pct[name] = v if np.isfinite(v) else None
    return {
        "requests": int(n),
        "duration_s": duration,
        "achieved_rate": float(ok.sum()) / duration,
        "by_status": {
            ("transport_error" if c == -1 else "no_answer" if c == 0 else str(int(c))): int(k)
            for c, k in zip(codes, counts, strict=True)
        },
        "transport_errors": int((status == -1).sum()),
        "latency_ms": pct,
        "latency_ok_ms": {
            "p50": float(np.median(lat[ok]) * 1e3) if ok.any() else None,
            "p99": float(np.quantile(lat[ok], 0.99) * 1e3) if ok.any() else None,
            "mean": float(lat[ok].mean() * 1e3) if ok.any() else None,
        },
        "goodput": float((ok & (lat * 1e3 <= slo_ms)).sum()) / duration,
        "slo_ms": slo_ms,
        "client_cpu_cores": client_cpu,
        "loadavg_1m": os.getloadavg()[0],
    } | (_raw(client, n, ok, lat) if raw else {})


def _raw(client: _Client, n: int, ok: np.ndarray, lat: np.ndarray) -> dict:
    """Answered requests' latencies and the idle gap before each (seconds since every earlier request was
    answered; 0 while some were still open), for calibrating the simulator's jitter."""
    done = np.where(client.status[:n] == 0, np.nan, client.done_at[:n])
    return {"raw_latency_ok_s": lat[ok], "raw_idle_gap_s": idle_gaps(client.sched[:n], done)[ok]}


def passes(stats: dict, slo_ms: float) -> bool:
    """The run meets the SLO: p99 (failures as infinite) at most ``slo_ms``; the achieved rate is >= 95% of
    the offered one (a client that fell behind does not pass)."""
    p99 = stats["latency_ms"]["p99"]
    return p99 is not None and p99 <= slo_ms and stats["achieved_rate"] >= 0.95 * stats["offered_rate"]


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


def meta(seed: int) -> dict:
    """Self-description of a results file: schema, git commit, platform; no wall-clock time."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        sha = ""
    return {
        "schema": SCHEMA,
        "git_sha": sha,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": psutil.cpu_count(),
        "seed": seed,
    }


def write_results(doc: dict, out_dir: Path, label: str) -> Path:
    """Write ``load-<label>.json`` atomically and a throughput-latency figure ``load-<label>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"load-{label}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    tmp.replace(path)
    runs = doc.get("runs", [])
    if runs:
        import matplotlib  # noqa: PLC0415 - only when a figure is drawn

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        fig, ax = plt.subplots(figsize=(6, 4))
        rows = sorted(runs, key=lambda r: r["achieved_rate"])
        x = [r["achieved_rate"] for r in rows]
        for key, style in (("p50", "o-"), ("p99", "s-")):
            ax.plot(
                x,
                [r["latency_ms"][key] if r["latency_ms"][key] is not None else np.nan for r in rows],
                style,
                label=key,
            )
        if "slo_ms" in doc:
            ax.axhline(doc["slo_ms"], color="grey", ls="--", label=f"SLO {doc['slo_ms']:g} ms")
        ax.set(
            xlabel="achieved rate (req/s)",
            ylabel="latency (ms, from scheduled send)",
            yscale="log",
            title=f"{label}",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(path.with_suffix(".png"), dpi=120)
        plt.close(fig)
    return path


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v]
    except ValueError:
        raise UserError(f"{flag} = {text!r}: allowed: positive numbers separated by commas") from None
    if not values or min(values) <= 0:
        raise UserError(f"{flag} = {text!r}: allowed: positive numbers separated by commas")
    return values


def main(argv: list[str]) -> int:
    """Entry point of ``purgatory bench load``; raises UserError for bad flags or an unreachable server."""
    p = argparse.ArgumentParser(prog="purgatory bench load", description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", required=True)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", help="open loop: req/s (comma list for several runs)")
    mode.add_argument("--concurrency", help="closed loop: connections (comma list for a sweep)")
    mode.add_argument("--sweep-slo-ms", type=float, help="find the highest open-loop rate with p99 <= this")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (at most 600)")
    p.add_argument("--rows", type=int, default=1, help="rows per request")
    p.add_argument("--slo-ms", type=float, default=100.0, help="SLO for goodput")
    p.add_argument("--start-rate", type=float, default=500.0)
    p.add_argument("--max-rate", type=float, default=50_000.0)
    p.add_argument("--max-conns", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--token", default=None)
    p.add_argument("--label", default=None, help="results file name part (default: the model)")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 600:
        raise UserError(f"--duration = {args.duration}: allowed: 0 < seconds <= 600")
    if args.rows < 1 or args.max_conns < 1:
        raise UserError(f"--rows = {args.rows}, --max-conns = {args.max_conns}: both must be >= 1")
    target = make_target(args.url, args.model, args.rows, seed=args.seed, token=args.token)
    doc = {
        "meta": meta(args.seed),
        "url": args.url,
        "model": args.model,
        "rows": args.rows,
        "slo_ms": args.sweep_slo_ms or args.slo_ms,
    }
    if args.sweep_slo_ms:
        doc.update(
            asyncio.run(
                sweep(
                    target,
                    args.sweep_slo_ms,
                    start=args.start_rate,
                    max_rate=args.max_rate,
                    step_s=args.duration,
                    seed=args.seed,
                    max_conns=args.max_conns,
                )
            )
        )
    elif args.rate:
        rates = _floats(args.rate, "--rate")
        doc["runs"] = [
            asyncio.run(
                run_open(
                    target, r, args.duration, seed=args.seed, max_conns=args.max_conns, slo_ms=args.slo_ms
                )
            )
            for r in rates
        ]
    else:
        conc = [int(c) for c in _floats(args.concurrency, "--concurrency")]
        doc["runs"] = [asyncio.run(run_closed(target, c, args.duration, slo_ms=args.slo_ms)) for c in conc]
    path = write_results(doc, Path(args.out), args.label or args.model)
    for r in doc["runs"]:
        lat = r["latency_ms"]
        print(
            f"{r['mode']:6} {r.get('target_rate', r.get('concurrency')):>8g}"
            f"  achieved {r['achieved_rate']:8.0f}/s"
            f"  p50 {lat['p50']}  p99 {lat['p99']}  p99.9 {lat['p99.9']} ms  status {r['by_status']}"
            f"  client cpu {r['client_cpu_cores']:.2f}"
        )
    if args.sweep_slo_ms:
        print(f"highest rate with p99 <= {args.sweep_slo_ms:g} ms: {doc['max_rate']:.0f} req/s")
    print(f"wrote {path}")
    return 0
