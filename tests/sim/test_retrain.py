"""Retraining state machine on a toy domain with concept drift; label-free performance estimation (CBPE)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.linear_model import LogisticRegression

from sim import retrain
from sim.detection.cbpe import CBPE, estimate, realised
from sim.detection.streaming import ADWIN
from sim.errors import ScenarioError, UserError
from sim.scenario import load_scenario
from tests.conftest import SCENARIOS

DRIFT_DAY, DAYS, PER_DAY, DELAY = 60, 160, 300, 3


class ToyDomain:
    """Two features; the label rule flips at DRIFT_DAY (concept drift); models are logistic regressions."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((DAYS, PER_DAY, 2))
        w = np.where(np.arange(DAYS)[:, None] < DRIFT_DAY, [[2.5, 0.0]], [[-1.0, 2.5]])
        logit = np.einsum("dnf,df->dn", self.X, w)
        self.y = (rng.random((DAYS, PER_DAY)) < 1 / (1 + np.exp(-logit))).astype(int)
        self.live = self.train(0, 30, 1)
        self.trained: list[tuple[float, float, int]] = []
        self.activated: list[int] = []

    def train(self, data_from_day: float, data_to_day: float, version: int) -> LogisticRegression:
        d0, d1 = max(0, int(data_from_day)), int(data_to_day)
        if version > 1:
            self.trained.append((data_from_day, data_to_day, version))
        return LogisticRegression().fit(self.X[d0:d1].reshape(-1, 2), self.y[d0:d1].ravel())

    def activate(self, model: LogisticRegression, version: int) -> None:
        self.live = model
        self.activated.append(version)

    def accuracy(self, model: LogisticRegression, day: int) -> float:
        return float((model.predict(self.X[day]) == self.y[day]).mean())


def simulate(policy: str, seed: int = 0, **cfg: float) -> tuple[ToyDomain, retrain.Retrainer, np.ndarray]:
    dom = ToyDomain(seed)
    cfg = retrain.config(policy=policy, collection_days=10, label_delay_days=DELAY, train_window_days=10,
                         training_days=2, shadow_days=5, cooldown_days=5, interval_days=30, perf_drop=0.1,
                         **cfg)
    rt = retrain.Retrainer(cfg, dom, initial_model=dom.live)
    rt.deployed(30.0)
    adwin = ADWIN(delta=0.002)
    acc = np.full(DAYS, np.nan)
    for day in range(30, DAYS):
        acc[day] = dom.accuracy(dom.live, day)            # what the business sees today
        lab = day - DELAY                                 # labels of this day have arrived
        errors = dom.live.predict(dom.X[lab]) != dom.y[lab]
        if any([adwin.update(e) for e in errors]):
            rt.drift_alarm(day, "ADWIN on the error stream")
        rt.performance(day, 1 - errors.mean())
        if rt.state == "shadow":
            rt.record_shadow(dom.accuracy(dom.live, lab), dom.accuracy(rt.challenger.model, lab), PER_DAY)
        rt.step(day)
    return dom, rt, acc


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[ToyDomain, retrain.Retrainer, np.ndarray]]:
    return {p: simulate(p) for p in ("never", "scheduled", "on_drift", "on_performance")}


def test_monitored_retraining_recovers_accuracy_that_never_loses(runs) -> None:
    pre = np.nanmean(runs["never"][2][40:DRIFT_DAY])
    post = {p: np.nanmean(acc[DRIFT_DAY + 40:]) for p, (_, _, acc) in runs.items()}
    assert post["never"] < pre - 0.2                     # the drift costs the unmonitored model dearly
    for p in ("scheduled", "on_drift", "on_performance"):
        assert post[p] > post["never"] + 0.15, (p, post)
        assert post[p] > pre - 0.08, (p, post)           # most of the loss is recovered
    assert runs["never"][1].retrains == 0 and runs["never"][1].live.version == 1


