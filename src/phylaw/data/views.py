"""Pixels are a view of states: the one place that picks the renderer for a split's batch.

The fundamental scenarios draw discs and squares (``render.raster``); the combinatorial scenes
draw rotated polygons (``render.shapes``). Datasets, previews and exports call ``render_batch``.
"""

from __future__ import annotations

import numpy as np

from phylaw.data import combinatorial
from phylaw.data.store import StateBatch, Store
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render


def render_batch(
    store: Store, batch: StateBatch, grid: PixelGrid, out: np.ndarray | None = None
) -> np.ndarray:
    """Pixels of ``batch`` (read from ``store``), uint8 [B, T, H, W, 3] (``out`` if given)."""
    if combinatorial.is_scene_store(store):
        return combinatorial.render_batch(store, batch, grid, out=out)
    return render(batch.pos, store.bodies(batch), grid, out=out)
