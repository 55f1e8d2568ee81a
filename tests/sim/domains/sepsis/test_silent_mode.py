"""Silent scoring of the next wave before go-live (monitor.silent_next_wave) and model comparison at the
pilot's alert budget (retrain.compare_at = "alert_budget")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.domains.sepsis.care import KPIS
from sim.engine import run
from sim.errors import ScenarioError
from sim.scenario import apply_overrides, load_scenario
from tests.conftest import ROOT, tiny_with


def _silent(**more: object):
    """Case-mix drift at wave 2 from day 20, long before that wave goes live (day 70 for seed 1)."""
    return tiny_with(
        drift=[{"param": p, "kind": "sudden", "magnitude": m, "start_day": 20, "sites": "wave>=2"}
               for p, m in (("mimic_rate", 0.6), ("hr_offset", 12.0))],
        monitor__method="calibrated", monitor__rows_per_unit=6.0, monitor__min_stat=0.1, monitor__ppv_min=0.0,
        monitor__on_alarm="recalibrate", rollout__hold_on_monitor_alarm=False, **more)


def _before_go_live(r, kind: str) -> list[str]:
    """Sites of wave 2 with a ``kind`` event before the wave went live."""
    ev = r.events
    live = ev[(ev.kind == "wave_live") & (ev.value == 2)].time_h
    assert len(live) == 1, "wave 2 goes live in the tiny scenario"
    wave2 = set(r.kpis.loc[r.kpis.wave == 2, "site"])
    hit = ev[(ev.kind == kind) & ev.site.isin(wave2) & (ev.time_h < live.iloc[0])]
    return sorted(set(hit.site))


def test_the_next_wave_is_scored_and_monitored_before_go_live_without_alerts() -> None:
    silent = run(_silent(monitor__silent_next_wave=True), 1)
    plain = run(_silent(), 1)
    ev = silent.events
    wave1_live = ev[(ev.kind == "wave_live") & (ev.value == 1)].time_h.iloc[0]
    started = ev[(ev.kind == "wave_silent") & (ev.value == 2)]
    assert list(started.time_h) == [wave1_live]          # silent from the moment the wave before goes live
    alarmed = _before_go_live(silent, "monitor_alarm")
    assert alarmed, "the drifted wave alarms while it is silent"
    assert set(alarmed) <= set(_before_go_live(silent, "recalibrated"))  # thresholds re-fitted before go-live
    assert _before_go_live(plain, "monitor_alarm") == []  # without silent scoring nobody sees it before
    # a silent site raises no alert, and nothing anyone does there changes before go-live: every care KPI of
    # the wave up to its go-live day is the same as without silent scoring
    go_live_day = int(ev[(ev.kind == "wave_live") & (ev.value == 2)].time_h.iloc[0] // 24)
    ks, kp = silent.details["care"].ctx.kpi, plain.details["care"].ctx.kpi
    wave2 = silent.details["care"].ctx.wave == 2
    alerts = ks.values[ks.names.index("alerts")][wave2]
    assert alerts[:, :go_live_day].sum() == 0 < alerts[:, go_live_day:].sum()
    for name in KPIS:
        i = ks.names.index(name)
        assert np.array_equal(ks.values[i][wave2, :go_live_day], kp.values[i][wave2, :go_live_day]), name
    care = silent.details["care"]
    site = care.ctx.site_names.index(alarmed[0])
    assert care.thr[site] != np.float32(care.m["threshold"])  # went live on a re-fitted threshold


@pytest.mark.parametrize(("scenario", "more", "needle"), [
    ("plant_rollout.toml", {"monitor.silent_next_wave": True}, "cannot score sites silently"),
    ("sepsis_spot.toml", {"monitor.silent_next_wave": True, "monitor.enabled": False}, "monitor.enabled"),
])
def test_silent_scoring_is_refused_where_it_cannot_work(scenario: str, more: dict, needle: str) -> None:
    with pytest.raises(ScenarioError) as err:
        apply_overrides(load_scenario(ROOT / "scenarios" / scenario), more)
    assert "monitor.silent_next_wave" in str(err.value) and needle in str(err.value)


class _Squashed:
    """A monotone transform of another scorer's probabilities: the same ranking, other thresholds."""

    def __init__(self, base):
        self.base = base

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.sqrt(self.base.predict_proba(X))


def test_alert_budget_comparison_ignores_a_monotone_rescaling_of_scores() -> None:
    r = run(_silent(monitor__silent_next_wave=True, retrain__policy="on_drift",
                    retrain__compare_at="alert_budget", retrain__label_delay_days=3.0), 1)
    models = r.details["care"].models
    models.scorers[99] = _Squashed(models.scorers[1])
    sites = np.ones(models.ctx.n_sites, bool)
    f1, n = models._metric(30, 100, sites, 1)
    squashed, _ = models._metric(30, 100, sites, 99)
    assert n > 1000 and 0 < f1 < 1
    assert squashed == pytest.approx(f1, abs=0.01)       # same ranking, same alert load: the same F1
    models.cfg = {**models.cfg, "compare_at": "threshold"}
    fixed, _ = models._metric(30, 100, sites, 1)
    fixed_sq, _ = models._metric(30, 100, sites, 99)
    assert abs(fixed_sq - fixed) > 0.02                  # at one fixed threshold the rescaling changes F1


def test_the_rollout_panel_counts_hospitals_scored_silently() -> None:
    from sim.domains.sepsis.plots import _silent_sites  # noqa: PLC0415

    rows = []
    for seed, live_at in ((1, 14 * 168.0), (2, 21 * 168.0)):  # wave 1 (5 hospitals) silent from week 0
        for h in range(5):
            rows += [{"seed": seed, "site": f"H{h}", "time_h": 0.0, "kind": "site_silent", "value": 1.0},
                     {"seed": seed, "site": f"H{h}", "time_h": live_at, "kind": "site_live", "value": 1.0}]
    weeks = np.arange(30.0)
    got = _silent_sites(pd.DataFrame(rows), weeks, 2)
    assert list(got[[0, 13, 14, 20, 21, 29]]) == [5.0, 5.0, 2.5, 2.5, 0.0, 0.0]
    assert _silent_sites(pd.DataFrame(rows[1::2]), weeks, 2) is None  # no silent mode: no line
