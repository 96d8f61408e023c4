"""Renderer invariants: exact geometry, coverage area and centroid, clipping, compositing order."""

from __future__ import annotations

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.physics.state import (
    RING_INNER_RATIO,
    Bodies,
    Colour,
    Shape,
    Trajectory,
    discs,
    frame_times,
)
from phylaw.render import (
    BACKGROUND,
    PALETTE,
    PixelGrid,
    colour_by_name,
    palette_table,
    render,
    render_trajectory,
)
from phylaw.render.geometry import EDGE_PX


def bodies_of(size, shape, colour) -> Bodies:
    """A Bodies batch [B, N] from nested lists or arrays."""
    return Bodies(
        np.asarray(size, dtype=np.float64),
        np.asarray(shape, dtype=np.int8),
        np.asarray(colour, dtype=np.int8),
    )


def reference_render(pos: np.ndarray, bodies: Bodies, grid: PixelGrid) -> np.ndarray:
    """Brute force over every pixel, float64: the specification the fast renderer must match.

    On non-square pixels a disc's distance is measured in pixels of the mean scale sqrt(sx sy).
    """
    b, t, n, _ = pos.shape
    rows, cols = np.mgrid[0 : grid.height_px, 0 : grid.width_px].astype(np.float64)
    sx, sy = grid.px_per_world
    mean = np.sqrt(sx * sy)
    img = np.empty((b, t, grid.height_px, grid.width_px, 3))
    img[...] = BACKGROUND
    centres = grid.world_to_px(pos)
    inner = bodies.inner_radius()
    for i in range(b):
        for k in range(n):
            size = bodies.size[i, k]
            colour = np.asarray(PALETTE[Colour(bodies.colour[i, k])], dtype=np.float64)
            for j in range(t):
                if not (size > 0 and np.isfinite(centres[i, j, k]).all()):
                    continue
                dx, dy = cols - centres[i, j, k, 0], rows - centres[i, j, k, 1]
                if bodies.shape[i, k] in (Shape.DISC, Shape.RING):
                    d = np.hypot(dx * mean / sx, dy * mean / sy)
                    u = np.clip((size * mean - d) / EDGE_PX + 0.5, 0, 1)
                    a = u * u * (3 - 2 * u)
                    if bodies.shape[i, k] == Shape.RING:  # minus the hole, same profile
                        q = np.clip((inner[i, k] * mean - d) / EDGE_PX + 0.5, 0, 1)
                        a = a - q * q * (3 - 2 * q)
                else:
                    a = np.clip(size * sx - abs(dx) + 0.5, 0, 1)
                    a *= np.clip(size * sy - abs(dy) + 0.5, 0, 1)
                img[i, j] = img[i, j] * (1 - a[..., None]) + colour * a[..., None]
    return np.floor(img + 0.5).astype(np.uint8)


def coverage(frames: np.ndarray, channel: int) -> np.ndarray:
    """Coverage recovered from a channel that the body sets to 0 on white: a = 1 - value/255."""
    return 1.0 - frames[..., channel].astype(np.float64) / 255.0


def centroid_px(a: np.ndarray) -> np.ndarray:
    """Coverage-weighted centroid of images a [B, H, W] in index coordinates (col, row), [B, 2]."""
    rows, cols = np.mgrid[0 : a.shape[1], 0 : a.shape[2]]
    total = a.sum(axis=(1, 2))
    return np.stack([(a * cols).sum(axis=(1, 2)), (a * rows).sum(axis=(1, 2))], -1) / total[:, None]


# ---------------------------------------------------------------------------------------------
# palette and geometry


def test_palette_covers_every_colour():
    table = palette_table()
    assert table.dtype == np.uint8 and table.shape == (len(Colour), 3)
    for colour in Colour:
        assert tuple(table[colour]) == PALETTE[colour]
    assert PALETTE[Colour.RED] == (255, 0, 0) and PALETTE[Colour.BLUE] == (0, 0, 255)
    assert colour_by_name("Blue") is Colour.BLUE
    with pytest.raises(PhylawError, match="red, blue"):
        colour_by_name("mauve")


