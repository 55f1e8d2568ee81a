"""Adoption: whether people act on the model's output.

Per site, the probability that a clinician / technician / dealer acts on an alert is

    logit(p_act) = act_logit_base
                   + trust_coef * (trust - trust_ref)
                   + training_coef * (training - 1)
                   - fatigue_coef * (1 - exp(-fatigue / fatigue_scale))

- ``trust`` follows the precision people experience: each day it moves ``trust_rate`` of the way towards that
  day's share of alerts that turned out true (an exponential moving average).
- ``fatigue`` is an exponential moving average (rate ``fatigue_rate`` per day) of false alerts per staff
  member per shift; its effect saturates at ``fatigue_coef``.
- ``training`` is set per rollout wave (pilot sites usually get the most).

All parameters live in the scenario's ``[adoption]`` section, with their sources.
"""

from __future__ import annotations

import numpy as np

from sim.schema import Rule

SCHEMA: dict[str, Rule] = {
    "act_logit_base": Rule(
        "float", 2.0, min=-20, max=20, doc="logit of p_act at reference trust, full training, no fatigue"
    ),
    "trust_coef": Rule("float", 4.0, min=0, max=50, doc="logit change per unit of trust above trust_ref"),
    "trust_ref": Rule("float", 0.3, min=0, max=1, doc="the precision at which trust is neutral"),
    "trust_initial": Rule("float", 0.3, min=0, max=1, doc="trust at go-live"),
    "trust_rate": Rule("float", 0.05, min=0, max=1, doc="daily EMA weight of observed alert precision"),
    "training_by_wave": Rule(
        "list[float]", [1.0], min=0, max=1, min_len=1, doc="training level per wave (last value repeats)"
    ),
    "training_coef": Rule("float", 2.0, min=0, max=50, doc="logit change per unit of training"),
    "fatigue_coef": Rule("float", 3.0, min=0, max=50, doc="largest logit penalty from alert fatigue"),
    "fatigue_scale": Rule(
        "float", 1.0, min=1e-6, doc="false alerts per staff-shift giving 63% of the penalty"
    ),
    "fatigue_rate": Rule("float", 0.1, min=0, max=1, doc="daily EMA weight of false alerts per staff-shift"),
    "source": Rule("str", "", doc="citations"),
}


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Adoption:
    """Per-site trust, fatigue and training, and the resulting probability of acting on an alert."""

    def __init__(self, cfg: dict, wave: np.ndarray):
        self.cfg = cfg
        n = len(wave)
        levels = list(cfg["training_by_wave"])
        self.training = np.array([levels[min(w, len(levels) - 1)] for w in wave], dtype=np.float64)
        self.trust = np.full(n, cfg["trust_initial"], dtype=np.float64)
        self.fatigue = np.zeros(n, dtype=np.float64)

    def p_act(self) -> np.ndarray:
        """Probability of acting on an alert, per site."""
        c = self.cfg
        logit = (
            c["act_logit_base"]
            + c["trust_coef"] * (self.trust - c["trust_ref"])
            + c["training_coef"] * (self.training - 1.0)
            - c["fatigue_coef"] * (1.0 - np.exp(-self.fatigue / c["fatigue_scale"]))
        )
        return _expit(logit)

    def daily_update(
        self, live: np.ndarray, true_alerts: np.ndarray, false_alerts: np.ndarray, staff_shifts: np.ndarray
    ) -> None:
        """End-of-day update at live sites from that day's (weighted) true and false alert counts."""
        c = self.cfg
        total = true_alerts + false_alerts
        has = live & (total > 0)
        ppv = np.divide(true_alerts, total, out=np.zeros_like(total), where=total > 0)
        self.trust[has] += c["trust_rate"] * (ppv[has] - self.trust[has])
        load = np.divide(false_alerts, staff_shifts, out=np.zeros_like(false_alerts), where=staff_shifts > 0)
        self.fatigue[live] += c["fatigue_rate"] * (load[live] - self.fatigue[live])
