"""The rollout controller's gate options on the tiny sepsis scenario: inconclusive -> pause for a human
review, failure limit -> rollback, the mSPRT gate; every decision logged with the values it saw. (The
defaults keep the original behaviour: tests/conftest.py PINNED is checked by tests/sim/test_monitor.py.)"""

from __future__ import annotations

from sim.engine import run
from tests.conftest import tiny_with

#: the tiny scenario's alert precision is ~0.14: a floor of 0.9 can never be met
UNREACHABLE = {"metric": "alerts_true/alerts", "min": 0.9}


def _events(result, kind: str) -> list[dict]:
    ev = result.events
    return ev[ev["kind"] == kind].to_dict(orient="records")


def test_inconclusive_gate_pauses_for_a_human_review_then_checks_resume() -> None:
    sc = tiny_with(rollout__gates=[UNREACHABLE], rollout__on_inconclusive="pause",
                   rollout__review_delay_days=10, rollout__hold_on_monitor_alarm=False)
    r = run(sc, 1)
    paused, resumed = _events(r, "gate_paused"), _events(r, "gate_resumed")
    inconclusive = _events(r, "gate_inconclusive")
    assert paused and len(resumed) >= len(paused) - 1 and len(inconclusive) == len(paused)
    assert resumed[0]["time_h"] - paused[0]["time_h"] == 10 * 24.0
    detail = inconclusive[0]["detail"]
    assert "alerts_true/alerts=0.1" in detail and "INCONCLUSIVE" in detail
    assert not _events(r, "gate_failed") and r.headline["furthest_rollout_wave"] == 0


def test_failure_limit_rolls_the_wave_back_and_stops() -> None:
    gate = {**UNREACHABLE, "fail_min": 0.5}  # below 0.5 the gate fails outright
    sc = tiny_with(rollout__gates=[gate], rollout__max_gate_failures=2, rollout__on_failure_limit="rollback",
                   rollout__hold_on_monitor_alarm=False)
    r = run(sc, 1)
    failed = _events(r, "gate_failed")
    assert len(failed) == 2 and "FAIL" in failed[0]["detail"]
    rollback = _events(r, "rollback")
    assert len(rollback) == 1 and rollback[0]["time_h"] == failed[1]["time_h"]
    assert r.headline["sites_live_at_end"] == 0


def test_msprt_gate_passes_a_good_model_and_blocks_a_bad_one() -> None:
    good = tiny_with(rollout__gates=[{"metric": "alerts_true/alerts", "min": 0.05, "test": "msprt"}],
                     rollout__hold_on_monitor_alarm=False)
    r = run(good, 1)
    passed = _events(r, "gate_passed")
    assert passed and "always-valid p" in passed[0]["detail"]
    bad = tiny_with(rollout__gates=[{"metric": "alerts_true/alerts", "min": 0.5, "test": "msprt"}],
                    rollout__hold_on_monitor_alarm=False)
    r = run(bad, 1)
    assert _events(r, "gate_failed") and not _events(r, "gate_passed")
