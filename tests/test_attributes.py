"""What a generated video did (``eval.metrics.attributes``): shape classes from moment
invariants, shape-aware sizes, signed velocities and the dominant colour, on rendered videos
whose answer is known; and the fields ``phylaw eval`` writes for a study split."""

from dataclasses import replace

import numpy as np
import pytest

from phylaw.data.build import build_split
from phylaw.data.studies import study_split
from phylaw.eval.metrics.attributes import (
    AMBIGUOUS,
    NONE,
    generated_attributes,
    ring_j,
    shape_invariants,
)
from phylaw.eval.parse import parse_videos
from phylaw.eval.run import EvalConfig, evaluate
from phylaw.eval.sources import open_source
from phylaw.physics.state import Bodies, Colour, Shape, frame_times
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render

T = frame_times(12)
PALETTE = (Colour.RED, Colour.BLUE)


def scene(shape: Shape, n: int = 24, seed: int = 0, colour=Colour.RED, ratio: float = 0.5):
    """n balls of ``shape`` moving at random signed velocities: (pos [n, 12, 1, 2], bodies,
    velocity [n, 2])."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.7, 1.4, (n, 1))
    v = rng.uniform(-2.5, 2.5, (n, 2)) * [1, 0.3]
    start = rng.uniform(4, 6, (n, 2))
    pos = (start[:, None] + v[:, None] * (T - T[0])[None, :, None])[:, :, None]
    inner = ratio * r if shape == Shape.RING else np.zeros_like(r)
    bodies = Bodies(r, np.full((n, 1), int(shape)), np.full((n, 1), int(colour)), inner)
    return pos, bodies, v


def measure(videos, bodies, px, ratio=0.5, only=None, colours=None):
    grid = PixelGrid.square(px)
    parsed = parse_videos(videos, PALETTE, grid, moments_order=4)
    colours = bodies.colour if colours is None else colours
    return generated_attributes(parsed, colours, bodies.shape, T, 3, ratio, only)


@pytest.mark.parametrize("px", [32, 64, 128])
@pytest.mark.parametrize("shape", [Shape.DISC, Shape.SQUARE, Shape.RING])
def test_shapes_sizes_and_velocities_of_rendered_bodies(px, shape):
    pos, bodies, v = scene(shape, seed=px + int(shape))
    got = measure(render(pos, bodies, PixelGrid.square(px)), bodies, px)
    assert (got.shape[:, 0] == shape).all()
    assert (got.colour[:, 0] == Colour.RED).all() and np.allclose(got.colour_share, 1)
    tol = {32: 0.02, 64: 0.01, 128: 0.005}[px]
    assert np.abs(got.size[:, 0] - bodies.size[:, 0]).max() < tol  # radius, half side, outer r
    assert np.abs(got.vx[:, 0] - v[:, 0]).max() < 10 * tol and (got.frames == 9).all()
    assert np.abs(got.vy[:, 0] - v[:, 1]).max() < 10 * tol  # signed: leftward balls too


def test_invariants_approach_the_continuum_at_128_px():
    for shape, j_want, h_want in ((Shape.DISC, 1.0, 0.0), (Shape.SQUARE, np.pi / 3, 0.4286),
                                  (Shape.RING, ring_j(0.5), 0.0)):  # fmt: skip
        pos, bodies, _ = scene(shape, n=4)
        grid = PixelGrid.square(128)
        j, h4 = shape_invariants(parse_videos(render(pos, bodies, grid), PALETTE, grid,
                                              moments_order=4))  # fmt: skip
        assert np.nanmedian(j) == pytest.approx(j_want, abs=0.03)
        assert np.nanmedian(h4) == pytest.approx(h_want, abs=0.02)


def test_colour_switch_missing_ball_and_two_blobs():
    pos, bodies, v = scene(Shape.DISC, n=6)
    grid = PixelGrid.square(64)
    # conditioned red, generated blue after the condition frames: the blue column is followed
    red = render(pos, bodies, grid)
    blue = render(pos, replace(bodies, colour=np.full((6, 1), int(Colour.BLUE))), grid)
    switched = np.concatenate([red[:, :3], blue[:, 3:]], axis=1)
    got = measure(switched, bodies, 64)
    assert (got.colour[:, 0] == Colour.BLUE).all() and (got.shape[:, 0] == Shape.DISC).all()
    assert np.abs(got.vx[:, 0] - v[:, 0]).max() < 0.1
    # nothing after the condition frames: no colour, no shape, no velocity
    gone = red.copy()
    gone[:, 3:] = 255
    got = measure(gone, bodies, 64)
    assert (got.colour == NONE).all() and (got.shape == AMBIGUOUS).all()
    assert np.isnan(got.vx).all() and (got.frames == 0).all()
    # two red balls where one was given (a duplicate): not one shape
    two = np.zeros((6, 12, 2, 2))
    two[..., 0, :], two[..., 1, :] = (3.0, 5.0), (7.0, 5.0)
    pair = Bodies(np.full((6, 2), 0.8), np.zeros((6, 2), int), np.zeros((6, 2), int))
    got = measure(render(two, pair, grid), bodies, 64)
    assert (got.shape == AMBIGUOUS).all() and (got.colour == Colour.RED).all()


def test_a_body_too_small_for_the_moments_takes_the_splits_one_shape():
    pos, bodies, _ = scene(Shape.DISC, n=12)
    small = replace(bodies, size=np.full((12, 1), 0.5))  # 1.6 px at 32 px
    videos = render(pos, small, PixelGrid.square(32))
    disc_only = measure(videos, small, 32, only=np.array([int(Shape.DISC)]))
    assert (disc_only.shape == Shape.DISC).all()
    both = measure(videos, small, 32, only=np.array([-1]))  # the split has discs and squares
    assert ((both.shape == AMBIGUOUS) | (both.shape == Shape.DISC)).all()
    assert (both.shape == AMBIGUOUS).any()


def test_eval_records_what_each_video_of_a_study_split_did(tmp_path):
    spec = study_split("colour-ring", "eval", grid=(("r", 2), ("v", 3)))
    store = build_split(spec, tmp_path / "e", progress=False)
    truth = store.trajectory(np.arange(len(store)))
    grid = PixelGrid.square(32)
    videos = render(truth.pos, truth.bodies, grid)
    np.savez(tmp_path / "v.npz", videos=videos, index=store.column("index"))
    source = open_source(tmp_path / "v.npz", store.column("index"))
    result = evaluate(source, store, tmp_path / "out", EvalConfig(floor=False), progress=False)
    assert len(result.records) == 24
    for rec in result.records:
        assert rec["gen_shape"] == rec["given_shape"] and rec["gen_colour"] == rec["given_colour"]
        assert rec["gen_vx"] == pytest.approx(rec["given_vx"], abs=0.05)
        assert rec["gen_size"] == pytest.approx(rec["given_size"], abs=0.03)
        assert rec["level"] in store.levels and 10 <= rec["gen_frames"] <= 29
    assert {r["given_shape"] for r in result.records} == {"disc", "ring"}
    assert "gen_vx" in (tmp_path / "out" / "videos.jsonl").read_text()
