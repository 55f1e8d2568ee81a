"""The [serving] engine section: validation, the cached-grid approximation against the exact queue, and the
sepsis wiring (lost predictions lose alerts and lives; surges; determinism; disabled = bit-identical)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from sim.domains.sepsis import serving_demand
from sim.engine import RunResult, run
from sim.errors import ScenarioError
from sim.rng import Streams
from sim.scenario import Scenario, apply_overrides, load_scenario, validate
from sim.schema import validate_section
from sim.serving.queue import tick_outcome
from sim.serving.service import SCHEMA, Serving, config_of
from tests.conftest import PINNED, PINNED_KPI_SUM, ROOT, tiny, tiny_run

SERVING_TINY = ROOT / "tests" / "scenarios" / "sepsis_serving_tiny.toml"
GENEROUS = {"serving.workers": 8, "serving.max_batch": 64, "serving.queue_limit": 4096}


@cache
def serving_tiny() -> Scenario:
    return load_scenario(SERVING_TINY)


@cache
def serving_run(seed: int = 1, **overrides: object) -> RunResult:
    return run(apply_overrides(serving_tiny(), {k.replace("__", "."): v for k, v in overrides.items()}), seed)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("workers", 0, "serving.workers = 0: must be an integer, >= 1"),
        ("dist", "gamma", "serving.dist = 'gamma': must be one of"),
        ("spread_s", -1.0, "serving.spread_s = -1.0: must be a number, >= 0"),
        ("queue_size", 5, "serving.queue_size = 5: unknown key; allowed keys in [serving]"),
        ("per_item_ms", 0.0, "fixed_ms and per_item_ms must not both be 0"),
        ("surge_days", 30, "serving.surge_days = 30: must be > 0 and < surge_every_days (7)"),
        ("deadline_ms", 0.0, "serving.deadline_ms = 0.0: must be a number, >= 0.001"),
    ],
)
def test_bad_serving_values_give_one_line_errors(key: str, value: object, words: str) -> None:
    raw = tiny().to_dict()
    raw["serving"] = {"enabled": True, key: value}
    if key == "per_item_ms":
        raw["serving"]["fixed_ms"] = 0.0
    if key == "surge_days":
        raw["serving"]["surge_every_days"] = 7
    if key == "queue_size":
        raw["serving"].pop("enabled")
    with pytest.raises(ScenarioError) as err:
        validate("x.toml", raw)
    msg = str(err.value)
    assert msg.startswith("x.toml: ") and words in msg and "\n" not in msg, msg


def test_serving_is_refused_for_a_domain_that_does_not_route_scoring_through_it() -> None:
    raw = load_scenario(ROOT / "tests" / "scenarios" / "plant_tiny.toml").to_dict()
    raw["serving"] = {"enabled": True}
    with pytest.raises(ScenarioError) as err:
        validate("p.toml", raw)
    assert "p.toml: serving.enabled = True: domain 'plant' does not route" in str(err.value)
    assert "sepsis" in str(err.value)
    raw["serving"] = {"enabled": False, "workers": 3}  # a disabled table is fine anywhere
    assert validate("p.toml", raw).get("serving.workers") == 3


def test_disabled_serving_is_bit_identical_and_generous_serving_changes_nothing() -> None:
    """The default (enabled = false) reproduces the pinned tiny headline with no serving keys or KPIs; a
    service that never loses a prediction gives exactly the same care outcomes (its stream is separate)."""
    r = tiny_run(1)
    for k, v in PINNED.items():
        assert r.headline[k] == v, k
    assert float(r.kpis["value"].sum()) == PINNED_KPI_SUM
    assert not any(k.startswith("serving") for k in r.headline)
    assert not r.kpis["kpi"].astype(str).str.startswith("serving").any()
    g = serving_run(1, **{k.replace(".", "__"): v for k, v in GENEROUS.items()})
    assert g.headline["serving_on_time_share"] == 1.0
    for k in ("sepsis_mortality_relative_reduction", "lives_saved_per_year", "alert_ppv", "act_rate"):
        assert g.headline[k] == r.headline[k], k


def _cfg(**over: object) -> dict:
    base = {"enabled": True, "workers": 1, "max_batch": 1, "queue_limit": 64, "timeout_ms": 2000.0,
            "spread_s": 1.0, "deadline_ms": 50.0}
    return validate_section("t", "serving", SCHEMA, base | over)


@pytest.mark.parametrize("batching", [False, True])
def test_cached_grid_agrees_with_the_exact_queue(batching: bool) -> None:
    """Off-grid loads from idle through the knee to 3x overload: the interpolated grid's on-time, late and
    shed shares are within 0.02 + 3 standard errors of the mean of 40 exact simulations
    (sim.serving.tick_outcome) of a burst of exactly that many requests (near the knee bursts vary a lot from
    one to the next, so the exact mean itself is uncertain by up to ~0.01)."""
    over = {"workers": 2, "max_batch": 16, "per_item_ms": 1.2, "deadline_ms": 30.0} if batching else {}
    cfg = _cfg(**over)
    queue, curve = config_of(cfg)
    serving = Serving(cfg, Streams(5), kpi=None, horizon_days=1)
    for n in (137, 523, 611, 743, 809, 1013, 1499, 2203):
        approx = serving.outcome(float(n))
        rng = np.random.default_rng(n)
        deadline = cfg["deadline_ms"] / 1e3
        exact = [tick_outcome(n, 1.0, queue, curve, rng, deadline_s=deadline) for _ in range(40)]
        for k, name in ((0, "on_time"), (1, "late"), (2, "shed")):
            vals = np.array([e[name] for e in exact])
            tol = 0.02 + 3 * vals.std(ddof=1) / np.sqrt(len(vals))
            assert abs(approx[k] - vals.mean()) <= tol, (n, name, approx[k], vals.mean(), tol)
    assert serving.outcome(1499.0)[0] < 0.9  # the check covers the overloaded regime, not only idle


def test_grid_points_do_not_depend_on_visit_order_and_runs_repeat() -> None:
    cfg = _cfg()
    a, b = Serving(cfg, Streams(9), None, 1), Serving(cfg, Streams(9), None, 1)
    first = [a.grid_point(i).tolist() for i in (150, 120, 140)]
    b.grid_point(10)
    assert [b.grid_point(i).tolist() for i in (150, 120, 140)] == first
    r1 = serving_run(1)
    r2 = run(serving_tiny(), 1)
    np.testing.assert_equal(r1.headline, r2.headline)  # NaN == NaN here
    assert r1.kpis.equals(r2.kpis)


def test_under_provisioned_serving_loses_predictions_and_lives() -> None:
    """Paired seed: the pilot-sized service sheds once the waves are live, so fewer alerts arrive in time,
    and the mortality reduction and lives saved fall against a generous service."""
    under = serving_run(1)
    gen = serving_run(1, **{k.replace(".", "__"): v for k, v in GENEROUS.items()})
    h, g = under.headline, gen.headline
    assert h["serving_shed_share"] > 0.3 and h["serving_on_time_share"] < 0.6
    assert h["sepsis_mortality_relative_reduction"] < g["sepsis_mortality_relative_reduction"] - 0.005
    assert h["lives_saved_per_year"] < g["lives_saved_per_year"]
    assert h["alerts_per_100_patient_days"] < g["alerts_per_100_patient_days"]
    # the KPIs account for every request once: on time + late + shed + timed out = requests, per site
    k = under.kpis.pivot_table(index="site", columns="kpi", values="value", aggfunc="sum", observed=True)
    parts = k[["serving_on_time", "serving_late", "serving_shed", "serving_timed_out"]].sum(axis=1)
    np.testing.assert_allclose(parts, k["serving_requests"], rtol=1e-9)
    # the 2-hospital pilot (first 30 days) is served far better than the full rollout (last 30 days)
    sv = under.details["serving"]
    pilot = sv.daily[:30, 0].sum() / sv.daily_requests[:30].sum()
    full = sv.daily[-30:, 0].sum() / sv.daily_requests[-30:].sum()
    assert pilot > full + 0.3, (pilot, full)


def test_surge_days_have_a_lower_on_time_share() -> None:
    """Every 10 days the last 3 carry 3x the demand: a service coping on normal days sheds on surge days."""
    r = serving_run(1, serving__surge_every_days=10, serving__surge_days=3, serving__surge_factor=3.0,
                    serving__spread_s=4.0)
    sv = r.details["serving"]
    assert [sv.surge(d) for d in range(10)] == [1.0] * 7 + [3.0] * 3
    days = np.arange(len(sv.daily_requests))
    late = (days >= 60) & (sv.daily_requests > 0)  # after the waves went live
    surge = np.array([sv.surge(d) > 1 for d in days])
    share = sv.daily[:, 0] / np.maximum(sv.daily_requests, 1e-12)
    assert share[late & ~surge].mean() > 0.95
    assert share[late & surge].mean() < share[late & ~surge].mean() - 0.2
    # the demand on surge days is ~3x: requests per surge day / per normal day
    ratio = sv.daily_requests[late & surge].mean() / sv.daily_requests[late & ~surge].mean()
    assert 2.5 < ratio < 3.5


def test_load_is_the_weighted_census_and_readiness_sees_the_same_formula() -> None:
    """Once every hospital is live, a tick's requests average census x requests_per_row (the sampling weights
    make the simulated rows stand for every inpatient), and serving_demand (purgatory readiness) uses the same
    census x requests_per_row / spread_s; the defaults keep its old x4 peak factor."""
    r = serving_run(1)
    assert r.headline["sites_live_at_end"] == 8
    care, sv = r.details["care"], r.details["serving"]
    census = care.beds.sum() * serving_tiny().get("hospitals.occupancy")
    assert sv.daily_requests[-20:].mean() / 24 == pytest.approx(census, rel=0.1)
    sc = serving_tiny()
    peak = serving_demand(sc)["peak_rate"]
    doubled = apply_overrides(sc, {"serving.requests_per_row": 2.0, "serving.spread_s": 4.0})
    spread = sc.get("serving.spread_s")
    assert serving_demand(doubled)["peak_rate"] == pytest.approx(peak * 2 * spread / 4.0)
    assert serving_demand(tiny())["peak_rate"] == pytest.approx(peak * spread / 900.0)  # defaults: 900 s, 1