def test_timing_of_a_retrain_follows_collection_training_and_shadow(runs) -> None:
    dom, rt, _ = runs["on_performance"]
    ev = rt.events
    first = next(e for e in ev if e.kind == "trigger")
    assert DRIFT_DAY <= first.day <= DRIFT_DAY + DELAY + 5
    train = next(e for e in ev if e.kind == "train_start")
    shadow = next(e for e in ev if e.kind == "shadow_start")
    decision = next(e for e in ev if e.kind in ("promoted", "rejected"))
    assert train.day == first.day + 10 and shadow.day == train.day + 2 and decision.day == shadow.day + 5
    assert decision.day - first.day == rt.days_to_model
    frm, to, version = dom.trained[0]
    assert (frm, to, version) == (train.day - DELAY - 10, train.day - DELAY, 2)
    assert dom.activated[0] == 2 and rt.summary()["promotions"] >= 1


def test_scheduled_policy_retrains_on_its_interval(runs) -> None:
    _, rt, _ = runs["scheduled"]
    triggers = [e.day for e in rt.events if e.kind == "trigger"]
    assert triggers[0] == 60.0                           # deployed on day 30, interval 30 days
    assert len(triggers) >= 3


def test_shadow_rejects_a_worse_challenger_and_cooldown_holds() -> None:
    class Bad(ToyDomain):
        def train(self, data_from_day: float, data_to_day: float, version: int) -> LogisticRegression:
            m = super().train(data_from_day, data_to_day, version)
            if version > 1:
                m.coef_ = -m.coef_                           # a broken retraining pipeline
            return m

    dom = Bad(1)
    cfg = retrain.config(policy="on_drift", collection_days=1, training_days=1, shadow_days=3,
                         cooldown_days=20, label_delay_days=0, train_window_days=20)
    rt = retrain.Retrainer(cfg, dom, initial_model=dom.live)
    assert rt.drift_alarm(30.0)
    for day in range(30, 40):
        if rt.state == "shadow":
            rt.record_shadow(dom.accuracy(dom.live, day), dom.accuracy(rt.challenger.model, day), PER_DAY)
        rt.step(float(day))
    assert [e.kind for e in rt.events] == ["trigger", "train_start", "shadow_start", "rejected"]
    assert rt.live.version == 1 and dom.activated == []
    assert not rt.drift_alarm(45.0)                      # within the 20-day cooldown after day 35
    assert rt.drift_alarm(56.0)


def test_promotion_is_rolled_back_when_the_live_metric_collapses_on_probation() -> None:
    dom = ToyDomain(2)
    first = dom.live
    cfg = retrain.config(policy="on_drift", collection_days=0, training_days=0, shadow_days=2,
                         rollback_margin=0.05, probation_days=10)
    rt = retrain.Retrainer(cfg, dom, initial_model=first)
    rt.drift_alarm(10.0)
    for day in (10.0, 11.0, 12.0):
        rt.record_shadow(0.70, 0.90, 100)
        rt.step(day)
    assert rt.live.version == 2 and dom.activated == [2]
    assert not rt.performance(13.0, 0.88)                # within the margin of its shadow metric 0.90
    assert rt.performance(14.0, 0.60)
    assert rt.live.version == 1 and dom.live is first and dom.activated == [2, 1]
    assert rt.summary()["rollbacks"] == 1


def test_probation_compares_with_the_replaced_version_on_the_same_items() -> None:
    """A drift that keeps growing after the promotion lowers both versions' metrics: no rollback as long as
    the new version stays ahead of the one it replaced; a rollback once it falls behind by the margin."""
    dom = ToyDomain(2)
    cfg = retrain.config(policy="on_drift", collection_days=0, training_days=0, shadow_days=2,
                         rollback_margin=0.05, probation_days=10)
    rt = retrain.Retrainer(cfg, dom, initial_model=dom.live)
    rt.drift_alarm(10.0)
    for day in (10.0, 11.0, 12.0):
        rt.record_shadow(0.70, 0.90, 100)
        rt.step(day)
    assert rt.live.version == 2
    assert not rt.probation(13.0, 0.60, 0.50)            # far below its shadow 0.90, but ahead of version 1
    assert not rt.probation(14.0, float("nan"), 0.5)     # nothing measured
    assert not rt.probation(15.0, 0.47, 0.50)            # behind, within the margin
    assert rt.probation(16.0, 0.40, 0.50)
    assert rt.live.version == 1 and dom.activated == [2, 1]
    assert "on the same items" in rt.events[-1].detail
    assert not rt.probation(17.0, 0.1, 0.9)              # no longer on probation: nothing to roll back


