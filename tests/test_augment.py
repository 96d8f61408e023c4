"""The horizontal flip of Sec. 5.2 (Set-2): which videos flip, pixels and states together,
and a resumed run flips the same videos (same weights as an uninterrupted one)."""

import shutil

import numpy as np
import pytest
import safetensors.torch
import torch

from phylaw import PhylawError
from phylaw.data.augment import hflip_frames, hflip_mask, hflip_states
from phylaw.data.build import build_split
from phylaw.data.spaces import resolve_split
from phylaw.physics.state import discs
from phylaw.render import PixelGrid, render
from phylaw.train import get_preset, list_checkpoints, override, train
from phylaw.train.dit_task import DiffusionTask


def test_the_flip_mask_is_a_pure_function_of_seed_step_and_position():
    a = hflip_mask(3, 17, 4096, 0.5)
    assert np.array_equal(a, hflip_mask(3, 17, 4096, 0.5))
    assert np.array_equal(a[:100], hflip_mask(3, 17, 100, 0.5))  # position, not batch size
    assert not np.array_equal(a, hflip_mask(3, 18, 4096, 0.5))
    assert not np.array_equal(a, hflip_mask(4, 17, 4096, 0.5))
    assert abs(a.mean() - 0.5) < 0.03
    assert not hflip_mask(3, 17, 64, 0.0).any() and hflip_mask(3, 17, 64, 1.0).all()


def test_mirrored_frames_are_the_renderings_of_the_flipped_states():
    rng = np.random.default_rng(0)
    pos = rng.uniform(1.5, 8.5, (6, 4, 2, 2))
    vel = rng.uniform(-3, 3, (6, 4, 2, 2))
    bodies = discs(rng.uniform(0.5, 1.4, (6, 2)), (0, 1))
    mask = np.array([True, False, True, True, False, False])
    grid = PixelGrid.square(64)
    fpos, fvel = hflip_states(pos, vel, mask)
    assert np.allclose(fpos[mask, ..., 0], 10 - pos[mask, ..., 0])
    assert np.array_equal(fpos[~mask], pos[~mask]) and np.array_equal(fpos[..., 1], pos[..., 1])
    assert np.array_equal(fvel[mask, ..., 0], -vel[mask, ..., 0])
    assert np.array_equal(fvel[..., 1], vel[..., 1])
    got = hflip_frames(render(pos, bodies, grid), mask).astype(int)
    assert np.abs(got - render(fpos, bodies, grid).astype(int)).max() <= 1


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("flip-data")
    build_split(resolve_split("uniform", "train", "40", 0), root / "train", progress=False)
    return root / "train"


def tiny(split, *sets):
    base = [f"data.train={split}", "run.steps=6", "run.threads=1", "run.ckpt_every=2"]
    base += ["run.keep_last=10", "run.sample_every=0", "data.hflip=0.5"]
    return override(get_preset("cpu-tiny"), base + list(sets))


def test_the_task_flips_exactly_the_masked_videos(split):
    flip, plain = (DiffusionTask(tiny(split, f"data.hflip={p}")) for p in (1, 0))
    videos = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (4, 8, 16, 16, 3)))
    videos = videos.to(torch.uint8)
    d_flip, d_plain = flip.draw(5, torch.device("cpu")), plain.draw(5, torch.device("cpu"))
    assert torch.equal(d_flip[0], d_plain[0]) and torch.equal(d_flip[1], d_plain[1])  # same noise
    half = DiffusionTask(tiny(split))
    again = half.draw(5, torch.device("cpu"))[2]
    assert torch.equal(again, DiffusionTask(tiny(split)).draw(5, torch.device("cpu"))[2])
    assert torch.equal(again, torch.from_numpy(hflip_mask(0, 5, 4, 0.5)))
    x_flip = flip.batch(videos, d_flip, slice(0, 4))[0]
    x_none = plain.batch(videos, d_plain, slice(0, 4))[0]
    assert torch.equal(x_flip, x_none.flip(-1))
    x_half = half.batch(videos[1:3], half.draw(5, torch.device("cpu")), slice(1, 3))[0]
    for k, b in enumerate((1, 2)):
        want = x_none[b].flip(-1) if again[b] else x_none[b]
        assert torch.equal(x_half[k], want)
    with pytest.raises(PhylawError, match="hflip"):
        tiny(split, "data.hflip=1.5")


def test_a_resumed_flipping_run_matches_an_uninterrupted_one(split, tmp_path):
    whole = tmp_path / "whole"
    assert train(tiny(split), whole, progress=False).step == 6
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    for ckpt in list_checkpoints(run):
        if int(ckpt.name.split("_")[1]) > 2:
            shutil.rmtree(ckpt)
    assert train(tiny(split), run, progress=False).step == 6
    for f in ("model.safetensors", "ema.safetensors"):
        a = safetensors.torch.load_file(str(whole / "checkpoints/step_0000006" / f))
        b = safetensors.torch.load_file(str(run / "checkpoints/step_0000006" / f))
        assert all(torch.equal(a[k], b[k]) for k in a)
