"""One seeded random generator per run, split by name.

Streams are derived from (seed, name) rather than from the order in which
they are requested, so adding a layer never changes another layer's draws.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class RandomStreams:
    """Factory of independent, reproducible ``numpy.random.Generator`` streams."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.root = np.random.default_rng(np.random.SeedSequence(self.seed))

    def stream(self, name: str) -> np.random.Generator:
        """A generator for ``name``; the same (seed, name) always gives the same draws."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_name_key(name),)))
