"""One benchmark case (a size, a runtime, a mode) in a fresh Python process, so its peak RSS is its own.

The parent (:func:`run_case`) sends a JSON spec on stdin and samples the child's RSS with psutil; the child
(:func:`child_main`) builds the predictor, warms it up and scores: ``stream`` cases read, score and write
chunk by chunk; ``memory`` cases score a matrix already in memory (the pure scoring baseline), repeating small
sizes until the timing is at least ``min_s``; ``paired`` runs every runtime alternately in one process on the
same rows (fair ratios on a shared machine). Peak RSS is the kernel's high-water mark (``VmHWM``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from perf.batch import catalogue, data
from sim.errors import UserError


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


def run_case(spec: dict) -> dict:
    """Run one (size, runtime, mode) case in a fresh Python process; add the psutil-sampled peak RSS."""
    code = "import sys; from perf.batch.cases import child_main; sys.exit(child_main())"
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