def test_pixel_mapping_round_trip_and_convention():
    rng = np.random.default_rng(0)
    for grid in (PixelGrid.square(128), PixelGrid.square(256), PixelGrid(96, 64)):
        xy = rng.uniform(-3, 13, (50, 7, 2))
        assert np.allclose(grid.px_to_world(grid.world_to_px(xy)), xy, atol=1e-12)
        s = grid.world_size / np.array([grid.width_px, grid.height_px])
        # centre of pixel (row 0, col 0) is half a pixel from the top-left corner (0, 10)
        assert np.allclose(grid.world_to_px([s[0] / 2, 10 - s[1] / 2]), [0, 0])
        assert np.allclose(grid.world_to_px([0.0, 10.0]), [-0.5, -0.5])
        assert np.allclose(
            grid.world_to_px([10.0, 0.0]), [grid.width_px - 0.5, grid.height_px - 0.5]
        )
    assert PixelGrid.square(128).world_len_to_px(1.0) == pytest.approx(12.8)
    with pytest.raises(PhylawError):
        PixelGrid(0, 128)


# ---------------------------------------------------------------------------------------------
# geometry of the drawn bodies


# The smooth 1.5-px edge ramp keeps the centroid within 0.0065 px of the centre for every radius
# (float coverage); uint8 rounding adds a little. The bound, 0.02 px, holds for all radii,
# including radius 0.3 world units (3.84 px at 128 px). The area includes the ramp's pi w^2 / 20.
def centroid_tolerance_px(r_px: np.ndarray) -> np.ndarray:
    return np.full_like(r_px, 0.02)


def area_tolerance(r_px: np.ndarray) -> np.ndarray:
    return np.where(r_px >= 5.0, 0.01, 0.02)


@pytest.mark.parametrize("resolution", [128, 256])
@pytest.mark.parametrize(("colour", "channel"), [(Colour.RED, 1), (Colour.BLUE, 0)])
def test_disc_centroid_and_area(resolution, colour, channel):
    rng = np.random.default_rng(resolution + channel)
    grid = PixelGrid.square(resolution)
    b = 128
    r = rng.uniform(0.3, 2.0, (b, 1))
    pos = rng.uniform(r[..., None] + 0.05, 10 - r[..., None] - 0.05, (b, 1, 2))[:, None]
    a = coverage(render(pos, discs(r, (colour,)), grid)[:, 0], channel)  # [B, H, W]
    r_px = grid.world_len_to_px(r[:, 0])
    found = grid.px_to_world(centroid_px(a))
    err_px = np.abs(found - pos[:, 0, 0]).max(axis=-1) * grid.px_per_world[0]
    assert (err_px < centroid_tolerance_px(r_px)).all()
    area_err = np.abs(a.sum(axis=(1, 2)) / (np.pi * r_px**2) - 1)
    assert (area_err < area_tolerance(r_px)).all()


@pytest.mark.parametrize("resolution", [128, 256])
def test_square_centroid_and_area(resolution):
    rng = np.random.default_rng(7)
    grid = PixelGrid.square(resolution)
    b = 32
    h = rng.uniform(0.3, 2.0, (b, 1))
    pos = rng.uniform(h[..., None] + 0.05, 10 - h[..., None] - 0.05, (b, 1, 2))[:, None]
    bodies = bodies_of(h, np.full((b, 1), Shape.SQUARE), np.full((b, 1), Colour.RED))
    a = coverage(render(pos, bodies, grid)[:, 0], 1)
    found = grid.px_to_world(centroid_px(a))
    assert (np.abs(found - pos[:, 0, 0]).max(axis=-1) * grid.px_per_world[0]).max() < 0.02
    assert np.allclose(a.sum(axis=(1, 2)), (2 * grid.world_len_to_px(h[:, 0])) ** 2, rtol=0.01)


