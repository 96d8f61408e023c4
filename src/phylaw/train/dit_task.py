"""The DiT's training task: frame-conditioned video diffusion (Sec. 3.1, Appendix A.2, eq. 2).

What the training loop (`train.loop`) asks of a task, for the DiT:

* data: the split `data.train` at `data.resolution_px`, long enough for the clip
  (`data.frames` every `data.frame_stride`);
* draws of step k: timesteps (`diffusion.timesteps`) with their loss weights
  (`diffusion.loss_weighting`) and noise for the whole global batch, from the generator of
  (seed, k) (`distributed.step_generator`), and which of its videos are mirrored left-right
  (`data.hflip`, the Set-2 augmentation of Sec. 5.2; `data.augment.hflip_mask` of (seed, k),
  its own stream: the noise does not depend on it, and a resumed run flips the same videos);
* batch: uint8 videos -> [-1, 1], the clip's frames, area-averaged by `data.downsample`,
  mirrored along the width where the step's flip mask says, then `codec.encode` (identity in
  pixel space; the autoencoder's encoder in latent space) and the frame condition
  (`generate.frame_condition`);
* loss: `diffusion.training_loss` of the denoiser, masked to the generated frames;
* precision probe: one forward + backward pass of the network on a small random batch, which
  `run.precision=auto` times in fp32 and bf16 on a CPU (`train.precision`);
* samples: ground truth | continuation GIFs of fixed videos of each split (EMA weights);
* predictor: a `generate.Continuation` of the EMA network, what an evaluator is handed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from phylaw import PhylawError
from phylaw.data.augment import hflip_mask
from phylaw.data.dataset import VideoDataset
from phylaw.data.info import side_by_side
from phylaw.data.store import open_store
from phylaw.diffusion import (
    frame_mask,
    loss_weights,
    make_schedule,
    sample_timesteps,
    training_loss,
)
from phylaw.models.dit import DiT, DiTConfig
from phylaw.train.config import (
    TrainConfig,
    frame_indices,
    micro_batch,
    network_config,
    space_shape,
)
from phylaw.train.distributed import Dist, step_generator
from phylaw.train.generate import (
    Codec,
    Continuation,
    codec_for,
    frame_condition,
    prepare_video,
)
from phylaw.train.loop import fit
from phylaw.train.precision import model_step
from phylaw.train.task import Evaluator, TrainResult

__all__ = ["DiffusionTask", "mirror"]


def mirror(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Videos [B, C, T, H, W] mirrored along W where ``flip`` [B] (bool) is set; the mirrored
    frames are the renderings of x -> 10 - x, v_x -> -v_x (`data.augment`)."""
    if not bool(flip.any()):
        return x
    return torch.where(flip.to(x.device).view(-1, 1, 1, 1, 1), x.flip(-1), x)


