"""Sensor drift, the engine monitor and in-simulation retraining in the maintenance domains (fleet, plant)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from sim.domains.maintenance.degradation import SensorState, TypeParams
from sim.domains.maintenance.retraining import WarmStartScorer
from sim.domains.maintenance.world import World
from sim.engine import RunResult, run
from sim.errors import ScenarioError
from sim.scenario import Scenario, apply_overrides, load_scenario
from tests.conftest import SCENARIOS

HERE = SCENARIOS
UNMONITORED = {"monitor.enabled": False, "retrain.policy": "never"}

# headlines of tests/scenarios/{fleet_fixed_tiny,plant_tiny}.toml, seed 1, recorded before sensor drift,
# monitoring and retraining were wired into the maintenance world: scenarios without them must not change
PINNED = {
    "fleet_fixed_tiny": (728862.2416439251, {
        "unplanned_downtime_relative_reduction": 0.10635703626382753,
        "alert_precision": 0.8278688524590164,
        "act_rate": 0.7622950819672131,
        "failures_prevented": 36.0,
        "net_benefit_gbp": 9178872.493357753,
    }),
    "plant_tiny": (44683.4194404944, {
        "unplanned_downtime_relative_reduction": 0.13276035991000412,
        "alert_precision": 0.6666666666666666,
        "act_rate": 0.6666666666666666,
        "failures_prevented": 18.0,
    }),
}


@cache
def scenario(name: str) -> Scenario:
    return load_scenario(HERE / f"{name}.toml")


def variant(name: str, overrides: dict) -> Scenario:
    return apply_overrides(scenario(name), overrides)


@cache
def fleet_run(kind: str, seed: int = 1) -> RunResult:
    """fleet_drift_tiny as 'retrained' (as written), 'monitored' (no retraining), 'unmonitored', 'nodrift'."""
    over = {"retrained": {}, "monitored": {"retrain.policy": "never"}, "unmonitored": UNMONITORED,
            "nodrift": UNMONITORED | {"drift": []}}[kind]
    return run(variant("fleet_drift_tiny", over), seed)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_scenarios_without_the_new_sections_are_bit_identical(name: str) -> None:
    kpi_sum, pinned = PINNED[name]
    r = run(scenario(name), 1)
    for k, v in pinned.items():
        assert r.headline[k] == v, k
    assert float(r.kpis["value"].sum()) == kpi_sum
    assert r.headline["drift_alarms"] == 0 and r.headline["retrains"] == 0
    assert "retrainer" not in r.details


def test_sensor_drift_acts_on_the_named_channels_only() -> None:
    deg = dict(scenario("fleet_drift_tiny").section("degradation"))
    tp = TypeParams(deg, [{"name": "t", "offset_sd": 0.0, "signature_mix": 0.0, "life_scale": 1.0,
                           "sudden_scale": 1.0, "seed": 0}])
    types, duty = np.zeros(50, np.int64), np.full((50, 3), 1 / 3)
    a, b = (SensorState(deg, tp, types, duty, np.random.default_rng(1)) for _ in range(2))
    units, d, mode = np.arange(50), np.full(50, 0.5), np.zeros(50, np.int64)
    a.step(np.random.default_rng(2), units, d, mode)
    b.step(np.random.default_rng(2), units, d, mode, {"sensor_offset": np.full(50, 2.0),
                                                      "sensor_gain": np.full(50, 1.0)})
    diff = b.fast - a.fast
    assert np.allclose(diff[:, [0, 1]], 2.0) and np.all(diff[:, 2:] == 0)


def _scores_by_day(sc: Scenario, seed: int, monkeypatch) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Record every day's (site, score) of the world's scoring (test instrumentation only)."""
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    orig = World.scores

    def spy(self, day, rows):
        s, X = orig(self, day, rows)
        seen[day] = (self.site[rows].copy(), s.copy())
        return s, X

    monkeypatch.setattr(World, "scores", spy)
    run(sc, seed)
    monkeypatch.undo()
    return seen


def test_drift_changes_scores_at_affected_sites_from_its_start_day(monkeypatch) -> None:
    sc = variant("fleet_drift_tiny", UNMONITORED | {"scenario.horizon_days": 75})
    drifted = _scores_by_day(sc, 1, monkeypatch)
    clean = _scores_by_day(apply_overrides(sc, {"drift": []}), 1, monkeypatch)
    start = sc.get("drift")[0]["start_day"]
    for day in range(start):
        assert np.array_equal(drifted[day][1], clean[day][1]), day  # nothing before the change point
    r = run(sc, 1)
    affected = set(r.kpis.loc[r.kpis.wave <= 1, "site"])
    names = np.array(r.details["world"].ctx.site_names)
    site, s_drift = drifted[start]
    _, s_clean = clean[start]
    hit = np.isin(names[site], list(affected))
    assert 0 < hit.sum() < len(hit)
    assert np.array_equal(s_drift[~hit], s_clean[~hit])            # not elsewhere
    assert np.mean(s_drift[hit] != s_clean[hit]) > 0.9             # at affected sites: almost every van
    assert s_drift[hit].mean() > s_clean[hit].mean()               # higher exhaust readings look like wear
    assert (r.events["kind"] == "drift_start").sum() == 1


