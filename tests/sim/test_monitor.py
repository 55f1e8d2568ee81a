"""The engine's monitor and retraining (sim.monitor, sim.retrain) and the sepsis retraining hooks."""

from __future__ import annotations

import math

import numpy as np

from sim.engine import run
from sim.monitor import SCHEMA, Monitor
from sim.schema import validate_section
from tests.conftest import PINNED, PINNED_KPI_SUM, tiny_run, tiny_with

# headline of tests/scenarios/sepsis_tiny.toml, seed 1, computed before the monitor / retrain wiring existed:
# scenarios that do not opt in (method = "psi_fixed", policy = "never") must give exactly these numbers


def test_default_monitor_and_no_retraining_leave_results_bit_identical() -> None:
    r = tiny_run(1)
    for k, v in PINNED.items():
        assert r.headline[k] == v, k
    assert float(r.kpis["value"].sum()) == PINNED_KPI_SUM
    assert r.headline["retrains"] == 0 and r.headline["drift_alarms"] == 0
    assert math.isnan(r.headline["detection_delay"])
    assert not any(k.startswith("retrain") for k in r.events["kind"])


def _monitor(**cfg: object) -> Monitor:
    c = dict(validate_section("test", "monitor", SCHEMA, {"method": "calibrated", **cfg}))
    return Monitor(c, n_sites=400)


def test_calibrated_threshold_holds_its_level_and_detects_a_shift() -> None:
    """400 change-free sites: alarm share near the level; a shifted score distribution exceeds it."""
    rng = np.random.default_rng(3)
    mon = _monitor(level=0.05, rows_per_unit=1.0, bootstrap_draws=4000)
    ref = rng.beta(2, 8, 20000)
    ones = np.ones(len(ref))
    mon.add_scores(np.zeros(len(ref), np.int64), ref, ones, 0, reference_mask=ones > 0)
    mon.start_day(1)
    n = 2000
    sites = np.repeat(np.arange(400), n)
    scores = rng.beta(2, 8, 400 * n)
    scores[sites >= 300] = rng.beta(2.6, 8, 100 * n)  # the last 100 sites drift
    mon.add_scores(sites, scores, np.ones(len(scores)), 1)
    stat, thr, _, _ = mon.check_calibrated(1, np.ones(400, bool), rng)
    alarms = stat > thr
    rate = alarms[:300].mean()
    assert 0.02 <= rate <= 0.09, rate                   # nominal 0.05; binomial 99.9% band for 300 sites
    assert alarms[300:].mean() > 0.9
    # the threshold shrinks with the effective size: 4x rows -> about a quarter (PSI ~ 1/n)
    small, big = mon.thresholds(np.array([1000.0, 4000.0]), np.array([1000.0, 4000.0]))
    assert 0.2 < big / small < 0.35


def _drifted(**more: object):
    return tiny_with(
        drift=[{"param": p, "kind": "sudden", "magnitude": m, "start_day": 45, "sites": "wave>=1"}
               for p, m in (("mimic_rate", 0.6), ("hr_offset", 12.0))],
        monitor__method="calibrated", monitor__rows_per_unit=6.0, monitor__min_stat=0.1, monitor__ppv_min=0.0,
        rollout__hold_on_monitor_alarm=False, **more)


def test_detection_delay_and_drift_alarms_come_from_the_event_log() -> None:
    r = run(_drifted(), 1)
    ev = r.events
    t0 = ev.loc[ev.kind == "drift_start", "time_h"].min()
    affected = set(r.kpis.loc[r.kpis.wave >= 1, "site"])
    hits = ev[(ev.kind == "monitor_alarm") & ev.site.isin(affected) & (ev.time_h >= t0)]
    assert r.headline["drift_alarms"] == len(hits) > 0
    assert r.headline["detection_delay"] == (hits.time_h.min() - t0) / 24.0
    assert r.headline["retrains"] == 0


def test_on_drift_retraining_trains_shadows_and_decides_in_simulation() -> None:
    sc = _drifted(retrain__policy="on_drift", retrain__collection_days=7.0, retrain__label_delay_days=3.0,
                  retrain__train_window_days=21.0, retrain__training_days=1.0, retrain__shadow_days=7.0,
                  retrain__cooldown_days=3.0)
    r = run(sc, 1)
    kinds = list(r.events["kind"])
    assert r.headline["retrains"] >= 1
    assert "retrain_trigger" in kinds and "retrain_train_start" in kinds and "retrain_shadow_start" in kinds
    assert "retrain_promoted" in kinds or "retrain_rejected" in kinds
    models = r.details["care"].models
    data = r.events[r.events.kind == "retrain_data"]
    assert (data["value"] > 200).all()                  # trained on rows collected in the simulation
    if "retrain_promoted" in kinds:                     # promoted versions score at their cohort's sites
        assert models.site_version.max() > 1
        assert set(np.unique(models.site_version)) <= set(models.scorers)


def test_later_alarms_switch_to_a_live_retrained_version_only_after_an_offline_check() -> None:
    """extend_to_alarmed: a site that alarms while a retrained version is live is checked on its own labelled
    rows; 'switched' sites score with that version (and belong to its cohort), 'kept' ones do not."""
    sc = _drifted(retrain__policy="on_drift", retrain__collection_days=7.0, retrain__label_delay_days=3.0,
                  retrain__train_window_days=21.0, retrain__training_days=1.0, retrain__shadow_days=7.0,
                  retrain__cooldown_days=3.0, retrain__extend_to_alarmed=True,
                  monitor__on_alarm="recalibrate")
    r = run(sc, 1)
    models = r.details["care"].models
    ext = r.events[r.events.kind == "retrain_extended"]
    promoted = r.events[r.events.kind == "retrain_promoted"]
    assert len(promoted) >= 1, "the drifted tiny scenario promotes a retrained version"
    assert (ext.time_h >= promoted.time_h.min()).all()  # only once a retrained version is live
    rolled = (r.events.kind == "retrain_rolled_back").any()
    for _, e in ext.iterrows():
        version, site = int(e.detail.split()[1]), r.details["care"].ctx.site_names.index(e.site)
        assert e.detail.endswith("switched") == (e.value == version)
        if e.detail.endswith("switched") and not rolled:
            assert models.site_version[site] >= version and models.cohorts[version][site]
    assert models.checked.max() <= models.rt.live.version or rolled


def test_warm_start_retrains_a_correction_on_top_of_the_development_model() -> None:
    from models.warmstart import WarmStartScorer  # noqa: PLC0415

    sc = _drifted(retrain__policy="on_drift", retrain__collection_days=7.0, retrain__label_delay_days=3.0,
                  retrain__train_window_days=21.0, retrain__training_days=1.0, retrain__shadow_days=7.0,
                  retrain__cooldown_days=3.0, retrain__warm_start=True)
    r = run(sc, 1)
    models = r.details["care"].models
    trained = [v for v, s in models.scorers.items() if v > 1 and s is not models.scorers[1]]
    assert trained, "a retrain with enough rows trains a correction"
    X = models.reservoir.X[:500]
    base = models.scorers[1].predict_proba(X)
    for v in trained:
        scorer = models.scorers[v]
        assert isinstance(scorer, WarmStartScorer) and scorer.base is models.scorers[1]
        s = scorer.predict_proba(X)
        assert s.shape == base.shape and np.all((s >= 0) & (s <= 1)) and not np.allclose(s, base)
