"""The drift-detector evaluation: streaming detectors on synthetic streams with known change points.

Protocol (the literature's: Basseville & Nikiforov 1993; Bifet & Gavaldà 2007):

1. ARL0: every detector runs on change-free N(0, 1) streams; ARL0 is the mean number of items to the first
   alarm (censored streams handled by the exponential MLE, :func:`sim.detection.streaming.arl0`). Reported
   for the detectors' default parameters and after calibration.
2. Matched ARL0: each detector's tuning parameter is set by simulation so that its ARL0 equals ``--arl0``
   (the periodic dummy gets ``period = --arl0``), on streams independent of the evaluation streams.
3. Streams with a sudden mean shift of ``shift`` standard deviations at a known item ``tau`` (uniform in
   ``[--change-min, --change-max]``), followed by ``--post`` items. A detector restarts after each alarm
   (renewal). Alarms before ``tau`` are false alarms (reported per 1,000 pre-change items); the first alarm
   at or after ``tau`` gives the detection delay ``alarm - tau + 1`` items (mean and median); no alarm in
   the ``--post`` items after ``tau`` is a missed detection. The periodic dummy starts at a random phase
   (uniform in its period), so it alarms once per ``period`` items in steady state.

Writes ``summary.csv``, ``summary.md``, ``batch_levels.csv`` (false-alarm rates of the batch tests of
:mod:`sim.detection.detectors` against their nominal level), ``meta.json`` and ``drift_eval.png`` under
``--out`` (the ``purgatory drift-eval`` command, :mod:`sim.cli.drift_eval`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.detection import streaming
from sim.provenance import git_commit
from sim.rng import Streams

SCHEMA_VERSION = 1
DEFAULTS = {"adwin": {"delta": 0.002}, "page_hinkley": {"threshold": 50.0, "delta": 0.005}}
#: parameters held fixed while the tuning parameter is calibrated
FIXED = {"adwin": {}, "page_hinkley": {"delta": 0.005}, "periodic": {}}


def shifted_streams(rng: np.random.Generator, n: int, length: int, change_at: np.ndarray | None,
                    shift: float) -> np.ndarray:
    """[n, length] N(0, 1) items; from ``change_at[i]`` on, row i's mean is ``shift`` (None: no change)."""
    X = rng.standard_normal((n, length))
    if change_at is not None:
        X += shift * (np.arange(length)[None, :] >= np.asarray(change_at)[:, None])
    return X