def test_calibrated_monitor_alarms_at_drifted_sites_as_the_event_log_says() -> None:
    r = fleet_run("monitored")
    ev = r.events
    t0 = ev.loc[ev.kind == "drift_start", "time_h"].min()
    affected = set(r.kpis.loc[r.kpis.wave <= 1, "site"])
    alarms = ev[ev.kind == "monitor_alarm"]
    hits = alarms[alarms.site.isin(affected) & (alarms.time_h >= t0)]
    assert len(hits) > 0
    assert r.headline["drift_alarms"] == len(hits)
    assert r.headline["detection_delay"] == (hits.time_h.min() - t0) / 24.0
    assert 0 <= r.headline["detection_delay"] <= 14
    assert (alarms.time_h < t0).sum() == 0                         # no false alarm before the change point
    assert set(hits.site) == affected                              # every drifted region alarms
    quiet = run(variant("fleet_drift_tiny", {"retrain.policy": "never", "drift": []}), 1)
    assert quiet.headline["monitor_alarms"] == 0                   # without drift, the monitor stays quiet


def test_plant_monitor_compares_each_plant_with_itself() -> None:
    """Plants run different local models; per-plant references: alarms only at the drifted plants."""
    r = run(variant("plant_drift_tiny", {"retrain.policy": "never"}), 1)
    alarms = r.events[r.events.kind == "monitor_alarm"]
    affected = set(r.kpis.loc[r.kpis.wave <= 1, "site"])
    assert len(alarms) > 0 and set(alarms.site) <= affected
    assert r.headline["drift_alarms"] == len(alarms)


def test_retrain_trains_on_rows_of_the_simulation_and_a_promoted_model_scores_there() -> None:
    # min_gain = -1 and rollback_margin = 1: promote whatever the shadow says and keep it, to exercise
    # promotion deterministically
    r = run(variant("fleet_drift_tiny", {"retrain.min_gain": -1.0, "retrain.rollback_margin": 1.0}), 1)
    ev, rt, w = r.events, r.details["retrainer"], r.details["world"]
    assert r.headline["retrains"] == rt.retrains >= 1
    data = ev[ev.kind == "retrain_data"]
    assert (data["value"] > 1000).all()                            # rows logged in this run
    t0 = ev.loc[ev.kind == "drift_start", "day"].min()
    assert "days 70-84" in data["detail"].iloc[0] and t0 == 70     # post-change rows only
    assert "retrain_promoted" in set(ev.kind) and r.headline["retrain_promotions"] >= 1
    cohort = np.flatnonzero(rt.site_version > 1)
    assert len(cohort) > 0
    idx = w.model_for_site[cohort[0]]
    scorer = w.scorers[idx]
    assert isinstance(scorer, WarmStartScorer) and w.family[idx] == 0
    rows = np.flatnonzero((w.site == cohort[0]) & ~w.down[0])[:200]
    X = w.sensors.features(rows)
    assert np.array_equal(w.scores(200, rows)[0], scorer.predict_proba(X))
    assert not np.array_equal(scorer.predict_proba(X), w.scorers[0].predict_proba(X))
    assert w.thr[cohort[0]] == np.float32(rt.threshold_of[idx])


def test_too_few_positives_give_no_new_model_and_a_rejection() -> None:
    sc = variant("plant_drift_tiny", {"retrain.train_window_days": 2.0})
    r = run(sc, 1)
    data = r.events[r.events.kind == "retrain_data"]
    assert len(data) > 0 and data["detail"].str.contains("no new model").all()
    assert r.headline["retrain_promotions"] == 0 and r.headline["retrain_rejections"] >= 1


def test_bad_drift_values_are_rejected() -> None:
    with pytest.raises(ScenarioError, match="drift_sensors"):
        variant("fleet_drift_tiny", {"degradation.drift_sensors": [99]})
    with pytest.raises(ScenarioError, match="driftable"):
        variant("fleet_drift_tiny", {"drift": [{"param": "sensor_offst", "magnitude": 1.0}]})


def test_recalibration_on_alarm_refits_the_alarmed_sites_threshold_only() -> None:
    r = run(variant("fleet_drift_tiny", {"retrain.policy": "never", "monitor.on_alarm": "recalibrate"}), 1)
    ev, w = r.events, r.details["world"]
    recal = ev[ev.kind == "threshold_recalibrated"]
    alarmed = set(ev.loc[ev.kind == "monitor_alarm", "site"])
    assert len(recal) > 0 and set(recal.site) <= alarmed
    names = list(w.ctx.site_names)
    changed = {names[s] for s in np.flatnonzero(w.thr != np.float32(0.9))}
    assert changed and changed <= alarmed
    # the false-alert burst is cut: fewer no-fault-found visits than with nobody reacting
    assert r.headline["no_fault_found_visits"] < fleet_run("unmonitored").headline["no_fault_found_visits"]
