"""Baselines: each produces what it claims, from the condition frames only."""

import numpy as np
import pytest

from phylaw import PhylawError
from phylaw.baselines import BASELINES, BaselineContext, get_baseline, nearest_rows
from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.eval.parse import parse_videos
from phylaw.physics.state import Colour


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("bl")
    ev = build_split(resolve_split("uniform", "eval-id", "24", 0), root / "ev", progress=False)
    tr = build_split(resolve_split("uniform", "train", "600", 0), root / "tr", progress=False)
    return ev, tr


def parsed_vx(ctx, video):
    p = parse_videos(video, (Colour.RED,), ctx.grid)
    return np.diff(p.pos[:, :, 0, 0], axis=1) / 0.1, p


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_keeps_the_condition_frames(stores, name):
    ev, tr = stores
    ctx = BaselineContext(ev, 64, 3, tr)
    rows = np.arange(6)
    video = get_baseline(name)(ctx, rows)
    truth = BASELINES["oracle"](ctx, rows)
    assert video.shape == truth.shape == (6, 32, 64, 64, 3) and video.dtype == np.uint8
    assert np.array_equal(video[:, :3], truth[:, :3])


def test_copy_last_freezes_and_constant_velocity_follows_uniform_motion(stores):
    ev, tr = stores
    ctx = BaselineContext(ev, 128, 3, tr)
    rows = np.arange(len(ev))
    v_true = ev.get(rows).params[:, 1]
    frozen, _ = parsed_vx(ctx, BASELINES["copy-last"](ctx, rows))
    assert np.abs(frozen[:, 3:]).max() == 0
    vx, p = parsed_vx(ctx, BASELINES["constant-velocity"](ctx, rows))
    inside = p.in_view[:, 1:, 0] & p.in_view[:, :-1, 0]
    err = np.abs(vx - v_true[:, None])[:, 3:][inside[:, 3:]]
    assert np.median(err) < 0.05  # uniform motion is exactly what this baseline assumes


def test_nearest_case_finds_the_identical_training_video(stores):
    _, tr = stores
    ctx = BaselineContext(tr, 64, 3, tr, train_chunk=256)
    rows = np.array([0, 17, 333, 599])
    match, dist = nearest_rows(ctx, rows)
    assert np.array_equal(match, rows) and np.allclose(dist, 0, atol=1e-3)
    assert np.array_equal(BASELINES["nearest-case"](ctx, rows), BASELINES["oracle"](ctx, rows))


def test_unknown_baseline_and_missing_training_split(stores):
    ev, _ = stores
    with pytest.raises(PhylawError, match="oracle, copy-last"):
        get_baseline("linear")
    with pytest.raises(PhylawError, match="--train"):
        BASELINES["nearest-case"](BaselineContext(ev, 32), np.arange(2))
