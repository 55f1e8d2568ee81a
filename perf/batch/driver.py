"""The batch benchmark's driver: for every size, generate the data once, then run every runtime's cases.

For every size the feature data is generated once to Parquet (reused while valid), then every runtime runs
in a fresh subprocess (:mod:`perf.batch.cases`), optionally on Dask too (:mod:`perf.batch.on_dask`); the
report (:mod:`perf.batch.report`) is rewritten after every size, so an interrupted run keeps what it measured.
The command is ``purgatory bench batch`` (:mod:`sim.cli.bench_batch`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from perf.batch import catalogue, data
from perf.batch.cases import run_case
from perf.batch.report import machine_info, pick, print_row, summarise, write_outputs


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


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed flags; returns 0. Raises UserError for bad input data."""
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
                print_row(row)
        if (args.dask_local or args.scheduler) and (args.alt_max_n is None or n <= args.alt_max_n):
            from perf.batch.on_dask import DaskBatch  # noqa: PLC0415

            rows.append(_dask_case(args, model, src, n, preds, ref=ref, dask_batch=DaskBatch))
            print_row(rows[-1])
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
        first_1m = pick(rows, rt, "memory", 1_000_000)
        if first_1m and max(r["records"] for r in rows) > 1_000_000:  # bracket the long runs: load drifts
            again = run_case({**specs[(rt, "memory", 1_000_000)], "progress": False})
            rows.append({**first_1m, **again, "rows_per_s": again["rows"] / again["wall_s"], "repeat": True})
            print_row(rows[-1])
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
