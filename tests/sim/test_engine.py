"""Engine components: KPI recorder, rollout gates and rollback, drift schedules, adoption, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from sim.adoption import Adoption
from sim.drift import DriftSchedule
from sim.engine import run
from sim.kpi import KPIRecorder
from sim.rng import Streams, replication_seeds
from tests.conftest import tiny_run, tiny_with


def test_kpi_recorder_tidy_frame_sums_and_maxes_by_period() -> None:
    rec = KPIRecorder({"a": "sum", "b": "max"}, n_sites=2, n_days=10)
    for d in range(10):
        rec.add("a", np.array([0, 0, 1]), np.array([1.0, 2.0, 5.0]), d)
        rec.set_max("b", np.array([d, -d]), d)
    df = rec.to_frame("r", 7, period_days=7, site_names=["x", "y"])
    a = df[df.kpi == "a"].set_index(["site", "period"])["value"]
    assert a[("x", 0)] == 21 and a[("x", 1)] == 9 and a[("y", 0)] == 35 and a[("y", 1)] == 15
    b = df[df.kpi == "b"].set_index(["site", "period"])["value"]
    assert b[("x", 0)] == 6 and b[("x", 1)] == 9
    assert set(df.columns) == {"run_id", "seed", "site", "period", "kpi", "value"}


def test_named_streams_are_independent_of_creation_order() -> None:
    s = Streams(42)
    a1 = s.generator("a").random(3)
    s2 = Streams(42)
    s2.generator("b").random(10)
    assert np.array_equal(a1, s2.generator("a").random(3))
    assert replication_seeds(1, 3) == replication_seeds(1, 3)
    assert len(set(replication_seeds(1, 50))) == 50


def test_drift_shapes_and_site_selection() -> None:
    wave = np.array([0, 1, 2, 2])
    entries = [
        {
            "param": "x",
            "kind": "incremental",
            "op": "add",
            "magnitude": 10.0,
            "start_day": 10,
            "end_day": 20,
            "period_days": 90,
            "duration_days": 30,
            "sites": "wave>=2",
            "source": "",
        },
        {
            "param": "x",
            "kind": "recurring",
            "op": "mul",
            "magnitude": 1.0,
            "start_day": 0,
            "end_day": -1,
            "period_days": 30,
            "duration_days": 10,
            "sites": "wave==0",
            "source": "",
        },
    ]
    d = DriftSchedule(entries, wave, np.random.default_rng(0))
    base = np.ones(4)
    np.testing.assert_allclose(d.apply("x", base, 5 * 24), [2, 1, 1, 1])  # recurring on at day 5
    np.testing.assert_allclose(d.apply("x", base, 15 * 24), [1, 1, 6, 6])  # half-way up the ramp
    np.testing.assert_allclose(d.apply("x", base, 35 * 24), [2, 1, 11, 11])  # ramp done, recurring on again
    np.testing.assert_allclose(d.apply("x", base, 45 * 24), [1, 1, 11, 11])  # recurring off
    kinds = [k for _, k, _ in d.change_points(65)]
    assert kinds.count("drift_start") == 4 and "drift_full" in kinds


def test_adoption_falls_with_fatigue_and_rises_with_trust() -> None:
    cfg = {
        "act_logit_base": 2.0,
        "trust_coef": 4.0,
        "trust_ref": 0.25,
        "trust_initial": 0.25,
        "trust_rate": 0.1,
        "training_by_wave": [1.0],
        "training_coef": 2.0,
        "fatigue_coef": 3.0,
        "fatigue_scale": 0.5,
        "fatigue_rate": 0.2,
        "source": "",
    }
    ad = Adoption(cfg, np.array([0, 0, 0]))
    p0 = ad.p_act().copy()
    assert p0[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    live = np.ones(3, bool)
    for _ in range(30):  # site 0: precise and quiet; site 1: flooded with false alerts; site 2: no alerts
        ad.daily_update(live, np.array([5.0, 1.0, 0.0]), np.array([5.0, 99.0, 0.0]), np.array([50.0] * 3))
    p = ad.p_act()
    assert p[0] > p0[0] and p[1] < 0.5 * p0[1] and p[2] == pytest.approx(p0[2])


def test_phased_rollout_goes_wave_by_wave_and_logs_gates() -> None:
    r = tiny_run(1)
    ev = r.events
    lives = ev[ev.kind == "wave_live"]
    assert list(lives["value"]) == sorted(lives["value"])
    assert lives["day"].iloc[0] == 0
    passed = ev[ev.kind == "gate_passed"]
    assert len(passed) == len(lives) - 1
    assert (np.diff(lives["day"]) >= 30).all()  # minimum dwell


def test_impossible_gate_keeps_the_scenario_in_pilot_and_stalls() -> None:
    sc = tiny_with(
        rollout__gates=[{"metric": "alerts_true/alerts", "min": 0.99}], rollout__max_gate_failures=3
    )
    r = run(sc, 1)
    assert r.headline["furthest_rollout_wave"] == 0
    assert r.headline["sites_live_at_end"] == 2
    assert (r.events.kind == "rollout_stalled").sum() == 1


def test_big_bang_puts_every_site_live_at_once() -> None:
    r = run(tiny_with(rollout__strategy="big_bang"), 1)
    lives = r.events[r.events.kind == "site_live"]
    assert len(lives) == 8 and (lives["day"] == 0).all()


def test_rollback_takes_a_failing_wave_offline() -> None:
    sc = tiny_with(
        rollout__rollback=[{"metric": "alerts_acted/alerts", "min": 0.99}], rollout__rollback_min_live_days=14
    )
    r = run(sc, 1)
    assert (r.events.kind == "rollback").any()
    assert r.headline["sites_live_at_end"] < 8


def test_drift_change_points_are_in_the_event_log() -> None:
    sc = tiny_with(drift=[{"param": "hr_offset", "kind": "sudden", "magnitude": 10.0, "start_day": 50}])
    r = run(sc, 1)
    starts = r.events[r.events.kind == "drift_start"]
    assert list(starts["day"]) == [50] and "hr_offset" in starts["detail"].iloc[0]


def test_a_scenario_error_survives_the_trip_back_from_a_worker_process() -> None:
    """Pools and Dask pickle a worker's exception; it must arrive as the same one-line user error."""
    import pickle  # noqa: PLC0415

    from sim.errors import ScenarioError  # noqa: PLC0415

    err = pickle.loads(pickle.dumps(ScenarioError("s.toml", "retrain.shadow_days", 7.0, "must exceed 7")))
    assert isinstance(err, ScenarioError) and err.key == "retrain.shadow_days" and err.value == 7.0
    assert str(err) == "s.toml: retrain.shadow_days = 7.0: must exceed 7"
