"""Manufacturer predictive maintenance: a lighthouse plant, then a template rolled out plant by plant.

Sites are plants (lines x machines). The shared maintenance world (``maintenance/world.py``) runs the
machines with and without the alert path on common random numbers; ``plants.py`` adds go-live, shadow
periods, per-plant retraining on local machine types and crew adoption. Headline:
``unplanned_downtime_relative_reduction`` = 1 - unplanned downtime with alerts / without, over the days each
plant routed alerts to its crews (the deployed sites), plus per-plant KPIs that say why a variant does worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.registry import Registry
from models.scorer import OnnxScorer
from sim.domains.maintenance import plots as mfig
from sim.domains.maintenance.metrics import model_headline
from sim.domains.maintenance.model import get_classifier, rul_evaluation
from sim.domains.maintenance.retraining import attach, retrain_headline
from sim.domains.maintenance.world import KPIS
from sim.domains.plant.config import DRIFTABLE, SCHEMA
from sim.domains.plant.plants import PlantWorld
from sim.errors import ScenarioError

__all__ = ["DRIFTABLE", "FEATURE_MONITOR", "IMPACT", "KPIS", "SCHEMA", "build", "check", "figures",
           "headline",
           "serving_demand", "site_count"]

FEATURE_MONITOR = True  # [monitor] features: sim/detection/feature_watch.py
#: ``purgatory impact``: unplanned downtime per plant and week, with the alert path and without it (the same
#: machines and failures on common random numbers: the true effect; docs/rollout.md)
#: ``purgatory phasing``: failures at machines a live model watches, and a bad release (the lighthouse model
#: everywhere, no local retraining: scenarios/plant_big_bang.toml). Lower outcomes are better.
IMPACT = {"outcome": "unplanned_downtime_h", "counterfactual": "unplanned_downtime_cf_h",
          "label": "unplanned downtime hours per plant-week", "exposure": "live_failures_cf",
          "exposure_label": "machine failures", "bad_release": {"retraining.mode": "none"}}


def site_count(sections: dict) -> int:
    return len(sections["plants"]["types"])


def check(source: str, s: dict) -> None:
    p, deg = s["plants"], s["degradation"]
    names = [t["name"] for t in p["machine_types"]]
    if not names:
        raise ScenarioError(source, "plants.machine_types", [], "needs at least one machine type")
    for i, t in enumerate(p["types"]):
        if t not in names:
            raise ScenarioError(
                source, f"plants.types[{i}]", t, f"unknown machine type; defined: {', '.join(names)}"
            )
    if not deg["modes"] or sum(m["share"] for m in deg["modes"]) <= 0:
        raise ScenarioError(
            source, "degradation.modes", deg["modes"], "needs modes with shares adding up to > 0"
        )


def build(ctx, registry: Registry | None = None, **_: object) -> None:
    """Create plants, machines, the lighthouse and local models (from the registry) and the daily process."""
    sc = ctx.scenario.to_dict()
    p, deg, m = sc["plants"], sc["degradation"], sc["model"]
    n_plants = len(p["types"])
    per_plant = p["lines_per_plant"] * p["machines_per_line"]
    ctx.setup_sites([f"P{i + 1}-{t}" for i, t in enumerate(p["types"])], np.full(n_plants, per_plant), KPIS)
    types = p["machine_types"]
    type_names = [t["name"] for t in types]
    plant_type = np.array([type_names.index(t) for t in p["types"]])
    unit_site = np.repeat(np.arange(n_plants), per_plant)
    # the lighthouse is the first plant of wave 0
    lighthouse = int(np.flatnonzero(ctx.wave == 0)[0])
    lh_type = int(plant_type[lighthouse])
    model_types = [lh_type]
    local: dict[int, int] = {lh_type: 0}
    if sc["retraining"]["mode"] == "local":
        for t in sorted(set(plant_type.tolist()) - {lh_type}):
            local[t] = len(model_types)
            model_types.append(t)
    scorers: list = [None] * len(model_types)
    if m["kind"] == "onnx":
        scorers = []
        for t in model_types:
            entry = get_classifier(deg, types, t, m, "plant_failure", registry=registry)
            scorers.append(OnnxScorer(entry.onnx_path, threads=m["threads"]))
            if t == lh_type:
                ctx.extra["model_card"] = entry.card
        ctx.extra["rul"] = rul_evaluation(deg, types, lh_type, m, "plant_failure", registry=registry)
    world = PlantWorld(
        ctx,
        deg,
        types,
        unit_site,
        plant_type[unit_site],
        model=m,
        service=sc["service"],
        scorers=scorers,
        model_for_site=np.zeros(n_plants, np.int64),
        model_type=model_types,
        duty_concentration=p["duty_concentration"],
    )
    world.setup_plants(p, sc["retraining"], type_names, local)
    ctx.extra["world"] = world
    ctx.env.process(world.process())
    attach(ctx, world, "plant_failure", deg["sensors"], registry)


def _site_mask(ctx, sites: np.ndarray) -> np.ndarray:
    mask = np.zeros((ctx.n_sites, ctx.horizon_days), dtype=bool)
    mask[sites] = True
    return mask


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def headline(ctx) -> dict[str, float]:
    w: PlantWorld = ctx.extra["world"]
    k, p = ctx.kpi, ctx.scenario.section("plants")
    out = w.headline()
    line_weeks = k.total("live_unit_days") / p["machines_per_line"] / 7.0
    out["alerts_per_line_week"] = _ratio(k.total("alerts"), line_weeks)
    out["machines_per_line"] = float(p["machines_per_line"])  # lets the figures scale alerts per line
    out["plants_deployed_at_end"] = float(w.ready().sum())
    lh_type = w.model_type[0]
    foreign = np.flatnonzero(w.plant_type != lh_type)
    fm = _site_mask(ctx, foreign)
    out["alert_precision_other_types"] = _ratio(k.total("alerts_true", fm), k.total("alerts", fm))
    out["act_rate_other_types"] = _ratio(k.total("alerts_acted", fm), k.total("alerts", fm))
    out["unplanned_downtime_relative_reduction_other_types"] = 1 - _ratio(
        k.total("live_unplanned_downtime_h", fm), k.total("live_unplanned_downtime_cf_h", fm)
    )
    for s, name in enumerate(ctx.site_names):
        m = _site_mask(ctx, np.array([s]))
        out[f"reduction_{name}"] = 1 - _ratio(
            k.total("live_unplanned_downtime_h", m), k.total("live_unplanned_downtime_cf_h", m)
        )
        out[f"precision_{name}"] = _ratio(k.total("alerts_true", m), k.total("alerts", m))
        out[f"act_rate_{name}"] = _ratio(k.total("alerts_acted", m), k.total("alerts", m))
        out[f"alerts_per_line_week_{name}"] = _ratio(
            k.total("alerts", m), k.total("live_unit_days", m) / p["machines_per_line"] / 7.0
        )
    out |= model_headline(ctx.extra) | retrain_headline(ctx)
    return out


def figures(kpis: pd.DataFrame, events: pd.DataFrame, summary: dict, out_dir: Path) -> list[Path]:
    out = Path(out_dir)
    lines = summary["headline"].get("machines_per_line", {}).get("mean")
    return [
        mfig.rollout_funnel(kpis, events, summary, out, "plant"),
        mfig.downtime_by_site(kpis, summary, out, "plant", "machine"),
        mfig.alerts_vs_actions(kpis, summary, out, "plant", "line", units_per_group=float(lines or 20),
                               events=events),
    ]


#: condition checks per machine per day on the shop floor (the simulation's daily score, once per shift)
CHECKS_PER_MACHINE_DAY = 3.0


def serving_demand(scenario) -> dict:
    """Peak scoring requests per second at full rollout, for ``purgatory readiness``.

    Every machine of every plant is scored once per shift (``CHECKS_PER_MACHINE_DAY``; the simulation's
    daily score stands for them) and the plants' shifts change at the same hour, so a shift's requests arrive
    within a minute of the change [assumption].
    """
    p = scenario.section("plants")
    machines = len(p["types"]) * p["lines_per_plant"] * p["machines_per_line"]
    return {
        "peak_rate": machines / 60.0,
        "basis": f"{machines:,} machines at {len(p['types'])} plants scored at every shift change "
        f"({CHECKS_PER_MACHINE_DAY:g} a day), each change's requests within 60 s [assumption]",
    }
