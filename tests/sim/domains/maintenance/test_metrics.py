"""Maintenance metrics (PHM08 score, RMSE, precision/recall, lead times) and the degradation generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.domains.maintenance.degradation import Lives, TypeParams
from sim.domains.maintenance.metrics import alert_precision_recall, lead_time_summary, phm08_score, rul_scores

DEG = {
    "sensors": 4,
    "conditions": 3,
    "unit_offset_sd": 0.5,
    "noise_sd": 1.0,
    "life_days_median": 300.0,
    "life_sd": 0.4,
    "beta": 4.0,
    "initial_wear_max": 0.3,
    "sudden_failures_per_year": 0.1,
    "ewma_fast": 0.4,
    "ewma_slow": 0.03,
    "modes": [
        {"name": "a", "share": 0.6, "amplitude": 3.0, "sensors": [0, 1], "onset": 0.7},
        {"name": "b", "share": 0.4, "amplitude": 2.0, "sensors": [2], "onset": 0.8},
    ],
}
TYPES = [
    {"name": "A", "offset_sd": 0.0, "signature_mix": 0.0, "life_scale": 1.0, "sudden_scale": 1.0, "seed": 1},
    {"name": "B", "offset_sd": 2.0, "signature_mix": 1.0, "life_scale": 1.0, "sudden_scale": 1.0, "seed": 2},
]


def test_phm08_score_closed_form_and_asymmetry() -> None:
    s = phm08_score(np.array([10.0, -13.0, 0.0, 5.0, -5.0]), np.zeros(5))
    np.testing.assert_allclose(s[:3], [math.e - 1, math.e - 1, 0.0])
    assert s[3] > s[4]  # late by 5 costs more than early by 5
    out = rul_scores(np.array([12.0, 8.0]), np.array([10.0, 10.0]))
    assert out["rul_rmse"] == pytest.approx(2.0)
    assert out["phm08_score_sum"] == pytest.approx(math.exp(0.2) - 1 + math.exp(2 / 13) - 1)
    assert out["phm08_score_mean"] == pytest.approx(out["phm08_score_sum"] / 2)


def test_precision_recall_and_lead_times() -> None:
    assert alert_precision_recall(3, 12, 2, 8) == (0.25, 0.25)
    p, r = alert_precision_recall(0, 0, 0, 0)
    assert math.isnan(p) and math.isnan(r)
    lt = lead_time_summary(np.arange(1.0, 11.0))
    assert lt["median"] == 5.5 and lt["max"] == 10.0
    assert math.isnan(lead_time_summary(np.empty(0))["median"])


def test_damage_runs_from_initial_wear_to_failure_exponentially() -> None:
    tp = TypeParams(DEG, TYPES)
    lives = Lives(DEG, tp, np.zeros(2000, dtype=np.int64), 4, np.random.default_rng(0))
    d0, _, length = lives.get(np.arange(2000), np.zeros(2000, dtype=np.int64))
    np.testing.assert_allclose(lives.damage(d0, length, np.zeros(2000)), d0, atol=1e-12)
    np.testing.assert_allclose(lives.damage(d0, length, length), 1.0, atol=1e-12)
    quarter = lives.damage(d0, length, 0.25 * length) - d0
    last = 1.0 - lives.damage(d0, length, 0.75 * length)
    assert np.all(last > 2 * quarter)  # degradation accelerates
    # median life from new wear matches life_days_median within sampling error
    new = length / ((np.exp(-4 * d0) - np.exp(-4)) / (1 - np.exp(-4)))
    assert np.median(new) == pytest.approx(300.0, rel=0.05)
    assert set(np.unique(lives.mode)) == {0, 1}


def test_machine_types_differ_in_offsets_and_signatures() -> None:
    tp = TypeParams(DEG, TYPES)
    assert np.all(tp.offset[0] == 0) and np.abs(tp.offset[1]).max() > 0.5
    np.testing.assert_allclose(
        np.linalg.norm(tp.signature[0], axis=1), np.linalg.norm(tp.signature[1], axis=1)
    )
    assert not np.allclose(tp.signature[0], tp.signature[1])
