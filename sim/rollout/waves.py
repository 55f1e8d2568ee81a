"""Which sites go live in which wave."""

from __future__ import annotations

import numpy as np


def assign_waves(section: dict, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Wave index per site, following ``wave_order`` (a permutation is drawn from ``rng`` whatever the order,
    so the stream is used the same way by every order)."""
    n = len(sizes)
    order = {
        "random": rng.permutation(n),
        "largest_first": np.argsort(-sizes, kind="stable"),
        "smallest_first": np.argsort(sizes, kind="stable"),
        "as_listed": np.arange(n),
    }[section["wave_order"]]
    wave = np.empty(n, dtype=np.int64)
    bounds = np.cumsum([0, *section["waves"]])
    for w in range(len(section["waves"])):
        wave[order[bounds[w] : bounds[w + 1]]] = w
    return wave
