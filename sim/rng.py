"""Named random streams from one root seed. No global RNG anywhere in the suite.

``Streams(seed).generator("admissions")`` always gives the same Generator for the same seed and name, no
matter which other streams were created before it, so adding a stream never perturbs the others.
"""

from __future__ import annotations

import zlib

import numpy as np


def replication_seeds(root_seed: int, n: int) -> list[int]:
    """Integer seeds of ``n`` replications, from ``SeedSequence(root_seed).spawn(n)`` (stable per root)."""
    return [int(s.generate_state(1, dtype=np.uint32)[0]) for s in np.random.SeedSequence(root_seed).spawn(n)]


class Streams:
    """Independent numpy Generators keyed by name, all derived from ``seed``."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def _seq(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()),))

    def generator(self, name: str) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(self._seq(name)))

    def int_seed(self, name: str) -> int:
        """A 31-bit integer seed for libraries that take one (LightGBM, scikit-learn)."""
        return int(self._seq(name).generate_state(1, dtype=np.uint32)[0] >> 1)
