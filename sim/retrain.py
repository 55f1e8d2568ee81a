"""Retraining policies as a domain-agnostic state machine: trigger, collect, train, shadow, promote.

A domain owns the data and the models; this module owns *when* and *whether*. The domain calls, once per
simulated day (``step``), and whenever it has news (``drift_alarm``, ``performance``)::

    idle --trigger--> collecting (collection_days: post-trigger data and its labels accumulate)
         --> training (training_days; hooks.train(data_from, data_to, version) is called at the start)
         --> shadow (shadow_days; the challenger scores the same traffic as the live model and the domain
             reports both metrics with record_shadow)
         --> promoted (hooks.activate(challenger); probation_days of watching) or rejected
    promoted --live metric < champion's shadow metric - rollback_margin during probation--> rolled back
             (``performance``), or --live metric < the replaced version's on the same items - margin-->
             rolled back (``probation``, the fairer test while the data keep drifting)

Triggers by ``policy``: ``never``; ``scheduled`` (every ``interval_days`` since the live version went live);
``on_drift`` (a drift alarm); ``on_performance`` (a reported metric below ``(1 - perf_drop)`` times the
baseline, the live version's metric when it went live). After any retrain attempt ``cooldown_days`` pass
before the next trigger. The training data are the ``train_window_days`` of items whose labels have arrived
when training starts: ``[start - label_delay_days - train_window_days, start - label_delay_days)``.
Every transition is a :class:`RetrainEvent` (and goes to the ``log`` callback) for the event log.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sim.errors import ScenarioError, UserError
from sim.schema import Rule

SCHEMA: dict[str, Rule] = {
    "policy": Rule("str", "never", choices=("never", "scheduled", "on_drift", "on_performance")),
    "interval_days": Rule("float", 90.0, min=1, doc="scheduled: days between retrains"),
    "perf_drop": Rule("float", 0.1, min=0, max=1, doc="on_performance: relative drop from baseline"),
    "collection_days": Rule("float", 14.0, min=0, doc="days of fresh data collected after a trigger"),
    "label_delay_days": Rule("float", 7.0, min=0, doc="days until an item's label is known"),
    "train_window_days": Rule("float", 60.0, min=1, doc="days of labelled data a retrain uses"),
    "training_days": Rule("float", 2.0, min=0, doc="days from the start of training to a usable model"),
    "shadow_days": Rule("float", 14.0, min=0, doc="days the challenger runs in shadow (0: promote at once)"),
    "min_gain": Rule("float", 0.0, doc="promote when challenger metric >= live metric + min_gain"),
    "probation_days": Rule("float", 14.0, min=0, doc="days after promotion during which rollback can happen"),
    "rollback_margin": Rule("float", 0.05, min=0,
                            doc="roll back when the live metric falls this far below its shadow metric"),
    "cooldown_days": Rule("float", 14.0, min=0, doc="days after an attempt before the next trigger"),
    "extend_to_alarmed": Rule(
        "bool", False,
        doc="on_drift: a site that alarms while a retrained version is live switches to it at once if that"
            " version does at least as well on the site's own labelled recent items (an offline check by the"
            " domain), instead of waiting for the next retrain (sepsis; the maintenance domains ignore it)"),
    "warm_start": Rule("bool", False,
                       doc="continue boosting from the deployed model on the new data (a correction model) "
                           "instead of training from scratch (sepsis; maintenance always warm-starts)"),
    "compare_at": Rule(
        "str", "threshold", choices=("threshold", "alert_budget"),
        doc="how shadow, probation and extension checks compare two models: F1 at the scenario's threshold,"
            " or each model's F1 at the threshold where its non-septic scores exceed as often as the pilot's"
            " (the same false-alert load, as deployed under monitor.on_alarm = recalibrate) (sepsis; the"
            " maintenance domains ignore it)"),
    "cost_per_retrain": Rule("float", 0.0, min=0, doc="cost of one training run, in the domain's currency"),
    "source": Rule("str", "", doc="citations"),
}
STATES = ("idle", "collecting", "training", "shadow")


class Hooks(Protocol):
    """What a domain provides: training on a day range, and making a model version live."""

    def train(self, data_from_day: float, data_to_day: float, version: int) -> Any: ...

    def activate(self, model: Any, version: int) -> None: ...


@dataclass
class RetrainEvent:
    day: float
    kind: str          # trigger | train_start | shadow_start | promoted | rejected | rolled_back
    version: int
    detail: str = ""
    value: float = float("nan")


@dataclass
class ModelVersion:
    version: int
    model: Any
    data_from_day: float
    data_to_day: float
    live_from_day: float | None = None
    shadow_metric: float = float("nan")


@dataclass
class _Shadow:
    live_sum: float = 0.0
    challenger_sum: float = 0.0
    weight: float = 0.0


@dataclass
class Retrainer:
    """The retraining state machine for one live model. ``cfg``: a validated ``[retrain]`` section."""

    cfg: dict
    hooks: Hooks
    initial_model: Any = None
    log: Callable[[RetrainEvent], None] | None = None
    state: str = "idle"
    versions: list[ModelVersion] = field(default_factory=list)
    events: list[RetrainEvent] = field(default_factory=list)
    live: ModelVersion | None = None
    challenger: ModelVersion | None = None
    baseline: float = float("nan")
    retrains: int = 0
    cost: float = 0.0
    _since: float = 0.0
    _cooldown_until: float = float("-inf")
    _shadow: _Shadow = field(default_factory=_Shadow)
    _previous: ModelVersion | None = None

    def __post_init__(self) -> None:
        missing = set(SCHEMA) - set(self.cfg)
        if missing:
            raise UserError(f"retrain config is missing {', '.join(sorted(missing))}; "
                            "validate it with SCHEMA or build it with retrain.config()")
        if self.cfg["policy"] not in SCHEMA["policy"].choices:
            raise UserError(f"retrain.policy (={self.cfg['policy']!r}) must be one of "
                            f"{', '.join(SCHEMA['policy'].choices)}")
        self.live = ModelVersion(1, self.initial_model, float("nan"), float("nan"), live_from_day=0.0)
        self.versions.append(self.live)

    @property
    def previous(self) -> ModelVersion | None:
        """The version the live one replaced at its promotion, while a rollback to it is possible."""
        return self._previous

    # --- news from the domain ---------------------------------------------------------------------------
    def deployed(self, day: float, baseline: float = float("nan")) -> None:
        """The live model went live on ``day`` (starts the schedule); ``baseline``: its expected metric."""
        self.live.live_from_day = day
        self.baseline = baseline

    def drift_alarm(self, day: float, detail: str = "") -> bool:
        """A monitor alarm; triggers a retrain under ``on_drift``. True if a retrain was triggered."""
        return self.cfg["policy"] == "on_drift" and self._trigger(day, f"drift alarm {detail}".strip())

    def performance(self, day: float, value: float) -> bool:
        """The live model's metric on ``day`` (higher is better: precision, recall, accuracy, AUC...).

        Sets the baseline if none; may trigger (``on_performance``) or roll back a promotion on probation.
        Returns True if it triggered a retrain or a rollback.
        """
        if math.isnan(value):       # nothing measured today
            return False
        if math.isnan(self.baseline):
            self.baseline = value
        if self._on_probation(day) and value < self.live.shadow_metric - self.cfg["rollback_margin"]:
            self._rollback(day, value)
            return True
        if self.cfg["policy"] == "on_performance" and value < (1 - self.cfg["perf_drop"]) * self.baseline:
            return self._trigger(day, f"metric {value:.4g} < (1 - {self.cfg['perf_drop']:g}) x baseline "
                                      f"{self.baseline:.4g}")
        return False

    def probation(self, day: float, live_metric: float, previous_metric: float) -> bool:
        """During probation, the promoted version's metric and the replaced version's on the *same* labelled
        items since the promotion; rolls back when the promoted one is worse by more than ``rollback_margin``.

        Comparing on the same items keeps a drift that continues after the promotion (which lowers both)
        from being blamed on the new version. Returns True if it rolled back.
        """
        if math.isnan(live_metric) or math.isnan(previous_metric) or not self._on_probation(day):
            return False
        if live_metric < previous_metric - self.cfg["rollback_margin"]:
            self._rollback(day, live_metric, f"< version {self._previous.version}'s {previous_metric:.4g} "
                                             "on the same items - margin")
            return True
        return False

    def record_shadow(self, live_metric: float, challenger_metric: float, weight: float = 1.0) -> None:
        """Metrics of the live model and the challenger on the same labelled traffic (weight: e.g. count)."""
        if self.state != "shadow" or weight <= 0 or math.isnan(live_metric) or math.isnan(challenger_metric):
            return
        self._shadow.live_sum += weight * live_metric
        self._shadow.challenger_sum += weight * challenger_metric
        self._shadow.weight += weight

    # --- the daily clock --------------------------------------------------------------------------------
    def step(self, day: float) -> None:
        """Advance the state machine to ``day`` (call once per simulated day, after the day's news)."""
        c = self.cfg
        if self.state == "idle" and c["policy"] == "scheduled" and self.live.live_from_day is not None \
                and day - self.live.live_from_day >= c["interval_days"]:
            self._trigger(day, f"schedule: {c['interval_days']:g} days since version {self.live.version}")
        if self.state == "collecting" and day - self._since >= c["collection_days"]:
            self._start_training(day)
        if self.state == "training" and day - self._since >= c["training_days"]:
            self.state, self._since, self._shadow = "shadow", day, _Shadow()
            self._emit(day, "shadow_start", self.challenger.version)
        if self.state == "shadow" and day - self._since >= c["shadow_days"]:
            self._decide(day)

    @property
    def days_to_model(self) -> float:
        """Minimum days from a trigger to a promoted model: collection + training + shadow."""
        return self.cfg["collection_days"] + self.cfg["training_days"] + self.cfg["shadow_days"]

    # --- transitions ------------------------------------------------------------------------------------
    def _emit(self, day: float, kind: str, version: int, detail: str = "", value: float = math.nan) -> None:
        ev = RetrainEvent(day, kind, version, detail, value)
        self.events.append(ev)
        if self.log is not None:
            self.log(ev)

    def _trigger(self, day: float, why: str) -> bool:
        if self.state != "idle" or day < self._cooldown_until:
            return False
        self.state, self._since = "collecting", day
        self._emit(day, "trigger", self.live.version, why)
        return True

    def _start_training(self, day: float) -> None:
        c = self.cfg
        version = max(v.version for v in self.versions) + 1
        to = day - c["label_delay_days"]
        frm = to - c["train_window_days"]
        model = self.hooks.train(frm, to, version)
        self.challenger = ModelVersion(version, model, frm, to)
        self.versions.append(self.challenger)
        self.retrains += 1
        self.cost += c["cost_per_retrain"]
        self.state, self._since = "training", day
        self._emit(day, "train_start", version, f"labelled data from day {frm:g} to {to:g}")

    def _decide(self, day: float) -> None:
        sh, ch = self._shadow, self.challenger
        live_m = sh.live_sum / sh.weight if sh.weight else float("nan")
        chal_m = sh.challenger_sum / sh.weight if sh.weight else float("nan")
        ch.shadow_metric = chal_m
        no_evidence = sh.weight == 0 and self.cfg["shadow_days"] > 0
        if not no_evidence and (sh.weight == 0 or chal_m >= live_m + self.cfg["min_gain"]):
            self._previous, self.live = self.live, ch
            ch.live_from_day = day
            self.hooks.activate(ch.model, ch.version)
            self.baseline = self.baseline if math.isnan(chal_m) else chal_m
            self._emit(day, "promoted", ch.version, f"shadow metric {chal_m:.4g} vs live {live_m:.4g}",
                       chal_m)
        else:
            why = ("no labelled shadow traffic" if no_evidence
                   else f"shadow metric {chal_m:.4g} vs live {live_m:.4g}")
            self._emit(day, "rejected", ch.version, why, chal_m)
        self.challenger = None
        self.state = "idle"
        self._cooldown_until = day + self.cfg["cooldown_days"]

    def _on_probation(self, day: float) -> bool:
        return (self._previous is not None and self.live.live_from_day is not None
                and not math.isnan(self.live.shadow_metric)
                and day - self.live.live_from_day <= self.cfg["probation_days"])

    def _rollback(self, day: float, value: float, why: str = "") -> None:
        bad, self.live = self.live, self._previous
        self._previous = None
        self.hooks.activate(self.live.model, self.live.version)
        why = why or f"< shadow {bad.shadow_metric:.4g} - margin"
        self._emit(day, "rolled_back", self.live.version, f"version {bad.version} metric {value:.4g} {why}",
                   value)
        self._cooldown_until = day + self.cfg["cooldown_days"]

    def summary(self) -> dict[str, float]:
        """Counts for ``summary.json``: retrains, promotions, rejections, rollbacks, cost, live version."""
        kinds = ("trigger", "promoted", "rejected", "rolled_back")
        n = {k: sum(e.kind == k for e in self.events) for k in kinds}
        return {"retrains": self.retrains, "retrain_triggers": n["trigger"], "promotions": n["promoted"],
                "rejections": n["rejected"], "rollbacks": n["rolled_back"], "retrain_cost": self.cost,
                "live_version": self.live.version}


def check(source: str, cfg: dict) -> None:
    """Cross-field rules of a validated ``[retrain]`` section; raises ScenarioError naming ``source``.

    A shadow period that ends before any shadow-scored item's label is known has no evidence, and every
    challenger would be rejected: ``shadow_days`` must be 0 (promote at once) or exceed ``label_delay_days``.
    """
    if cfg["policy"] != "never" and 0 < cfg["shadow_days"] <= cfg["label_delay_days"]:
        raise ScenarioError(
            source, "retrain.shadow_days", cfg["shadow_days"],
            f"must be 0 or greater than retrain.label_delay_days (={cfg['label_delay_days']:g}): shadow "
            "traffic is judged on labels, which arrive label_delay_days later",
        )


def daily(env: Any, retrainer: Retrainer, start_day: float = 0.0) -> Generator:
    """SimPy process stepping ``retrainer`` at the end of every day from ``start_day`` (env time in hours)."""
    yield env.timeout(max(0.0, 24.0 * start_day - env.now))
    while True:
        yield env.timeout(24.0)
        retrainer.step(env.now / 24.0)


def config(**overrides: Any) -> dict:
    """A complete ``[retrain]`` config from SCHEMA defaults plus ``overrides`` (for code and tests)."""
    unknown = set(overrides) - set(SCHEMA)
    if unknown:
        raise UserError(f"retrain config: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                        f"{', '.join(sorted(SCHEMA))}")
    return {**{k: r.default for k, r in SCHEMA.items()}, **overrides}
