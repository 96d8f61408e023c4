"""Scene flags: clean combinatorial scenes raise nothing, every injected defect raises a flag.

Invariants rather than golden numbers: soft membership recovers the coverage of blended pixels;
principal moments are those of a disc and a bar; the minimax explanation accounts for every
unit; clean renders (contacts, piles, static chains) are never flagged; each defect of
``eval.scene_defects`` is flagged, by its own name where it is unambiguous; an identity edit
through the defects' rasteriser is not a defect. ``benchmarks/bench_scene_flags.py`` measures
recall and false positives at scale.
"""

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.eval.flags.scene_blobs import Blobs, memberships, principal, scene_blobs
from phylaw.eval.flags.scenes import (
    SCENE_FLAGS,
    SceneTolerances,
    Units,
    explain,
    flag_evidence,
    scene_flag_matrix,
    scene_flag_scores,
    scene_flags,
    scene_start,
)
from phylaw.physics.scenes import Kind, scene_record, simulate_scenes
from phylaw.physics.scenes.kinds import to_world
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.palette import BACKGROUND, PALETTE
from phylaw.render.shapes import render_scenes
from phylaw.testing import scene_defects as sd

GRID = PixelGrid.square(128)
GRAY, BLACK, RED = (
    np.asarray(PALETTE[c], float) for c in (Colour.GRAY, Colour.BLACK, Colour.PHYRE_RED)
)
WHITE = np.asarray(BACKGROUND, float)


def draw(pos, angle, kind, dims, grid, **kw):
    """``render_scenes`` of raw arrays: the record built by ``scene_record``."""
    from phylaw.physics.scenes import scene_record as record

    return render_scenes(record(np.zeros(np.shape(pos)[1]), pos, angle, kind, dims), grid, **kw)


@pytest.fixture(scope="module")
def scenes():
    """Six simulated scenes (all eight kinds, piles, static chains) and their 128 px videos."""
    ids = np.array([[t, 4, 0] for t in (10005, 10016, 10024, 10053, 10060, 10066)])
    arrays, valid = simulate_scenes(ids, seed=3)
    assert valid.all()
    traj = scene_record(
        np.arange(32.0), arrays["pos"], arrays["angle"], arrays["kind"], arrays["dims"]
    )
    return traj, render_scenes(traj, GRID)


# ---------------------------------------------------------------- measurements
def test_memberships_unmix_blends_of_two_and_three_colours():
    mixes = np.array(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.4, 0, 0], [0, 0.3, 0], [0.5, 0.5, 0], [0.3, 0, 0.5]]
    )  # weights of gray, black, red; the rest white
    rgb = WHITE + mixes @ (np.stack([GRAY, BLACK, RED]) - WHITE)
    frames = np.rint(rgb).astype(np.uint8)[None, None]  # [1, 1, 7, 3]
    weights, resid = memberships(frames)
    np.testing.assert_allclose(weights[:, 0, 0].T, mixes, atol=0.03)
    assert resid.max() < 1.0
    blue = np.array([[[[0, 0, 255]]]], dtype=np.uint8)
    assert memberships(blue)[1].max() > 100  # no blend of the scene's colours


def test_principal_moments_of_a_disc_and_a_bar():
    r_px, length_px, thick_px = 20.0, 80.0, 8.0
    to_w = to_world(512 / 128)  # world units per px at 128 px
    kind = np.array([[Kind.DYNAMIC_BALL_1, Kind.DYNAMIC_BAR]])
    dims = np.array([[[r_px * to_w, 0, 0, 0], [length_px * to_w, thick_px * to_w, 0, 0]]])
    pos = np.array([[[[3.0, 5.0], [7.0, 5.0]]]])
    video = draw(pos, np.array([[[0.0, 0.7]]]), kind, dims, GRID)
    blobs, _ = scene_blobs(video[0])
    lam = principal(blobs[0].raw[0, :2])  # the two gray blobs, largest first
    np.testing.assert_allclose(
        blobs[0].area[0, :2], [np.pi * r_px**2, length_px * thick_px], rtol=0.01
    )
    np.testing.assert_allclose(lam[0], [r_px**2 / 4] * 2, rtol=0.02)
    np.testing.assert_allclose(lam[1], [length_px**2 / 12, thick_px**2 / 12], rtol=0.05)


def test_explanation_accounts_for_every_unit():
    units = Units(
        np.array([100.0, 50.0, 30.0]), np.full(3, 20.0), np.ones((3, 2)), np.zeros((0, 8, 8), bool)
    )
    raw = np.zeros((3, 4, 6))
    raw[0, :3, 0] = [100, 50, 30]  # every unit alone
    raw[1, :2, 0] = [130, 50]  # two merged
    raw[2, :2, 0] = [100, 50]  # one missing
    for f in range(3):  # a disc-like second moment matching the units' extents
        raw[f, :, 3] = raw[f, :, 4] = raw[f, :, 0]
    touch = np.zeros((3, 4), dtype=bool)
    blobs = Blobs(raw, np.zeros((3, 4)), touch, np.zeros((3, 4, 0), bool), np.array([3, 2, 2]))
    ex = explain(blobs, units, SceneTolerances())
    assert ex.score[0] < 0.2 and ex.score[1] < 0.2 and ex.score[2] > 5
    assert ex.assign[0, :3].tolist() == [1, 2, 4] and ex.assign[1, 0] == 0b101
    evidence, again = flag_evidence(blobs, units, SceneTolerances())
    np.testing.assert_array_equal(again.score, ex.score)
    assert evidence[2, SCENE_FLAGS.index("vanishes")] > 5  # missing, or lost from a merged blob
    assert evidence[:2].max() < 0.2


