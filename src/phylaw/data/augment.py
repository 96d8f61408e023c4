"""Training-time augmentation: the horizontal flip of the paper's Sec. 5.2 ("Set-2").

Set-2 holds balls moving both ways "by using horizontal flipping at training time" (the
authors' flip pipeline is absent, reference 1.5). A video is flipped with probability p, drawn
per (seed, step, position in the global batch) from ``data.rng``, so a resumed run flips the
same videos of the same steps and the choice depends on no worker, rank or loader order.

Pixels and states flip together: mirroring the frames along their width maps pixel column j
to W - 1 - j, whose centre is at world x' = 10 - x (``render.geometry``: column j's centre is
at (j + 0.5) W / 10), so the mirrored video is exactly the rendering of the flipped states
(x -> 10 - x, v_x -> -v_x; y and v_y unchanged).
"""

from __future__ import annotations

import numpy as np

from phylaw.data.rng import derive_key, uniforms
from phylaw.physics.state import WORLD_SIZE


def hflip_mask(seed: int, step: int, count: int, p: float) -> np.ndarray:
    """Which of the ``count`` videos of global batch ``step`` are flipped, bool [count]: each
    with probability ``p``, a pure function of (seed, step, position)."""
    if p <= 0:
        return np.zeros(count, dtype=bool)
    u = uniforms(derive_key("hflip", int(seed), int(step)), np.arange(count), 1)[:, 0]
    return u < p


def hflip_frames(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Frames [B, T, H, W, C] with the videos where ``mask`` [B] mirrored along W (a copy)."""
    out = np.array(frames, copy=True)
    out[mask] = out[mask][..., ::-1, :]
    return out


def hflip_states(
    pos: np.ndarray, vel: np.ndarray | None, mask: np.ndarray, world_size: float = WORLD_SIZE
) -> tuple[np.ndarray, np.ndarray | None]:
    """States [B, T, N, 2] of the flipped videos: x -> world_size - x and v_x -> -v_x where
    ``mask`` [B]; ``vel`` may be None. Returns copies."""
    pos = np.array(pos, dtype=np.float64, copy=True)
    pos[mask, ..., 0] = world_size - pos[mask, ..., 0]
    if vel is not None:
        vel = np.array(vel, dtype=np.float64, copy=True)
        vel[mask, ..., 0] = -vel[mask, ..., 0]
    return pos, vel
