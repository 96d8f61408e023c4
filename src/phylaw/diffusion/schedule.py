"""The DDPM noise schedule: alpha_bar over the training steps, zero terminal SNR, sampling steps.

Convention (Appendix A.2, eq. 1): x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with
alpha_bar_t (the paper's gamma_t) decreasing over the discrete training steps t = 0 .. S-1.
SNR(t) = alpha_bar_t / (1 - alpha_bar_t).

Zero terminal SNR (Lin et al. 2024, "Common diffusion noise schedules and sample steps are
flawed", Algorithm 1): sqrt(alpha_bar) is shifted so its last value is exactly 0 and rescaled so
its first value is unchanged. Then x_{S-1} is pure noise, as the sampler's starting point is, and
the training/inference gap closes. The paper states this as "gamma_t = 1 when t = 1"; with gamma
the signal level of its eq. 1 (decreasing from 1 to 0), the condition that gives SNR = 0 is
gamma = 0 at the last step, which is what this module does. The rescale is done in float64,
where x - x == 0 holds exactly, so alpha_bar[S-1] == 0.0 bit for bit.

Sampling steps use the "trailing" spacing of Lin et al. (Table 2): the first sampling step is
the terminal training step S-1, the pure-noise level, and the sampler ends with a jump to the
clean video (alpha_bar = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "SCHEDULES",
    "Schedule",
    "cosine_betas",
    "linear_betas",
    "make_schedule",
    "rescale_zero_terminal_snr",
    "sampling_timesteps",
    "scaled_linear_betas",
]


# ----------------------------------------------------------------------------------------------
# Betas
# ----------------------------------------------------------------------------------------------


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020) linear betas. Returns [S] float64."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def scaled_linear_betas(
    num_steps: int, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    """Latent-diffusion betas, linear in sqrt(beta) (Stable Diffusion's VAE latent setting).

    Returns [S] float64.
    """
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64) ** 2


def cosine_betas(num_steps: int, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021) cosine betas: alpha_bar(u) = cos^2((u + s)/(1 + s) pi/2) / f(0),
    betas clipped at `max_beta`. Returns [S] float64."""
    u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # [S+1]
    f = torch.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2  # [S+1]
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


SCHEDULES: dict[str, Callable[[int], torch.Tensor]] = {
    "linear": linear_betas,
    "scaled_linear": scaled_linear_betas,
    "cosine": cosine_betas,
}


def rescale_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Lin et al. (2024), Algorithm 1, on alpha_bar: shift sqrt(alpha_bar) so the last value is 0,
    scale so the first is unchanged.

    alphas_cumprod: [S] float64, decreasing. Returns [S] float64 with [-1] == 0 exactly.
    """
    root = alphas_cumprod.to(torch.float64).sqrt()  # [S]
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))  # [S]; root[-1] = last - last = 0
    return root**2


# ----------------------------------------------------------------------------------------------
# The schedule record
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Schedule:
    """alpha_bar (the paper's gamma, eq. 1) at each discrete training step.

    alphas_cumprod: [S] float64, non-increasing, in [0, 1), alphas_cumprod[0] < 1. Build one with
    `make_schedule`. Step t in 0..S-1 is what the denoiser receives as its timestep.
    """

    alphas_cumprod: torch.Tensor

    def __post_init__(self) -> None:
        ab = self.alphas_cumprod
        if ab.ndim != 1 or ab.dtype != torch.float64 or ab.numel() < 2:
            raise ValueError(
                f"alphas_cumprod must be a 1-D float64 tensor, got {ab.dtype} {ab.shape}"
            )
        if not (bool((ab >= 0).all()) and bool(ab[0] < 1) and bool((ab[1:] <= ab[:-1]).all())):
            raise ValueError(
                "alphas_cumprod must be non-increasing in [0, 1) with alphas_cumprod[0] < 1"
            )

    @property
    def num_steps(self) -> int:
        """S, the number of training steps."""
        return self.alphas_cumprod.numel()

    @property
    def betas(self) -> torch.Tensor:
        """beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, [S] float64 (1 at a zero-SNR last step)."""
        ab = self.alphas_cumprod
        prev = torch.cat([ab.new_ones(1), ab[:-1]])  # [S]
        return 1 - ab / prev

    @property
    def zero_terminal_snr(self) -> bool:
        """True when the last step is pure noise (alpha_bar == 0 exactly)."""
        return bool(self.alphas_cumprod[-1] == 0)

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """SNR(t) = alpha_bar_t / (1 - alpha_bar_t). t: integer steps, any shape -> float64."""
        ab = self.alphas_cumprod.to(t.device)[t.long()]
        return ab / (1 - ab)

    def alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar at steps t [B], shaped [B, 1, ..., 1] to broadcast against `like` [B, ...],
        in float64 on like's device (callers cast after taking square roots)."""
        ab = self.alphas_cumprod.to(like.device)[t.to(like.device).long()]  # [B]
        return ab.reshape(-1, *([1] * (like.ndim - 1)))


def make_schedule(
    name: str = "scaled_linear", num_steps: int = 1000, zero_terminal_snr: bool = True
) -> Schedule:
    """Build a schedule from the betas named `name` (a key of `SCHEDULES`) over `num_steps`
    steps, rescaled to zero terminal SNR unless `zero_terminal_snr=False`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid names: {sorted(SCHEDULES)}")
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    ab = torch.cumprod(1 - SCHEDULES[name](num_steps), dim=0)  # [S] float64
    if zero_terminal_snr:
        ab = rescale_zero_terminal_snr(ab)
    return Schedule(ab)


def sampling_timesteps(num_train_steps: int, num_sample_steps: int) -> torch.Tensor:
    """'Trailing' spacing (Lin et al. 2024, Table 2): [N] int64 training steps, decreasing, the
    first S-1 (pure noise under zero terminal SNR). Same values as diffusers' 'trailing'."""
    if not 1 <= num_sample_steps <= num_train_steps:
        raise ValueError(f"sample steps must be in [1, {num_train_steps}], got {num_sample_steps}")
    ratio = num_train_steps / num_sample_steps
    t = torch.arange(num_sample_steps, dtype=torch.float64) * ratio  # [N]
    return torch.round(num_train_steps - t).to(torch.int64) - 1
