"""Pixels are a view of states: a batch read from a split, drawn by the one renderer entry
point (``render.raster.render_trajectory``: discs and squares, or the bodies of a scene).
Datasets, previews and exports call ``render_batch``."""

from __future__ import annotations

import numpy as np

from phylaw.data import combinatorial
from phylaw.data.store import StateBatch, Store
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render, render_trajectory


def render_batch(
    store: Store, batch: StateBatch, grid: PixelGrid, out: np.ndarray | None = None
) -> np.ndarray:
    """Pixels of ``batch`` (read from ``store``), uint8 [B, T, H, W, 3] (``out`` if given)."""
    if combinatorial.is_scene_store(store):
        return render_trajectory(combinatorial.batch_trajectory(store, batch), grid, out=out)
    return render(batch.pos, store.bodies(batch), grid, out=out)
