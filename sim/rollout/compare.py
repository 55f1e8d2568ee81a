"""Big bang vs phased: what phasing buys when a release is bad, and what it costs when the release is good.

One scenario is run in four arms on the same seeds: its own release and a *bad release* (the domain's
``IMPACT["bad_release"]`` overrides, or the caller's), each with ``rollout.strategy`` ``phased`` and
``big_bang``. From the KPIs, with the domain's outcome ``y`` and counterfactual ``y_cf`` (lower is better):

- value realised = sum over sites and days of ``y_cf - y`` (e.g. expected deaths or downtime hours avoided);
- value at risk under a strategy = value of the good release - value of the bad release: what shipping the bad
  release destroys; **value at risk avoided** by phasing = value at risk (big bang) - value at risk (phased);
- **cases exposed to a bad model** = the domain's exposure KPI (septic patients, machine failures at watched
  machines) while the bad release is live, per strategy;
- **time to full value** = the day the last site goes live with the good release (big bang: the first day);
  **value forgone** by phasing = value (good, big bang) - value (good, phased).

Only the engine and the domains' declarations are used, so it works for any domain that declares ``IMPACT``
with ``exposure``. Raises :class:`sim.errors.UserError` for a bad scenario or override.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from sim.domains import load_domain
from sim.engine import run
from sim.errors import UserError
from sim.rng import replication_seeds
from sim.scenario import Scenario, apply_overrides, load_scenario

ARMS = (("good", "phased"), ("good", "big_bang"), ("bad", "phased"), ("bad", "big_bang"))


def fmt(x: float) -> str:
    """A number as a reader wants it: 3,125 rather than 3.13e+03; 5.38 for small values."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["model.threshold=0.05", 'retraining.mode="none"']`` -> dict; values are TOML literals (a bare word
    is a string)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--bad {item!r}: must be KEY=VALUE, e.g. model.threshold=0.05")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()
    return out


def _arm_scenario(base: Scenario, bad: dict, release: str, strategy: str) -> Scenario:
    over = {"rollout.strategy": strategy, **(bad if release == "bad" else {})}
    return apply_overrides(base, over, source=f"{release} release, {strategy}")


def _series(kpis: pd.DataFrame, kpi: str) -> np.ndarray:
    s = kpis[kpis["kpi"].astype(str) == kpi].groupby("period", observed=True)["value"].sum()
    return s.sort_index().to_numpy(dtype=float)


def run_arms(scenario: Scenario, bad: dict, seeds: list[int]) -> dict[tuple[str, str], list[dict]]:
    """Per arm and seed: value realised, exposure and the day of full rollout, plus per-period curves."""
    spec = load_domain(scenario.domain).IMPACT
    period = scenario.get("scenario.report_period_days")
    whole = scenario.get("scenario.horizon_days") // period  # curves stop at the last whole period
    out: dict[tuple[str, str], list[dict]] = {}
    for release, strategy in ARMS:
        sc = _arm_scenario(scenario, bad, release, strategy)
        rows = []
        for seed in seeds:
            r = run(sc, seed)
            benefit = _series(r.kpis, spec["counterfactual"]) - _series(r.kpis, spec["outcome"])
            exposure = _series(r.kpis, spec["exposure"])
            live = r.events[r.events["kind"] == "site_live"]
            all_live = live["site"].nunique() == r.kpis["site"].nunique()
            rows.append({"seed": seed, "value": float(benefit.sum()), "exposure": float(exposure.sum()),
                         "days_to_full": float(live["day"].max()) if all_live else math.nan,
                         "sites_live_at_end": r.headline["sites_live_at_end"],
                         "value_curve": np.cumsum(benefit)[:whole],
                         "exposure_curve": np.cumsum(exposure)[:whole],
                         "period_days": period})
        out[(release, strategy)] = rows
    return out


def _mean(rows: list[dict], key: str) -> float:
    v = np.array([r[key] for r in rows], float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def summarise(arms: dict[tuple[str, str], list[dict]]) -> dict[str, float]:
    """The headline numbers of the comparison (means over seeds)."""
    v = {a: _mean(rows, "value") for a, rows in arms.items()}
    risk_bb = v[("good", "big_bang")] - v[("bad", "big_bang")]
    risk_ph = v[("good", "phased")] - v[("bad", "phased")]
    return {
        "value_good_phased": v[("good", "phased")],
        "value_good_big_bang": v[("good", "big_bang")],
        "value_bad_phased": v[("bad", "phased")],
        "value_bad_big_bang": v[("bad", "big_bang")],
        "value_at_risk_big_bang": risk_bb,
        "value_at_risk_phased": risk_ph,
        "value_at_risk_avoided": risk_bb - risk_ph,
        "bad_model_exposure_big_bang": _mean(arms[("bad", "big_bang")], "exposure"),
        "bad_model_exposure_phased": _mean(arms[("bad", "phased")], "exposure"),
        "bad_model_exposure_avoided": _mean(arms[("bad", "big_bang")], "exposure")
        - _mean(arms[("bad", "phased")], "exposure"),
        "days_to_full_value_phased": _mean(arms[("good", "phased")], "days_to_full"),
        "days_to_full_value_big_bang": _mean(arms[("good", "big_bang")], "days_to_full"),
        "value_forgone_by_phasing": v[("good", "big_bang")] - v[("good", "phased")],
        "bad_release_sites_live_at_end_phased": _mean(arms[("bad", "phased")], "sites_live_at_end"),
        "seeds": len(arms[("good", "phased")]),
    }


def compare(scenario_path: str | Path, out_dir: str | Path, *, seeds: int = 1, bad: dict | None = None,
            root_seed: int | None = None) -> dict[str, float]:
    """Run the four arms of ``scenario_path`` and write ``phasing.json`` and ``phasing.png`` to ``out_dir``.

    ``bad``: dotted overrides that make the bad release (default: the domain's ``IMPACT["bad_release"]``).
    Returns the numbers of :func:`summarise`. Raises :class:`UserError` before running if the scenario, an
    override or the domain's declaration is unusable.
    """
    from sim.rollout import compare_plot  # noqa: PLC0415  (matplotlib only when writing)

    scenario = load_scenario(scenario_path)
    spec = getattr(load_domain(scenario.domain), "IMPACT", {})
    if not spec.get("exposure"):
        raise UserError(f"domain {scenario.domain!r} declares no IMPACT exposure KPI for the comparison")
    bad = spec.get("bad_release", {}) if bad is None else bad
    if not bad:
        raise UserError(f"domain {scenario.domain!r} declares no bad release: pass --bad KEY=VALUE")
    for release, strategy in ARMS:  # validate every arm before running any
        _arm_scenario(scenario, bad, release, strategy)
    root = scenario.get("scenario.root_seed") if root_seed is None else root_seed
    arms = run_arms(scenario, bad, replication_seeds(root, seeds))
    result = summarise(arms) | {"scenario": scenario.name, "domain": scenario.domain, "bad_release": bad}
    compare_plot.write(arms, result, spec, Path(out_dir))
    return result
