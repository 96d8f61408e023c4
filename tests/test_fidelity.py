"""Fidelity metrics: PSNR/SSIM against closed forms and an independent numpy SSIM, LPIPS and I3D
loading from weights the test writes, and FVD of a set against itself ~ 0."""

from __future__ import annotations

import functools
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from phylaw import PhylawError
from phylaw.eval.metrics import fidelity as fid
from phylaw.eval.metrics.nets.i3d import I3D, I3D_ENV, i3d_preprocess
from phylaw.eval.metrics.nets.lpips import LPIPS, LPIPS_ENV
from phylaw.eval.metrics.nets.weights import merge_lpips_weights, to_safetensors


def _videos(seed: int, shape=(2, 4, 16, 20, 3)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


# --------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_known_values():
    ref = np.full((2, 3, 8, 8, 3), 0.5)
    assert np.allclose(fid.psnr(ref + 0.1, ref), 20.0)  # MSE 0.01 -> 20 dB
    assert np.allclose(fid.psnr(ref + 0.01, ref), 40.0)
    assert np.all(fid.psnr(ref, ref) == fid.PSNR_CAP_DB)  # MSE < 1e-10 -> 100
    u8 = np.random.default_rng(0).integers(0, 256, (1, 2, 8, 8, 3), dtype=np.uint8)
    assert np.allclose(
        fid.psnr(u8, u8[..., ::-1].copy()), fid.psnr(u8 / 255.0, u8[..., ::-1] / 255)
    )


def _ssim_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Independent SSIM of one [H, W, 3] pair: explicit 11x11 windows, mean over channels."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    out = []
    for c in range(3):
        px, py = sliding_window_view(x[..., c], (11, 11)), sliding_window_view(y[..., c], (11, 11))
        mx, my = (px * w).sum((-1, -2)), (py * w).sum((-1, -2))
        vx = (px**2 * w).sum((-1, -2)) - mx**2
        vy = (py**2 * w).sum((-1, -2)) - my**2
        cxy = (px * py * w).sum((-1, -2)) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        out.append(s.mean())
    return float(np.mean(out))


def test_ssim_matches_independent_numpy():
    a = _videos(1)
    b = np.clip(a + 0.2 * _videos(2) - 0.1, 0, 1)
    got = fid.ssim(a, b)
    assert got.shape == (2, 4)
    want = np.array([[_ssim_numpy(a[i, t], b[i, t]) for t in range(4)] for i in range(2)])
    assert np.allclose(got, want, atol=1e-12)
    assert np.allclose(fid.ssim(torch.from_numpy(a).float(), b), want, atol=1e-6)  # torch in


def test_ssim_known_values():
    a = _videos(3)
    assert np.allclose(fid.ssim(a, a), 1.0)
    c1, c2 = 0.3, 0.6  # constant frames: variance 0, SSIM = (2 c1 c2 + C1) / (c1^2 + c2^2 + C1)
    x, y = np.full((1, 1, 12, 12, 3), c1), np.full((1, 1, 12, 12, 3), c2)
    want = (2 * c1 * c2 + fid.SSIM_C1) / (c1**2 + c2**2 + fid.SSIM_C1)
    assert np.allclose(fid.ssim(x, y), want)


def test_frame_range_mean():
    v = np.arange(12.0).reshape(2, 6)
    assert np.allclose(fid.frame_range_mean(v, 3), [4.0, 10.0])
    with pytest.raises(PhylawError):
        fid.frame_range_mean(v, 6)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 16, 16, 3)),  # missing batch axis
        np.zeros((1, 4, 16, 16, 4)),  # not RGB
        np.full((1, 2, 16, 16, 3), np.nan),
        np.full((1, 2, 16, 16, 3), 255.0),  # float not in [0, 1]
        np.zeros((1, 2, 16, 16, 3), dtype=np.int32),
        [[0.0]],
    ],
)
def test_bad_videos_raise(bad):
    with pytest.raises(PhylawError):
        fid.psnr(bad, bad)


