"""Numerics of a step: which autocast a precision means, and `run.precision=auto`'s choice.

Below both the loop (`train.loop`) and generation (`train.generate`), so that neither imports
the other for it. 'auto' picks the training dtype by measuring it, never by assuming it.

On CUDA 'auto' is bf16 autocast. On a CPU the answer depends on the chip: with AMX (Intel
Sapphire Rapids and later) or avx512_bf16 (AMD Zen 4) bf16 matmuls run at or above fp32's rate;
without them (AVX2 only) torch emulates bf16 and a training step runs ~20x slower
(benchmarks/RESULTS.md). So on a CPU `resolve_precision` times a few forward + backward passes
of the run's own network on a small random batch in both dtypes and keeps bf16 only when it is
clearly faster (`margin`). The probe takes a few seconds, leaves the weights untouched (only
gradients, cleared after) and does not draw from the global random streams, so a run stays a
function of its seed. A resumed run keeps the dtype its checkpoint records.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["PROBE_MARGIN", "autocast", "model_step", "probe_precision", "resolve_precision"]

PROBE_MARGIN = 0.85  # bf16 is kept only below this fraction of fp32's step time


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for 'bf16' (and 'auto' on CUDA); nothing for 'fp32' (and 'auto' on CPU
    without a resolved choice: `resolve_precision` turns 'auto' into one of the two)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_step(
    model: nn.Module, shape: tuple[int, ...], batch_size: int, device: torch.device
) -> Callable[[str], None]:
    """A function `step(precision)` running one forward + backward pass of the DiT-like
    `model(x_t, t, cond_video, mask)` on a random batch [batch_size, *shape] (C, T, H, W) under
    that precision's autocast; gradients are cleared after each call."""
    gen = torch.Generator(device).manual_seed(0)
    c, t, h, w = shape
    x = torch.randn((batch_size, c, t, h, w), generator=gen, device=device)
    cond = torch.zeros_like(x)
    mask = torch.zeros((batch_size, 1, t, h, w), device=device)
    steps = torch.full((batch_size,), 500, dtype=torch.int64, device=device)

    def step(precision: str) -> None:
        with autocast(device, precision):
            out = model(x, steps, cond, mask)
        out.float().square().mean().backward()
        model.zero_grad(set_to_none=True)

    return step


def probe_precision(
    step: Callable[[str], None],
    repeats: int = 3,
    margin: float = PROBE_MARGIN,
    give_up: float = 3.0,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[str, dict[str, float]]:
    """Time `step('fp32')` and `step('bf16')`: one warm-up call each, then `repeats` rounds
    alternating the two (a load that comes and goes hits both), stopping early once a bf16 call
    takes `give_up` times fp32's best. Returns ('bf16' if its best time < margin * fp32's best,
    else 'fp32') and the best times {'fp32': s, 'bf16': s}. `clock`: seconds (tests fake it).
    """
    best = {"fp32": math.inf, "bf16": math.inf}
    for precision in best:
        step(precision)  # warm-up: allocations, kernel selection
    for _ in range(repeats):
        for precision in best:
            t0 = clock()
            step(precision)
            best[precision] = min(best[precision], clock() - t0)
        if best["bf16"] > give_up * best["fp32"]:
            break
    return ("bf16" if best["bf16"] < margin * best["fp32"] else "fp32"), best


def resolve_precision(
    requested: str,
    device: torch.device,
    make_step: Callable[[], Callable[[str], None] | None] | None = None,
    recorded: str | None = None,
) -> tuple[str, str]:
    """The dtype a run trains in: 'fp32' or 'bf16', and one line saying why.

    requested: `run.precision`; 'fp32' and 'bf16' are kept, 'auto' is bf16 on CUDA and on a
    CPU the probe's answer on `make_step()` (e.g. `model_step`; built only when a probe runs;
    None, or a factory returning None: no probe, fp32); recorded: the dtype a resumed run chose.
    """
    if requested != "auto":
        return requested, f"precision {requested} (run.precision)"
    if recorded in ("fp32", "bf16"):
        return recorded, f"precision {recorded} (auto, as chosen when this run started)"
    if device.type == "cuda":
        return "bf16", "precision bf16 (auto on CUDA)"
    step = make_step() if make_step is not None else None
    if step is None:
        return "fp32", "precision fp32 (auto on CPU without a probe)"
    choice, best = probe_precision(step)
    ratio = best["bf16"] / best["fp32"]
    return choice, (
        f"precision {choice} (auto: a measured training pass takes {best['fp32'] * 1e3:.0f} ms "
        f"in fp32, {best['bf16'] * 1e3:.0f} ms in bf16, ratio {ratio:.2f}; bf16 below "
        f"{PROBE_MARGIN})"
    )