@pytest.mark.parametrize("grid", [PixelGrid.square(64), PixelGrid(56, 40)])
def test_matches_brute_force_reference(grid):
    """Mixed shapes, overlaps, partly and fully off-screen bodies, NaN, zero size, 4 slots."""
    rng = np.random.default_rng(3)
    b, t, n = 6, 5, 4
    pos = rng.uniform(-1.5, 11.5, (b, t, n, 2))
    pos[:, :, 1] = pos[:, :, 0] + rng.uniform(-1, 1, (b, t, 2))  # slot 1 overlaps slot 0
    pos[:3, :, 3] = pos[:3, :, 0] + rng.uniform(-1, 1, (3, t, 2))  # and so does slot 3, at times
    pos[0, 1, 2] = np.nan
    pos[1, :, 0] = [30.0, -40.0]
    pos[4, 2, 1] = [1e300, -np.inf]
    size = rng.uniform(0.2, 2.5, (b, n))
    size[2, 1] = 0.0
    size[3, 3] = -1.0
    bodies = bodies_of(size, rng.integers(0, 2, (b, n)), rng.integers(0, len(Colour), (b, n)))
    got = render(pos, bodies, grid).astype(int)
    want = reference_render(pos, bodies, grid).astype(int)
    assert np.abs(got - want).max() <= 1  # float32 vs float64 may flip a rounding tie
    assert (got != want).mean() < 1e-3


@pytest.mark.parametrize("grid", [PixelGrid.square(64), PixelGrid(56, 40)])
def test_rings_match_the_brute_force_reference(grid):
    """Rings among discs and squares, overlapping, clipped, with stated inner radii."""
    rng = np.random.default_rng(5)
    b, t, n = 5, 3, 3
    pos = rng.uniform(-1.0, 11.0, (b, t, n, 2))
    pos[:, :, 1] = pos[:, :, 0] + rng.uniform(-1, 1, (b, t, 2))
    size = rng.uniform(0.4, 2.5, (b, n))
    shape = rng.integers(0, 3, (b, n))
    shape[0] = Shape.RING
    inner = size * rng.uniform(0.1, 0.9, (b, n))
    bodies = Bodies(size, shape.astype(np.int8), rng.integers(0, len(Colour), (b, n)), inner)
    got = render(pos, bodies, grid).astype(int)
    want = reference_render(pos, bodies, grid).astype(int)
    assert np.abs(got - want).max() <= 1
    assert (got != want).mean() < 1e-3


@pytest.mark.parametrize("resolution", [128, 256])
def test_ring_centroid_and_area(resolution):
    """A ring's coverage sums to pi (r^2 - q^2) and centres on the body, like a disc's; the
    default inner radius is RING_INNER_RATIO r."""
    rng = np.random.default_rng(11)
    grid = PixelGrid.square(resolution)
    b = 32
    r = rng.uniform(0.7, 2.0, (b, 1))
    pos = rng.uniform(r[..., None] + 0.05, 10 - r[..., None] - 0.05, (b, 1, 2))[:, None]
    bodies = bodies_of(r, np.full((b, 1), Shape.RING), np.full((b, 1), Colour.BLUE))
    a = coverage(render(pos, bodies, grid)[:, 0], 0)
    found = grid.px_to_world(centroid_px(a))
    assert (np.abs(found - pos[:, 0, 0]).max(axis=-1) * grid.px_per_world[0]).max() < 0.02
    r_px = grid.world_len_to_px(r[:, 0])
    want = np.pi * (r_px**2 - (RING_INNER_RATIO * r_px) ** 2)
    assert np.allclose(a.sum(axis=(1, 2)), want, rtol=0.01)
    hole = np.rint(grid.world_to_px(pos[:, 0, 0])).astype(int)
    assert (a[np.arange(b), hole[:, 1], hole[:, 0]] == 0).all()  # the centre is background


