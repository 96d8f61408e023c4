"""Invariants of the causal (2+1)D autoencoder and its trainer: shapes, causality, the first
frame encoded alone, latent conditioning, a finite KL, learning, pickle-free checkpoints in the
format the DiT uses, exact resume, and the shared `--set` machinery."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import safetensors.torch
import torch

from phylaw import PhylawError
from phylaw.models.autoencoder import (
    AE_PRESETS,
    Autoencoder,
    AutoencoderConfig,
    Upsample,
    autoencoder_config,
    crop_frames,
    latent_condition,
    latent_num_frames,
    pad_frames,
)
from phylaw.train.ae import load_autoencoder, reconstruction_loss, train_autoencoder
from phylaw.train.ae_config import AETrainConfig, autoencoder_preset
from phylaw.train.checkpoint import latest_checkpoint, list_checkpoints, read_state, save_checkpoint
from phylaw.train.config_core import dict_to_config, override

TINY = AutoencoderConfig(channels=(8, 16, 16), temporal_down=(True, True), resolution_px=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions run several times faster on one thread when the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def perturb(model: torch.nn.Module, std: float = 0.05, seed: int = 1) -> None:
    """Add noise to every parameter, so that zero-initialised temporal convs carry signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


def video(b: int, t: int, hw: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, t, hw, hw, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def ball_video(b: int = 4, t: int = 5, hw: int = 16) -> torch.Tensor:
    """White frames with a red square moving one pixel per frame: [B, 3, T, H, W]."""
    x = torch.ones(b, 3, t, hw, hw)
    for i in range(b):
        for k in range(t):
            r, c = 3 + 2 * i, 2 + k + i
            x[i, 1:, k, r : r + 4, c : c + 4] = -1.0
    return x


@pytest.mark.parametrize("name", list(AE_PRESETS))
def test_preset_shapes(name):
    cfg = autoencoder_config(name)
    s, f = cfg.spatial_factor, cfg.temporal_factor
    assert f == 4 and s == {"ae-paper": 8, "ae-small": 4}[name] and cfg.latent_channels == 4
    ae = Autoencoder(cfg).eval()
    x = video(2, 1 + 2 * f, 2 * s)
    with torch.no_grad():
        recon, post = ae(x)
    assert post.mean.shape == (2, 4, 3, 2, 2) == post.logvar.shape
    assert recon.shape == x.shape
    assert cfg.latent_shape(32, 128, 128)[1] == 9


def test_frame_counts_pad_and_crop():
    assert [latent_num_frames(t, 4) for t in (1, 2, 5, 29, 32, 33)] == [1, 2, 2, 8, 9, 9]
    x = video(1, 32, 8)
    p = pad_frames(x, 4)
    assert p.shape[2] == 33 and torch.equal(p[:, :, 32], x[:, :, 31])
    assert torch.equal(crop_frames(p, 32), x)
    with pytest.raises(ValueError, match="pad_frames"):
        Autoencoder(TINY).encode(x)


def test_encoder_and_decoder_are_causal():
    torch.manual_seed(0)
    ae = Autoencoder(TINY).eval()
    perturb(ae)
    x = video(1, 17, 16)
    with torch.no_grad():
        z = ae.encode(x).mean  # [1, 4, 5, 4, 4]
        for t in (1, 4, 5, 9, 16):
            x2 = x.clone()
            x2[:, :, t] = -x2[:, :, t]
            z2 = ae.encode(x2).mean
            first = (t + 3) // 4  # the first latent whose frames reach t
            assert torch.equal(z2[:, :, :first], z[:, :, :first]), t
            assert not torch.allclose(z2[:, :, first:], z[:, :, first:]), t
        y = ae.decode(z)
        for j in (1, 2, 4):
            z2 = z.clone()
            z2[:, :, j] += 1.0
            y2 = ae.decode(z2)
            first = 4 * (j - 1) + 1  # the first frame latent j covers
            assert torch.equal(y2[:, :, :first], y[:, :, :first]), j
            assert not torch.allclose(y2[:, :, first:], y[:, :, first:]), j


def test_first_frame_is_encoded_alone():
    ae = Autoencoder(TINY).eval()
    perturb(ae)
    x = video(2, 9, 16)
    with torch.no_grad():
        z_video = ae.encode(x).mean
        z_frame = ae.encode(x[:, :, :1]).mean
        assert z_frame.shape[2] == 1
        torch.testing.assert_close(z_video[:, :, :1], z_frame)
        torch.testing.assert_close(ae.decode(z_video)[:, :, :1], ae.decode(z_frame))


def test_latent_condition_marks_only_fully_known_latents():
    ae = Autoencoder(TINY).eval()
    perturb(ae)
    x = video(2, 32, 16)
    with torch.no_grad():
        cond, mask = latent_condition(ae, x[:, :, :3], 32)
        other = x.clone()
        other[:, :, 3:] = 0.0  # unknown frames must not matter
        cond2, _ = latent_condition(ae, other[:, :, :3], 32)
    assert cond.shape == (2, 4, 9, 4, 4) and mask.shape == (2, 1, 9, 4, 4)
    assert mask[0, 0, :, 0, 0].tolist() == [1.0] + [0.0] * 8
    assert cond[:, :, :2].abs().sum() > 0 and cond[:, :, 2:].abs().sum() == 0
    assert torch.equal(cond, cond2)
    _, mask5 = latent_condition(ae, x[:, :, :5], 32)
    assert mask5[0, 0, :3, 0, 0].tolist() == [1.0, 1.0, 0.0]


def test_upsample_starts_as_nearest_in_time():
    up = Upsample(8, temporal=True)
    x = torch.randn(1, 3, 8, 4, 4)  # [B, T, C, H, W]
    y = up.temporal(x.flatten(0, 1)).unflatten(0, (1, 3))  # [1, 3, 16, 4, 4]
    torch.testing.assert_close(y[:, :, :8], x)
    torch.testing.assert_close(y[:, :, 8:], x)


def test_kl_is_finite_and_nonnegative():
    ae = Autoencoder(TINY)
    _, post = ae(video(2, 5, 16))
    kl = post.kl()
    assert kl.shape == post.mean.shape and torch.isfinite(kl).all() and (kl >= 0).all()
    loss, parts = reconstruction_loss(ae.decode(post.mean), video(2, 5, 16), kl, 10.0, 1e-6)
    assert torch.isfinite(loss) and parts["kl"] >= 0


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    ae = Autoencoder(TINY)
    opt = torch.optim.AdamW(ae.parameters(), lr=3e-3)
    x = ball_video()
    losses = []
    for _ in range(40):
        recon, post = ae(x)
        loss, _ = reconstruction_loss(recon, x, post.kl(), 10.0, 1e-6)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


FILES = ("ema.safetensors", "model.safetensors", "optimizer.safetensors")


def test_checkpoint_round_trip_in_the_shared_format_without_pickle(tmp_path):
    cfg = dataclasses.replace(autoencoder_preset("ae-small"), model=TINY)
    ae = Autoencoder(TINY)
    perturb(ae)
    ae.latent_std.fill_(2.0)
    opt = torch.optim.AdamW(ae.parameters())
    recon, post = ae(ball_video())
    reconstruction_loss(recon, ball_video(), post.kl(), 1.0, 1e-6)[0].backward()
    opt.step()
    ckpt = save_checkpoint(
        tmp_path, 1, model=ae, ema=ae, optimizer=opt, cfg=cfg, network=TINY, extra={"x": 0.5}
    )
    assert sorted(p.name for p in ckpt.iterdir()) == [*FILES, "state.json"]
    for name in FILES:
        path = ckpt / name
        header_len = int.from_bytes(path.read_bytes()[:8], "little")
        assert path.read_bytes()[8:9] == b"{" and header_len > 0  # safetensors, not a pickle
    state = read_state(ckpt, kind="autoencoder")
    assert state["kind"] == "autoencoder" and state["config"] == cfg and state["step"] == 1
    with pytest.raises(PhylawError, match="an autoencoder run .* not a DiT run"):
        read_state(ckpt, kind="dit")
    loaded = load_autoencoder(tmp_path)
    assert loaded.cfg == TINY and torch.equal(loaded.latent_std, ae.latent_std)
    x = ball_video()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x).mean, ae.eval().encode(x).mean)
    old = tmp_path / "old"  # the single-file format of earlier versions: one line, retrain
    old.mkdir()
    (old / "ae.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(PhylawError, match="earlier versions .*retrain") as e:
        load_autoencoder(old)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def ae_split(tmp_path_factory):
    from phylaw.data.build import build_split
    from phylaw.data.spaces import resolve_split

    data = tmp_path_factory.mktemp("ae-data") / "train"
    build_split(resolve_split("uniform", "train", "40", 0), data, progress=False)
    return data


def tiny_ae(data, *sets) -> AETrainConfig:
    """ae-small shrunk to 16 px and 3 levels, batch 2 of 9-frame clips, a checkpoint every 2."""
    base = ["model.channels=8,16,16", "model.resolution_px=16", "data.resolution_px=16"]
    base += [f"data.train={data}", "data.stats_videos=4", "run.batch_size=2", "run.steps=2"]
    base += ["run.ckpt_every=2", "run.keep_last=10", "run.sample_every=2", "run.threads=1"]
    return override(autoencoder_preset("ae-small"), base + list(sets))


def test_train_autoencoder_runs_and_resumes(ae_split, tmp_path):
    cfg = tiny_ae(ae_split)
    assert cfg.model.channels == (8, 16, 16) and cfg.run.steps == 2
    out = tmp_path / "run"
    train_autoencoder(cfg, out, progress=False)
    result = train_autoencoder(tiny_ae(ae_split, "run.steps=4"), out, progress=False)
    state = (latest_checkpoint(out) / "state.json").read_text()
    assert '"step": 4' in state and result.step == 4
    assert load_autoencoder(out).latent_std.min() > 0
    assert (out / "samples" / "step_0000004-train.gif").stat().st_size > 0
    assert {"loss", "rec", "kl", "centroid_px"} <= set(
        json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    )
    other = tiny_ae(ae_split, "model.channels=8,16,24")
    with pytest.raises(PhylawError, match="another config .*model.channels"):
        train_autoencoder(other, out, progress=False)


def test_autoencoder_resume_gives_the_same_weights_as_an_uninterrupted_run(ae_split, tmp_path):
    cfg = tiny_ae(ae_split, "run.steps=4", "optim.warmup_steps=1", "run.sample_every=0")
    ref = train_autoencoder(cfg, tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    shutil.copytree(tmp_path / "ref", run)
    for ckpt in list_checkpoints(run)[1:]:  # keep step 2 only
        shutil.rmtree(ckpt)
    result = train_autoencoder(cfg, run, progress=False)
    assert result.step == ref.step == 4
    for name in FILES:
        a = safetensors.torch.load_file(str(ref.checkpoint / name))
        b = safetensors.torch.load_file(str(result.checkpoint / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_overrides_are_type_checked():
    base = autoencoder_preset("ae-small")
    with pytest.raises(PhylawError, match="unknown key"):
        override(base, ["nope=1"])
    with pytest.raises(PhylawError, match="expected an integer"):
        override(base, ["run.batch_size=two"])
    with pytest.raises(PhylawError, match="valid: ae-paper, ae-small"):
        autoencoder_preset("ae-huge")
    assert override(base, ["model.temporal_down=false,true"]).model.temporal_down == (False, True)
    with pytest.raises(PhylawError, match="must be 1 \\+ 4k"):
        override(base, ["data.clip_frames=8"])


def test_cli_train_ae_dry_run(capsys):
    from phylaw.cli import main

    argv = ["train-ae", "--data", "d", "--out", "o", "--dry-run", "--set", "optim.lr=0.01"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert '"lr": 0.01' in out
    cfg = dict_to_config(AETrainConfig, json.loads(out[: out.index("# autoencoder")]))
    assert cfg.optim.lr == 0.01 and cfg.data.train.endswith("d") and cfg.preset == "ae-small"


def test_cli_train_ae_set_type_error_is_one_line(tmp_path, capsys):
    from phylaw.cli import main

    argv = ["train-ae", "--data", "d", "--out", str(tmp_path / "o"), "--set", "optim.lr=fast"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "phylaw: error: invalid value 'fast' for optim.lr: expected a number\n"
    assert not (tmp_path / "o").exists()


def test_train_ae_stage_runs_and_its_command_uses_the_shared_keys(ae_split, tmp_path):
    from phylaw.experiments import stages
    from phylaw.experiments.kinds import TrainAEStage

    sets = ("model.channels=8,16,16", "model.resolution_px=16", "data.stats_videos=2")
    sets += ("run.batch_size=2", "run.steps=1", "run.sample_every=0", "run.threads=1")
    stage = TrainAEStage("ae", resolution_px=16, max_minutes=5, sets=sets, train="data")
    done = stages.EXECUTORS["train-ae"](stage, {"train": ae_split}, tmp_path / "ae", False)
    assert done["step"] == 1 and load_autoencoder(tmp_path / "ae").cfg.channels == (8, 16, 16)
    cfg = read_state(latest_checkpoint(tmp_path / "ae"))["config"]
    assert cfg.data.resolution_px == 16 and cfg.run.max_minutes == 5.0
    line = stages.command(stage, {"train": ae_split}, tmp_path / "ae")
    assert "--set data.resolution_px=16 --set run.max_minutes=5" in line
