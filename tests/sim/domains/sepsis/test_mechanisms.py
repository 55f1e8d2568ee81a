"""The sepsis benefit emerges from lead time x treatment-delay effect x adoption: mechanism tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.engine import run
from tests.conftest import tiny, tiny_run, tiny_with

ORACLE = {"model__kind": "oracle", "treatment__alert_evaluation_hours": 0.0}


def _outcomes(result) -> dict[str, np.ndarray]:
    return {k: np.concatenate(v) for k, v in result.details["care"].outcomes.items()}


def test_same_scenario_and_seed_give_identical_frames() -> None:
    a, b = tiny_run(1), run(tiny(), 1)
    pd.testing.assert_frame_equal(a.kpis, b.kpis)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert a.headline == b.headline or all(
        (np.isnan(x) and np.isnan(y)) or x == y
        for x, y in zip(a.headline.values(), b.headline.values(), strict=True)
    )
    c = run(tiny(), 2)
    assert not a.kpis["value"].equals(c.kpis["value"])


def test_zero_lead_time_gives_no_benefit() -> None:
    """Alerts that fire exactly when standard screening recognises sepsis change nothing."""
    r = run(tiny_with(**ORACLE, model__oracle_alert_at="recognition"), 3)
    assert r.headline["live_septic_cases"] > 50
    assert r.headline["sepsis_mortality_relative_reduction"] == pytest.approx(0.0, abs=1e-12)
    assert r.headline["lives_saved_per_year"] == pytest.approx(0.0, abs=1e-9)


def test_model_nobody_acts_on_gives_no_benefit() -> None:
    r = run(tiny_with(adoption__act_logit_base=-20.0, adoption__trust_coef=0.0), 3)
    assert r.headline["alerts_per_100_patient_days"] > 0  # the model does alert ...
    assert r.headline["act_rate"] == 0.0  # ... nobody acts ...
    assert r.headline["sepsis_mortality_relative_reduction"] == pytest.approx(
        0.0, abs=1e-12
    )  # ... no benefit


def test_perfect_model_acted_on_every_time_reaches_the_treatment_delay_bound() -> None:
    """Alert 6 h before onset, no false alarms, always acted on: every case treated as early as possible.

    The bound treats every live septic patient at onset (delay 0) unless standard care was even earlier;
    only patients whose onset is within the response time of admission can fall short of it.
    """
    r = run(
        tiny_with(
            **ORACLE,
            model__oracle_alert_at="onset",
            model__oracle_lead_hours=6.0,
            adoption__act_logit_base=20.0,
            adoption__fatigue_coef=0.0,
        ),
        4,
    )
    o = _outcomes(r)
    live = o["live"]
    b = np.log(tiny().get("treatment.mortality_odds_per_hour"))
    p_cf = 1 / (1 + np.exp(-(o["m0"] + b * o["delay_cf"])))
    p_onset = 1 / (1 + np.exp(-o["m0"]))
    bound = 1 - p_onset[live].sum() / p_cf[live].sum()
    achieved = r.headline["sepsis_mortality_relative_reduction"]
    assert r.headline["act_rate"] == 1.0 and r.headline["alert_ppv"] == 1.0
    assert achieved <= bound + 1e-12
    assert achieved >= bound - 0.02
    # and the bound itself is the delay effect: mean cf delay of several hours at 5%/h odds
    assert 0.1 < bound < 0.6


def test_more_lead_time_gives_more_benefit() -> None:
    res = [
        run(
            tiny_with(
                **ORACLE,
                model__oracle_alert_at="onset",
                model__oracle_lead_hours=lead,
                adoption__act_logit_base=20.0,
            ),
            5,
        ).headline["sepsis_mortality_relative_reduction"]
        for lead in (-0.0, 3.0, 6.0)
    ]
    assert res[0] < res[1] < res[2]


def test_success_configuration_beats_its_failure_modes() -> None:
    """At small scale: SPOT benefit in a plausible band; low precision (fatigue) clearly erodes it."""
    base = tiny_run(1).headline
    fatigue = run(tiny_with(model__threshold=0.05), 1).headline
    assert 0.12 < base["sepsis_mortality_relative_reduction"] < 0.35
    assert fatigue["alert_ppv"] < 0.5 * base["alert_ppv"]
    assert fatigue["act_rate"] < base["act_rate"] - 0.2
    assert fatigue["sepsis_mortality_relative_reduction"] < 0.6 * base["sepsis_mortality_relative_reduction"]


def test_outcome_bookkeeping_is_consistent() -> None:
    r = tiny_run(1)
    o = _outcomes(r)
    k = r.kpis.groupby("kpi", observed=True)["value"].sum()
    assert k["septic_cases"] == len(o["p"])
    assert k["live_septic_cases"] == o["live"].sum()
    np.testing.assert_allclose(k["deaths_expected_cf"], o["p_cf"].sum())
    assert np.all(o["delay"] <= o["delay_cf"] + 1e-12)  # the model can only bring treatment forward
    assert np.all(o["p"] <= o["p_cf"] + 1e-12)
    assert np.all(o["recognised"] >= o["admit"])
