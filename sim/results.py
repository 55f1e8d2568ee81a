"""Write a scenario's results: kpis.parquet, events.parquet, summary.json and figures, atomically.

Everything is written into a temporary sibling folder and renamed into place at the end, so an interrupted
or failed run never leaves half a result (an existing result folder is replaced only once the new one is
complete).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.engine import RunResult, metadata
from sim.scenario import Scenario


def mean_ci(values: list[float], level: float = 0.95) -> dict:
    """Mean, standard deviation and a t-based confidence interval of the finite values."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(arr)
    if n == 0:
        return {"mean": None, "sd": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(arr.mean())
    if n == 1:
        return {"mean": mean, "sd": None, "ci_low": None, "ci_high": None, "n": 1}
    sd = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def summarise(scenario: Scenario, results: list[RunResult], root_seed: int) -> dict:
    names = list(results[0].headline)
    headline = {}
    for k in names:
        vals = [r.headline.get(k, float("nan")) for r in results]
        headline[k] = mean_ci(vals) | {"per_seed": [None if not math.isfinite(v) else v for v in vals]}
    meta = metadata(scenario) | {
        "root_seed": root_seed,
        "seeds": [r.meta["seed"] for r in results],
        "report_period_days": scenario.get("scenario.report_period_days"),
        "horizon_days": scenario.get("scenario.horizon_days"),
        "source": scenario.source,
    }
    return {"meta": meta, "headline": headline}


def write_results(
    out: Path, scenario: Scenario, results: list[RunResult], root_seed: int, figures_fn=None
) -> dict:
    """Write all outputs for ``results`` (one per seed) to ``out``; returns the summary dict."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        kpis = pd.concat([r.kpis for r in results], ignore_index=True)
        events = pd.concat([r.events for r in results], ignore_index=True)
        for col in ("run_id", "site", "kpi"):
            kpis[col] = kpis[col].astype(str).astype("category")
        kpis.to_parquet(tmp / "kpis.parquet", index=False)
        events.to_parquet(tmp / "events.parquet", index=False)
        summary = summarise(scenario, results, root_seed)
        if figures_fn is not None:
            summary["figures"] = [p.name for p in figures_fn(kpis, events, summary, tmp)]
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False, allow_nan=False))
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return summary
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
