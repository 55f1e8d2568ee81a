"""Ford Transit fleet predictive maintenance: a pilot region that stalls, or a fixed rollout that scales.

Sites are dealer regions. Vans degrade (``maintenance/degradation.py``), a LightGBM model scored in ONNX flags
vans likely to fail within ``model.horizon_days``; alerts reach dealers through the integration
(``dealers.py``) and dealers act or not (adoption). Costs: a breakdown costs ``downtime_cost_gbp_per_day``
per van-day off the road. What was *forgone* is the breakdown cost the model had flagged in time (a true
alert at least ``service.planned_lead_hours`` ahead) but that still happened: because the region was never
rolled out, because the alert was lost in integration, because the dealer did not act, or because the visit
came too late.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.registry import Registry
from models.scorer import OnnxScorer
from sim.domains.fleet.config import DRIFTABLE, SCHEMA, VAN_TYPE
from sim.domains.fleet.dealers import FleetWorld
from sim.domains.maintenance import plots as mfig
from sim.domains.maintenance.metrics import model_headline
from sim.domains.maintenance.model import get_classifier, rul_evaluation
from sim.domains.maintenance.retraining import attach, retrain_headline
from sim.domains.maintenance.world import KPIS
from sim.errors import ScenarioError

__all__ = ["DRIFTABLE", "FEATURE_MONITOR", "IMPACT", "KPIS", "SCHEMA", "build", "check", "figures",
           "headline",
           "serving_demand", "site_count"]

FEATURE_MONITOR = True  # [monitor] features: sim/detection/feature_watch.py
#: ``purgatory impact``: unplanned downtime per dealer region and week, with the alert path and without
#: it (the same machines and failures on common random numbers: the true effect; docs/rollout.md)
IMPACT = {"outcome": "unplanned_downtime_h", "counterfactual": "unplanned_downtime_cf_h",
          "label": "unplanned downtime hours per dealer region-week", "exposure": "live_failures_cf",
          "exposure_label": "van failures"}


def site_count(sections: dict) -> int:
    return sections["fleet"]["regions"]


def check(source: str, s: dict) -> None:
    deg = s["degradation"]
    if not deg["modes"]:
        raise ScenarioError(source, "degradation.modes", [], "needs at least one failure mode")
    if sum(m["share"] for m in deg["modes"]) <= 0:
        raise ScenarioError(source, "degradation.modes", "shares", "mode shares must add up to more than 0")
    if s["fleet"]["vans"] < s["fleet"]["regions"]:
        raise ScenarioError(
            source, "fleet.vans", s["fleet"]["vans"], f"must be >= fleet.regions ({s['fleet']['regions']})"
        )


def regions(ctx) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Region names, vans per region and each van's region (sizes log-normal, fixed by the seed)."""
    f = ctx.scenario.section("fleet")
    rng = ctx.streams.generator("fleet.regions")
    n = f["regions"]
    w = rng.lognormal(0.0, f["region_size_sigma"], n)
    vans = 1 + rng.multinomial(f["vans"] - n, w / w.sum())
    return [f"R{i + 1:02d}" for i in range(n)], vans, np.repeat(np.arange(n), vans)


def build(ctx, registry: Registry | None = None, **_: object) -> None:
    """Create dealer regions, vans, the model (from the registry) and the daily process."""
    names, vans, unit_site = regions(ctx)
    ctx.setup_sites(names, vans, KPIS)
    sc = ctx.scenario.to_dict()
    deg, m = sc["degradation"], sc["model"]
    scorers = [None]
    if m["kind"] == "onnx":
        entry = get_classifier(deg, VAN_TYPE, 0, m, "fleet_failure", registry=registry)
        scorers = [OnnxScorer(entry.onnx_path, threads=m["threads"])]
        ctx.extra["model_card"] = entry.card
        ctx.extra["rul"] = rul_evaluation(deg, VAN_TYPE, 0, m, "fleet_failure", registry=registry)
    world = FleetWorld(
        ctx,
        deg,
        VAN_TYPE,
        unit_site,
        np.zeros(len(unit_site), np.int64),
        model=m,
        service=sc["service"],
        scorers=scorers,
        model_for_site=np.zeros(len(names), np.int64),
        model_type=[0],
        duty_concentration=sc["fleet"]["duty_concentration"],
    )
    world.setup_dealers(sc["integration"], sc["fleet"], vans.astype(float))
    ctx.extra["world"] = world
    ctx.env.process(world.process())
    attach(ctx, world, "fleet_failure", deg["sensors"], registry)


