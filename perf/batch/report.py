"""The batch benchmark's report: machine facts, ratios against same-run baselines, ``batch.json``, figure.

``batch.json`` (schema 1) holds the machine (CPU, cores, memory, library versions, git commit, load average),
the model, the settings, every case's row and the ratios: the largest streamed size against the same runtime
in memory at 1M, onnxruntime against each other runtime per size, and the paired (alternating) timings.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
from pathlib import Path

import psutil

from perf.batch import catalogue, data
from sim.provenance import git_commit


def print_row(r: dict) -> None:
    rss = r.get("peak_rss_mb")
    rss_txt = f"{rss:8.0f} MB" if rss is not None else "       n/a"
    split = ""
    if r.get("read_s") is not None and r["mode"] == "stream" and r["runtime"] != "dask-ort":
        split = f"  read {r['read_s']:.2f}s score {r['score_s']:.2f}s write {r['write_s']:.2f}s"
    head = f"{data.label(r['records']):>6} {r['runtime']:<10} {r['mode']:<6}"
    speed = f"{r['rows_per_s'] / 1e6:8.3f} Mrows/s wall {r['wall_s']:8.2f}s"
    cpu = f" cpu {r['cpu_share']:.0%}" if r.get("cpu_share") is not None else ""
    print(f"{head} {speed} peak {rss_txt}{cpu}{split}", flush=True)


VERSIONED = ("onnxruntime", "lightgbm", "pyarrow", "numpy", "lleaves", "llvmlite", "tl2cgen", "treelite",
             "dask", "distributed", "onnx", "onnxmltools", "pilot-purgatory")


def machine_info() -> dict:
    """CPU model, cores, memory, OS, Python and library versions, git commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in VERSIONED:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "versions": versions, "git_sha": git_commit()}


def pick(rows: list[dict], runtime: str, mode: str, n: int | None = None, *, repeat: bool = False,
          ) -> dict | None:
    cand = [r for r in rows if r["runtime"] == runtime and r["mode"] == mode
            and (n is None or r["records"] == n) and r.get("repeat", False) == repeat]
    return max(cand, key=lambda r: r["records"]) if cand else None


def ratios(rows: list[dict]) -> dict:
    """The issue's targets and the runtime ratios, from rows of one run."""
    out: dict = {}
    for rt in ("ort", "ort-tuned"):  # end to end at the largest size vs the same runtime in memory at 1M
        big, mem1m = pick(rows, rt, "stream"), pick(rows, rt, "memory", 1_000_000)
        if big:
            out[f"{rt}_stream_largest"] = {"records": big["records"], "rows_per_s": big["rows_per_s"],
                                           "peak_rss_mb": big["peak_rss_mb"],
                                           "peak_rss_under_2gib": big["peak_rss_mb"] < 2048}
        for tag, mem in (("", mem1m), ("_after", pick(rows, rt, "memory", 1_000_000, repeat=True))):
            if big and mem:  # "_after": the in-memory case re-measured after the largest run
                r = big["rows_per_s"] / mem["rows_per_s"]
                entry = {"ratio": r, "target": 0.8, "met": r >= 0.8}
                if big.get("cpu_s") and mem.get("cpu_s"):  # rows per CPU second: immune to CPU starvation
                    entry["ratio_per_cpu_s"] = (big["rows"] / big["cpu_s"]) / (mem["rows"] / mem["cpu_s"])
                out[f"{rt}_stream_largest_over_memory_1M{tag}"] = entry
    for mode in ("memory", "stream"):
        for n in sorted({r["records"] for r in rows if r["records"] >= 1_000_000}):
            base = pick(rows, "ort", mode, n)
            if not base:
                continue
            entry = {}
            for other in ("lightgbm", "lleaves", "tl2cgen", "ort-tuned", "dask-ort"):
                o = pick(rows, other, mode, n)
                if o:
                    entry[f"ort_over_{other}"] = base["rows_per_s"] / o["rows_per_s"]
            tuned, ll = pick(rows, "ort-tuned", mode, n), pick(rows, "lleaves", mode, n)
            if tuned and ll:
                entry["ort_tuned_over_lleaves"] = tuned["rows_per_s"] / ll["rows_per_s"]
            if "ort_over_lightgbm" in entry:
                entry["ort_over_lightgbm_met_1.2"] = entry["ort_over_lightgbm"] >= 1.2
            out[f"{mode}_{data.label(n)}"] = entry
    return out


