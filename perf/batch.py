"""``purgatory bench batch``: batch scoring from 1k to 100M records, onnxruntime beside the alternatives.

For every size the feature data is generated once to Parquet (reused while valid), then every runtime runs
in a fresh subprocess, so each peak RSS is that case's own (the kernel's high-water mark, ``ru_maxrss``,
cross-checked by sampling with psutil). ``stream`` cases read, score and write chunk by chunk; ``memory``
cases (sizes up to ``--memory-max``) score a matrix already in memory, the pure scoring baseline. Writes
``batch.json`` and ``batch.png`` to ``--out`` (see docs/batch-bench.md for how to read them).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from perf import batch_data as data
from perf import batch_models as catalogue
from sim.errors import UserError

DEFAULT_RECORDS = "1k,10k,100k,1M"
DEFAULT_RUNTIMES = ",".join(catalogue.RUNTIMES)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="purgatory bench batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="synthetic-200", help=f"one of: {', '.join(catalogue.names())}")
    p.add_argument("--records", default=DEFAULT_RECORDS, help="comma list of sizes, e.g. 1k,10k,1M,100M")
    p.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help="comma list from: " + DEFAULT_RUNTIMES)
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="where batch.json/.png go")
    p.add_argument("--data-dir", type=Path, default=None, help="generated Parquet (default OUT/data)")
    p.add_argument("--input", type=Path, default=None, help="score this Parquet, not generated data")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per runtime (all)")
    p.add_argument("--chunk-rows", type=int, default=262_144, help="rows per read/score/write chunk")
    p.add_argument("--memory-max", default="1M", help="largest size also scored in memory (baseline)")
    p.add_argument("--memory-min-s", type=float, default=1.0,
                   help="in-memory cases repeat passes until this many seconds (timing resolution)")
    p.add_argument("--paired-rounds", type=int, default=0,
                   help="also time all runtimes in one process, alternating, on the --memory-max rows")
    p.add_argument("--paired-only", action="store_true", help="skip the per-case runs (with --paired-rounds)")
    p.add_argument("--alt-max", default=None,
                   help="largest size for runtimes other than ort (and Dask); default: every size")
    p.add_argument("--nan-policy", choices=data.NAN_POLICIES, default="error",
                   help="rows with NaN/null features: error (default) or null score")
    p.add_argument("--dask-local", action="store_true", help="also score on a 2-worker LocalCluster")
    p.add_argument("--scheduler", default=None, help="also score on the Dask scheduler at ADDRESS")
    p.add_argument("--dask-workers", type=int, default=2, help="workers of --dask-local")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated feature data")
    p.add_argument("--registry", type=Path, default=None, help="model registry root")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.threads < 1 or args.chunk_rows < 1:
        raise UserError(f"--threads (={args.threads}) and --chunk-rows (={args.chunk_rows}) must be >= 1")
    args.sizes = sorted({data.parse_count(s) for s in args.records.split(",") if s.strip()})
    args.memory_max_n = data.parse_count(args.memory_max)
    args.alt_max_n = data.parse_count(args.alt_max) if args.alt_max else None
    args.runtime_list = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    bad = [r for r in args.runtime_list if r not in catalogue.RUNTIMES]
    if bad or not args.runtime_list:
        raise UserError(f"--runtimes = {args.runtimes!r}: allowed: {DEFAULT_RUNTIMES}")
    if args.input is not None and not args.input.exists():
        raise UserError(f"--input = {str(args.input)!r}: no such file")
    return args


# --------------------------------------------------------------------------------------------- child side

def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def peak_rss_mb() -> float:
    """Peak RSS of this process (MB) since it was exec'd: Linux ``VmHWM``, else ``ru_maxrss``.

    ``ru_maxrss`` is not used on Linux because a forked-and-exec'd child inherits the parent's high-water
    mark there (it would report the benchmark driver's memory, not the case's).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # macOS: bytes, others: KiB