def run_renewal(kind: str, params: dict, X: np.ndarray, change_at: np.ndarray,
                post: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``kind`` with restarts after every alarm on each row of ``X`` [S, T].

    Returns per stream: false alarms before ``change_at``, pre-change items seen, and the detection delay
    (``alarm - change_at + 1`` items; NaN when no alarm comes within ``post`` items of the change).
    """
    S, T = X.shape
    start = np.zeros(S, dtype=np.int64)
    false_alarms = np.zeros(S, dtype=np.int64)
    delay = np.full(S, np.nan)
    active = np.ones(S, dtype=bool)
    cols = np.arange(T)
    phase = np.broadcast_to(np.asarray(params.get("phase", 0), dtype=np.int64), (S,)).copy()
    while active.any():
        rows = np.flatnonzero(active)
        off = start[rows]
        width = T - int(off.min())
        idx = np.minimum(off[:, None] + cols[None, :width], T - 1)   # padding past the end is never used
        p = dict(params)
        if "phase" in p:            # per-stream phase of the periodic dummy until its first alarm
            p["phase"] = phase[rows]
        fa = streaming.first_alarm(kind, X[rows[:, None], idx], **p)
        fa[fa >= T - off] = -1
        at = off + fa
        hit = fa >= 0
        pre = hit & (at < change_at[rows])
        false_alarms[rows[pre]] += 1
        start[rows[pre]] = at[pre] + 1
        phase[rows[hit]] = 0
        post_hit = hit & ~pre
        d = at[post_hit] - change_at[rows[post_hit]] + 1
        delay[rows[post_hit]] = np.where(d <= post, d, np.nan)
        active[rows[~pre]] = False
    return false_alarms, np.asarray(change_at, dtype=np.float64), delay


def evaluate(params: dict[str, dict], shifts: list[float], rng: np.random.Generator, *, n_streams: int,
             change_range: tuple[int, int], post: int) -> pd.DataFrame:
    """One row per (detector, shift): delays, missed-detection rate and false alarms per 1,000 items."""
    rows = []
    for shift in shifts:
        tau = rng.integers(change_range[0], change_range[1] + 1, size=n_streams)
        X = shifted_streams(rng, n_streams, int(change_range[1]) + post, tau, shift)
        for kind, kind_params in params.items():
            p = dict(kind_params)
            if kind == "periodic":  # the dummy was started at a random time relative to the stream
                p["phase"] = rng.integers(0, int(p["period"]), size=n_streams)
            fa, exposure, delay = run_renewal(kind, p, X, tau, post)
            found = delay[~np.isnan(delay)]
            rows.append({
                "detector": kind, "shift_sd": shift, "streams": n_streams,
                "delay_mean": float(found.mean()) if found.size else np.nan,
                "delay_median": float(np.median(found)) if found.size else np.nan,
                "delay_q25": float(np.quantile(found, 0.25)) if found.size else np.nan,
                "delay_q75": float(np.quantile(found, 0.75)) if found.size else np.nan,
                "missed_rate": float(np.isnan(delay).mean()),
                "false_alarms_per_1000": 1000.0 * fa.sum() / exposure.sum(),
            })
    out = pd.DataFrame(rows)
    out.attrs["post"] = post
    return out


def _exposure(kind: str, X: np.ndarray, params: dict) -> dict[str, float]:
    """Alarms, items observed and the one-sided 95% lower bound of ARL0 (rule of three if no alarm)."""
    fa = streaming.first_alarm(kind, X, **params)
    alarms = int((fa >= 0).sum())
    items = int(np.where(fa >= 0, fa + 1, X.shape[1]).sum())
    lower = items / 3.0 if alarms == 0 else items / (alarms + 1.645 * np.sqrt(alarms))
    return {"streams": X.shape[0], "horizon": X.shape[1], "alarms": alarms, "items": items,
            "arl0_lower95": lower}


def calibrate_all(target: float, rng: np.random.Generator, n_streams: int) -> tuple[dict, pd.DataFrame]:
    """Matched-ARL0 parameters of every detector, and a table of ARL0 at default and calibrated settings."""
    X = shifted_streams(rng, n_streams, int(4 * target), None, 0.0)
    check = shifted_streams(rng, n_streams, int(4 * target), None, 0.0)
    params, rows = {}, []
    for kind in ("adwin", "page_hinkley", "periodic"):
        if kind in DEFAULTS:
            a, se = streaming.arl0(kind, check, **DEFAULTS[kind])
            rows.append({"detector": kind, "setting": "default", "params": json.dumps(DEFAULTS[kind]),
                         "arl0": a, "arl0_se": se, **_exposure(kind, check, DEFAULTS[kind])})
        p, _ = streaming.calibrate_arl0(kind, target, X, **FIXED[kind])
        params[kind] = p
        a, se = streaming.arl0(kind, check, **p)
        rows.append({"detector": kind, "setting": f"matched ARL0={target:g}",
                     "params": json.dumps({k: float(f"{v:.6g}") for k, v in p.items()}),
                     "arl0": a, "arl0_se": se, **_exposure(kind, check, p)})
    return params, pd.DataFrame(rows)


def batch_levels(rng: np.random.Generator, seeds: int, *, levels: tuple[float, ...] = (0.01, 0.05, 0.1),
                 n_ref: int = 1000, window: int = 100, features: int = 20) -> pd.DataFrame:
    """Observed false-alarm rate of each batch test of :mod:`sim.detection.detectors` on change-free windows.

    Per seed: a fresh N(0, 1) reference, thresholds calibrated at each level, one fresh window; the
    ``features`` columns are independent trials. The 95% Clopper-Pearson interval of the observed rate
    should contain the nominal level.
    """
    from scipy.stats import binomtest  # noqa: PLC0415 - only this report needs it

    from sim.detection.detectors import Reference, calibrate  # noqa: PLC0415

    counts: dict[tuple[str, float], int] = {}
    for _ in range(seeds):
        X = rng.standard_normal((n_ref, features))
        comp = Reference(X).compare(rng.standard_normal((window, features)))
        for level in levels:
            thr = calibrate(X, window, level=level, n_resamples=max(200, int(2 / level)), rng=rng)
            for s, hit in thr.alarms(comp).items():
                counts[(s, level)] = counts.get((s, level), 0) + int(hit.sum())
    trials = seeds * features
    rows = []
    for (s, level), k in sorted(counts.items()):
        ci = binomtest(k, trials, level).proportion_ci(0.95)
        rows.append({"test": s, "nominal": level, "alarms": k, "trials": trials, "rate": k / trials,
                     "ci95_low": ci.low, "ci95_high": ci.high, "nominal_in_ci": ci.low <= level <= ci.high})
    return pd.DataFrame(rows)


def plot(summary: pd.DataFrame, arl: pd.DataFrame, target: float, path: Path) -> None:
    """Two panels: median delay (IQR bars) and missed-detection rate against shift size, per detector."""
    import matplotlib  # noqa: PLC0415 - plotting only when writing the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    styles = {"adwin": ("C0", "o"), "page_hinkley": ("C1", "s"), "periodic": ("0.5", "^")}
    for kind, g in summary.groupby("detector", sort=False):
        colour, marker = styles.get(kind, ("C3", "x"))
        a = arl[(arl.detector == kind) & (arl.setting != "default")].arl0.iloc[0]
        fa = g.false_alarms_per_1000.mean()
        label = f"{kind} (ARL0 {a:,.0f}; {fa:.2f} false alarms / 1,000 items)"
        yerr = np.vstack([g.delay_median - g.delay_q25, g.delay_q75 - g.delay_median])
        ax1.errorbar(g.shift_sd, g.delay_median, yerr=yerr, color=colour, marker=marker, capsize=3,
                     label=label)
        ax2.plot(g.shift_sd, 100 * g.missed_rate, color=colour, marker=marker, label=label)
    ax1.set_yscale("log")
    ax1.set_xlabel("sudden mean shift (standard deviations)")
    ax1.set_ylabel("detection delay, items (median, IQR bars)")
    ax1.set_title(f"Delay at matched ARL0 = {target:,.0f} items")
    ax2.set_xlabel("sudden mean shift (standard deviations)")
    ax2.set_ylabel("missed detections (%)")
    ax2.set_title("Missed within the post-change horizon")
    ax2.set_ylim(-1, max(10.0, 110 * summary.missed_rate.max()))
    ticks = sorted(summary.shift_sd.unique())
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax2.text(0.98, 0.95, f"periodic never misses: its period ({target:,.0f}) fits in the\n"
             f"{int(summary.attrs.get('post', 0)):,}-item post-change horizon; it pays in delay",
             transform=ax2.transAxes, ha="right", va="top", fontsize=8, color="0.35")
    ax1.legend(fontsize=7.5)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table; floats with 4 significant digits."""
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run(out: Path, *, seed: int, arl0: float, n_streams: int, shifts: list[float],
        change_range: tuple[int, int], post: int, batch_seeds: int, settings: dict) -> str:
    """Run the whole protocol and write its tables, figure and metadata to ``out``; returns the markdown
    summary. ``settings`` (the command's flags) are recorded in ``meta.json``."""
    streams = Streams(seed)
    params, arl = calibrate_all(arl0, streams.generator("calibration"), n_streams)
    summary = evaluate(params, shifts, streams.generator("evaluation"), n_streams=n_streams,
                       change_range=change_range, post=post)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "arl0.csv", arl.to_csv(index=False))
    _write(out / "summary.csv", summary.to_csv(index=False))
    md = ["## ARL0 on change-free N(0,1) streams", "", markdown(arl), "",
          f"## Sudden shifts at matched ARL0 = {arl0:g}", "",
          markdown(summary), ""]
    if batch_seeds:
        levels = batch_levels(streams.generator("batch-levels"), batch_seeds)
        _write(out / "batch_levels.csv", levels.to_csv(index=False))
        md += ["## Batch tests on change-free windows: false-alarm rate vs nominal level", "",
               markdown(levels), ""]
    _write(out / "summary.md", "\n".join(md))
    plot(summary, arl, arl0, out / "drift_eval.png")
    meta = {"schema_version": SCHEMA_VERSION, "git_sha": git_commit(), "seed": seed, "args": settings,
            "params": params}
    _write(out / "meta.json", json.dumps(meta, indent=2, default=float) + "\n")
    return "\n".join(md)