def headline(ctx) -> dict[str, float]:
    w: FleetWorld = ctx.extra["world"]
    f, svc, k = ctx.scenario.section("fleet"), ctx.scenario.section("service"), ctx.kpi
    weight = f["vans_represented"] / w.n if f["vans_represented"] > 0 else 1.0
    gbp_h = f["downtime_cost_gbp_per_day"] / 24.0 * weight
    out = w.headline()
    r = w.record_arrays()
    # breakdown cost a booked visit would have replaced by a planned one, per failure
    breakdown_h = k.total("unplanned_downtime_h") / max(k.total("failures"), 1.0)
    saving_h = max(breakdown_h - svc["planned_repair_hours"], 0.0)
    forgone = {}
    if len(r["site"]):
        flagged = (
            (r["kind"] == "deg")
            & r["predicted"].astype(bool)
            & (r["lead"] >= svc["planned_lead_hours"] / 24.0)
        )
        # fate codes: see maintenance.world.FATES
        for code, why in (
            (1, "not_rolled_out"),
            (2, "integration"),
            (3, "dealer_not_acted"),
            (4, "too_late"),
        ):
            forgone[why] = float((flagged & (r["fate"] == code)).sum()) * saving_h * gbp_h
    else:
        forgone = dict.fromkeys(("not_rolled_out", "integration", "dealer_not_acted", "too_late"), 0.0)
    live_region_days = k.total("live_days")
    pilot_cost = (
        f["programme_cost_gbp_per_region_day"] * live_region_days
        + (f["visit_cost_gbp"] * k.total("planned_visits")) * weight
        + k.total("planned_downtime_h") * gbp_h
    )
    avoided = (k.total("live_unplanned_downtime_cf_h") - k.total("live_unplanned_downtime_h")) * gbp_h
    gate_failed = len(ctx.events.of_kind("gate_failed"))
    out |= {
        "downtime_cost_forgone": sum(forgone.values()),
        **{f"downtime_cost_forgone_{k_}": v for k_, v in forgone.items()},
        "downtime_cost_avoided_gbp": avoided,
        "pilot_cost_gbp": pilot_cost,
        "net_benefit_gbp": avoided - pilot_cost,
        "gate_failures": float(gate_failed),
        "rollout_stalled": float(ctx.stalled),
        "region_days_live": live_region_days,
        "feed_outage_region_days": float(w.outage_days.sum()),
        **model_headline(ctx.extra),
        **retrain_headline(ctx),
    }
    return out


def figures(kpis: pd.DataFrame, events: pd.DataFrame, summary: dict, out_dir: Path) -> list[Path]:
    out = Path(out_dir)
    return [
        mfig.rollout_funnel(kpis, events, summary, out, "dealer region"),
        mfig.downtime_by_site(kpis, summary, out, "region", "van", by_wave=True),
        mfig.alerts_vs_actions(kpis, summary, out, "region", "100 vans", units_per_group=100.0, by_wave=True,
                               events=events),
    ]


#: connected vans upload the day's telematics when they return to base; uploads cluster in this many hours
UPLOAD_WINDOW_HOURS = 4.0


def serving_demand(scenario) -> dict:
    """Peak scoring requests per second at full rollout, for ``purgatory readiness``.

    The simulation scores every connected van once a day; each score is one request. Vans upload when they
    return to base, so the day's requests arrive within ``UPLOAD_WINDOW_HOURS`` (an assumption to check
    against a real feed's timestamps).
    """
    f = scenario.section("fleet")
    per_day = float(f["vans_represented"])
    return {
        "peak_rate": per_day / (UPLOAD_WINDOW_HOURS * 3600.0),
        "basis": f"{per_day:,.0f} connected vans scored once a day, uploads within {UPLOAD_WINDOW_HOURS:g} h "
        "of returning to base [assumption]",
    }