def _child_case(spec: dict) -> dict:
    t0 = time.perf_counter()
    predict = catalogue.make_predictor(spec["runtime"], spec["onnx"], spec["booster"], spec["threads"],
                                       cache_dir=spec["cache_dir"], tuned=spec.get("tuned"))
    import numpy as np  # noqa: PLC0415

    features = spec["features"]
    predict(np.zeros((1024, len(features)), dtype=np.float32))  # warm-up: thread pools, lazy init
    out = {"setup_s": time.perf_counter() - t0, "rss_base_mb": _rss_mb()}
    src, chunk = Path(spec["data"]), spec["chunk_rows"]
    if spec["mode"] == "stream":
        bar = None
        if spec["progress"]:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=spec["records"], unit="rows", unit_scale=True, leave=False,
                       desc=f"{spec['runtime']} {data.label(spec['records'])}", file=sys.stderr)
        cpu0 = _cpu_s()
        try:
            out |= data.stream_score(src, Path(spec["pred"]), predict, features, chunk_rows=chunk,
                                     nan_policy=spec["nan_policy"], progress=bar.update if bar else None)
        finally:
            if bar:
                bar.close()
    else:
        pf = data.check_schema(src, features)
        X = np.empty((pf.metadata.num_rows, len(features)), dtype=np.float32)
        buf, at = np.empty((chunk, len(features)), dtype=np.float32), 0
        for n, part in data.iter_chunks(pf, features, buf):
            X[at:at + n] = part
            at += n
        passes, t_start, cpu0 = 0, time.perf_counter(), _cpu_s()
        while True:  # repeat small sizes until the timing is at least ~1 s
            predict(X)
            passes += 1
            elapsed = time.perf_counter() - t_start
            if elapsed >= spec["min_s"] or passes >= 1000:
                break
        out |= {"rows": len(X), "score_s": elapsed / passes, "wall_s": elapsed / passes, "passes": passes,
                "read_s": None, "write_s": None, "nan_rows": 0}
    out["cpu_s"] = (_cpu_s() - cpu0) / out.get("passes", 1)  # CPU seconds of one timed pass
    out["cpu_share"] = out["cpu_s"] / (out["wall_s"] * spec["threads"])  # < 1: threads idle or starved
    out["peak_rss_mb"] = peak_rss_mb()
    out["note"] = getattr(getattr(predict, "__self__", None), "note", None)
    return out


def _child_paired(spec: dict) -> dict:
    """All runtimes in one process on the same in-memory rows, in rotating order for ``rounds`` rounds.

    Load from other processes then hits every runtime alike, so the ratios are fair even on a shared
    machine (the per-case runs measure memory; this measures relative speed).
    """
    import numpy as np  # noqa: PLC0415

    features = spec["features"]
    pf = data.check_schema(Path(spec["data"]), features)
    X = np.empty((pf.metadata.num_rows, len(features)), dtype=np.float32)
    at = 0
    for n, part in data.iter_chunks(pf, features, np.empty((spec["chunk_rows"], len(features)), np.float32)):
        X[at:at + n] = part
        at += n
    preds = {rt: catalogue.make_predictor(rt, spec["onnx"], spec["booster"], spec["threads"],
                                          cache_dir=spec["cache_dir"], tuned=spec.get("tuned"))
             for rt in spec["runtimes"]}
    for predict in preds.values():
        predict(X[:1024])
    speeds: dict[str, list[float]] = {rt: [] for rt in preds}
    names = list(preds)
    for r in range(spec["rounds"]):
        for rt in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            preds[rt](X)
            speeds[rt].append(len(X) / (time.perf_counter() - t0))
    return {"records": len(X), "rounds": spec["rounds"], "rows_per_s": speeds,
            "median_rows_per_s": {rt: float(np.median(v)) for rt, v in speeds.items()}}


def child_main() -> int:
    """Entry of a case subprocess: JSON spec on stdin, JSON result (or error) on stdout."""
    spec = json.loads(sys.stdin.read())
    try:
        result = _child_paired(spec) if spec["mode"] == "paired" else _child_case(spec)
    except UserError as err:
        print(json.dumps({"error": str(err)}))
        return 2
    print(json.dumps(result))
    return 0


# -------------------------------------------------------------------------------------------- parent side

def run_case(spec: dict) -> dict:
    """Run one (size, runtime, mode) case in a fresh Python process; add the psutil-sampled peak RSS."""
    code = "import sys; from perf.batch import child_main; sys.exit(child_main())"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], ps.memory_info().rss)
            except psutil.Error:
                return
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate(json.dumps(spec))
    done.set()
    sampler.join()
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        what = f"{spec['runtime']} {spec['mode']} {spec['records']}"
        raise RuntimeError(f"case {what} failed (exit {proc.returncode}); see its stderr above") from None
    if "error" in result:
        raise UserError(result["error"])
    return result | {"peak_rss_sampled_mb": peak[0] / 2**20}


def _setup_runtimes(args: argparse.Namespace, model: catalogue.BenchModel, cache: Path) -> tuple[list, dict]:
    """Compile / tune what needs it (outside every timed case); drop runtimes that are not installed."""
    import numpy as np  # noqa: PLC0415

    from models.compiled import CompiledBackendError  # noqa: PLC0415

    kept, info = [], {"skipped": {}, "setup_s": {}}
    for rt in args.runtime_list:
        t0 = time.perf_counter()
        try:
            if rt == "ort-tuned":
                X = model.generate(np.random.default_rng(args.seed + 1), 50_000)
                best, table = catalogue.tune_ort(model.entry.onnx_path, X, args.threads)
                info["ort_tuned"], info["ort_tuning_table"] = best, table
            elif rt in ("lleaves", "tl2cgen"):
                entry = model.entry
                catalogue.make_predictor(rt, entry.onnx_path, entry.booster_path, 1, cache_dir=cache)
        except CompiledBackendError as err:
            info["skipped"][rt] = str(err)
            print(f"bench batch: skipping {rt}: {err}", file=sys.stderr)
            continue
        info["setup_s"][rt] = time.perf_counter() - t0
        kept.append(rt)
    return kept, info