class DiffusionTask:
    """The DiT diffusion task of a `TrainConfig` (see the module docstring).

    codec: the latent path's `Codec` (None: `codec_for(cfg)`, i.e. the identity in pixel space
    and the autoencoder run `space.autoencoder` in latent space).
    """

    def __init__(self, cfg: TrainConfig, codec: Codec | None = None) -> None:
        self.cfg = cfg
        self.codec = codec or codec_for(cfg)
        d = cfg.diffusion
        self.schedule = make_schedule(d.schedule, d.num_steps, d.zero_terminal_snr)
        self.shape = space_shape(cfg)
        self.network: DiTConfig = network_config(cfg)
        self.device, self.micro_batch = torch.device("cpu"), cfg.run.batch_size
        self._sample_videos: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    # ---- setup
    def dataset(self) -> VideoDataset:
        """The training split, checked to hold the clip's frames."""
        cfg = self.cfg
        if not cfg.data.train:
            raise PhylawError("no training split: give --data DIR (built with 'phylaw data build')")
        dataset = VideoDataset(open_store(cfg.data.train), cfg.data.resolution_px)
        have, need = dataset.store.manifest["num_frames"], frame_indices(cfg)[-1] + 1
        if have < need:
            raise PhylawError(
                f"{cfg.data.train} has {have} frames per video; data.frames x data.frame_stride "
                f"needs {need}"
            )
        return dataset

    def build(self, d: Dist) -> tuple[nn.Module, DiTConfig]:
        """The DiT on this rank's device (the loop seeds torch first), and its shape."""
        self.device, self.micro_batch = d.device, micro_batch(self.cfg, d.world_size)
        model = DiT(self.network).to(d.device)
        if self.codec.module is not None:
            self.codec.module.to(d.device)
        return model, self.network

    def summary(self) -> str:
        """What the start line says besides the parameter count."""
        return f"{self.network.num_tokens} tokens"

    def precision_probe(self, model: nn.Module):
        """`step(precision)`: one pass of `model` on a random batch of up to 8 (the probe)."""
        return model_step(model, self.shape, min(self.micro_batch, 8), self.device)

    # ---- one step
    def draw(self, step: int, device: torch.device) -> tuple[torch.Tensor | None, ...]:
        """Timesteps [B], noise [B, C, T, H, W], flip mask [B] (bool) and loss weights [B]
        (None: eq. 2's uniform weights) of global batch `step`."""
        gen = step_generator(self.cfg.run.seed, step, device)
        batch, d = self.cfg.run.batch_size, self.cfg.diffusion
        kw = dict(kind=d.timesteps, mean=d.logit_mean, std=d.logit_std)
        t_all = sample_timesteps(batch, self.schedule, gen, device, **kw)
        noise_all = torch.randn((batch, *self.shape), generator=gen, device=device)
        flip = hflip_mask(self.cfg.run.seed, step, batch, self.cfg.data.hflip)
        w_all = loss_weights(d.loss_weighting, t_all, self.schedule, d.prediction, d.min_snr_gamma)
        return t_all, noise_all, torch.from_numpy(flip).to(device), w_all

    def batch(self, videos: torch.Tensor, draw: Any, part: slice) -> tuple:
        """uint8 videos [b, T, H, W, 3] -> (x0 in the diffusion space, condition, t, noise,
        loss weights or None)."""
        t_all, noise_all, flip_all, w_all = draw
        x = mirror(prepare_video(videos, self.cfg, self.device), flip_all[part])
        z0 = self.codec.encode(x)
        cond = frame_condition(self.codec, self.cfg, x, z0)
        if tuple(z0.shape[1:]) != self.shape or cond.mask.shape[2:] != z0.shape[2:]:
            raise PhylawError(
                f"the codec encodes to {tuple(z0.shape[1:])}, the config expects {self.shape} "
                "(space.*)"
            )
        return z0, cond, t_all[part], noise_all[part], None if w_all is None else w_all[part]

    def loss(self, net: nn.Module, inputs: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        """The frame-masked diffusion loss of one micro-batch (eq. 2)."""
        z0, cond, t, noise, weight = inputs

        def denoiser(x: torch.Tensor, t: torch.Tensor, c: Any) -> torch.Tensor:
            return net(x, t, c.video, c.mask)

        prediction = self.cfg.diffusion.prediction
        mask = frame_mask(cond.mask)
        loss = training_loss(denoiser, z0, cond, t, noise, self.schedule, prediction, mask, weight)
        return loss, {}

    def before_checkpoint(self, model: nn.Module, ema: nn.Module) -> None:
        """Nothing to refresh before a DiT checkpoint."""

    # ---- what the EMA network produces
    def predictor(self, ema: nn.Module) -> Continuation:
        """A `Continuation` of the EMA network: what an evaluator is handed."""
        return Continuation(
            ema, self.cfg, self.codec, device=self.device, batch_size=max(self.micro_batch, 4)
        )

    def samples(self, ema: nn.Module) -> dict[str, np.ndarray]:
        """Ground truth | continuation panels [T, H', W', 3] of fixed videos of each split."""
        if self._sample_videos is None:
            self._sample_videos = self._pick_sample_videos()
        continuation = self.predictor(ema)
        out = {}
        for tag, (ids, videos) in self._sample_videos.items():
            generated = continuation(videos, seeds=ids)
            out[tag] = side_by_side(videos[:, frame_indices(self.cfg)], generated)
        return out

    def _pick_sample_videos(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Fixed (ids, uint8 videos) per available split for the sample GIFs."""
        cfg, out = self.cfg, {}
        splits = {
            "train": cfg.data.train,
            "eval_id": cfg.data.eval_id,
            "eval_ood": cfg.data.eval_ood,
        }
        for tag, root in splits.items():
            if not root:
                continue
            ds = VideoDataset(root, cfg.data.resolution_px)
            n = min(cfg.run.sample_count, len(ds))
            rows = np.sort(np.random.default_rng([cfg.run.seed, 7]).permutation(len(ds))[:n])
            batch = ds.render_rows(ds.rows[rows])
            out[tag] = (batch["index"].numpy(), batch["video"].numpy())
        return out


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    codec: Codec | None = None,
    evaluator: Evaluator | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) the DiT run `cfg` in `run_dir` (`train.loop.fit` says how).

    codec: the latent path's `Codec` (None: `codec_for(cfg)`, i.e. the identity in pixel space
    and the autoencoder run `space.autoencoder` in latent space);
    evaluator(continuation, step) -> {name: value}: called on rank 0 every `run.eval_every`
    steps with a `Continuation` of the EMA network, its values logged as 'eval/<name>' (the
    CLI and the experiment stages pass `experiments.quickeval.QuickEval`).
    Works alone or under torchrun (`train.distributed`). Returns a `TrainResult`.
    """
    return fit(DiffusionTask(cfg, codec), run_dir, evaluator=evaluator, progress=progress)