def test_shape_mismatch_raises():
    with pytest.raises(PhylawError, match="differ in shape"):
        fid.ssim(_videos(0), _videos(0, (2, 3, 16, 20, 3)))


# --------------------------------------------------------------------------- LPIPS


def _random_lpips(path: Path) -> LPIPS:
    torch.manual_seed(0)
    net = LPIPS()
    for i in range(5):  # lpips heads are non-negative
        getattr(net, f"lin{i}").model[1].weight.data.abs_()
    to_safetensors(net.state_dict(), path)
    return net


def test_lpips_load_and_distance(tmp_path, monkeypatch):
    net = _random_lpips(tmp_path / "lpips.safetensors")
    monkeypatch.setenv(LPIPS_ENV, str(tmp_path / "lpips.safetensors"))
    loaded = LPIPS.from_file()  # from the environment variable
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    a, b = _videos(4, (2, 2, 32, 32, 3)), _videos(5, (2, 2, 32, 32, 3))
    d = fid.lpips_distance(a, b, loaded)
    assert d.shape == (2, 2) and np.all(d > 0)
    assert np.allclose(fid.lpips_distance(a, a, loaded), 0.0, atol=1e-6)
    d_mean = fid.lpips_distance(a, b, loaded, upsample=False)  # lpips' default reduction
    assert np.allclose(d, d_mean, rtol=0.1)
    with pytest.raises(PhylawError, match="31x31"):
        fid.lpips_distance(a[:, :, :30], b[:, :, :30], loaded)


def test_lpips_merge_helper_and_torch_files(tmp_path):
    net = _random_lpips(tmp_path / "ref.safetensors")
    sd = net.state_dict()
    alex = {k: v for k, v in sd.items() if k.startswith("features.")}
    alex["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision's file also has the classifier
    torch.save(alex, tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in sd.items() if k.startswith("lin")}, tmp_path / "alex.pth")
    out = merge_lpips_weights(tmp_path / "alexnet.pth", tmp_path / "alex.pth", tmp_path / "m.st")
    merged = LPIPS.from_file(out)
    torch.save(sd, tmp_path / "full.pt")  # a plain torch state dict loads too
    from_pt = LPIPS.from_file(tmp_path / "full.pt")
    for k, v in sd.items():
        assert torch.equal(v, merged.state_dict()[k]) and torch.equal(v, from_pt.state_dict()[k])


