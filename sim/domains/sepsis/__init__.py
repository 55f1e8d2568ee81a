"""Sepsis alerting: HCA Healthcare's SPOT, piloted at two hospitals and phased to 160+.

See ``care.py`` for the mechanism (and the sampling weights), ``physiology.py`` for the patient model,
``model.py`` for the LightGBM -> ONNX early-warning model and ``utility.py`` for the PhysioNet 2019 score.
"""

from __future__ import annotations

import numpy as np

from models.registry import Registry
from models.scorer import OnnxScorer
from sim import retrain
from sim.domains.sepsis.care import KPIS, SepsisCare
from sim.domains.sepsis.config import DRIFTABLE, SCHEMA
from sim.domains.sepsis.model import SiteModels, get_model
from sim.errors import ScenarioError
from sim.rng import Streams, replication_seeds
from sim.serving import service as serving_service

__all__ = ["DRIFTABLE", "IMPACT", "KPIS", "SCHEMA", "SERVED_SCORING", "SILENT_MODE", "build", "check",
           "figures", "headline", "serving_demand", "site_count"]

#: hourly scoring goes through the engine's ``[serving]`` model when it is enabled
SERVED_SCORING = True
#: ``[monitor] silent_next_wave``: the next wave's hospitals are scored, without alerts, before go-live
SILENT_MODE = True
#: ``purgatory impact``: the outcome a company would measure per hospital and week, and the simulator's
#: counterfactual of it (the same patients without the AI), which gives the true effect. ``purgatory
#: phasing``: the cases a live model handles and a bad release (the alert-fatigue threshold of
#: scenarios/sepsis_alert_fatigue.toml). Lower outcomes are better. See docs/rollout.md.
IMPACT = {"outcome": "deaths_expected", "counterfactual": "deaths_expected_cf",
          "label": "expected sepsis deaths per hospital-week", "exposure": "live_septic_cases",
          "exposure_label": "septic patients", "bad_release": {"model.threshold": 0.05}}

HEADLINE_KPIS = ["sepsis_mortality_relative_reduction", "lives_saved_per_year", "physionet_utility"]


def figures(kpis, events, summary: dict, out_dir) -> list:
    """The case study's figures (matplotlib imported only when figures are drawn)."""
    from sim.domains.sepsis.plots import figures as draw  # noqa: PLC0415

    return draw(kpis, events, summary, out_dir)


def site_count(sections: dict) -> int:
    return sections["hospitals"]["count"]


def check(source: str, s: dict) -> None:
    h, p, m = s["hospitals"], s["patients"], s["model"]
    pairs = [
        ("hospitals", "high_acuity_share_min", "high_acuity_share_max", h),
        ("hospitals", "beds_min", "beds_max", h),
        ("patients", "preonset_hours_min", "preonset_hours_max", p),
        ("patients", "post_onset_ramp_hours_min", "post_onset_ramp_hours_max", p),
    ]
    for sec, lo, hi, d in pairs:
        if d[lo] > d[hi]:
            raise ScenarioError(source, f"{sec}.{lo}", d[lo], f"must be <= {sec}.{hi} ({d[hi]})")
    if m["kind"] == "oracle" and m["oracle_alert_at"] == "recognition" and m["oracle_lead_hours"] != 0:
        raise ScenarioError(
            source,
            "model.oracle_lead_hours",
            m["oracle_lead_hours"],
            "must be 0 when oracle_alert_at = 'recognition' (recognition is not known ahead)",
        )


def hospital_beds(h: dict, rng: np.random.Generator) -> np.ndarray:
    """Beds per hospital: log-normal around ``beds_median``, clipped, rounded (the first draw of the run's
    ``sepsis.hospitals`` stream)."""
    beds = rng.lognormal(np.log(h["beds_median"]), h["beds_sigma"], h["count"])
    return np.round(np.clip(beds, h["beds_min"], h["beds_max"]))


def hospitals(ctx) -> dict:
    h = ctx.scenario.section("hospitals")
    rng = ctx.streams.generator("sepsis.hospitals")
    n = h["count"]
    beds = hospital_beds(h, rng)
    acuity = rng.uniform(h["high_acuity_share_min"], h["high_acuity_share_max"], n)
    return {"beds": beds, "acuity_share": acuity, "names": [f"H{i + 1:03d}" for i in range(n)]}


def build(ctx, registry: Registry | None = None, **_: object) -> None:
    """Create hospitals, the model (from the registry) and the hourly care process."""
    hosp = hospitals(ctx)
    serving_on = ctx.scenario.get("serving.enabled")
    ctx.setup_sites(hosp["names"], hosp["beds"], {**KPIS, **serving_service.KPIS} if serving_on else KPIS)
    sc = ctx.scenario.to_dict()
    scorer = None
    if sc["model"]["kind"] == "onnx":
        entry = get_model(sc, registry)
        scorer = OnnxScorer(entry.onnx_path, threads=sc["model"]["threads"])
        ctx.extra["model_card"] = entry.card
    care = SepsisCare(ctx, scorer, hosp)
    care.serving = serving_service.Serving.from_ctx(ctx)
    ctx.extra["care"] = care
    if care.serving is not None:
        ctx.extra["serving"] = care.serving
    ctx.extra["recalibrate"] = care.recalibrate
    ctx.env.process(care.process())
    if scorer is not None and ctx.scenario.get("retrain.policy") != "never":
        care.models = SiteModels(ctx, care, scorer, registry)
        ctx.extra["retrainer"] = care.models.rt
        ctx.extra["drift_alarm"] = care.models.drift_alarm
        ctx.env.process(care.models.daily())  # before the Retrainer's clock on the same hour
        ctx.env.process(retrain.daily(ctx.env, care.models.rt))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _wave_mask(ctx, wave: int) -> np.ndarray:
    """site x day mask of the sites in ``wave``."""
    return np.repeat((ctx.wave == wave)[:, None], ctx.horizon_days, axis=1)


