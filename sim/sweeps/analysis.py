"""Assemble a sweep's parts into tidy tables, per-point confidence intervals, sensitivity indices and figures.

Outputs (in the sweep's folder):
- ``runs.parquet``: one row per (point, replication, KPI): point, rep, seed, parameter values, kpi, value.
- ``failures.parquet``: runs that raised: point, rep, seed, parameter values, error.
- ``summary.parquet``: per point and KPI: parameter values, mean, sd, n, 95% CI (Student t, n - 1 df).
- ``sensitivity.parquet`` (+ ``sensitivity.md`` with its caveats): Sobol first-order and total indices
  (Saltelli 2010 / Jansen 1999 estimators, bootstrap 95% CIs) for a ``sobol`` design, Morris mu*, mu and
  sigma for a ``morris`` design, Spearman rank correlations otherwise. Indices are of the KPI's mean over
  the replications at each point.
- ``figures/<kpi>.png``: the KPI against each parameter (mean over the other parameters' values) with a
  95% CI band.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from sim.rng import Streams
from sim.sweeps.runner import finished_runs, run_id, write_atomic
from sim.sweeps.spec import Design, SweepSpec

N_BOOT = 1000


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    write_atomic(path, lambda p: pq.write_table(table, p))


def read_parts(spec: SweepSpec, design: Design, out: Path) -> pd.DataFrame:
    """Every part of the plan on disk, as one frame sorted by point, rep and KPI (error parts included)."""
    parts = out / "parts"
    done = finished_runs(parts)
    files = []
    for p in range(len(design.points)):
        for r in range(spec.replications):
            rid = run_id(p, r)
            if rid in done:
                ok = parts / f"{rid}.parquet"
                files.append(ok if ok.exists() else parts / f"{rid}.error.parquet")
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             [("point", "int32"), ("rep", "int32"), ("seed", "int64"), ("status", "str"),
                              ("error", "str"), ("kpi", "str"), ("value", "float64")]})
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables).to_pandas()


def ci95(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean, lower and upper bound of the 95% Student-t confidence interval, and n (NaN bounds for n < 2)."""
    v = values.dropna().to_numpy(dtype=float)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def summarise(runs: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Per point and KPI: parameter values, mean, sd, n, ci_low, ci_high."""
    rows = []
    for (point, kpi), g in runs.groupby(["point", "kpi"], sort=True):
        mean, lo, hi, n = ci95(g["value"])
        sd = float(g["value"].std(ddof=1)) if n > 1 else float("nan")
        first = g.iloc[0]
        rows.append({"point": point, **{p: first[p] for p in params}, "kpi": kpi, "mean": mean, "sd": sd,
                     "n": n, "ci_low": lo, "ci_high": hi})
    cols = ["point", *params, "kpi", "mean", "sd", "n", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols).astype({"point": "int32", "n": "int32"})


def assemble(spec: SweepSpec, design: Design, out: Path, figures: bool = True) -> dict:
    """Write runs, failures, summary, sensitivity and figures; finalise manifest.json. Returns the counts."""
    params = list(design.params)
    dtab = pq.read_table(out / "design.parquet").to_pandas()[["point", *params]]
    raw = read_parts(spec, design, out)
    ok = raw[raw["status"] == "ok"]
    bad = raw[raw["status"] != "ok"].drop_duplicates(["point", "rep"])
    runs = ok.merge(dtab, on="point", how="left")[["point", "rep", "seed", *params, "kpi", "value"]]
    runs = runs.sort_values(["point", "rep", "kpi"], kind="mergesort").reset_index(drop=True)
    failures = bad.merge(dtab, on="point", how="left")[["point", "rep", "seed", *params, "error"]]
    failures = failures.sort_values(["point", "rep"], kind="mergesort").reset_index(drop=True)
    _write_frame(runs, out / "runs.parquet")
    _write_frame(failures, out / "failures.parquet")
    summary = summarise(runs, params)
    _write_frame(summary, out / "summary.parquet")
    outputs = ["runs.parquet", "failures.parquet", "summary.parquet"]
    n_ok = int(ok[["point", "rep"]].drop_duplicates().shape[0])
    counts = {"runs_ok": n_ok, "runs_failed": len(failures),
              "missing": len(design.points) * spec.replications - n_ok - len(failures)}
    if len(runs):
        gen = Streams(spec.root_seed).generator("sweep.bootstrap")
        sens, caveats = sensitivity(spec, design, runs, gen, N_BOOT)
        _write_frame(sens, out / "sensitivity.parquet")
        write_atomic(out / "sensitivity.md", lambda p: p.write_text(caveats))
        outputs += ["sensitivity.parquet", "sensitivity.md"]
        if figures:
            outputs += [str(p.relative_to(out)) for p in plot_all(runs, params, out / "figures", spec.name)]
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    status = "complete" if counts["missing"] == 0 else "incomplete"
    manifest |= {"status": status, **counts, "outputs": outputs}
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(manifest_path, lambda p: p.write_text(text))
    return counts | {"outputs": outputs}


# ---------------------------------------------------------------- sensitivity

CAVEAT_COMMON = (
    "Everything here is computed on the mean of each KPI over the {reps} replication(s) at each point. "
    "Simulation noise that the replications do not average away acts like an extra input: it inflates total "
    "indices, can push first-order estimates below zero and blurs correlations. Read the 95% CIs (bootstrap "
    "over base rows or trajectories) before ranking parameters; overlapping CIs mean the design cannot tell "
    "the parameters apart. Per-point means and t intervals are in summary.parquet."
)

CAVEATS = {
    "sobol": "Sobol indices (Saltelli 2010 first-order, Jansen 1999 total) from N = {n} base rows "
             "({points} points for {k} parameters). With N below about 500 the CIs are wide and S1 may be "
             "negative; the indices assume independent inputs, uniform over the axis bounds.",
    "morris": "Morris elementary effects from {n} trajectories on a {levels}-level grid (step {delta:.3f} of "
              "each axis's range). mu* ranks importance (screening, not a variance share); sigma large "
              "relative to mu* means interactions or non-linearity. Fewer than about 10 trajectories give a "
              "rough ranking only.",
    "other": "Spearman rank correlation of the point means with each parameter over {points} points "
             "(design {design!r}): a monotone-association screen, not a variance decomposition; it misses "
             "non-monotone effects and, on small designs, is noisy. Use design = 'sobol' or 'morris' for "
             "sensitivity indices.",
}


def _point_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Point x KPI matrix of the KPI's mean over replications."""
    return runs.groupby(["point", "kpi"], sort=True)["value"].mean().unstack("kpi")


def _ci(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nanpercentile(boot, 2.5, axis=0), np.nanpercentile(boot, 97.5, axis=0)


def _sobol(design: Design, y: np.ndarray, gen: np.random.Generator, n_boot: int) -> list[dict]:
    """S1 = mean(fB (fABi - fA)) / V, ST = mean((fA - fABi)^2) / (2 V), V = var of fA and fB pooled.

    Outputs are centred on the pooled mean of fA and fB first: S1's expectation is unchanged (E fABi =
    E fA) and its variance drops a lot when the KPI's mean is far from zero.
    """
    k = len(design.params)
    blocks = np.asarray(design.blocks)
    f = {b: y[blocks == b] for b in ["A", "B", *[f"AB{i}" for i in range(k)]]}
    keep = np.all(np.isfinite(np.vstack(list(f.values()))), axis=0)
    n = int(keep.sum())
    centre = float(np.mean(np.r_[f["A"][keep], f["B"][keep]])) if n else 0.0
    f = {b: v[keep] - centre for b, v in f.items()}
    idx = np.vstack([np.arange(n), gen.integers(0, n, size=(n_boot, n))]) if n > 1 else np.zeros((1, n), int)
    fa, fb = f["A"][idx], f["B"][idx]
    var = np.var(np.concatenate([fa, fb], axis=1), axis=1, ddof=1) if n > 1 else np.array([np.nan])
    var = np.where(var > 0, var, np.nan)
    out = []
    for i, p in enumerate(design.params):
        fab = f[f"AB{i}"][idx]
        s1 = np.mean(fb * (fab - fa), axis=1) / var
        st = 0.5 * np.mean((fa - fab) ** 2, axis=1) / var
        nan2 = (np.nan, np.nan)
        (s1_lo, st_lo), (s1_hi, st_hi) = _ci(np.c_[s1[1:], st[1:]]) if n > 1 else (nan2, nan2)
        out.append({"param": p, "method": "sobol", "S1": s1[0], "S1_ci_low": s1_lo, "S1_ci_high": s1_hi,
                    "ST": st[0], "ST_ci_low": st_lo, "ST_ci_high": st_hi, "n": n})
    return out


def _morris(design: Design, y: np.ndarray, levels: int, gen: np.random.Generator, n_boot: int) -> list[dict]:
    """Elementary effects per trajectory (unit-scaled step), then mu, mu* (with bootstrap CI) and sigma."""
    delta = levels / (2 * (levels - 1))
    rows, blocks = np.asarray(design.rows), design.blocks
    ee: dict[int, list[float]] = {i: [] for i in range(len(design.params))}
    for t in np.unique(rows):
        pos = np.flatnonzero(rows == t)
        for a, b in itertools.pairwise(pos):
            d = (y[b] - y[a]) / delta
            if np.isfinite(d):
                ee[int(blocks[b][4:])].append(d)
    out = []
    for i, p in enumerate(design.params):
        e = np.asarray(ee[i])
        n = len(e)
        lo = hi = float("nan")
        if n > 1:
            boot = np.abs(e[gen.integers(0, n, size=(n_boot, n))]).mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
        out.append({"param": p, "method": "morris", "mu": e.mean() if n else np.nan,
                    "mu_star": np.abs(e).mean() if n else np.nan, "mu_star_ci_low": lo, "mu_star_ci_high": hi,
                    "sigma": e.std(ddof=1) if n > 1 else np.nan, "n": n})
    return out


def _spearman(design: Design, y: np.ndarray) -> list[dict]:
    out = []
    for j, p in enumerate(design.params):
        x = np.array([pt[j] for pt in design.points], dtype=object)
        ok = np.isfinite(y)
        rho = pval = float("nan")
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in x)
        if numeric and ok.sum() > 2 and len(set(x[ok])) > 1 and np.ptp(y[ok]) > 0:
            res = stats.spearmanr(x[ok].astype(float), y[ok])
            rho, pval = float(res.statistic), float(res.pvalue)
        out.append({"param": p, "method": "spearman", "rho": rho, "p_value": pval, "n": int(ok.sum())})
    return out


def sensitivity(spec: SweepSpec, design: Design, runs: pd.DataFrame, gen: np.random.Generator,
                n_boot: int = N_BOOT) -> tuple[pd.DataFrame, str]:
    """Sensitivity of each KPI to each parameter, and the caveats that go with it (markdown)."""
    means = _point_means(runs).reindex(range(len(design.points)))
    rows = []
    for kpi in means.columns:
        y = means[kpi].to_numpy(dtype=float)
        if spec.design == "sobol":
            res = _sobol(design, y, gen, n_boot)
        elif spec.design == "morris":
            res = _morris(design, y, spec.levels, gen, n_boot)
        else:
            res = _spearman(design, y)
        rows += [{"kpi": kpi, **r} for r in res]
    k = len(design.params)
    kind = spec.design if spec.design in ("sobol", "morris") else "other"
    text = CAVEATS[kind].format(n=spec.samples, points=len(design.points), k=k, levels=spec.levels,
                                delta=spec.levels / (2 * (spec.levels - 1)), design=spec.design)
    caveats = (f"# Sensitivity: {spec.name}\n\n{text}\n\n{CAVEAT_COMMON.format(reps=spec.replications)}\n")
    return pd.DataFrame(rows), caveats


# ---------------------------------------------------------------- figures

MAX_LEVELS = 12  # a parameter with more distinct values is shown in quantile bins


def kpi_curve(runs: pd.DataFrame, param: str, bins: int = 10) -> pd.DataFrame:
    """Mean and 95% CI of one KPI's run values against ``param`` (marginal over the other parameters)."""
    x = runs[param]
    if x.nunique() > MAX_LEVELS and pd.api.types.is_numeric_dtype(x):
        group = pd.qcut(x.astype(float), bins, duplicates="drop")
        keys = runs.groupby(group, observed=True)[param].mean()
    else:
        group, keys = x, None
    rows = []
    for key, g in runs.groupby(group, observed=True, sort=True):
        mean, lo, hi, n = ci95(g["value"])
        rows.append({"x": keys[key] if keys is not None else key, "mean": mean, "ci_low": lo, "ci_high": hi,
                     "n": n})
    return pd.DataFrame(rows)


def _levels_of_other(runs: pd.DataFrame, params: list[str], param: str, most: int = 5) -> str | None:
    """With two parameters on a grid, the other one (drawn as one line per level) if it has few levels."""
    others = [p for p in params if p != param]
    if len(others) != 1 or runs[param].nunique() > MAX_LEVELS or runs[others[0]].nunique() > most:
        return None
    return others[0]


def plot_all(runs: pd.DataFrame, params: list[str], fig_dir: Path, title: str) -> list[Path]:
    """One PNG per KPI: a panel per parameter with the mean and its 95% CI band.

    With two parameters on a grid, each panel has one line per level of the other parameter (so an
    interaction shows as lines that are not parallel); otherwise a panel averages over the other parameters.
    """
    import matplotlib  # noqa: PLC0415 - only when figures are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kpi, g in runs.groupby("kpi", sort=True):
        ncols = min(3, len(params))
        nrows = -(-len(params) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols + 0.6, 3.1 * nrows + 0.3), squeeze=False,
                                 sharey=True)
        for ax in axes.flat[len(params):]:
            ax.set_visible(False)
        for ax, param in zip(axes.flat, params, strict=False):
            numeric = pd.api.types.is_numeric_dtype(g[param]) and not pd.api.types.is_bool_dtype(g[param])
            order = {v: i for i, v in enumerate(sorted(g[param].unique(), key=str))}
            other = _levels_of_other(g, params, param)
            groups = [(None, g)] if other is None else list(g.groupby(other, sort=True))
            for i, (level, sub) in enumerate(groups):
                c = kpi_curve(sub, param)
                xs = c["x"].astype(float) if numeric else c["x"].map(order).astype(float)
                label = "mean" if other is None else f"{other.split('.')[-1]} = {level}"
                ax.plot(xs, c["mean"], marker="o", ms=3, color=f"C{i}", label=label)
                ax.fill_between(xs, c["ci_low"], c["ci_high"], color=f"C{i}", alpha=0.2, lw=0)
            if not numeric:
                ax.set_xticks(list(order.values()), [str(v) for v in order])
            else:
                ax.xaxis.set_major_locator(MaxNLocator(5))
            binned = numeric and g[param].nunique() > MAX_LEVELS
            ax.set_xlabel(f"{param} (10 quantile bins)" if binned else param)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best", title="bands: 95% CI", title_fontsize=7)
        for row in axes:
            row[0].set_ylabel(str(kpi))
        n = int(g.groupby(["point", "rep"]).ngroups)
        fig.suptitle(f"{title}: {kpi} ({n} runs; lines: mean over replications and unshown parameters)",
                     fontsize=9)
        fig.tight_layout()
        path = fig_dir / f"{kpi}.png"
        write_atomic(path, lambda p, f=fig: f.savefig(p, dpi=110, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths
