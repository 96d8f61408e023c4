"""Numerics of a training or sampling step: which autocast a precision setting means.

Below both the loop (`train.loop`) and generation (`train.generate`), so that neither imports
the other for it.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast"]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for 'bf16' (and 'auto' on CUDA); nothing for 'fp32' (and 'auto' on CPU)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
