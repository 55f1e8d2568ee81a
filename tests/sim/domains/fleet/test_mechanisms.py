"""Ford fleet: benefit emerges from detection x integration x dealer action x workshop capacity."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from sim.engine import RunResult, run
from sim.errors import ScenarioError
from sim.scenario import Scenario, apply_overrides, load_scenario
from tests.conftest import SCENARIOS

ORACLE = {
    "model.kind": "oracle",
    "model.oracle_lead_days": 6.0,
    "service.planned_lead_hours": 12.0,
    "service.capacity_per_100_units": 20.0,
    "model.alert_suppress_days": 0,
}
NO_INTEGRATION_LOSS = {
    "integration.feed_outages_per_year": 0.0,
    "integration.legacy_failure_prob": 0.0,
    "integration.manual_regions_share": 0.0,
}
ALWAYS_ACT = {
    "adoption.act_logit_base": 20.0,
    "adoption.trust_coef": 0.0,
    "adoption.fatigue_coef": 0.0,
    "integration.dealer_act_logit_sd": 0.0,
}
NEVER_ACT = {
    "adoption.act_logit_base": -20.0,
    "adoption.trust_coef": 0.0,
    "adoption.fatigue_coef": 0.0,
    "integration.dealer_act_logit_sd": 0.0,
}
ALL_LIVE = {"rollout.strategy": "big_bang"}


@cache
def tiny(name: str = "fleet_tiny") -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.toml")


@cache
def tiny_run(name: str = "fleet_tiny", seed: int = 1) -> RunResult:
    return run(tiny(name), seed)


def with_(overrides: dict, name: str = "fleet_tiny") -> Scenario:
    return apply_overrides(tiny(name), overrides)


def test_same_scenario_and_seed_give_identical_frames() -> None:
    a, b = tiny_run(), run(tiny(), 1)
    pd.testing.assert_frame_equal(a.kpis, b.kpis)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not a.kpis["value"].equals(run(tiny(), 2).kpis["value"])


def test_alerts_nobody_acts_on_give_exactly_no_benefit() -> None:
    """Nobody acts: the arms with and without alerts are the same world (common random numbers)."""
    r = run(with_(NEVER_ACT | NO_INTEGRATION_LOSS | ALL_LIVE), 3)
    h = r.headline
    assert h["alert_precision"] > 0 and h["act_rate"] == 0.0
    assert h["failures_at_deployed_sites"] > 100
    assert h["unplanned_downtime_h_deployed"] == h["unplanned_downtime_cf_h_deployed"]
    assert h["unplanned_downtime_relative_reduction"] == 0.0
    assert h["downtime_cost_avoided_gbp"] == 0.0


def test_perfect_detection_acted_on_reaches_the_bound() -> None:
    """Every wear-out failure flagged 6 days ahead, delivered, always acted on, ample bays: all of them are
    prevented: the reduction reaches the wear-out share of counterfactual downtime (sudden failures stay)."""
    r = run(with_(ORACLE | NO_INTEGRATION_LOSS | ALWAYS_ACT | ALL_LIVE), 4)
    h, k = r.headline, r.kpis.groupby("kpi", observed=True)["value"].sum()
    bound = k["live_unplanned_downtime_cf_deg_h"] / k["live_unplanned_downtime_cf_h"]
    achieved = h["unplanned_downtime_relative_reduction"]
    assert h["alert_precision"] == 1.0 and h["act_rate"] == 1.0
    assert 0.2 < bound < 0.9
    assert achieved <= bound + 0.03
    assert achieved >= bound - 0.05
    rec = r.details["world"].record_arrays()
    deg_failed = (rec["kind"] == "deg") & (rec["day"] > 10)
    assert deg_failed.sum() == 0  # no wear-out breakdown after the first days: all prevented


def test_lost_alerts_give_no_benefit() -> None:
    """The model alerts, dealers would act, but the legacy system loses every alert: nothing changes."""
    r = run(with_(ALWAYS_ACT | ALL_LIVE | {"integration.legacy_failure_prob": 1.0}), 3)
    h = r.headline
    assert h["alerts_delivered_share"] == 0.0
    assert h["unplanned_downtime_relative_reduction"] == 0.0
    assert h["downtime_cost_forgone_integration"] > 0


def test_warning_shorter_than_the_booking_lead_gives_no_benefit() -> None:
    """A visit booked 48 h out cannot prevent a failure flagged 1 day ahead; 4 or 8 days ahead it can."""
    red = [
        run(
            with_(
                ORACLE
                | NO_INTEGRATION_LOSS
                | ALWAYS_ACT
                | ALL_LIVE
                | {"model.oracle_lead_days": lead, "service.planned_lead_hours": 48.0}
            ),
            5,
        ).headline["unplanned_downtime_relative_reduction"]
        for lead in (1.0, 4.0, 8.0)
    ]
    assert red[0] == 0.0
    assert 0.2 < red[1] <= red[2] + 0.01


def test_pilot_stalls_and_fixed_variant_passes_its_gate() -> None:
    pilot, fixed = tiny_run("fleet_tiny"), tiny_run("fleet_fixed_tiny")
    assert pilot.headline["rollout_stalled"] == 1.0 and pilot.headline["furthest_rollout_wave"] == 0
    assert fixed.headline["furthest_rollout_wave"] >= 1 and fixed.headline["rollout_stalled"] == 0.0
    assert pilot.headline["alerts_delivered_share"] < 0.7 < fixed.headline["alerts_delivered_share"]
    assert (
        fixed.headline["unplanned_downtime_relative_reduction"]
        > pilot.headline["unplanned_downtime_relative_reduction"] + 0.05
    )
    # the pilot's forgone cost is mostly the regions it never reached
    assert (
        pilot.headline["downtime_cost_forgone_not_rolled_out"] > pilot.headline["downtime_cost_avoided_gbp"]
    )


def test_early_warning_numbers_are_plausible() -> None:
    h = tiny_run().headline
    assert 0.05 < h["failures_predicted_share"] < 0.5  # a minority of failures flagged
    assert 1.0 <= h["warning_days_median"] <= 10.0
    assert h["warning_days_max"] <= tiny().get("model.horizon_days")
    assert 0.0 < h["alert_precision"] < 1.0


def test_bookkeeping_is_consistent() -> None:
    r = tiny_run()
    k = r.kpis.groupby("kpi", observed=True)["value"].sum()
    assert k["alerts"] == k["alerts_true"] + k["alerts_false"]
    assert k["alerts_acted"] <= k["alerts_delivered"] <= k["alerts"]
    assert k["replacements"] + k["no_fault_found"] == k["planned_visits"]
    rec = r.details["world"].record_arrays()
    lead = rec["lead"][rec["predicted"].astype(bool)]
    assert np.all((lead > 0) & (lead <= tiny().get("model.horizon_days")))
    assert k["live_unit_days"] <= k["unit_days"]


@pytest.mark.parametrize("key,value", [("fleet.vans", 2), ("degradation.modes", [])])
def test_bad_scenario_values_are_rejected(key: str, value: object) -> None:
    with pytest.raises(ScenarioError, match=key.split(".", maxsplit=1)[0]):
        with_({key: value})


def test_integration_fault_as_drift_stops_delivery_from_its_start_day() -> None:
    """A dealer-system fault as [[drift]] (legacy_failure_prob +1 from day 60) loses every later alert."""
    drift = [{"param": "legacy_failure_prob", "kind": "sudden", "magnitude": 1.0, "start_day": 60}]
    r = run(with_({"drift": drift} | ALL_LIVE, "fleet_fixed_tiny"), 1)
    k = r.kpis
    late = k[(k["period"] >= 9)].groupby("kpi", observed=True)["value"].sum()
    early = k[(k["period"] < 8)].groupby("kpi", observed=True)["value"].sum()
    assert late["alerts"] > 0 and late["alerts_delivered"] == 0
    assert early["alerts_delivered"] > 0.8 * early["alerts"]
    assert (r.events["kind"] == "drift_start").sum() == 1
