"""One process or many: the same training code under `python` and under `torchrun`.

torchrun is detected from the environment it sets (RANK, WORLD_SIZE, LOCAL_RANK), as in
nanoGPT. Without it the run is one process on one device (a CPU, or one GPU).

    # one process: the CPU, or the first GPU
    phylaw train --preset cpu-uniform --data data/u-train --out runs/u

    # one node, 8 GPUs (DDP over NCCL)
    torchrun --standalone --nproc_per_node 8 -m phylaw.cli train --preset paper-B \
        --data data/u-train --out runs/paper-B

    # 4 nodes x 8 GPUs: run on every node, with the first node's address
    torchrun --nnodes 4 --nproc_per_node 8 --node_rank $NODE_RANK \
        --rdzv_backend c10d --rdzv_endpoint $MASTER_HOST:29500 \
        -m phylaw.cli train --preset paper-XL --data data/u-train --out /shared/runs/paper-XL

    # 2 CPU processes (gloo): what tests/test_train.py checks
    torchrun --standalone --nproc_per_node 2 -m phylaw.cli train --preset cpu-tiny ...

Every rank reads the split and, on resume, the checkpoint, so RUN and the data must be on a
file system all nodes see. Rank 0 alone writes checkpoints, logs, samples and evaluations;
the others wait at a barrier. The global batch (`run.batch_size`) is split over ranks and
accumulation micro-steps, so a run's batches do not depend on the number of GPUs: global
batch k is a pure function of (seed, k) (`step_rows`), of which rank r takes the r-th
contiguous share, one slice per micro-step (`rank_batches`); its noise comes from a generator
seeded by (seed, k) (`step_generator`), drawn for the global batch and sliced the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from phylaw import PhylawError
from phylaw.train.config_core import micro_batch

__all__ = [
    "Dist",
    "all_reduce_max",
    "all_reduce_mean",
    "barrier",
    "init_distributed",
    "is_torchrun",
    "rank_batches",
    "shutdown",
    "step_generator",
    "step_rows",
]


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank among `world_size`, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this process group was created by `init_distributed`

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def is_torchrun() -> bool:
    """True when launched by torchrun with more than one process (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PhylawError(f"run.device is {name!r} but no CUDA GPU is visible; use cpu or auto")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def init_distributed(device: str = "auto") -> Dist:
    """Join the torchrun process group if there is one (NCCL on CUDA, gloo on CPU).

    `device`: 'auto' (cuda:LOCAL_RANK when CUDA is present, else cpu), 'cpu', 'cuda' or
    'cuda:N'. Re-uses a process group that is already initialised.
    """
    if not is_torchrun():
        return Dist(device=_device(device, 0))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return Dist(rank, world, local_rank, dev, owns)


def shutdown(d: Dist) -> None:
    """Leave the process group if `init_distributed` created it."""
    if d.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    """Wait for every rank (no-op in one process)."""
    if d.distributed:
        dist.barrier()


def all_reduce_mean(d: Dist, x: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over ranks (a copy; `x` itself in one process)."""
    if not d.distributed:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / d.world_size


def all_reduce_max(d: Dist, *values: float) -> list[float]:
    """The largest of each value over the ranks, so that every rank takes the same stop
    decision and the same time-driven learning rate."""
    if not d.distributed:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


# ----------------------------------------------------------------------------------------------
# Data order and noise: what each rank trains on at step k
# ----------------------------------------------------------------------------------------------


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of step `step`'s random draws (noise, timesteps, clip offsets) for the
    whole global batch, of which each rank takes its slice: seeded by (seed, step) alone."""
    mixed = int(np.random.SeedSequence([seed, step, 0x6E6F697365]).generate_state(1, np.uint64)[0])
    return torch.Generator(device).manual_seed(mixed)


@lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, num_rows: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_rows)


def step_rows(seed: int, step: int, batch_size: int, num_rows: int) -> np.ndarray:
    """Dataset positions [batch_size] of global batch `step`: positions step*B .. step*B+B-1 of
    the endless sequence of epoch permutations default_rng([seed, epoch]).permutation(N)."""
    pos = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
    epoch, offset = np.divmod(pos, num_rows)
    out = np.empty(batch_size, dtype=np.int64)
    for e in np.unique(epoch):
        sel = epoch == e
        out[sel] = _permutation(seed, int(e), num_rows)[offset[sel]]
    return out


def rank_batches(cfg: Any, d: Dist, start_step: int, num_rows: int) -> Iterator[np.ndarray]:
    """This rank's micro-batches, step after step from `start_step` to `run.steps` (`cfg`: any
    training config; its `run` section sets seed, batch and accumulation)."""
    b, accum = micro_batch(cfg, d.world_size), cfg.run.grad_accum
    for step in range(start_step, cfg.run.steps):
        rows = step_rows(cfg.run.seed, step, cfg.run.batch_size, num_rows)
        share = rows.reshape(d.world_size, accum, b)[d.rank]
        yield from share
