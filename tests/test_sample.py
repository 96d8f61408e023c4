"""Sampling a split with a trained run: the export layout, exact condition frames, resumable,
independent of the batch size, nearest upsampling that keeps centroids, one-line errors."""

import json

import numpy as np
import pytest
import torch

from phylaw import PhylawError
from phylaw.data.build import build_split
from phylaw.data.dataset import VideoDataset
from phylaw.data.io.video import decode_video
from phylaw.data.spaces import resolve_split
from phylaw.data.store import open_store
from phylaw.sample import sample_split
from phylaw.train import get_preset, override, train
from phylaw.train.generate import Continuation, resize_video


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and the test machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    build_split(resolve_split("uniform", "train", "24", 0), root / "train", progress=False)
    build_split(resolve_split("uniform", "eval-ood", "6", 0), root / "ood", progress=False)
    cfg = override(
        get_preset("cpu-tiny"),
        [f"data.train={root / 'train'}", "run.steps=2", "run.sample_every=0", "run.threads=1"],
    )
    train(cfg, root / "run", progress=False)
    return root


def sample(setup, out, **kw):
    kw.setdefault("device", "cpu")
    return sample_split(setup / "run", setup / "ood", out, progress=False, **kw)


def test_npz_holds_generated_videos_beside_their_records(setup, tmp_path):
    out = sample(setup, tmp_path / "s", batch_size=4)
    z = np.load(out / "videos.npz", allow_pickle=False)
    store = open_store(setup / "ood")
    states = store.get(slice(None))
    assert z["videos"].shape == (6, 8, 16, 16, 3) and z["videos"].dtype == np.uint8
    assert np.array_equal(z["index"], states.index)
    assert np.array_equal(z["pos"], states.pos[:, :8])
    assert np.array_equal(z["times"], store.times[:8])
    truth = VideoDataset(store, 16).render_rows(np.arange(6))["video"].numpy()
    assert np.array_equal(z["videos"][:, :3], truth[:, :3])  # the condition frames, exactly
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] and run["step"] == 2 and run["ema"] and run["sampler"] == "ddim"
    assert not (out / ".parts").exists()


def test_interrupted_sampling_resumes_to_the_same_bytes(setup, tmp_path, monkeypatch):
    clean = np.load(sample(setup, tmp_path / "clean", batch_size=2) / "videos.npz")["videos"]
    calls = {"n": 0}
    real = Continuation.__call__

    def flaky(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(Continuation, "__call__", flaky)
    with pytest.raises(KeyboardInterrupt):
        sample(setup, tmp_path / "s", batch_size=2)
    assert not (tmp_path / "s" / "videos.npz").exists()
    calls["n"] = 10
    sample(setup, tmp_path / "s", batch_size=2)
    assert calls["n"] == 12  # only the two unfinished batches were generated again
    assert np.array_equal(np.load(tmp_path / "s" / "videos.npz")["videos"], clean)


def test_samples_do_not_depend_on_the_batch_size(setup, tmp_path):
    a = np.load(sample(setup, tmp_path / "a", batch_size=1) / "videos.npz")["videos"]
    b = np.load(sample(setup, tmp_path / "b", batch_size=6) / "videos.npz")["videos"]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_mp4_at_twice_the_resolution(setup, tmp_path):
    out = sample(setup, tmp_path / "m", fmt="mp4", resolution=32, limit=2, steps=2)
    listing = json.loads((out / "videos.json").read_text())
    assert [v["id"] for v in listing["videos"]] == [0, 1]
    frames = decode_video(out / "0000001.mp4")
    assert frames.shape == (8, 32, 32, 3)
    z = sample(setup, tmp_path / "n", resolution=32, limit=2, steps=2)
    gen = np.load(z / "videos.npz")["videos"][:, 3:]
    assert np.array_equal(gen[:, :, ::2, ::2], gen[:, :, 1::2, 1::2])  # nearest 2x2 blocks


def test_nearest_upsampling_keeps_the_centroid():
    x = torch.zeros(1, 1, 1, 8, 8)
    x[..., 2, 5], x[..., 3, 5], x[..., 3, 6] = 1.0, 0.5, 0.25

    def centroid(v):
        h, w = v.shape[-2:]
        ys = (torch.arange(h) + 0.5) / h
        xs = (torch.arange(w) + 0.5) / w
        m = v[0, 0, 0]
        return float((m.sum(1) * ys).sum() / m.sum()), float((m.sum(0) * xs).sum() / m.sum())

    for size in (16, 32):
        assert centroid(resize_video(x, size)) == pytest.approx(centroid(x), abs=1e-6)
    down = resize_video(x, 4)  # area average: the mass (sum x pixel area) is kept
    assert down.shape[-1] == 4 and float(down.sum()) * 4 == pytest.approx(1.75)


def test_sample_errors_are_one_line(setup, tmp_path):
    sample(setup, tmp_path / "s", limit=1, steps=1)
    with pytest.raises(PhylawError, match=r"other settings \(steps\)"):
        sample(setup, tmp_path / "s", limit=1, steps=2)
    with pytest.raises(PhylawError, match="holds no checkpoint"):
        sample_split(tmp_path, setup / "ood", tmp_path / "x", progress=False)
    with pytest.raises(PhylawError, match="mp4 needs an even size"):
        sample(setup, tmp_path / "y", fmt="mp4", resolution=15)
    with pytest.raises(PhylawError, match="unknown sampler"):
        sample(setup, tmp_path / "y", sampler="euler")


def test_cli_sample(setup, tmp_path, capsys):
    from phylaw.cli import build_parser

    args = build_parser().parse_args(
        ["sample", "--run", str(setup / "run"), "--data", str(setup / "ood"), "--out",
         str(tmp_path / "c"), "--limit", "2", "--steps", "2", "--no-ema", "--quiet",
         "--device", "cpu"]
    )  # fmt: skip
    args.handler(args)
    assert "wrote" in capsys.readouterr().out
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert run["ema"] is False and run["count"] == 2
