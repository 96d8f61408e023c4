"""Trajectories -> uint8 frames: palette, the world<->pixel mapping and the rasteriser.

Knows the state model (``phylaw.physics.state``), never the simulators.
"""

from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, PALETTE, colour_by_name, palette_table
from phylaw.render.raster import render, render_trajectory

__all__ = [
    "BACKGROUND",
    "PALETTE",
    "PixelGrid",
    "colour_by_name",
    "palette_table",
    "render",
    "render_trajectory",
]
