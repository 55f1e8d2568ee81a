"""Gate statistics by simulation: do the gates stop bad models without stalling good ones?

A release is watched by a gate that looks ``looks`` times, every ``check_every_days``; between looks
``n_per_look`` cases are handled by the new model. Each case gives the difference "new minus old" in the gated
KPI, with standard deviation ``sigma`` (KPI units) and mean ``effect`` (0: A/A, the new model equals the old;
negative: a regression). A gate rolls the release back on evidence of a regression, else promotes it to full
rollout after the last look (or earlier, for a sequential gate with ``promote_margin``).

Gate kinds:
- ``fixed``: each look tests only the cases since the previous look (one-sided z-test at ``alpha``): the looks
  are independent, so under A/A the false-rollback rate over ``K`` looks is exactly ``1 - (1 - alpha)^K``.
- ``cumulative``: each look tests all cases so far at ``alpha`` (the usual dashboard): correlated looks, still
  far above ``alpha``.
- ``msprt``: the always-valid mSPRT (``sequential.py``) on all cases so far: at most ``alpha`` over any
  number of looks.

Replications are vectorised: ``reps x looks`` batch means drawn at once (each batch mean is exactly normal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sim.rollout import sequential

KINDS = ("fixed", "cumulative", "msprt")


@dataclass(frozen=True)
class GateDesign:
    """How a gate watches a release; units: ``sigma``, ``tau``, ``promote_margin`` in KPI units per case."""

    #: one of KINDS
    kind: str = "fixed"
    #: one-sided level of each look (fixed, cumulative) or over all looks (msprt)
    alpha: float = 0.05
    looks: int = 25
    #: cases handled by the new model between two looks
    n_per_look: int = 200
    sigma: float = 1.0
    #: msprt: sd of the normal mixture over effects
    tau: float = 0.1
    check_every_days: float = 7.0
    #: msprt: promote once the confidence sequence lies above -promote_margin (None: only after the last look)
    promote_margin: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind (={self.kind!r}) must be one of {KINDS}")
        sizes_ok = self.looks >= 1 and self.n_per_look >= 1 and self.sigma > 0 and self.tau > 0
        if not 0 < self.alpha < 1 or not sizes_ok:
            raise ValueError(f"invalid gate design: {self}")


def false_rollback_fixed(alpha: float, looks: int) -> float:
    """Exact A/A false-rollback rate of the ``fixed`` gate: at least one of ``looks`` independent tests."""
    return 1.0 - (1.0 - alpha) ** looks


def simulate(design: GateDesign, effect: float, reps: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per replication: ``rolled_back`` (bool), ``stop_look`` (1-based look of the rollback or promotion) and
    ``promoted`` (bool)."""
    k = np.arange(1, design.looks + 1)
    se_look = design.sigma / math.sqrt(design.n_per_look)
    x = effect + se_look * rng.standard_normal((reps, design.looks))  # mean of each look's batch
    xbar = np.cumsum(x, axis=1) / k
    n = design.n_per_look * k
    z_crit = stats.norm.ppf(1 - design.alpha)
    promote = np.zeros_like(xbar, dtype=bool)
    if design.kind == "fixed":
        reject = x / se_look < -z_crit
    elif design.kind == "cumulative":
        reject = xbar / (design.sigma / np.sqrt(n)) < -z_crit
    else:
        s2, t2 = design.sigma**2, design.tau**2
        reject = sequential.decide(xbar, n, 0.0, s2, t2, alpha=design.alpha) == -1
        if design.promote_margin is not None:
            promote = xbar - sequential.radius(n, s2, t2, design.alpha) > -design.promote_margin
    promote[:, -1] = True  # after the last look without rollback, the release goes to full rollout
    first_reject = np.where(reject.any(axis=1), reject.argmax(axis=1), design.looks)
    first_promote = promote.argmax(axis=1)
    rolled_back = first_reject < first_promote
    # a look that both rejects and would promote rolls back (evidence of harm wins)
    rolled_back |= first_reject == first_promote
    stop = np.where(rolled_back, first_reject, first_promote) + 1
    return {"rolled_back": rolled_back, "stop_look": stop, "promoted": ~rolled_back}


def summarise(design: GateDesign, effect: float, reps: int, rng: np.random.Generator) -> dict[str, float]:
    """Rates and costs of one design at one effect: the rollback rate (false rollbacks under A/A), the
    missed-regression rate (releases with ``effect < 0`` promoted), days to full rollout (promoted releases)
    and cases handled by the new model before the decision."""
    r = simulate(design, effect, reps, rng)
    rb = float(r["rolled_back"].mean())
    promoted = r["promoted"]
    days = r["stop_look"][promoted] * design.check_every_days
    return {
        "kind": design.kind,
        "effect": effect,
        "reps": reps,
        "rollback_rate": rb,
        "rollback_rate_se": math.sqrt(rb * (1 - rb) / reps),
        "missed_regression_rate": (1.0 - rb) if effect < 0 else math.nan,
        "days_to_full_rollout": float(days.mean()) if len(days) else math.nan,
        "cases_exposed": float((r["stop_look"] * design.n_per_look).mean()),
    }


def table(designs: list[GateDesign], effects: list[float], reps: int, seed: int) -> list[dict[str, float]]:
    """:func:`summarise` for every design and effect, each on its own random stream derived from ``seed``."""
    seqs = np.random.SeedSequence(seed).spawn(len(designs) * len(effects))
    rows = []
    for i, (d, e) in enumerate((d, e) for d in designs for e in effects):
        rows.append(summarise(d, e, reps, np.random.default_rng(seqs[i])))
    return rows
