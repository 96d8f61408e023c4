"""Exponential moving average of the weights: the model that samples and gets evaluated.

ema <- d ema + (1 - d) w after every optimizer step, in float32, with the usual warmup
d_n = min(decay, (1 + n) / (10 + n)) for the n-th update (n = 0, 1, ...), so that a short run's
EMA is not dominated by its random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA", "ema_decay_at"]


def ema_decay_at(step: int, decay: float) -> float:
    """The decay of the update after optimizer step `step` (0-based): min(d, (1+n)/(10+n))."""
    return min(decay, (1 + step) / (10 + step))


class EMA:
    """A frozen copy of a module whose parameters trail the live ones.

    `EMA(model)` copies `model`; `update(model, step)` moves the copy towards it;
    `module` is the averaged network (eval mode, no gradients).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """One EMA update after optimizer step `step` (0-based); buffers are copied."""
        d = ema_decay_at(step, self.decay)
        ema_p = list(self.module.parameters())
        live_p = list(model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in live_p], 1.0 - d)
        for eb, b in zip(self.module.buffers(), model.buffers(), strict=True):
            eb.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
