"""Where the training loss looks: the distribution of timesteps and per-step loss weights.

Eq. 2 draws t uniformly and weights every step alike; both are choices of the objective, not of
the process, and change how fast a small model learns without changing what it converges to
in the limit of a perfect denoiser (every step's target stays the same). Pure functions of the
schedule; no network.

* timesteps: `uniform` (eq. 2) or `logit-normal` (Esser et al. 2024, "Scaling rectified flow
  transformers", Sec. 3.1): u = sigmoid(m + s n), n ~ N(0, 1), read as the fraction of the
  way through the S training steps, t = min(floor(u S), S - 1). m > 0 leans towards high noise,
  where the model must infer the continuation from the condition frames alone.
* weights: `none` (eq. 2) or `min-snr` (Hang et al. 2023, "Efficient diffusion training via
  Min-SNR weighting strategy"): the eps-space weight min(SNR, gamma) / SNR, expressed for the
  chosen target (x0: min(SNR, gamma); v: min(SNR, gamma) / (SNR + 1); eps: min(SNR, gamma) /
  SNR, 1 at SNR = 0). For x0 it vanishes at the zero-SNR terminal step, so `min_weight`
  keeps a floor there.
"""

from __future__ import annotations

import torch

from phylaw.diffusion.process import Prediction
from phylaw.diffusion.schedule import Schedule

__all__ = [
    "LOSS_WEIGHTINGS",
    "TIMESTEP_SAMPLINGS",
    "logit_normal_timesteps",
    "loss_weights",
    "min_snr_weights",
]

TIMESTEP_SAMPLINGS: tuple[str, ...] = ("uniform", "logit-normal")
LOSS_WEIGHTINGS: tuple[str, ...] = ("none", "min-snr")


def logit_normal_timesteps(
    batch_size: int,
    schedule: Schedule,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """t = min(floor(sigmoid(mean + std n) S), S - 1), n ~ N(0, 1). Returns [B] int64 in
    [0, S - 1]; the density of u = t / S is logit-normal(mean, std)."""
    if std <= 0:
        raise ValueError(f"std must be > 0, got {std}")
    n = torch.randn(batch_size, generator=generator, device=device, dtype=torch.float64)  # [B]
    u = torch.sigmoid(mean + std * n)  # [B] in (0, 1)
    s = schedule.num_steps
    return (u * s).floor().clamp_(0, s - 1).to(torch.int64)


def min_snr_weights(
    snr: torch.Tensor, prediction: Prediction, gamma: float = 5.0, min_weight: float = 0.0
) -> torch.Tensor:
    """Min-SNR-gamma weights for a loss on `prediction`'s target (module docstring).

    snr: [B] float (inf allowed nowhere; 0 at the terminal step); gamma > 0; min_weight: a
    floor on the returned weight. Returns [B] float32.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    snr = snr.to(torch.float64)
    clipped = snr.clamp(max=gamma)  # min(SNR, gamma)
    if prediction == "x0":
        w = clipped
    elif prediction == "v":
        w = clipped / (snr + 1)
    elif prediction == "eps":
        w = torch.where(snr > 0, clipped / snr.clamp(min=1e-30), torch.ones_like(snr))
    else:
        raise ValueError(f"unknown prediction {prediction!r}; valid: ['v', 'x0', 'eps']")
    return w.clamp(min=min_weight).to(torch.float32)


def loss_weights(
    kind: str,
    t: torch.Tensor,
    schedule: Schedule,
    prediction: Prediction,
    gamma: float = 5.0,
    min_weight: float = 0.0,
) -> torch.Tensor | None:
    """Per-video loss weights [B] float32 for steps t [B] ('none': None, i.e. eq. 2)."""
    if kind == "none":
        return None
    if kind == "min-snr":
        return min_snr_weights(schedule.snr(t), prediction, gamma, min_weight)
    raise ValueError(f"unknown loss weighting {kind!r}; valid: {list(LOSS_WEIGHTINGS)}")
