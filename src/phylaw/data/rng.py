"""Counter-based random numbers: draw j of item i is a pure function of (key, i, j).

Every video's randomness derives from its split's key and its own index, so a split's bytes do
not depend on the number of workers, the shard size or the order of generation. The mixer is
SplitMix64's finaliser (Steele, Lea & Flood 2014), vectorised over numpy uint64 arrays; numpy's
bit generators cannot be keyed per item without building one generator object per video, which
would cost seconds per million videos.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / (1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def derive_key(*parts: object) -> int:
    """A 64-bit key from any printable parts, e.g. ``derive_key("uniform", "train", seed)``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def uniforms(key: int, index: np.ndarray, num_draws: int) -> np.ndarray:
    """Uniform draws in [0, 1) with 53-bit resolution, [len(index), num_draws] float64.

    ``index``: int array of item indices (any order); row r depends only on (key, index[r]).
    """
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(_mix(idx * _GOLDEN + np.uint64(key)) ^ np.uint64(key))
        j = np.arange(1, num_draws + 1, dtype=np.uint64) * _GOLDEN
        bits = _mix(base[:, None] + j[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * _INV_2_53