# ---------------------------------------------------------------- flags
def test_clean_scenes_raise_no_flag(scenes):
    traj, videos = scenes
    start = scene_start(traj)
    assert scene_flags(videos, start) == [[] for _ in range(traj.batch_size)]
    low = render_scenes(traj, PixelGrid.square(64))
    assert not scene_flag_matrix(low, start).any()


def _placements(traj, kinds, n=3, min_radius=0.3):
    """Up to n (scene, body, start) with a body of ``kinds`` clear of bodies of its colour
    (``scene_defects.clearance``) at the start and the next frame; red balls of at least
    ``min_radius`` world units only."""
    out = []
    for b in range(traj.batch_size):
        one = traj[b : b + 1]
        for i in np.flatnonzero(np.isin(traj.kind[b], kinds)):
            if traj.kind[b, i] == Kind.RED_BALL and traj.dims[b, i, 0] < min_radius:
                continue
            t = 4 + 5 * len(out)
            if min(sd.clearance(one, int(i), t), sd.clearance(one, int(i), t + 1)) > 0.3:
                out.append((b, int(i), t))
                break
        if len(out) == n:
            break
    assert len(out) == n, f"only {len(out)} clear bodies of kinds {kinds}"
    rows, body, start = (np.array(x) for x in zip(*out, strict=True))
    return rows, body, start


@pytest.mark.parametrize(
    ("defect", "kinds", "flag"),
    [
        ("vanish", [Kind.DYNAMIC_JAR, Kind.STATIC_BAR, Kind.RED_BALL], "vanishes"),
        ("duplicate", [Kind.RED_BALL, Kind.DYNAMIC_BALL_1], "duplicates"),
        ("resize", [Kind.DYNAMIC_BALL_1, Kind.DYNAMIC_BALL_2, Kind.RED_BALL], "resizes"),
        ("squash", [Kind.DYNAMIC_BALL_1, Kind.DYNAMIC_BALL_2, Kind.RED_BALL], "deforms"),
        ("break_apart", [Kind.DYNAMIC_BAR, Kind.DYNAMIC_JAR, Kind.RED_BALL], "breaks"),
        ("recolour", [Kind.RED_BALL], "recolours"),
    ],
)
def test_each_defect_is_flagged(scenes, defect, kinds, flag):
    traj, videos = scenes
    rows, body, start = _placements(traj, kinds)
    sub, n = traj[rows], len(rows)
    if defect == "duplicate":
        offsets = [[-1.5, 1.0], [1.5, 1.0], [0.0, 1.8], [-1.5, -0.5], [1.5, -0.5], [0.0, -1.8]]
        pick = []
        for k in range(n):
            clear = [
                o
                for o in offsets
                if sd.copy_is_clear(sub[k : k + 1], body[k], start[k], np.array(o))
            ]
            pick.append(clear[0])
    extra = {
        "vanish": (),
        "duplicate": (np.array(pick) if defect == "duplicate" else None,),
        "resize": (np.array([1.3, 1 / 1.3, 1.3]),),
        "squash": (np.full(n, 1.4), np.array([0.0, np.pi / 2, 0.0])),
        "break_apart": (np.full(n, 0.3), np.zeros(n)),
        "recolour": (np.tile(PALETTE[Colour.BLUE], (n, 1)),),
    }[defect]
    edited = sd.SCENE_DEFECTS[defect](sub, body, start, *extra, GRID)
    before = np.arange(32)[None, :] < start[:, None]
    assert (edited[before] == videos[rows][before]).all()  # untouched before the defect
    assert not (edited[~before] == videos[rows][~before]).all()
    scores = scene_flag_scores(edited, scene_start(sub))
    named = scores[..., SCENE_FLAGS.index(flag)].max(1)
    assert (named > 1).all(), (defect, rows, body, named)


def test_penetration_is_flagged(scenes):
    traj, _ = scenes
    found = 0
    for b in range(traj.batch_size):
        one = traj[b : b + 1]
        red = int(np.flatnonzero(traj.kind[b] == Kind.RED_BALL)[0])
        if traj.dims[b, red, 0] < 0.3:
            continue
        for j in np.flatnonzero((traj.kind[b] >= 0) & (traj.kind[b] != Kind.RED_BALL)):
            shift = sd.penetration_shift(one, red, int(j), 5, 0.5)
            if shift is None:
                continue
            video = sd.penetrate(one, [red], [int(j)], [5], shift[None], GRID)
            flags = scene_flags(video, scene_start(one))[0]
            assert "penetrates" in flags, flags
            found += 1
            break
    assert found >= 2


def test_identity_edits_through_the_rasteriser_are_clean(scenes):
    traj, videos = scenes
    rows = np.arange(3)
    body = np.array([int(np.flatnonzero(traj.kind[b] == Kind.RED_BALL)[0]) for b in rows])
    start = np.full(3, 5)
    same = sd.squash(traj[rows], body, start, np.ones(3), np.zeros(3), GRID)
    assert np.abs(same.astype(int) - videos[rows]).max() <= 40  # edge profiles differ
    assert not scene_flag_matrix(same, scene_start(traj[rows])).any()
    moved = sd.break_apart(traj[rows], body, start, np.zeros(3), np.zeros(3), GRID)
    assert not scene_flag_matrix(moved, scene_start(traj[rows])).any()


def test_input_errors(scenes):
    traj, videos = scenes
    start = scene_start(traj)
    with pytest.raises(PhylawError, match="uint8"):
        scene_flag_scores(videos.astype(np.float32), start)
    with pytest.raises(PhylawError, match="scenes"):
        scene_flag_scores(videos[:2], start)
    with pytest.raises(PhylawError, match="num_cond_frames"):
        scene_flag_scores(videos, start, num_cond_frames=32)
