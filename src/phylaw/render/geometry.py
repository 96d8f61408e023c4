"""The one world <-> pixel mapping, shared by the renderer and the evaluation parser.

Convention. The world square ``[0, world_size]^2`` covers the image exactly, edge to edge. Pixel
column j covers world x in ``[j s_x, (j + 1) s_x)`` with ``s_x = world_size / width_px``, so its
centre is at ``x = (j + 0.5) s_x``. Row 0 is the *top* of the image (world y = world_size): row i
covers y in ``(world_size - (i + 1) s_y, world_size - i s_y]`` and its centre is at
``y = world_size - (i + 0.5) s_y``. "Index coordinates" are continuous (col, row) in which the
centre of pixel (i, j) sits at exactly (j, i); the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5].

Why this matters (a deliberate fix of the authors' code, reference section 2.2): their generator
samples the world at ``linspace(0, 1, W)``, i.e. puts column j at ``x = j / (W - 1) * 10``, while
their parser maps column j back to ``x = j / W * 10``. Parsed positions are therefore scaled by
``(W - 1) / W`` (255/256 at W = 256) and every parsed velocity is biased by ``-v / W`` (about
-0.0098 at v = 2.5, the "system error" of the paper's Table 3). Here renderer and parser share this
module, so parsing a ground-truth video recovers the true positions and velocities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phylaw import PhylawError
from phylaw.physics.state import WORLD_SIZE

EDGE_PX = 1.5  # width of a disc's anti-aliasing ramp, in pixels (render.raster, render.coverage)


@dataclass(frozen=True)
class PixelGrid:
    """An image of ``height_px`` x ``width_px`` pixels showing the world ``[0, world_size]^2``."""

    width_px: int
    height_px: int
    world_size: float = WORLD_SIZE

    def __post_init__(self) -> None:
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise PhylawError(f"PixelGrid.{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.world_size) and self.world_size > 0):
            raise PhylawError(f"PixelGrid.world_size must be positive, got {self.world_size!r}")

    @classmethod
    def square(cls, resolution_px: int, world_size: float = WORLD_SIZE) -> PixelGrid:
        """A ``resolution_px`` x ``resolution_px`` grid (the paper uses 128 and 256)."""
        return cls(resolution_px, resolution_px, world_size)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height_px, width_px)``, the frame shape without channels."""
        return (self.height_px, self.width_px)

    @property
    def is_square(self) -> bool:
        """True when pixels are square (width_px == height_px)."""
        return self.width_px == self.height_px

    @property
    def px_per_world(self) -> np.ndarray:
        """Pixels per world unit along (x, y), float64 [2]; both equal on a square grid."""
        return np.array([self.width_px, self.height_px], dtype=np.float64) / self.world_size

    def world_len_to_px(self, length: np.ndarray | float, axis: int | None = None) -> np.ndarray:
        """A world length (e.g. a radius) in pixels, same shape as ``length``.

        ``axis`` 0 uses the x scale, 1 the y scale; ``None`` the geometric mean of the two, which
        is the exact scale on a square grid.
        """
        sx, sy = self.px_per_world
        scale = math.sqrt(sx * sy) if axis is None else (sx, sy)[axis]
        return np.asarray(length, dtype=np.float64) * scale

    def world_to_px(self, xy: np.ndarray) -> np.ndarray:
        """World positions [..., 2] (x, y) -> continuous index coordinates [..., 2] (col, row).

        The centre of pixel column j is at col = j; row 0 is the top of the image. float64.
        """
        xy = np.asarray(xy, dtype=np.float64)
        sx, sy = self.px_per_world
        col = xy[..., 0] * sx - 0.5
        row = (self.world_size - xy[..., 1]) * sy - 0.5
        return np.stack([col, row], axis=-1)

    def px_to_world(self, colrow: np.ndarray) -> np.ndarray:
        """Index coordinates [..., 2] (col, row) -> world positions [..., 2] (x, y), float64.

        The exact inverse of ``world_to_px`` (up to float rounding).
        """
        colrow = np.asarray(colrow, dtype=np.float64)
        sx, sy = self.px_per_world
        x = (colrow[..., 0] + 0.5) / sx
        y = self.world_size - (colrow[..., 1] + 0.5) / sy
        return np.stack([x, y], axis=-1)