def main(argv: list[str]) -> int:
    """Run the benchmark; returns 0. Raises UserError for bad flags or bad input data."""
    args = parse_args(argv)
    from models.registry import Registry  # noqa: PLC0415

    model = catalogue.get(args.model, Registry(args.registry) if args.registry else None)
    features = model.feature_names
    out: Path = args.out
    data_dir = args.data_dir or out / "data"
    cache, preds = out / "cache" / model.entry.key, out / "preds"
    load_start = os.getloadavg()
    specs: dict[tuple, dict] = {}

    def machine() -> dict:
        return machine_info() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()}

    runtimes, setup = _setup_runtimes(args, model, cache)
    sizes = [None] if args.input else args.sizes
    rows: list[dict] = []
    for size in sizes:
        if args.input:
            src = args.input
            n = data.check_schema(src, features).metadata.num_rows
        else:
            n = size
            src = data_dir / f"{model.name}-{model.entry.key}-{data.label(n)}.parquet"
            _ensure(src, model, n, args)
        ref = None
        for rt in [] if args.paired_only else runtimes:
            if rt != "ort" and args.alt_max_n is not None and n > args.alt_max_n:
                continue
            modes = ["stream"] + (["memory"] if n <= args.memory_max_n and not args.input else [])
            for mode in modes:
                pred = preds / f"{rt}-{data.label(n)}.parquet"
                spec = {"runtime": rt, "mode": mode, "records": n, "data": str(src), "pred": str(pred),
                        "onnx": str(model.entry.onnx_path), "booster": str(model.entry.booster_path),
                        "cache_dir": str(cache), "threads": args.threads, "chunk_rows": args.chunk_rows,
                        "features": features, "nan_policy": args.nan_policy, "tuned": setup.get("ort_tuned"),
                        "min_s": args.memory_min_s,
                        "progress": not args.no_progress and n >= 1_000_000}
                res = run_case(spec)
                row = {"records": n, "runtime": rt, "mode": mode, "rows_per_s": res["rows"] / res["wall_s"],
                       "threads": args.threads, "chunk_rows": args.chunk_rows, **res}
                specs[(rt, mode, n)] = spec
                if mode == "stream":
                    ref = ref or pred
                    row["max_abs_diff_vs_first"] = data.compare_scores(ref, pred) if ref != pred else 0.0
                rows.append(row)
                _print_row(row)
        if (args.dask_local or args.scheduler) and (args.alt_max_n is None or n <= args.alt_max_n):
            from perf.batch_dask import DaskBatch  # noqa: PLC0415

            rows.append(_dask_case(args, model, src, n, preds, ref=ref, dask_batch=DaskBatch))
            _print_row(rows[-1])
        write_outputs(summarise(rows, machine(), model, args, setup) | {"complete": False}, out)  # so far
    if args.paired_rounds > 0:  # on the largest size scored in memory
        n_pair = max([n for n in args.sizes if n <= args.memory_max_n] or [min(args.sizes)])
        src = data_dir / f"{model.name}-{model.entry.key}-{data.label(n_pair)}.parquet"
        spec = {"mode": "paired", "runtimes": runtimes, "rounds": args.paired_rounds, "data": str(src),
                "onnx": str(model.entry.onnx_path), "booster": str(model.entry.booster_path),
                "cache_dir": str(cache), "threads": args.threads, "chunk_rows": args.chunk_rows,
                "features": features, "tuned": setup.get("ort_tuned"), "runtime": "paired", "records": n_pair}
        setup["paired"] = run_case(spec)
        print(f"paired ({data.label(n_pair)} rows, {args.paired_rounds} rounds, median rows/s): "
              + ", ".join(f"{rt} {v:,.0f}" for rt, v in setup["paired"]["median_rows_per_s"].items()))
    for rt in ("ort", "ort-tuned"):
        first_1m = _pick(rows, rt, "memory", 1_000_000)
        if first_1m and max(r["records"] for r in rows) > 1_000_000:  # bracket the long runs: load drifts
            again = run_case({**specs[(rt, "memory", 1_000_000)], "progress": False})
            rows.append({**first_1m, **again, "rows_per_s": again["rows"] / again["wall_s"], "repeat": True})
            _print_row(rows[-1])
    report = summarise(rows, machine(), model, args, setup) | {"complete": True}
    write_outputs(report, out)
    print(json.dumps(report["ratios"], indent=2))
    print(f"bench batch: wrote {out / 'batch.json'} and {out / 'batch.png'}")
    return 0


