"""Plausibility flags: legitimate physics raises nothing, every injected defect raises its flag.

Invariants rather than golden numbers: clean ground truth (OOD sizes and speeds, balls leaving
through an edge, collisions, overlapping balls at a contact, the mp4 codec) is never flagged;
each defect of ``eval.defects`` is flagged by name; the shape descriptor is the identity for a
disc, ``diag(a/b, b/a)`` for an ellipse and ``pi/3`` for a square; defects edit exactly what they
say. ``benchmarks/bench_plausibility.py`` measures recall and false positives at scale.
"""

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.data.build import build_split
from phylaw.data.io.video import decode_video, encode_mp4
from phylaw.data.spaces import resolve_split
from phylaw.eval.flags.balls import (
    FLAGS,
    abnormal,
    parse_for_flags,
    plausibility_flags,
    plausibility_matrix,
    plausibility_scores,
)
from phylaw.eval.parse import parse_videos
from phylaw.physics.state import Bodies, Colour, Shape, discs, frame_times
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import PALETTE
from phylaw.render.raster import render
from phylaw.testing import defects

GRID = PixelGrid.square(128)
PPW = 12.8  # px per world unit at 128 px
T = 32
RED, BLUE = PALETTE[Colour.RED], PALETTE[Colour.BLUE]


def _flags(videos, colours, **kw):
    parsed = parse_for_flags(videos, colours, GRID)
    return plausibility_flags(parsed, videos, **kw)


def _one_ball(x0, y0, vx, vy, r, g=0.0):
    """pos [1, T, 1, 2] of a ball under gravity g (world units, s)."""
    t = frame_times(T)
    pos = np.stack([x0 + vx * t, y0 + vy * t - 0.5 * g * t**2], -1)
    return pos[None, :, None, :], np.array([[r]])


def _two_balls():
    """A red and a blue ball drifting apart, well inside the image: [1, T, H, W, 3]."""
    t = frame_times(T)
    x = np.stack([3.0 - 0.5 * t, 7.0 + 0.5 * t], -1)  # [T, 2]
    pos = np.stack([x, np.full_like(x, 5.0)], -1)[None]
    return render(pos, discs(np.array([[0.9, 0.9]]), (Colour.RED, Colour.BLUE)), GRID)


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    """Rendered eval-ood videos (OOD radii 0.3-2.0, speeds 0-6) of the three scenarios."""
    out = {}
    for scenario in ("uniform", "parabola", "collision"):
        root = tmp_path_factory.mktemp(scenario)
        store = build_split(resolve_split(scenario, "eval-ood", 16, 7), root, progress=False)
        traj = store.trajectory(np.arange(len(store)))
        colours = tuple(Colour(int(c)) for c in traj.bodies.colour[0])
        out[scenario] = (render(traj.pos, traj.bodies, GRID), colours)
    return out


# ------------------------------------------------------------------------ clean physics
def test_ground_truth_raises_no_flag(ground_truth):
    for scenario, (videos, colours) in ground_truth.items():
        flags = _flags(videos, colours)
        assert flags == [[]] * len(videos), (scenario, flags)


def test_ground_truth_through_the_codec_raises_no_flag(ground_truth):
    for scenario, (videos, colours) in ground_truth.items():
        coded = np.stack([decode_video(encode_mp4(v)) for v in videos[:4]])
        assert _flags(coded, colours) == [[]] * 4, scenario


def test_leaving_through_an_edge_is_legitimate():
    cases = [
        _one_ball(2.0, 5.0, 6.0, 0.0, 1.0),  # fast ball out through the right edge
        _one_ball(8.0, 5.0, -6.0, 0.0, 0.3),  # small fast ball out through the left edge
        _one_ball(5.0, 8.0, 1.0, 0.0, 1.4, g=2.5),  # parabola out through the bottom
        _one_ball(3.0, 7.0, 0.0, 3.0, 2.0),  # big ball out through the top
        _one_ball(5.0, 5.0, 0.0, 0.0, 0.3),  # at rest
    ]
    videos = np.concatenate([render(p, discs(r, (Colour.RED,)), GRID) for p, r in cases])
    assert _flags(videos, (Colour.RED,)) == [[]] * len(cases)


def test_overlapping_balls_at_a_contact_are_legitimate():
    """Blue drawn over red, overlapping by 40 % of red's radius for two frames, then bouncing:
    red's visible area and centroid change at the contact, which is not a defect."""
    t = np.arange(T) * 0.1
    tc = 1.5  # the balls overlap around t = tc, then move apart again
    d = 2.0 * np.abs(t - tc) + 1.2 + 0.9 - 0.4 * 0.9 * (np.abs(t - tc) < 0.15)
    x1, x2 = 5.0 - 0.4 * d, 5.0 + 0.6 * d
    pos = np.stack([np.stack([x1, x2], -1), np.full((T, 2), 5.0)], -1)[None]
    videos = render(pos, discs(np.array([[0.9, 1.2]]), (Colour.RED, Colour.BLUE)), GRID)
    assert _flags(videos, (Colour.RED, Colour.BLUE)) == [[]]


