"""Serving readiness: workers for an SLO, the measured worker curve, each domain's stated peak demand."""

from __future__ import annotations

import json

import pytest

from sim.cli.readiness import main
from sim.engine import run
from sim.errors import UserError
from sim.rng import replication_seeds
from sim.scenario import apply_overrides, load_scenario
from sim.serving.queue import ServiceCurve
from sim.serving.readiness import worker_curve, workers_needed
from tests.conftest import SCENARIOS


def test_readiness_sizes_workers_for_the_slo() -> None:
    curve = ServiceCurve.from_server(64, 64 / 1000.0)  # one worker: 1,000 req/s at saturation
    assert workers_needed(300.0, curve, 0.1, 64) == 1
    need = workers_needed(2500.0, curve, 0.1, 64)
    assert 3 <= need <= 4  # 2.5 workers of pure capacity, plus queueing margin


def test_readiness_cli_states_peak_capacity_and_workers(capsys: pytest.CaptureFixture) -> None:
    scenario = "scenarios/sepsis_spot.toml"
    assert main([scenario, "--peak-rate", "1500", "--capacity", "1000"]) == 0
    out = capsys.readouterr().out
    assert "peak 1500.0 req/s" in out and "1000 req/s at saturation" in out and "workers for p99" in out
    with pytest.raises(UserError, match="--capacity"):
        main([scenario, "--peak-rate", "10", "--capacity", "-1"])


def test_readiness_does_not_extrapolate_a_measured_curve_beyond_the_measured_batch(tmp_path) -> None:
    cal = {"calibration": {"curve": {"fixed_s": 1.17e-4, "per_item_s": 6e-5},  # 1.8 rows per 225 us
                           "saturation": {"throughput": 8000.0, "mean_batch_rows": 1.8}}}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(cal))
    curve, source, batch = worker_curve(path, None, 64)
    assert batch == 2 and "8000 req/s at saturation" in source
    assert 7000 < batch / curve.mean(batch) < 9000     # close to the measured 8,000, not 64 / 4 ms = 16,000
    path.write_text("{}")
    with pytest.raises(UserError, match="cannot read a serving calibration"):
        worker_curve(path, None, 64)


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("scenarios/ford_transit_fixed.toml", "114,000 connected vans"),
        ("scenarios/plant_rollout.toml", "1,600 machines"),
    ],
)
def test_every_domain_states_its_peak_demand(scenario: str, words: str, capsys) -> None:
    assert main([scenario, "--capacity", "800"]) == 0
    out = capsys.readouterr().out
    assert words in out and "workers for p99 <= 100 ms" in out and ": 1 (simulated p99" in out


def test_sepsis_peak_demand_is_the_simulated_hospitals_census() -> None:
    """The stated peak comes from the hospitals a run really has (its own random stream), not from another
    draw: with one seed, stated census x requests / spread equals the simulated run's."""
    from sim.domains.sepsis import serving_demand  # noqa: PLC0415

    sc = apply_overrides(load_scenario(SCENARIOS / "sepsis_serving_tiny.toml"), {"scenario.seeds": 1})
    seed = replication_seeds(sc.get("scenario.root_seed"), 1)[0]
    care = run(apply_overrides(sc, {"scenario.horizon_days": 1}), seed).details["care"]
    census = care.beds.sum() * sc.get("hospitals.occupancy")
    expected = census * sc.get("serving.requests_per_row") / sc.get("serving.spread_s")
    assert serving_demand(sc)["peak_rate"] == pytest.approx(expected, rel=1e-12)
    more = apply_overrides(sc, {"scenario.seeds": 5})
    assert serving_demand(more)["peak_rate"] >= expected  # the largest of the scenario's seeds