def test_never_policy_ignores_alarms_and_bad_config_is_a_user_error() -> None:
    rt = retrain.Retrainer(retrain.config(), ToyDomain(0))
    assert not rt.drift_alarm(5.0) and not rt.performance(5.0, 0.1) and not rt.performance(6.0, 0.01)
    with pytest.raises(UserError, match="unknown key"):
        retrain.config(polcy="never")
    with pytest.raises(UserError, match="policy"):
        retrain.Retrainer({**retrain.config(), "policy": "weekly"}, ToyDomain(0))


# --- CBPE ---------------------------------------------------------------------------------------------------
def test_cbpe_interval_covers_realised_metrics_under_covariate_shift() -> None:
    """Calibrated p, shifted score distribution: the 95% interval covers the realised value ~95% of times."""
    seeds, covered = 150, {"precision": 0, "recall": 0, "accuracy": 0}
    for seed in range(seeds):
        rng = np.random.default_rng([3, seed])
        p = rng.beta(2.0, 3.0, 1500)                     # shifted from the reference Beta(2, 5)
        y = rng.random(p.size) < p
        est = estimate(p, 0.5, rng=rng, n_draws=300)
        real = realised(p, y, 0.5)
        for m in covered:
            lo, hi = est.interval[m]
            covered[m] += lo <= real[m] <= hi
    band = binom.ppf(0.0005, seeds, 0.95), binom.isf(0.0005, seeds, 0.95)
    for m, k in covered.items():
        assert band[0] <= k <= band[1] + 1, (m, k, band)


def test_cbpe_calibrates_raw_scores_and_is_blind_to_concept_drift() -> None:
    rng = np.random.default_rng(9)
    p_ref, p_cur = rng.beta(2, 5, 20000), rng.beta(3, 3, 20000)
    raw_ref, raw_cur = p_ref**2, p_cur**2                # monotone but miscalibrated scores
    y_ref, y_cur = rng.random(20000) < p_ref, rng.random(20000) < p_cur
    t = 0.25
    real = realised(raw_cur, y_cur, t)
    cal = CBPE(t).fit(raw_ref, y_ref).estimate(raw_cur)
    uncal = CBPE(t, calibrate=False).fit(raw_ref, y_ref).estimate(raw_cur)
    for m in ("precision", "recall", "accuracy"):
        assert abs(cal.expected[m] - real[m]) < 0.02, m
    assert abs(uncal.expected["precision"] - real["precision"]) > 0.1
    drifted = realised(raw_cur, rng.random(20000) < 0.5 * p_cur, t)   # P(y | score) halves: concept drift
    assert cal.expected["precision"] - drifted["precision"] > 0.2
    with pytest.raises(UserError, match="probabilities"):
        estimate(np.array([0.2, 1.5]), 0.5)


def test_scenario_rejects_a_shadow_period_without_labelled_traffic(tmp_path) -> None:
    tiny = SCENARIOS / "sepsis_tiny.toml"
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[scenario]\nextends = "{tiny}"\nname = "bad"\n\n[retrain]\npolicy = "on_drift"\n'
                   "shadow_days = 7.0\nlabel_delay_days = 7.0\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    msg = str(err.value)
    assert "retrain.shadow_days = 7.0" in msg and "label_delay_days" in msg and str(bad) in msg
    bad.write_text(bad.read_text().replace("shadow_days = 7.0", "shadow_days = 8.0"))
    assert load_scenario(bad).get("retrain.shadow_days") == 8.0