# ------------------------------------------------------------------------ defects
def test_each_defect_raises_its_flag():
    clean = _two_balls()
    s = 10
    cases = {
        "disappears": defects.disappear(clean, RED, s),
        "count_changes": defects.duplicate(clean, BLUE, np.array([0.0, -30.0]), s),
        "size_changes": defects.resize(clean, RED, 1.3, s),
        "shape_changes": defects.squash(clean, BLUE, 1.4, 0.3, s),
        "colour_changes": defects.recolour(clean, RED, defects.hue_rotate(RED, 30), s),
        "teleports": defects.teleport(clean, RED, np.array([8.0, 0.0]), s),
    }
    appear = defects.appear(clean, BLUE, np.array([64.0, 20.0]), 10.0, s)
    videos = np.concatenate([*cases.values(), appear, clean])
    flags = _flags(videos, (Colour.RED, Colour.BLUE))
    for (name, _), got in zip(cases.items(), flags, strict=False):
        assert name in got, (name, got)
    assert "count_changes" in flags[-2]  # a second blue ball
    assert flags[-1] == []


def test_a_colour_that_appears_from_nothing_is_flagged():
    clean = _two_balls()
    videos = defects.appear(clean, PALETTE[Colour.GREEN], np.array([64.0, 100.0]), 8.0, 12)
    flags = _flags(
        np.concatenate([videos, defects.appear(clean, RED, np.array([64, 100]), 8.0, 12)]),
        (Colour.RED, Colour.BLUE, Colour.GREEN),
    )
    assert "appears" in flags[0] and "count_changes" in flags[1]


def test_recolouring_to_another_scene_colour_is_a_colour_change():
    videos = defects.recolour(_two_balls(), RED, BLUE, 8)
    assert "colour_changes" in _flags(videos, (Colour.RED, Colour.BLUE))[0]


def test_condition_frames_are_not_judged():
    clean = _two_balls()
    videos = defects.resize(clean, RED, 1.5, 0, stop=3)  # only the ground-truth frames change
    parsed = parse_for_flags(videos, (Colour.RED, Colour.BLUE), GRID)
    scores = plausibility_scores(parsed, videos, num_cond_frames=3)
    assert (scores[:, :3] == 0).all()


def test_defects_edit_what_they_say():
    clean = _two_balls()
    before = clean.copy()
    parse = lambda v: parse_videos(v, (Colour.RED, Colour.BLUE), GRID)  # noqa: E731
    ref = parse(clean)
    gone = defects.disappear(clean, RED, 5)
    assert (clean == before).all()  # inputs are never changed
    assert not parse(gone).visible[0, 5:, 0].any() and parse(gone).visible[0, :5, 0].all()
    grown = parse(defects.resize(clean, RED, 1.2, 5))
    np.testing.assert_allclose(grown.area_px[0, 5:, 0] / ref.area_px[0, 5:, 0], 1.44, rtol=0.02)
    moved = parse(defects.teleport(clean, BLUE, np.array([6.4, -12.8]), 5))
    np.testing.assert_allclose(
        moved.pos[0, 5:, 1] - ref.pos[0, 5:, 1], [[0.5, 1.0]] * 27, atol=0.01
    )
    assert defects.hue_rotate(RED, 120) == (0, 255, 0)
    assert defects.hue_rotate(BLUE, 30) == (128, 0, 255)


# ------------------------------------------------------------------------ shape descriptor
def test_shape_descriptor_of_a_disc_an_ellipse_and_a_square():
    clean = _two_balls()
    ellipse = defects.squash(clean, RED, 1.5, 0.0, 0)
    square = render(
        np.array([[[[5.0, 5.0]]]]),
        Bodies(np.array([[1.0]]), np.array([[Shape.SQUARE]]), np.array([[Colour.RED]])),
        GRID,
    )
    for video, want in [
        (clean, (1.0, 1.0, 0.0)),
        (ellipse, (1.5, 1 / 1.5, 0.0)),
        (square, (np.pi / 3, np.pi / 3, 0.0)),
    ]:
        d = parse_videos(video[:, :1], (Colour.RED,), GRID).shape_descriptor()
        np.testing.assert_allclose(d[0, 0, 0], want, atol=0.04)


# ------------------------------------------------------------------------ API
def test_api_shapes_names_and_errors():
    clean = _two_balls()
    videos = np.concatenate([clean, defects.disappear(clean, BLUE, 9)])
    parsed = parse_for_flags(videos, (Colour.RED, Colour.BLUE), GRID)
    matrix = plausibility_matrix(parsed, videos)
    assert matrix.shape == (2, len(FLAGS)) and matrix.dtype == bool
    assert abnormal(matrix).tolist() == [False, True]
    assert plausibility_flags(parsed, videos) == [[], ["disappears"]]
    assert plausibility_flags(parsed) == [[], ["disappears"]]  # without pixels: no occlusion
    plain = parse_videos(videos, (Colour.RED, Colour.BLUE), GRID)  # no foreign-colour count
    assert plausibility_flags(plain, videos, expected_objects=[1, 1])[1] == ["disappears"]
    with pytest.raises(PhylawError, match="num_cond_frames"):
        plausibility_scores(parsed, num_cond_frames=T)
    with pytest.raises(PhylawError, match="do not match"):
        plausibility_scores(parsed, videos[:1])
