"""Video fidelity: PSNR, SSIM, LPIPS and FVD with the authors' settings (spec/reference.md 3.6).

Videos are [B, T, H, W, 3], channels last as the renderer writes them: uint8 in 0..255 or float in
[0, 1], numpy or torch. ``gen`` and ``ref`` are paired video by video and frame by frame.

* PSNR per frame: MSE over all pixels and channels on [0, 1], 20 log10(1 / sqrt(MSE)); **100 when
  MSE < 1e-10** (the authors' cap for identical frames).
* SSIM per frame: Gaussian window 11, sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, 'valid' filtering (5 px
  cropped per side, as OpenCV filter2D + crop), mean map per channel, averaged over the 3 channels.
* LPIPS per frame: v0.1 'alex' (:mod:`phylaw.eval.metrics.nets.lpips`), inputs mapped to [-1, 1].
* FVD over a set: I3D logits (:mod:`phylaw.eval.metrics.nets.i3d`) and the Frechet distance with
  ``scipy.linalg.sqrtm`` (real part) and unbiased covariances, as stylegan-v.

The authors report these per timestep over *all* frames (conditioning frames included) and FVD
for every prefix length 10..T; :func:`fidelity_summary` instead averages over generated frames.
Per-frame arrays are returned as numpy float64, so either report is one line.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from phylaw import PhylawError
from phylaw.eval.metrics.nets.i3d import I3D, i3d_preprocess
from phylaw.eval.metrics.nets.lpips import LPIPS

__all__ = [
    "as_video",
    "psnr",
    "ssim",
    "frame_range_mean",
    "lpips_distance",
    "i3d_features",
    "frechet_distance",
    "fvd",
    "fvd_per_prefix",
    "FidelitySummary",
    "fidelity_summary",
]

PSNR_CAP_DB = 100.0  # the authors' value for MSE < 1e-10 (identical frames)
SSIM_WINDOW, SSIM_SIGMA, SSIM_C1, SSIM_C2 = 11, 1.5, 0.01**2, 0.03**2
_CHUNK_BYTES = 2**28  # float64 working memory per chunk of frames for SSIM

# ------------------------------------------------------------------------------------------------
# Input checks and conversion
# ------------------------------------------------------------------------------------------------


def as_video(x: np.ndarray | torch.Tensor, name: str = "video") -> torch.Tensor:
    """Check a video batch and view it as a tensor (no copy, values unchanged).

    Args:
        x: [B, T, H, W, 3], uint8 in 0..255 or float in [0, 1], numpy or torch.
        name: the argument's name, for error messages.

    Returns:
        The same data as a torch tensor [B, T, H, W, 3] (shared memory where possible).

    Raises:
        PhylawError: wrong type, shape or dtype, NaN/inf, or float values outside [0, 1].
    """
    if isinstance(x, np.ndarray) and (x.dtype == np.uint8 or x.dtype.kind == "f"):
        with warnings.catch_warnings():  # read-only arrays: we never write into the view
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(x.astype(x.dtype.newbyteorder("="), copy=False))
    elif isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        t = None
    else:
        raise PhylawError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if t is None or not (t.dtype == torch.uint8 or t.is_floating_point()):
        raise PhylawError(f"{name} must be uint8 (0..255) or float in [0, 1], got {x.dtype}")
    if t.ndim != 5 or t.shape[-1] != 3:
        hint = " (add a batch axis: video[None])" if t.ndim == 4 else ""
        raise PhylawError(f"{name} must be [B, T, H, W, 3], got shape {tuple(t.shape)}{hint}")
    if t.numel() == 0:
        raise PhylawError(f"{name} is empty: shape {tuple(t.shape)}")
    if t.is_floating_point():
        lo, hi = (float(v) for v in torch.aminmax(t))
        if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or math.isinf(hi):
            raise PhylawError(f"{name} contains NaN or inf values")
        if lo < 0.0 or hi > 1.0:
            raise PhylawError(
                f"{name} float values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]: "
                "clip them, or divide 0..255 data by 255"
            )
    return t


def _pair(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Check two video batches of one shape; returns both as tensors [B, T, H, W, 3]."""
    ta, tb = as_video(a, "gen"), as_video(b, "ref")
    if ta.shape != tb.shape:
        raise PhylawError(f"gen and ref differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    return ta, tb


def _unit(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 0..255 or float [0, 1] -> float ``dtype`` in [0, 1]."""
    return x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)


def _frame_chunks(
    a: torch.Tensor, b: torch.Tensor, frames: int, dtype: torch.dtype = torch.float64
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Walk two [B, T, H, W, 3] batches a few videos at a time, as [n, H, W, 3] float frames.

    ``frames`` bounds the frames per chunk (at least one video per chunk).
    """
    step = max(1, frames // a.shape[1])
    for i in range(0, a.shape[0], step):
        x, y = a[i : i + step], b[i : i + step]
        yield _unit(x.reshape(-1, *x.shape[2:]), dtype), _unit(y.reshape(-1, *y.shape[2:]), dtype)


def _frames_per_chunk(a: torch.Tensor) -> int:
    """Frames whose float64 working maps (about 16 per value) fit in ``_CHUNK_BYTES``."""
    return max(1, _CHUNK_BYTES // (a.shape[2] * a.shape[3] * 3 * 8 * 16))


# ------------------------------------------------------------------------------------------------
# PSNR and SSIM
# ------------------------------------------------------------------------------------------------


def psnr(gen: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> np.ndarray:
    """Peak signal-to-noise ratio per frame, in dB (peak 1 on [0, 1]).

    Args:
        gen, ref: [B, T, H, W, 3] videos (uint8 or float in [0, 1]).

    Returns:
        [B, T] float64: 20 log10(1 / sqrt(MSE)), or 100 where MSE < 1e-10.
    """
    a, b = _pair(gen, ref)
    chunks = _frame_chunks(a, b, 4 * _frames_per_chunk(a))
    mse = torch.cat([((x - y) ** 2).mean(dim=(1, 2, 3)) for x, y in chunks])
    mse = mse.cpu().numpy().reshape(a.shape[:2])
    db = -10.0 * np.log10(np.maximum(mse, 1e-300))  # = 20 log10(1 / sqrt(MSE))
    return np.where(mse < 1e-10, PSNR_CAP_DB, db)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """OpenCV's getGaussianKernel(size, sigma): [size] float64 summing to 1."""
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(i * i) / (2 * sigma * sigma))
    return g / g.sum()


@functools.lru_cache(maxsize=8)
def _valid_filter(n: int) -> torch.Tensor:
    """The 'valid' Gaussian filter along an axis of length n as a banded matrix [n, n - 10].

    ``x @ M`` filters rows of x; on CPU this BLAS product is ~4x faster than a grouped conv2d
    in float64 (measured), and exact to 1e-14.
    """
    g = _gaussian_window()
    m = torch.zeros(n, n - SSIM_WINDOW + 1, dtype=torch.float64)
    for j in range(n - SSIM_WINDOW + 1):
        m[j : j + SSIM_WINDOW, j] = g
    return m


def _ssim_frames(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM of frame pairs, float64 in [0, 1]: [N, H, W, 3] x 2 -> [N] (mean over channels)."""
    n, h, w, _ = x.shape
    x = x.permute(0, 3, 1, 2).reshape(n * 3, 1, h, w)
    y = y.permute(0, 3, 1, 2).reshape(n * 3, 1, h, w)
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [3N, 5, H, W]
    rows, cols = _valid_filter(h).to(x.device), _valid_filter(w).to(x.device)
    maps = rows.T @ (maps @ cols)  # separable Gaussian, 'valid': [3N, 5, H-10, W-10]
    mu_x, mu_y, xx, yy, xy = maps.unbind(dim=1)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (num / den).mean(dim=(1, 2)).view(n, 3).mean(dim=1)


def ssim(gen: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor) -> np.ndarray:
    """Structural similarity per frame with the authors' settings (OpenCV-style, 'valid').

    Gaussian window 11 (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2 on [0, 1], computed in float64
    per channel and averaged over the 3 channels. Frames must be at least 11 x 11 px.

    Args:
        gen, ref: [B, T, H, W, 3] videos (uint8 or float in [0, 1]).

    Returns:
        [B, T] float64; 1 for identical frames.
    """
    a, b = _pair(gen, ref)
    if min(a.shape[2:4]) < SSIM_WINDOW:
        raise PhylawError(f"SSIM needs frames of at least 11x11 px, got {tuple(a.shape[2:4])}")
    chunks = _frame_chunks(a, b, _frames_per_chunk(a))
    return torch.cat([_ssim_frames(x, y) for x, y in chunks]).cpu().numpy().reshape(a.shape[:2])


def frame_range_mean(values: np.ndarray, start: int, stop: int | None = None) -> np.ndarray:
    """Mean over frames [start, stop) of a per-frame metric: [B, T] -> [B].

    With ``start`` = the number of conditioning frames this averages over generated frames.
    """
    values = np.asarray(values, dtype=np.float64)
    stop = values.shape[1] if stop is None else stop
    if values.ndim != 2 or not 0 <= start < stop <= values.shape[1]:
        raise PhylawError(f"frame range [{start}, {stop}) is empty or outside {values.shape}")
    return values[:, start:stop].mean(axis=1)


# ------------------------------------------------------------------------------------------------
# LPIPS and FVD (the networks come in as arguments; see LPIPS.from_file and I3D.from_file)
# ------------------------------------------------------------------------------------------------


@torch.inference_mode()
def lpips_distance(
    gen: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    net: LPIPS,
    batch_size: int = 32,
    upsample: bool = True,
) -> np.ndarray:
    """LPIPS per frame (the authors' spatial mean), on the network's device.

    Args:
        gen, ref: [B, T, H, W, 3] videos (uint8 or float in [0, 1]).
        net: :class:`LPIPS`, e.g. ``LPIPS.from_file(path)``.
        batch_size: frame pairs per forward pass (whole videos, at least one).
        upsample: see :meth:`LPIPS.forward`.

    Returns:
        [B, T] float64; 0 for identical frames.
    """
    a, b = _pair(gen, ref)
    if min(a.shape[2:4]) < 31:
        raise PhylawError(f"LPIPS needs frames of at least 31x31 px, got {tuple(a.shape[2:4])}")
    device = next(net.parameters()).device
    out = []
    for x, y in _frame_chunks(a, b, batch_size, torch.float32):
        x, y = (v.to(device).permute(0, 3, 1, 2) * 2 - 1 for v in (x, y))  # [n, 3, H, W], [-1, 1]
        out.append(net(x, y, upsample=upsample).double().cpu())
    return torch.cat(out).numpy().reshape(a.shape[:2])


@torch.inference_mode()
def i3d_features(
    videos: np.ndarray | torch.Tensor, net: I3D, batch_size: int = 10, size: int = 224
) -> np.ndarray:
    """I3D features for FVD: preprocess as the reference, then time-averaged Kinetics logits.

    Args:
        videos: [B, T, H, W, 3] (uint8 or float in [0, 1]), T >= 9.
        net: :class:`I3D`, e.g. ``I3D.from_file(path)``.
        batch_size: videos per forward pass (the reference uses 10).
        size: side after resize and centre crop; 224 for FVD, smaller only in tests.

    Returns:
        [B, 400] float64.
    """
    v = as_video(videos, "videos")
    if v.shape[1] < 9:
        raise PhylawError(f"FVD needs videos of at least 9 frames, got {v.shape[1]}")
    device = next(net.parameters()).device
    out = []
    for i in range(0, v.shape[0], batch_size):
        x = i3d_preprocess(_unit(v[i : i + batch_size], torch.float32).to(device), size)
        out.append(net(x).double().cpu())
    return torch.cat(out).numpy()


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance of two Gaussians, as stylegan-v computes it.

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)), real part. With fewer
    samples than dimensions the covariances are singular and the result is accurate to about
    1e-6 of their trace; scipy's warning about it is silenced, as in the reference.

    Args:
        mu1, mu2: [D] means. sigma1, sigma2: [D, D] covariances.
    """
    mu1, mu2, sigma1, sigma2 = (np.asarray(v, np.float64) for v in (mu1, mu2, sigma1, sigma2))
    m = float(np.square(mu1 - mu2).sum())
    with warnings.catch_warnings():  # singular when N <= D; the reference passes disp=False
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        s = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.real(m + np.trace(sigma1 + sigma2 - 2 * s)))


def fvd(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet video distance of two feature sets, [N_a, D] and [N_b, D] (N >= 2 each).

    Means and unbiased covariances (``np.cov``), then :func:`frechet_distance`. FVD depends on
    N: compare values computed from the same number of videos (the authors hold N fixed).
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise PhylawError(f"FVD needs two [N>=2, D] feature sets, got {a.shape} and {b.shape}")
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    return frechet_distance(a.mean(axis=0), cov_a, b.mean(axis=0), cov_b)


def fvd_per_prefix(
    gen: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    net: I3D,
    min_frames: int = 10,
    batch_size: int = 10,
    size: int = 224,
) -> dict[int, float]:
    """FVD of the first t frames for every t in min_frames..T, as the reference reports it.

    Returns:
        {t: FVD}; costs T - min_frames + 1 passes of I3D over both sets.
    """
    g, r = as_video(gen, "gen"), as_video(ref, "ref")
    if g.shape[1] != r.shape[1] or g.shape[1] < min_frames:
        raise PhylawError(f"need gen and ref of >= {min_frames} frames: {g.shape} vs {r.shape}")
    return {
        t: fvd(
            i3d_features(g[:, :t], net, batch_size, size),
            i3d_features(r[:, :t], net, batch_size, size),
        )
        for t in range(min_frames, g.shape[1] + 1)
    }


# ------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FidelitySummary:
    """Per-video fidelity over generated frames; LPIPS and FVD only when a network was given.

    ssim, psnr, lpips: [B] means over frames >= cond_frames. fvd: one number for the set, over
    the whole videos (conditioning frames included, as the reference's longest prefix).
    """

    ssim: np.ndarray
    psnr: np.ndarray
    lpips: np.ndarray | None = None
    fvd: float | None = None


def fidelity_summary(
    gen: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    cond_frames: int,
    lpips_net: LPIPS | None = None,
    i3d: I3D | None = None,
) -> FidelitySummary:
    """SSIM, PSNR (and LPIPS, FVD when their networks are given) of generated against reference.

    Args:
        gen, ref: [B, T, H, W, 3] videos; frames [0, cond_frames) were given to the model.
        cond_frames: number of conditioning frames (0 <= cond_frames < T).
        lpips_net, i3d: pretrained networks, or None to skip that metric.
    """
    g, r = as_video(gen, "gen"), as_video(ref, "ref")
    if not 0 <= cond_frames < g.shape[1]:
        raise PhylawError(f"cond_frames must be in [0, {g.shape[1]}), got {cond_frames}")
    g_new, r_new = g[:, cond_frames:], r[:, cond_frames:]
    return FidelitySummary(
        ssim=ssim(g_new, r_new).mean(axis=1),
        psnr=psnr(g_new, r_new).mean(axis=1),
        lpips=None if lpips_net is None else lpips_distance(g_new, r_new, lpips_net).mean(axis=1),
        fvd=None if i3d is None else fvd(i3d_features(g, i3d), i3d_features(r, i3d)),
    )
