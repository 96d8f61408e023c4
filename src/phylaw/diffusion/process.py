"""The forward process and the three parametrisations of the denoiser's output (eps, x0, v).

With a = sqrt(alpha_bar_t) and s = sqrt(1 - alpha_bar_t), a^2 + s^2 = 1 (Appendix A.2, eq. 1):

    x_t = a x0 + s eps                      (forward process, q_sample)
    v   = a eps - s x0                      (Salimans & Ho 2022, "velocity")
    x0  = a x_t - s v,   eps = s x_t + a v  (inverse rotation; valid for every a, incl. a = 0)

Paper convention, precisely: eq. 3 writes the target as y = sqrt(1 - gamma) eps - sqrt(gamma) V,
i.e. s eps - a x0, which has the coefficients swapped relative to Salimans & Ho, whom it cites.
As printed it is degenerate: the map (x0, eps) -> (x_t, y) has determinant 2 a s, so it cannot
be inverted at the terminal step (a = 0: y = eps = x_t tells nothing about x0) nor at a = 1.
We follow the cited source, v = a eps - s x0 (the same as diffusers' `v_prediction`), a
rotation of (x0, eps) that is invertible at every step, including the zero-SNR terminal step.

eps-prediction cannot give x0 where alpha_bar = 0 (x0 = (x_t - s eps) / a); x0-prediction cannot
give eps where alpha_bar = 1, which no schedule here reaches. `to_x0_eps` raises in the first case.

The denoiser is any callable `denoiser(x_t, t, cond) -> prediction` with x_t and the prediction
[B, C, T, H, W] (or any [B, ...]), t [B] int64 training steps and `cond` passed through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from phylaw.diffusion.schedule import Schedule

__all__ = [
    "PREDICTIONS",
    "Denoiser",
    "Prediction",
    "eps_from_x0",
    "prediction_target",
    "q_sample",
    "to_x0_eps",
    "v_from_x0_eps",
    "x0_eps_from_v",
    "x0_from_eps",
]

Prediction = Literal["v", "x0", "eps"]
PREDICTIONS: tuple[str, ...] = ("v", "x0", "eps")
Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def _coefficients(alpha_bar: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sqrt(alpha_bar), sqrt(1 - alpha_bar)) in float64, then cast to like's dtype."""
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64, device=like.device)
    return alpha_bar.sqrt().to(like.dtype), (1 - alpha_bar).sqrt().to(like.dtype)


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; valid: {list(PREDICTIONS)}")


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: Schedule
) -> torch.Tensor:
    """Forward process, eq. 1: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.

    x0, noise: [B, C, T, H, W]; t: [B] int64 training steps. Returns [B, C, T, H, W].
    """
    a, s = _coefficients(schedule.alpha_bar(t, x0), x0)
    return a * x0 + s * noise


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans & Ho; eq. 3 corrected, see
    the module docstring). x0, eps: [B, ...]; alpha_bar broadcastable. Returns [B, ...]."""
    a, s = _coefficients(alpha_bar, x0)
    return a * eps - s * x0


def x0_eps_from_v(
    x_t: torch.Tensor, v: torch.Tensor, alpha_bar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert the rotation: x0 = a x_t - s v, eps = s x_t + a v. Valid at alpha_bar = 0.

    x_t, v: [B, ...]; alpha_bar broadcastable. Returns (x0, eps), each [B, ...].
    """
    a, s = _coefficients(alpha_bar, x_t)
    return a * x_t - s * v, s * x_t + a * v


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar); undefined where alpha_bar = 0.

    x_t, eps: [B, ...]. Returns [B, ...].
    """
    a, s = _coefficients(alpha_bar, x_t)
    return (x_t - s * eps) / a


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar); defined for alpha_bar < 1.

    x_t, x0: [B, ...]. Returns [B, ...].
    """
    a, s = _coefficients(alpha_bar, x_t)
    return (x_t - a * x0) / s


def prediction_target(
    x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor, prediction: Prediction
) -> torch.Tensor:
    """The regression target y of eq. 2 for `prediction` in {'v', 'x0', 'eps'}.

    x0, noise: [B, C, T, H, W]; alpha_bar broadcastable. Returns [B, C, T, H, W].
    """
    _check_prediction(prediction)
    if prediction == "v":
        return v_from_x0_eps(x0, noise, alpha_bar)
    return x0 if prediction == "x0" else noise


def to_x0_eps(
    output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, prediction: Prediction
) -> tuple[torch.Tensor, torch.Tensor]:
    """The denoiser's `output` read as `prediction`, turned into (x0_hat, eps_hat).

    output, x_t: [B, ...]; alpha_bar broadcastable. Returns two [B, ...] tensors. Raises for
    eps-prediction at alpha_bar = 0, where x0 is not determined by (x_t, eps).
    """
    _check_prediction(prediction)
    if prediction == "v":
        return x0_eps_from_v(x_t, output, alpha_bar)
    if prediction == "x0":
        return output, eps_from_x0(x_t, output, alpha_bar)
    if bool((torch.as_tensor(alpha_bar) == 0).any()):
        raise ValueError(
            "eps-prediction cannot recover x0 at alpha_bar = 0 (zero terminal SNR); "
            "use prediction 'v' or 'x0', or a schedule with zero_terminal_snr=False"
        )
    return x0_from_eps(x_t, output, alpha_bar), output
