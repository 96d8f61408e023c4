"""The training objective, eq. 2: E || y - p_theta(V_t, c, t) ||^2 on the generated frames.

The target y is v (the paper's choice for its VAE latents, eq. 3 as corrected in `process`), x0
or eps. For pixel-space presets whose patches are wider than the token (e.g. 8x8x3 patches into
128-d tokens), predict x0: the network cannot pass the noise through such a bottleneck, so v and
eps targets keep an error floor (spec/cpu-training-notes.md). Condition frames are inputs, not
outputs: their error is left out of the mean.
"""

from __future__ import annotations

from typing import Any

import torch

from phylaw.diffusion.process import Denoiser, Prediction, prediction_target, q_sample
from phylaw.diffusion.schedule import Schedule
from phylaw.diffusion.weighting import TIMESTEP_SAMPLINGS, logit_normal_timesteps

__all__ = ["masked_mse", "sample_timesteps", "training_loss"]


def sample_timesteps(
    batch_size: int,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    *,
    kind: str = "uniform",
    mean: float = 0.0,
    std: float = 1.0,
) -> torch.Tensor:
    """t ~ U{0, ..., S-1} as in eq. 2, the terminal pure-noise step included (kind 'uniform'),
    or logit-normal(mean, std) over the steps (`weighting.logit_normal_timesteps`). Returns
    [B] int64."""
    if kind == "uniform":
        return torch.randint(
            0, schedule.num_steps, (batch_size,), generator=generator, device=device
        )
    if kind == "logit-normal":
        return logit_normal_timesteps(batch_size, schedule, mean, std, generator, device)
    raise ValueError(f"unknown timestep sampling {kind!r}; valid: {list(TIMESTEP_SAMPLINGS)}")


def masked_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error over the generated frames only, optionally weighted per video.

    pred, target: [B, C, T, H, W]; frame_mask: [B, T] or [T], 1 (or True) on condition frames,
    which are excluded; None keeps every frame; weight: [B] per-video loss weights
    (`weighting.loss_weights`), None = 1. Returns a scalar (float32 or wider): the mean over
    all kept elements of the batch of weight * squared error (not renormalised by the weights).
    """
    dtype = torch.promote_types(pred.dtype, torch.float32)  # bf16 -> fp32; fp64 stays
    err = (pred.to(dtype) - target.to(dtype)) ** 2  # [B, C, T, H, W]
    if weight is not None:
        err = err * weight.to(dtype).reshape(-1, *([1] * (err.ndim - 1)))
    if frame_mask is None:
        return err.mean()
    b, c, t, h, w = err.shape
    keep = 1 - frame_mask.to(err.dtype).expand(b, t)  # [B, T]
    count = keep.sum() * (c * h * w)
    if count == 0:
        raise ValueError("frame_mask marks every frame as a condition frame; nothing to learn")
    return (err.sum(dim=(1, 3, 4)) * keep).sum() / count


def training_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    cond: Any,
    t: torch.Tensor,
    noise: torch.Tensor,
    schedule: Schedule,
    prediction: Prediction = "v",
    frame_mask: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 2 for one batch: noise x0 to step t, ask the denoiser, regress on the target.

    denoiser(x_t [B, C, T, H, W], t [B], cond) -> [B, C, T, H, W], read as `prediction`;
    x0, noise: [B, C, T, H, W]; t: [B] int64 steps (see `sample_timesteps`); cond: passed to the
    denoiser untouched (e.g. `condition_inputs(x0, c)`); frame_mask: [B, T] or [T], 1 on the
    condition frames left out of the loss; weight: [B] per-video weights (None: eq. 2's 1).
    Returns the scalar loss.
    """
    x_t = q_sample(x0, t, noise, schedule)  # [B, C, T, H, W]
    target = prediction_target(x0, noise, schedule.alpha_bar(t, x0), prediction)
    return masked_mse(denoiser(x_t, t, cond), target, frame_mask, weight)