def _ensure(src: Path, model: catalogue.BenchModel, n: int, args: argparse.Namespace) -> None:
    ident = data.identity(model.name, model.entry.key, model.feature_names, n, seed=args.seed,
                          data_version=model.data_version)
    bar = None
    if not args.no_progress and n >= 1_000_000 and data.read_identity(src) != ident:
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=n, unit="rows", unit_scale=True, desc=f"generate {data.label(n)}", leave=False)
    try:
        data.ensure_data(src, ident, model.generate, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()


def _dask_case(args, model, src: Path, n: int, preds: Path, *, ref: Path | None, dask_batch) -> dict:
    workers = args.dask_workers
    with dask_batch(args.scheduler, n_workers=workers, ort_threads=max(1, args.threads // workers)) as db:
        res = db.score(src, preds / f"dask-ort-{data.label(n)}", model.entry.onnx_path, model.feature_names,
                       chunk_rows=args.chunk_rows, nan_policy=args.nan_policy)
    row = {"records": n, "runtime": "dask-ort", "mode": "stream", "rows_per_s": res["rows"] / res["wall_s"],
           "threads": args.threads, "chunk_rows": args.chunk_rows, **res}
    if ref is not None:
        row["max_abs_diff_vs_first"] = data.compare_scores(ref, preds / f"dask-ort-{data.label(n)}")
    return row


def _print_row(r: dict) -> None:
    rss = r.get("peak_rss_mb")
    rss_txt = f"{rss:8.0f} MB" if rss is not None else "       n/a"
    split = ""
    if r.get("read_s") is not None and r["mode"] == "stream" and r["runtime"] != "dask-ort":
        split = f"  read {r['read_s']:.2f}s score {r['score_s']:.2f}s write {r['write_s']:.2f}s"
    head = f"{data.label(r['records']):>6} {r['runtime']:<10} {r['mode']:<6}"
    speed = f"{r['rows_per_s'] / 1e6:8.3f} Mrows/s wall {r['wall_s']:8.2f}s"
    cpu = f" cpu {r['cpu_share']:.0%}" if r.get("cpu_share") is not None else ""
    print(f"{head} {speed} peak {rss_txt}{cpu}{split}", flush=True)


# ------------------------------------------------------------------------------------------------ report

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
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                             cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except OSError:
        sha = None
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "versions": versions, "git_sha": sha}


def _pick(rows: list[dict], runtime: str, mode: str, n: int | None = None, *, repeat: bool = False,
          ) -> dict | None:
    cand = [r for r in rows if r["runtime"] == runtime and r["mode"] == mode
            and (n is None or r["records"] == n) and r.get("repeat", False) == repeat]
    return max(cand, key=lambda r: r["records"]) if cand else None


def ratios(rows: list[dict]) -> dict:
    """The issue's targets and the runtime ratios, from rows of one run."""
    out: dict = {}
    for rt in ("ort", "ort-tuned"):  # end to end at the largest size vs the same runtime in memory at 1M
        big, mem1m = _pick(rows, rt, "stream"), _pick(rows, rt, "memory", 1_000_000)
        if big:
            out[f"{rt}_stream_largest"] = {"records": big["records"], "rows_per_s": big["rows_per_s"],
                                           "peak_rss_mb": big["peak_rss_mb"],
                                           "peak_rss_under_2gib": big["peak_rss_mb"] < 2048}
        for tag, mem in (("", mem1m), ("_after", _pick(rows, rt, "memory", 1_000_000, repeat=True))):
            if big and mem:  # "_after": the in-memory case re-measured after the largest run
                r = big["rows_per_s"] / mem["rows_per_s"]
                entry = {"ratio": r, "target": 0.8, "met": r >= 0.8}
                if big.get("cpu_s") and mem.get("cpu_s"):  # rows per CPU second: immune to CPU starvation
                    entry["ratio_per_cpu_s"] = (big["rows"] / big["cpu_s"]) / (mem["rows"] / mem["cpu_s"])
                out[f"{rt}_stream_largest_over_memory_1M{tag}"] = entry
    for mode in ("memory", "stream"):
        for n in sorted({r["records"] for r in rows if r["records"] >= 1_000_000}):
            base = _pick(rows, "ort", mode, n)
            if not base:
                continue
            entry = {}
            for other in ("lightgbm", "lleaves", "tl2cgen", "ort-tuned", "dask-ort"):
                o = _pick(rows, other, mode, n)
                if o:
                    entry[f"ort_over_{other}"] = base["rows_per_s"] / o["rows_per_s"]
            tuned, ll = _pick(rows, "ort-tuned", mode, n), _pick(rows, "lleaves", mode, n)
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
