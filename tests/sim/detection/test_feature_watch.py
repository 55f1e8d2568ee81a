"""The maintenance domains' feature-window monitor (``[monitor] features``) and input re-standardisation."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import numpy as np
import pytest

from sim.detection.feature_watch import FeatureWatch
from sim.engine import RunResult, run
from sim.errors import ScenarioError
from sim.events import EventLog
from sim.scenario import apply_overrides, load_scenario
from tests.conftest import ROOT, SCENARIOS

HERE = SCENARIOS
GAIN = [{"param": "sensor_gain", "kind": "sudden", "op": "mul", "magnitude": -0.6, "start_day": 110,
         "sites": "wave<=1", "source": "test: replaced sensors read 0.4x"}]
WATCH = {"retrain.policy": "never", "monitor.features": True}


class _Kpi:
    def __init__(self):
        self.added = []

    def add(self, name, site, value, day):
        self.added.append((name, site, value, day))


def fake_ctx(n_sites: int = 2, remap: bool = True) -> SimpleNamespace:
    cfg = {"reference_days": 10, "rows_per_unit": 1.0, "feature_level": 0.001, "feature_min_ks": 0.1,
           "feature_persist_days": 2, "feature_remap": remap, "on_alarm": "none"}
    alarms = []
    return SimpleNamespace(
        monitor=SimpleNamespace(cfg=cfg), n_sites=n_sites, site_names=[f"S{i}" for i in range(n_sites)],
        events=EventLog(), kpi=_Kpi(), env=SimpleNamespace(now=0.0),
        extra={"drift_alarm": lambda s, day, detail: alarms.append((s, day))}, alarms=alarms,
    )


def feed(watch: FeatureWatch, ctx, day: int, X: np.ndarray) -> None:
    ctx.env.now = 24.0 * day
    watch.add(day, np.zeros(len(X), dtype=np.int64), watch.map(np.zeros(len(X), dtype=np.int64), X))


def test_no_alarm_on_a_change_free_stream_and_a_gain_change_is_caught_and_undone() -> None:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(6)]
    ctx = fake_ctx()
    w = FeatureWatch(ctx, names)
    for day in range(200):                                         # 10 reference days, 190 tested days
        feed(w, ctx, day, rng.normal(size=(300, 6)))
    assert w.alarms == 0 and ctx.alarms == []
    for day in range(200, 210):                                    # columns 0, 1: gain 0.4, zero moved by 2
        X = rng.normal(size=(300, 6))
        X[:, :2] = 0.4 * X[:, :2] + 2.0
        feed(w, ctx, day, X)
    assert w.alarms == 1 and ctx.alarms == [(0, 201.0)]           # two days in a row, then one alarm
    assert np.allclose(w.scale[0, :2], 2.5, rtol=0.15) and np.allclose(w.scale[0, 2:], 1.0)
    X = rng.normal(size=(5000, 6))
    X[:, :2] = 0.4 * X[:, :2] + 2.0
    mapped = w.map(np.zeros(5000, dtype=np.int64), X)
    assert np.abs(np.median(mapped, axis=0)).max() < 0.25            # back on the reference (raw: 2.0)
    assert np.allclose(np.std(mapped, axis=0), 1.0, atol=0.2)          # (raw: 0.4)
    kinds = [e["kind"] for e in ctx.events.rows]
    assert kinds.count("monitor_alarm") == 1 and kinds.count("inputs_remapped") == 1


def test_without_remap_the_alarm_stays_open_until_the_features_return() -> None:
    rng = np.random.default_rng(1)
    ctx = fake_ctx(remap=False)
    w = FeatureWatch(ctx, ["a", "b"])
    for day in range(10):
        feed(w, ctx, day, rng.normal(size=(300, 2)))
    for day in range(10, 20):
        feed(w, ctx, day, rng.normal(size=(300, 2)) + np.array([1.0, 0.0]))
    assert w.alarms == 1 and w.open[0]
    for day in range(20, 25):
        feed(w, ctx, day, rng.normal(size=(300, 2)))
    assert not w.open[0]
    assert [e["kind"] for e in ctx.events.rows].count("monitor_clear") == 1


@cache
def plant(kind: str) -> RunResult:
    over = {"gain": WATCH | {"drift": GAIN}, "remap": WATCH | {"drift": GAIN, "monitor.feature_remap": True},
            "quiet": WATCH | {"drift": [], "monitor.feature_remap": True}}[kind]
    return run(apply_overrides(load_scenario(HERE / "plant_drift_tiny.toml"), over), 1)


def test_feature_alarms_come_soon_after_the_change_at_drifted_plants_only() -> None:
    r = plant("gain")
    ev = r.events
    alarms = ev[(ev.kind == "monitor_alarm") & ev.detail.str.startswith("features:")]
    affected = set(r.kpis.loc[r.kpis.wave <= 1, "site"])
    assert len(alarms) >= 1 and set(alarms.site) <= affected
    assert 110 <= alarms.day.min() <= 115
    assert r.headline["detection_delay"] <= 5
    assert (plant("quiet").events.kind == "monitor_alarm").sum() == 0


def test_remapped_inputs_are_what_the_model_scores() -> None:
    r = plant("remap")
    w, ev = r.details["world"], r.events
    assert (ev.kind == "inputs_remapped").sum() >= 1
    watch = w.mon_feed.features
    site = int(np.flatnonzero((watch.scale != 1.0).any(axis=1))[0])
    rows = np.flatnonzero((w.site == site) & ~w.down[0])
    raw = w.sensors.features(rows)
    mapped = watch.map(w.site[rows], raw)
    assert not np.array_equal(mapped, raw)
    scores, X = w.scores(400, rows)
    assert np.array_equal(X, mapped)
    assert np.array_equal(scores, w.scorers[w.model_for_site[site]].predict_proba(mapped))


def test_feature_monitor_is_refused_where_the_domain_has_none() -> None:
    with pytest.raises(ScenarioError, match=r"monitor\.features"):
        apply_overrides(load_scenario(ROOT / "scenarios" / "sepsis_spot.toml"), {"monitor.features": True})
