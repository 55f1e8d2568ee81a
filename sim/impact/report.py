"""Impact estimates for every run of a results folder, next to the simulator's true effect.

Reads ``summary.json`` (domain, period length, horizon), ``kpis.parquet`` and ``events.parquet``; the domain
names its outcome and counterfactual KPIs in a module-level ``IMPACT`` dict (``outcome``, ``counterfactual``,
``label``), found through :func:`sim.domains.load_domain`: the command works on any domain that declares it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from sim.domains import DOMAINS, load_domain
from sim.errors import UserError
from sim.impact import estimators
from sim.impact.panel import Panel, from_kpis

REQUIRED_FILES = ("summary.json", "kpis.parquet", "events.parquet")


def load_results(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The three result files of ``folder``; :class:`UserError` naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"RESULTS_DIR = {str(folder)!r}: not a folder (run `purgatory run SCENARIO` first)")
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"RESULTS_DIR = {str(folder)!r}: missing {', '.join(missing)}; "
                        f"a `purgatory run` results folder has {', '.join(REQUIRED_FILES)}")
    try:
        summary = json.loads((folder / "summary.json").read_text())
        meta = summary["meta"]
        _ = meta["domain"], meta["report_period_days"], meta["horizon_days"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{folder / 'summary.json'}: not a `purgatory run` summary ({err})") from None
    return summary, pd.read_parquet(folder / "kpis.parquet"), pd.read_parquet(folder / "events.parquet")


def impact_spec(domain: str) -> dict:
    """The domain's ``IMPACT`` declaration; :class:`UserError` if it has none."""
    if domain not in DOMAINS:
        raise UserError(f"summary.json: meta.domain = {domain!r}: unknown; allowed: {', '.join(DOMAINS)}")
    spec = getattr(load_domain(domain), "IMPACT", None)
    if not spec:
        have = [d for d in DOMAINS if getattr(load_domain(d), "IMPACT", None)]
        raise UserError(f"domain {domain!r} declares no IMPACT outcome (domains that do: {', '.join(have)})")
    return spec


def panels(summary: dict, kpis: pd.DataFrame) -> dict[str, Panel]:
    """One panel per run id, in seed order."""
    meta = summary["meta"]
    spec = impact_spec(meta["domain"])
    runs = sorted(kpis["run_id"].astype(str).unique(), key=lambda r: (len(r), r))
    days = {"period_days": meta["report_period_days"], "horizon_days": meta["horizon_days"]}
    return {r: from_kpis(kpis, r, spec["outcome"], spec.get("counterfactual"), **days) for r in runs}


def analyse(summary: dict, kpis: pd.DataFrame, control: str = "not_yet") -> dict:
    """Every estimator on every run, plus the per-estimator mean bias and CI coverage over runs."""
    spec = impact_spec(summary["meta"]["domain"])
    per_run, profiles = [], {}
    for run_id, p in panels(summary, kpis).items():
        ests = estimators.all_estimators(p, control)
        cohorts = len({v for v in p.g if math.isfinite(v)})
        about = {"cohorts": cohorts, "rolled_back_sites": int(p.rolled_back.sum())}
        for e in ests:
            per_run.append({"run_id": run_id, **e.as_dict(), **about})
        profiles[run_id] = {str(k): v for k, v in ests[-1].by_event_time.items()}
    table = pd.DataFrame(per_run)
    agg = []
    for name, grp in table.groupby("estimator", sort=False):
        agg.append({"estimator": name, "runs": len(grp), "mean_estimate": _mean(grp["estimate"]),
                    "mean_true_effect": _mean(grp["true_effect"]), "mean_bias": _mean(grp["bias"]),
                    "ci_coverage": _mean(grp["covers"].astype(float))})
    return {"outcome": spec["outcome"], "counterfactual": spec.get("counterfactual"),
            "label": spec.get("label", spec["outcome"]), "control": control,
            "period_days": summary["meta"]["report_period_days"], "scenario": summary["meta"]["scenario"],
            "per_run": table.to_dict(orient="records"), "summary": agg, "event_time": profiles}


def _mean(s: pd.Series) -> float:
    v = s.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else math.nan


def _pct(x: float) -> str:
    return "no CI" if not math.isfinite(x) else f"{x:.0%}"


def print_table(result: dict) -> None:
    """The estimators next to the true effect, one row per estimator (means over runs)."""
    print(f"{result['scenario']}: effect of the AI on {result['label']} "
          f"(outcome {result['outcome']!r}, per site and {result['period_days']}-day period)")
    print(f"{'estimator':<52}{'runs':>5}{'estimate':>11}{'true':>11}{'bias':>11}{'CI covers':>11}")
    for r in result["summary"]:
        print(f"{r['estimator']:<52}{r['runs']:>5}{r['mean_estimate']:>11.4g}{r['mean_true_effect']:>11.4g}"
              f"{r['mean_bias']:>11.3g}{_pct(r['ci_coverage']):>11}")
    first = [r for r in result["per_run"] if r["run_id"] == result["per_run"][0]["run_id"]]
    print(f"first run {first[0]['run_id']}: " + "; ".join(
        f"{r['estimator'].split(' (')[0]} {r['estimate']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        for r in first))