def headline(ctx) -> dict[str, float]:
    k = ctx.kpi
    care: SepsisCare = ctx.extra["care"]
    live_p, live_cf = k.total("live_deaths_expected"), k.total("live_deaths_expected_cf")
    saved = k.total("deaths_expected_cf") - k.total("deaths_expected")
    live_days = k.total("live_days")
    leads = np.concatenate(care.lead_times) if care.lead_times else np.empty(0)
    card = ctx.extra.get("model_card", {})
    return {
        "sepsis_mortality_relative_reduction": 1 - _ratio(live_p, live_cf) if live_cf > 0 else float("nan"),
        "sepsis_mortality_relative_reduction_sampled": 1
        - _ratio(k.total("live_deaths"), k.total("live_deaths_cf")),
        "lives_saved_per_year": saved * 365.0 / ctx.horizon_days,
        "lives_saved_per_year_full_rollout": _ratio(saved, live_days) * ctx.n_sites * 365.0,
        "physionet_utility": care.utility.normalised(),
        "baseline_sepsis_mortality": _ratio(k.total("deaths_expected_cf"), k.total("septic_cases")),
        "live_sepsis_mortality": _ratio(live_p, k.total("live_septic_cases")),
        "live_septic_cases": k.total("live_septic_cases"),
        "alert_ppv": _ratio(k.total("alerts_true"), k.total("alerts")),
        "act_rate": _ratio(k.total("alerts_acted"), k.total("alerts")),
        "alerts_per_100_patient_days": 100 * _ratio(k.total("alerts"), k.total("live_patient_days")),
        "caught_early_share": _ratio(k.total("caught_early"), k.total("live_septic_cases")),
        "lead_time_hours_median": float(np.median(leads)) if len(leads) else float("nan"),
        "lead_time_hours_mean": float(np.mean(leads)) if len(leads) else float("nan"),
        **{
            f"sepsis_mortality_relative_reduction_wave_{w}": 1
            - _ratio(
                k.total("live_deaths_expected", _wave_mask(ctx, w)),
                k.total("live_deaths_expected_cf", _wave_mask(ctx, w)),
            )
            for w in range(len(ctx.scenario.get("rollout.waves")))
        },
        **{
            f"act_rate_wave_{w}": _ratio(
                k.total("alerts_acted", _wave_mask(ctx, w)), k.total("alerts", _wave_mask(ctx, w))
            )
            for w in range(len(ctx.scenario.get("rollout.waves")))
        },
        "model_auroc": float(card.get("auroc", float("nan"))),
        "model_auprc": float(card.get("auprc", float("nan"))),
        **_retrain_headline(ctx),
        **(care.serving.headline() if care.serving is not None else {}),
    }


def _retrain_headline(ctx) -> dict[str, float]:
    """Promotions, rejections, rollbacks and retrained hospitals at the end (with a retraining policy)."""
    models = ctx.extra["care"].models
    if models is None:
        return {}
    s = models.rt.summary()
    return {
        "retrain_promotions": float(s["promotions"]),
        "retrain_rejections": float(s["rejections"]),
        "retrain_rollbacks": float(s["rollbacks"]),
        "sites_on_retrained_model": float((models.site_version > 1).sum()),
    }


def serving_demand(scenario) -> dict:
    """Peak scoring requests per second at full rollout, for ``purgatory readiness``.

    Every inpatient is scored once an hour at every hospital, each patient-hour sending
    ``serving.requests_per_row`` requests, and the hour's requests arrive within ``serving.spread_s`` seconds
    (times ``serving.surge_factor`` when surges are on) -- the same load the simulation's ``[serving]`` model
    sees. The defaults (one request, 900 s) say that charting rounds concentrate each hour's scoring into 15
    minutes (a peak factor of 4 over the hourly mean), an assumption to revisit with a real feed's timestamps.
    Hospital sizes are drawn per run, from each replication's own stream, as the simulation draws them; the
    peak is the largest over the scenario's ``seeds`` replications.
    """
    h, sv = scenario.section("hospitals"), scenario.section("serving")
    seeds = replication_seeds(scenario.get("scenario.root_seed"), scenario.get("scenario.seeds"))
    beds = max(hospital_beds(h, Streams(s).generator("sepsis.hospitals")).sum() for s in seeds)
    census = float(beds * h["occupancy"])
    per_hour = census * sv["requests_per_row"]
    spread = max(sv["spread_s"], serving_service.MIN_SPREAD_S)
    surge = sv["surge_factor"] if sv["surge_every_days"] > 0 else 1.0
    basis = (
        f"{census:,.0f} inpatients at {h['count']} hospitals (the largest of {len(seeds)} seeds) scored "
        f"hourly, {sv['requests_per_row']:g} request(s) each ({per_hour / 3600:.1f} req/s mean), each "
        f"hour's requests arriving within {spread:g} s (x{3600 / spread:g})"
    )
    if surge != 1.0:
        basis += f", surge days x{surge:g}"
    return {"peak_rate": per_hour * surge / spread, "basis": basis}