def test_a_ring_needs_an_inner_radius_below_its_outer_one():
    pos = np.full((1, 1, 1, 2), 5.0)
    for inner in (1.0, 1.5, -0.1, np.nan):
        bodies = Bodies(
            np.ones((1, 1)),
            np.full((1, 1), Shape.RING, np.int8),
            np.zeros((1, 1), np.int8),
            np.full((1, 1), inner),
        )
        with pytest.raises(PhylawError, match="inner radius"):
            render(pos, bodies, PixelGrid.square(32))


# ---------------------------------------------------------------------------------------------
# clipping, invisibility and order


def test_ball_half_outside_is_clipped_without_wrap_around():
    grid = PixelGrid.square(128)
    pos = np.array([[0.0, 5.0], [10.0, 5.0], [5.0, 0.0], [5.0, 10.0], [0.0, 0.0]])[:, None, None]
    frames = render(pos, discs(np.ones((5, 1)), (Colour.RED,)), grid)[:, 0]
    drawn = frames[..., 1] < 255  # [5, H, W]
    half = 64
    assert drawn[0, :, :14].any() and not drawn[0, :, half:].any()  # left edge
    assert drawn[1, :, -14:].any() and not drawn[1, :, :half].any()  # right edge
    assert drawn[2, -14:].any() and not drawn[2, :half].any()  # y = 0 is the bottom row
    assert drawn[3, :14].any() and not drawn[3, half:].any()  # y = 10 is the top row
    assert drawn[4, -14:, :14].any() and drawn[4].sum() == drawn[4, -14:, :14].sum()
    a = coverage(frames[0], 1)  # half the disc is in view
    assert a.sum() == pytest.approx(np.pi * 12.8**2 / 2, rel=0.01)


def test_off_screen_nan_and_empty_bodies_draw_nothing():
    grid = PixelGrid.square(128)
    pos = np.array([[-1.2, 5.0], [5.0, 11.3], [np.nan, 5.0], [5.0, np.inf], [5.0, 5.0]])
    size = np.array([[1.0], [1.0], [1.0], [1.0], [0.0]])
    frames = render(pos[:, None, None], discs(size, (Colour.BLUE,)), grid)
    assert (frames == 255).all()


def test_later_body_is_painted_over_earlier():
    grid = PixelGrid.square(128)
    pos = np.full((1, 1, 2, 2), 5.0)
    pos[0, 0, 1, 0] = 5.5  # slot 1 (blue) right of slot 0 (red), overlapping it
    frame = render(pos, discs(np.ones((1, 2)), (Colour.RED, Colour.BLUE)), grid)[0, 0]
    centre = np.round(grid.world_to_px([5.25, 5.0])).astype(int)
    assert tuple(frame[centre[1], centre[0]]) == (0, 0, 255)
    left = np.round(grid.world_to_px([4.3, 5.0])).astype(int)
    assert tuple(frame[left[1], left[0]]) == (255, 0, 0)


# ---------------------------------------------------------------------------------------------
# the array contract


def test_dtype_shape_out_buffer_and_determinism():
    rng = np.random.default_rng(5)
    grid = PixelGrid(96, 80)  # non-square frames work too
    pos = rng.uniform(0, 10, (3, 4, 2, 2))
    bodies = discs(rng.uniform(0.5, 1.5, (3, 2)), (Colour.GREEN, Colour.PURPLE))
    first = render(pos, bodies, grid)
    assert first.dtype == np.uint8 and first.shape == (3, 4, 80, 96, 3)
    out = rng.integers(0, 256, first.shape, dtype=np.uint8)  # stale contents are overwritten
    assert render(pos, bodies, grid, out=out) is out
    assert out.tobytes() == first.tobytes() == render(pos, bodies, grid).tobytes()
    traj = Trajectory(frame_times(4), pos, None, bodies)
    assert np.array_equal(render_trajectory(traj, grid), first)
    with pytest.raises(PhylawError, match="out must be"):
        render(pos, bodies, grid, out=out[:, :2])
    with pytest.raises(PhylawError, match="bodies.size"):
        render(pos[:, :, :1], bodies, grid)