def summarise(rows: list[dict], machine: dict, model: catalogue.BenchModel, args: argparse.Namespace,
              setup: dict) -> dict:
    """The batch.json document (schema 1)."""
    return {"schema_version": 1, "machine": machine,
            "model": {"name": model.name, "key": model.entry.key, "features": len(model.feature_names),
                      "trees": model.entry.card.get("config", {}).get("train", {}).get("n_trees")},
            "settings": {"threads": args.threads, "chunk_rows": args.chunk_rows, "seed": args.seed,
                         "nan_policy": args.nan_policy, "input": str(args.input) if args.input else None},
            "setup": setup, "rows": rows, "ratios": ratios(rows) | paired_ratios(setup.get("paired"))}


def paired_ratios(paired: dict | None) -> dict:
    """ORT's median speed over each other runtime's in the paired (alternating, same process) timing."""
    if not paired:
        return {}
    med = paired["median_rows_per_s"]
    out = {}
    for base in ("ort", "ort-tuned"):
        if base in med:
            out |= {f"{base}_over_{rt}": med[base] / v for rt, v in med.items() if rt != base}
    if "ort_over_lightgbm" in out:
        out["ort_over_lightgbm_met_1.2"] = out["ort_over_lightgbm"] >= 1.2
    return {f"paired_{data.label(paired['records'])}": out}


def write_outputs(report: dict, out: Path) -> None:
    """Write ``batch.json`` (atomically) and the log-log figure ``batch.png``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".batch.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str))
    os.replace(tmp, out / "batch.json")
    plot(report, out / "batch.png")


def plot(report: dict, path: Path) -> None:
    """Throughput and peak RSS against records, log-log, one colour per runtime (dashed: in memory)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = report["rows"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    colours = dict(zip(runtimes, plt.get_cmap("tab10").colors, strict=False))
    for rt in runtimes:
        for mode, style in (("stream", "-o"), ("memory", "--s")):
            sel = sorted((r for r in rows if r["runtime"] == rt and r["mode"] == mode),
                         key=lambda r: r["records"])
            sel = [r for r in sel if not r.get("repeat")]
            if not sel:
                continue
            x = [r["records"] for r in sel]
            lab = f"{rt} ({'read+score+write' if mode == 'stream' else 'in memory'})"
            if rt == "dask-ort":
                lab = "dask-ort (client + workers, RSS summed)"
            ax1.plot(x, [r["rows_per_s"] for r in sel], style, color=colours[rt], label=lab, ms=5)
            rss = [(r["records"], r["peak_rss_mb"]) for r in sel if r.get("peak_rss_mb")]
            if rss:
                ax2.plot(*zip(*rss, strict=True), style, color=colours[rt], label=lab, ms=5)
    for r in rows:
        if r.get("repeat"):  # the in-memory baseline re-measured after the long runs: hollow marker
            ax1.plot([r["records"]], [r["rows_per_s"]], "s", mfc="none", color=colours[r["runtime"]], ms=8,
                     label=f"{r['runtime']} (in memory, re-measured after the largest run)")
    ax2.axhline(2048, color="grey", lw=1, ls=":")
    ax2.set_ylim(top=max(ax2.get_ylim()[1], 2048 * 1.4))
    ax2.text(0.01, 2048 * 1.06, "2 GiB target", color="grey", fontsize=9, transform=ax2.get_yaxis_transform())
    m = report["machine"]
    for ax, ylab in ((ax1, "throughput (rows/s)"), (ax2, "peak RSS of the process (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("records")
        ax.set_ylabel(ylab)
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_title("Throughput vs records")
    ax2.set_title("Peak memory vs records")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    load = m.get("loadavg_start", [None])[0]
    fig.suptitle(f"{report['model']['name']} ({report['model']['trees']} trees) on {m['cpu']}, "
                 f"{m['logical_cores']} cores, {report['settings']['threads']} threads per runtime"
                 + (f" (load average at start {load:.1f})" if load is not None else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
