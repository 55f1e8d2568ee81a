"""Benchmark: PSI, JS, Wasserstein and KS on a window of 1M rows x 20 features against a 1M-row reference.

Times :class:`sim.detection.detectors.Reference` (``fit`` once, then ``compare`` per window) against a naive
per-column loop over scipy (``np.quantile`` + ``np.histogram`` for PSI,
``scipy.spatial.distance.jensenshannon``, ``scipy.stats.wasserstein_distance``, ``scipy.stats.ks_2samp``),
both on the same data in the same run; the data are drawn before any timing. Prints a table, the ratios and
the largest disagreement between the two, and writes ``results/bench-detectors/bench.json``.

    python -m perf.bench_detectors [--rows 1000000] [--features 20] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from sim.detection.detectors import PSI_EPS, Reference


def naive(ref: np.ndarray, cur: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """Per-column scipy loop: what one writes without vectorising."""
    out: dict[str, list[float]] = {"psi": [], "js": [], "wasserstein": [], "ks": []}
    for k in range(ref.shape[1]):
        a, b = ref[:, k], cur[:, k]
        edges = np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1])
        full = np.r_[-np.inf, edges, np.inf]
        p = np.histogram(a, full)[0] / len(a)
        q = np.histogram(b, full)[0] / len(b)
        pe, qe = np.maximum(p, PSI_EPS), np.maximum(q, PSI_EPS)
        out["psi"].append(float(((qe - pe) * np.log(qe / pe)).sum()))
        out["js"].append(float(jensenshannon(p, q, base=2)))
        out["wasserstein"].append(wasserstein_distance(a, b) / float(a.std()))
        out["ks"].append(float(ks_2samp(a, b, method="asymp").statistic))
    return {s: np.array(v) for s, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.bench_detectors", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of compare (best is reported)")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/bench-detectors")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n, f = args.rows, args.features
    ref = rng.standard_normal((n, f), dtype=np.float32)
    cur = (rng.standard_normal((n, f), dtype=np.float32) * 1.05 + 0.02).astype(np.float32)

    t0 = time.perf_counter()
    reference = Reference(ref, bins=args.bins, threads=args.threads)
    t_fit = time.perf_counter() - t0
    t_cmp = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        comp = reference.compare(cur, threads=args.threads)
        t_cmp.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    base = naive(ref, cur, args.bins)
    t_naive = time.perf_counter() - t0

    best = min(t_cmp)
    diff = {s: float(np.max(np.abs(comp[s] - base[s]))) for s in base}
    res = {
        "schema": 1, "rows": n, "features": f, "threads": args.threads, "bins": args.bins,
        "fit_s": t_fit, "compare_s_best": best, "compare_s_all": t_cmp, "fit_plus_compare_s": t_fit + best,
        "naive_scipy_s": t_naive, "ratio_compare": t_naive / best,
        "ratio_fit_plus_compare": t_naive / (t_fit + best),
        "max_abs_diff_vs_naive": diff, "numpy": np.__version__, "scipy": scipy.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
    }
    print(f"{n:,} rows x {f} features, float32, threads={args.threads}")
    print(f"  Reference fit (sort reference once)   {t_fit:7.3f} s")
    runs = ", ".join(f"{t:.3f}" for t in t_cmp)
    print(f"  compare: PSI+JS+Wasserstein+KS (best) {best:7.3f} s   runs: {runs}")
    print(f"  fit + compare                         {t_fit + best:7.3f} s")
    print(f"  naive per-column scipy loop           {t_naive:7.3f} s")
    print(f"  ratio naive / compare                 {res['ratio_compare']:7.1f} x")
    print(f"  ratio naive / (fit + compare)         {res['ratio_fit_plus_compare']:7.1f} x")
    print("  max |difference| vs naive: " + ", ".join(f"{s} {v:.2g}" for s, v in diff.items()))
    print(f"  load average (1 min) during run: {res['load_avg_1min']:.2f} on {os.cpu_count()} cpus")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "bench.json.tmp"
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(out / "bench.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
