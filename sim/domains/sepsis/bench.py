"""The sepsis model for the batch scoring benchmark (``purgatory bench batch --model sepsis``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from models.registry import Registry, RegistryEntry
from sim.domains.sepsis.model import get_model
from sim.domains.sepsis.physiology import N_FEATURES, Cohort

_COHORT = 20_000
_SEPTIC_SHARE = 0.1


def generate(rng: np.random.Generator, n: int, p: dict) -> np.ndarray:
    """``n`` hourly feature rows (float32 [n, 14]) of a mixed inpatient cohort, stepped hour by hour.

    The rows come from the same physiology the model is trained and scored on in the simulation: a cohort of
    up to 20,000 patients (10% developing sepsis) admitted together and stepped until ``n`` rows exist.
    ``p`` is the scenario's ``[patients]`` section.
    """
    k = max(1, min(n, _COHORT))
    septic = rng.random(k) < _SEPTIC_SHARE
    acuity = (rng.random(k) < 0.2).astype(np.float32)
    cohort = Cohort(k)
    cohort.admit(
        rng,
        0.0,
        np.zeros(k, np.int32),
        septic,
        np.ones(k, np.float32),
        acuity,
        p,
        {"mimic_rate": np.full(k, p["mimic_rate"]), "m0_logit": np.zeros(k)},
    )
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    done, t = 0, 0
    ones, zeros, offsets = np.ones(k), np.zeros(k), np.zeros((k, 5))
    while done < n:
        X, _ = cohort.step(rng, float(t), offsets, ones, p["lab_interval_hours"], zeros)
        take = min(len(X), n - done)
        out[done : done + take] = X[:take]
        done += take
        t += 1
    return out


Generate = Callable[[np.random.Generator, int], np.ndarray]


def benchmark_model(scenario: dict, registry: Registry | None = None) -> tuple[RegistryEntry, Generate]:
    """The scenario's sepsis model (trained on first use) and its feature generator; ``scenario`` is the
    scenario's sections (the batch benchmark's catalogue loads ``scenarios/sepsis_spot.toml``)."""
    return get_model(scenario, registry), partial(generate, p=scenario["patients"])
