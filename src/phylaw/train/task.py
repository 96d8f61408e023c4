"""What the training loop (`train.loop.fit`) asks of a model family, and what it returns.

A `Task` knows its network, its training videos, the random draws of a step and the loss of a
micro-batch; `train.dit_task.DiffusionTask` (the DiT) and `train.ae.AutoencoderTask` (the
autoencoder) are the two. An `Evaluator` is a callback handed to the loop from above (quick
evaluation, `experiments.quickeval`), called with what `Task.predictor` makes of the EMA network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from phylaw.data.dataset import VideoDataset
from phylaw.train.distributed import Dist

__all__ = ["Evaluator", "Task", "TrainResult"]

# evaluator(predictor, step) -> {name: value}: `predictor` is `task.predictor(EMA network)`
Evaluator = Callable[[Any, int], dict[str, float]]


class Task(Protocol):
    """What the loop needs from a model family. `cfg` has `optim`, `run` and
    `data.render_threads` (and the `FIXED` keys of its class)."""

    cfg: Any

    def dataset(self) -> VideoDataset:
        """The training videos (checked)."""

    def build(self, d: Dist) -> tuple[nn.Module, Any]:
        """The network on `d.device` (torch is seeded first) and its shape, a dataclass."""

    def summary(self) -> str:
        """A few words for the start line (e.g. '64 tokens')."""

    def draw(self, step: int, device: torch.device) -> Any:
        """The random inputs of global batch `step`, from `distributed.step_generator`."""

    def batch(self, videos: torch.Tensor, draw: Any, part: slice) -> Any:
        """uint8 videos [b, T, H, W, 3] -> model inputs; `part`: their slice of the batch."""

    def loss(self, net: nn.Module, inputs: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss of a micro-batch and named parts to log."""

    def before_checkpoint(self, model: nn.Module, ema: nn.Module) -> None:
        """Refresh what a checkpoint stores beside the weights (on every rank)."""

    def samples(self, ema: nn.Module) -> dict[str, np.ndarray]:
        """Sample GIF frames [T, H, W, 3] uint8 by tag."""

    def predictor(self, ema: nn.Module) -> Any:
        """What an evaluator is handed (the DiT: a `generate.Continuation`)."""


@dataclass
class TrainResult:
    """How a call to `train` ended: the step reached, why it stopped ('done', 'time',
    'signal'), the last checkpoint, the live and EMA networks, and the last logged loss."""

    step: int
    stopped: str
    checkpoint: Path | None
    model: nn.Module
    ema: nn.Module
    loss: float | None
