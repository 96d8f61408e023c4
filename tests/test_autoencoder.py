"""Invariants of the causal (2+1)D autoencoder and its trainer: shapes, causality, the first
frame encoded alone, latent conditioning, a finite KL, learning, and pickle-free checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
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
from phylaw.train.ae import (
    ae_train_config,
    load_autoencoder,
    reconstruction_loss,
    save_checkpoint,
    train_autoencoder,
)

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


def test_checkpoint_round_trip_without_pickle(tmp_path):
    cfg = dataclasses.replace(ae_train_config(), model=TINY)
    ae = Autoencoder(TINY)
    perturb(ae)
    ae.latent_std.fill_(2.0)
    opt = torch.optim.AdamW(ae.parameters())
    recon, post = ae(ball_video())
    reconstruction_loss(recon, ball_video(), post.kl(), 1.0, 1e-6)[0].backward()
    opt.step()
    save_checkpoint(tmp_path, ae, opt, cfg, {"step": 1, "elapsed_s": 0.5})
    path = tmp_path / "ae.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.read_bytes()[8:9] == b"{" and header_len > 0  # safetensors, not a pickle
    loaded = load_autoencoder(tmp_path)
    assert loaded.cfg == TINY and torch.equal(loaded.latent_std, ae.latent_std)
    x = ball_video()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x).mean, ae.eval().encode(x).mean)


def test_train_autoencoder_runs_and_resumes(tmp_path):
    from phylaw.data.build import build_split
    from phylaw.data.spaces import resolve_split

    data = tmp_path / "data"
    build_split(resolve_split("uniform", "train", "40", 0), data, progress=False)
    sets = ["model.channels=8,16,16", "model.resolution_px=16", "batch_size=2", "max_steps=2"]
    cfg = ae_train_config("ae-small", sets)
    assert cfg.model.channels == (8, 16, 16) and cfg.max_steps == 2
    out = tmp_path / "run"
    train_autoencoder(data, out, cfg, progress=False)
    cfg4 = ae_train_config("ae-small", [*sets[:-1], "max_steps=4"])
    train_autoencoder(data, out, cfg4, progress=False)
    state = (out / "ae-state.json").read_text()
    assert '"step": 4' in state
    assert load_autoencoder(out).latent_std.min() > 0
    other = ae_train_config("ae-small", ["model.channels=8,16,24", "model.resolution_px=16"])
    with pytest.raises(PhylawError, match="different model"):
        train_autoencoder(data, out, other, progress=False)


def test_overrides_are_type_checked():
    with pytest.raises(PhylawError, match="unknown key"):
        ae_train_config("ae-small", ["nope=1"])
    with pytest.raises(PhylawError, match="expected int"):
        ae_train_config("ae-small", ["batch_size=two"])
    with pytest.raises(PhylawError, match="valid: ae-paper, ae-small"):
        ae_train_config("ae-huge")
    assert ae_train_config("ae-small", ["bf16=false"]).bf16 is False


def test_cli_train_ae_dry_run(capsys):
    from phylaw.cli import main

    assert main(["train-ae", "--data", "d", "--out", "o", "--dry-run", "--set", "lr=0.01"]) == 0
    assert '"lr": 0.01' in capsys.readouterr().out
