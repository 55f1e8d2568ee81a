"""What a load run reports: counts by status, achieved rate, goodput, exact latency percentiles; its file.

Percentiles are exact (every latency is kept; runs are bounded in count and time). Requests that fail
(non-200, transport error, no answer by the end of the drain) count as infinitely slow, so shedding never
flatters a p99. Results files describe themselves (schema, git commit, platform, seed; no wall-clock time).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import psutil

from perf.load.client import Client
from sim.provenance import git_commit
from sim.serving.queue import idle_gaps

SCHEMA = "purgatory.bench.load/1"


def summarize(
    client: Client, n: int, duration: float, client_cpu: float, *, slo_ms: float = 100.0, raw: bool = False
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


def _raw(client: Client, n: int, ok: np.ndarray, lat: np.ndarray) -> dict:
    """Answered requests' latencies and the idle gap before each (seconds since every earlier request was
    answered; 0 while some were still open), for calibrating the simulator's jitter."""
    done = np.where(client.status[:n] == 0, np.nan, client.done_at[:n])
    return {"raw_latency_ok_s": lat[ok], "raw_idle_gap_s": idle_gaps(client.sched[:n], done)[ok]}


def passes(stats: dict, slo_ms: float) -> bool:
    """The run meets the SLO: p99 (failures as infinite) at most ``slo_ms``; the achieved rate is >= 95% of
    the offered one (a client that fell behind does not pass)."""
    p99 = stats["latency_ms"]["p99"]
    return p99 is not None and p99 <= slo_ms and stats["achieved_rate"] >= 0.95 * stats["offered_rate"]


def meta(seed: int) -> dict:
    """Self-description of a results file: schema, git commit, platform; no wall-clock time."""
    return {
        "schema": SCHEMA,
        "git_sha": git_commit(),
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