def test_lpips_missing_or_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(LPIPS_ENV, raising=False)
    with pytest.raises(PhylawError, match=LPIPS_ENV):
        LPIPS.from_file()
    with pytest.raises(PhylawError, match="merge_lpips_weights"):
        LPIPS.from_file(tmp_path / "nope.safetensors")
    sd = LPIPS().state_dict()
    to_safetensors({k: v for k, v in sd.items() if k != "lin0.model.1.weight"}, tmp_path / "a")
    with pytest.raises(PhylawError, match="missing"):
        LPIPS.from_file(tmp_path / "a")
    to_safetensors({**sd, "lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "b")
    with pytest.raises(PhylawError, match="shape"):
        LPIPS.from_file(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"not weights")
    with pytest.raises(PhylawError, match="cannot read"):
        LPIPS.from_file(tmp_path / "c")


# --------------------------------------------------------------------------- I3D and FVD


def test_frechet_distance_known_values():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
    # |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2 for commuting covariances
    assert math.isclose(fid.frechet_distance(mu1, s1, mu2, s2), 9.0 + 1.0 + 1.0)
    f = np.random.default_rng(0).normal(size=(50, 8))
    assert abs(fid.fvd(f, f)) < 1e-8
    assert math.isclose(fid.fvd(f, f + 2.0), 4.0 * 8, rel_tol=1e-6)  # a pure shift
    with pytest.raises(PhylawError):
        fid.fvd(f[:1], f)


def test_i3d_preprocess_reference_layout():
    v = torch.rand(1, 9, 224, 224, 3)
    x = i3d_preprocess(v)
    assert x.shape == (1, 3, 9, 224, 224)
    assert torch.allclose(x, v.permute(0, 4, 1, 2, 3) * 2 - 1, atol=1e-6)  # 224 px: no resize
    assert i3d_preprocess(torch.rand(2, 9, 20, 40, 3), size=32).shape == (2, 3, 9, 32, 32)


def _random_i3d() -> I3D:
    """Random I3D whose features vary with the input (He init keeps activations alive)."""
    torch.manual_seed(0)
    net = I3D()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net


def test_i3d_loading_and_fvd_self_is_zero(tmp_path, monkeypatch):
    net = _random_i3d()
    torch.save(net.state_dict(), tmp_path / "rgb.pt")  # as piergiaj's rgb_imagenet.pt
    monkeypatch.setenv(I3D_ENV, str(tmp_path / "rgb.pt"))
    loaded = I3D.from_file()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in net.state_dict().items())
    rng = np.random.default_rng(6)
    a = (rng.random((4, 10, 24, 24, 3)) * 255).astype(np.uint8)
    b = (rng.random((4, 10, 24, 24, 3)) * 128).astype(np.uint8)  # darker set
    fa = fid.i3d_features(a, loaded, batch_size=3, size=32)
    fb = fid.i3d_features(b, loaded, batch_size=3, size=32)
    assert fa.shape == (4, 400) and np.all(np.isfinite(fa))
    scale = float(np.var(fa, axis=0).sum())
    assert scale > 1e-3  # the features do depend on the video
    assert abs(fid.fvd(fa, fa)) < 1e-4 * scale
    assert fid.fvd(fa, fb) > 1e3 * abs(fid.fvd(fa, fa))
    with pytest.raises(PhylawError, match="9 frames"):
        fid.i3d_features(a[:, :8], loaded)


def test_i3d_refuses_torchscript_and_wrong_keys(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "ts.pt", "w") as z:  # the layout of a TorchScript archive
        for name in ("data.pkl", "code/__torch__/m.py", "constants.pkl", "version"):
            z.writestr(f"ts/{name}", b"")
    with pytest.raises(PhylawError, match="TorchScript"):
        I3D.from_file(tmp_path / "ts.pt")
    to_safetensors(LPIPS().state_dict(), tmp_path / "lp.st")
    with pytest.raises(PhylawError, match="do not fit"):
        I3D.from_file(tmp_path / "lp.st")
    monkeypatch.delenv(I3D_ENV, raising=False)
    with pytest.raises(PhylawError, match="rgb_imagenet"):
        I3D.from_file()


def test_fidelity_summary(monkeypatch):
    small = functools.partial(fid.i3d_features, size=32)  # 224 px takes seconds on CPU
    monkeypatch.setattr(fid, "i3d_features", small)
    gen = (_videos(7, (2, 10, 32, 32, 3)) * 255).astype(np.uint8)
    summary = fid.fidelity_summary(gen, gen, cond_frames=3, lpips_net=LPIPS(), i3d=_random_i3d())
    assert np.allclose(summary.ssim, 1.0) and np.all(summary.psnr == fid.PSNR_CAP_DB)
    assert summary.lpips is not None and np.allclose(summary.lpips, 0.0, atol=1e-6)
    assert summary.fvd is not None and abs(summary.fvd) < 1e-4
    ref = np.clip(gen.astype(int) + 10, 0, 255).astype(np.uint8)
    plain = fid.fidelity_summary(gen, ref, cond_frames=3)
    assert plain.lpips is None and plain.fvd is None and np.all(plain.psnr < 40)
    assert np.allclose(plain.psnr, fid.frame_range_mean(fid.psnr(gen, ref), 3))
    with pytest.raises(PhylawError, match="cond_frames"):
        fid.fidelity_summary(gen, ref, cond_frames=10)
