"""The autoencoder's training task (`phylaw train-ae`), its loss, and loading a trained one.

The paper's (2+1)D-VAE was pretrained on internet images and videos (A.3.1); no pretrained
weights can be downloaded here, so phylaw trains its own on the scenario's own videos, with the
training loop the DiT uses (`train.loop.fit`: optimizer, learning rate, EMA, checkpoints,
logging, time budget, signals, exact resume, DDP). The loss of one batch (x in [-1, 1], x_hat
the decoding of a posterior sample):

    fg   = 1 - min over RGB of the pixel in [0, 1]       0 on the white background, 1 on a ball
    w    = 1 + fg_weight * max(fg(x), fg(x_hat))         up-weights objects and ghost objects
    loss = sum(w |x_hat - x|) / sum(w) + kl_weight * mean KL(q(z|x) || N(0, I))

    loss += centroid_weight * mean_frames,channels |centroid(dark(x_hat)) - centroid(dark(x))|_px

Balls cover a few per cent of the pixels; without the weight a short run learns the background
and blurs the balls away. The centroid term (dark = (1 - x) / 2 per RGB channel, so red and blue
balls fall in different channels) asks directly for what the evaluation reads from a video, the
objects' positions. Measured at ~120 steps of `ae-small` (`benchmarks/bench_autoencoder.py`,
one run each): the per-frame velocity error of reconstructions fell from 1.09 to 0.91; the
Table-3 (mean-velocity) error was 0.035 without it and 0.029 / 0.037 with it, i.e. unresolved.

The KL weight is tiny (SD1.5-VAE's 1e-6): it keeps latents bounded without costing
reconstruction. Training clips are `data.clip_frames` = 1 + 4k consecutive frames at a random
offset of the padded video: the network is convolutional and causal, so a clip's first frame is
encoded alone as a video's first frame is. The offsets and the posterior noise of step k are
drawn for the global batch from the generator of (seed, k), so a resumed run has the same
weights as an uninterrupted one. The weighted mean is taken per micro-batch, so under DDP or
gradient accumulation a run's weights depend slightly on how the global batch is split (with
`fg_weight` and `centroid_weight` 0 they match one process up to float order). Before every
checkpoint the per-channel latent mean and std are re-estimated on `data.stats_videos` fixed
videos (`Autoencoder.normalize`).

A run directory is the DiT's (`train.rundir`, `train.checkpoint`): RUN/config.json,
RUN/checkpoints/step_N/{model,ema,optimizer}.safetensors + state.json (kind 'autoencoder'),
metrics.jsonl (loss and its parts `rec`, `kl`, `centroid_px`), tb/, samples/ (ground truth |
reconstruction). `load_autoencoder(RUN)` reads the latest checkpoint's EMA weights (the live
ones with the presets' `optim.ema_decay` 0). The single-file format of earlier versions
(RUN/ae.safetensors) is refused with a line that says to retrain.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from phylaw import PhylawError
from phylaw.data.dataset import VideoDataset
from phylaw.data.info import side_by_side
from phylaw.data.store import open_store
from phylaw.models.autoencoder import Autoencoder, AutoencoderConfig, crop_frames, pad_frames
from phylaw.train.ae_config import AETrainConfig
from phylaw.train.checkpoint import load_module, read_state, resolve_checkpoint
from phylaw.train.distributed import Dist, step_generator
from phylaw.train.loop import TrainResult, fit

__all__ = [
    "AutoencoderTask",
    "centroid_error",
    "load_autoencoder",
    "reconstruct",
    "reconstruction_loss",
    "to_model_video",
    "train_autoencoder",
]

OLD_CHECKPOINT = "ae.safetensors"  # the single-file format of earlier versions


#################################################################################
#                                  The loss                                     #
#################################################################################


def to_model_video(video: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] (a `VideoDataset` batch) -> float [B, 3, T, H, W] in [-1, 1]."""
    return video.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def _foreground(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] in [-1, 1] -> [B, 1, T, H, W]: 0 on white, 1 on a saturated colour."""
    return (1.0 - (x.amin(dim=1, keepdim=True) + 1.0) / 2.0).clamp(0.0, 1.0)


def centroid_error(
    recon: torch.Tensor, target: torch.Tensor, min_mass: float = 1.0
) -> torch.Tensor:
    """Mean distance in pixels between the centroids of each channel's darkness, per frame.

    Darkness = (1 - x) / 2 clipped to [0, 1] (0 on the white background): a red ball is dark in
    G and B, a blue one in R and G. recon, target: [B, 3, T, H, W]. Frames and channels whose
    target darkness sums to less than `min_mass` pixels are left out. Returns a scalar.
    """
    h, w = target.shape[-2:]
    rows = torch.arange(h, dtype=recon.dtype, device=recon.device)
    cols = torch.arange(w, dtype=recon.dtype, device=recon.device)

    def centroid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = ((1.0 - x) / 2.0).clamp(0.0, 1.0)  # [B, 3, T, H, W]
        mass = d.sum((-1, -2)).clamp_min(1e-3)  # [B, 3, T]
        cy = (d.sum(-1) * rows).sum(-1) / mass
        cx = (d.sum(-2) * cols).sum(-1) / mass
        return torch.stack([cx, cy], -1), mass  # [B, 3, T, 2], [B, 3, T]

    c_rec, _ = centroid(recon)
    c_tgt, mass = centroid(target)
    keep = (mass >= min_mass).to(recon.dtype)  # [B, 3, T]
    dist = (c_rec - c_tgt).norm(dim=-1)  # [B, 3, T]
    return (dist * keep).sum() / keep.sum().clamp_min(1.0)


def reconstruction_loss(
    recon: torch.Tensor,
    target: torch.Tensor,
    kl: torch.Tensor,
    fg_weight: float,
    kl_weight: float,
    centroid_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Foreground-weighted L1 + weighted mean KL (+ centroid term; module docstring).

    recon, target: [B, 3, T, H, W]; kl: per-element KL [B, z, T', H', W']. Returns the scalar loss
    and its parts as floats.
    """
    recon = recon.float()
    with torch.no_grad():
        w = 1.0 + fg_weight * torch.maximum(_foreground(target), _foreground(recon))  # [B,1,T,H,W]
    rec = (w * (recon - target).abs()).sum() / (w.sum() * recon.shape[1])
    kl_mean = kl.float().mean()
    loss = rec + kl_weight * kl_mean
    parts = {"rec": rec.item(), "kl": kl_mean.item()}
    if centroid_weight > 0:
        cen = centroid_error(recon, target)
        loss = loss + centroid_weight * cen
        parts["centroid_px"] = cen.item()
    return loss, {"loss": loss.item(), **parts}


def clips(video: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
    """Clips of `frames` frames from `starts`: [B, C, T, H, W] -> [B, C, frames, H, W]."""
    if frames >= video.shape[2]:
        return video
    return torch.stack([video[i, :, s : s + frames] for i, s in enumerate(starts.tolist())])


@torch.no_grad()
def reconstruct(ae: Autoencoder, video: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> reconstructed uint8 [B, T, H, W, 3] on the CPU (posterior
    mean, on the autoencoder's device)."""
    x = to_model_video(torch.as_tensor(video).to(ae.latent_mean.device))
    t = x.shape[2]
    z = ae.encode(pad_frames(x, ae.cfg.temporal_factor)).mean
    y = crop_frames(ae.decode(z), t)
    y = ((y.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.permute(0, 2, 3, 4, 1).cpu()


@torch.no_grad()
def latent_stats(ae: Autoencoder, videos: torch.Tensor, chunk: int = 8) -> None:
    """Set `latent_mean` / `latent_std` from the posterior means of uint8 videos [N, T, H, W, 3]."""
    was_training = ae.training
    ae.eval()
    f, device = ae.cfg.temporal_factor, ae.latent_mean.device
    z = torch.cat(
        [
            ae.encode(pad_frames(to_model_video(videos[i : i + chunk].to(device)), f))
            .mean.transpose(0, 1)
            .flatten(1)
            for i in range(0, len(videos), chunk)
        ],
        1,
    )
    ae.latent_mean.copy_(z.mean(1))
    ae.latent_std.copy_(z.std(1).clamp_min(1e-6))
    ae.train(was_training)


#################################################################################
#                                  The task                                     #
#################################################################################


class AutoencoderTask:
    """The reconstruction task of an `AETrainConfig`, for `train.loop.fit` (module docstring)."""

    def __init__(self, cfg: AETrainConfig) -> None:
        self.cfg = cfg
        self.device = torch.device("cpu")
        self.padded_frames = self.clip_frames = 0
        self._dataset: VideoDataset | None = None
        self._stats_videos: torch.Tensor | None = None

    def dataset(self) -> VideoDataset:
        """The training split at `data.resolution_px`, all its frames."""
        cfg = self.cfg
        if not cfg.data.train:
            raise PhylawError("no training split: give --data DIR (built with 'phylaw data build')")
        self._dataset = VideoDataset(open_store(cfg.data.train), cfg.data.resolution_px)
        t, f = self._dataset.store.manifest["num_frames"], cfg.model.temporal_factor
        self.padded_frames = 1 + f * math.ceil((t - 1) / f)
        clip = cfg.data.clip_frames
        self.clip_frames = self.padded_frames if clip == 0 else min(clip, self.padded_frames)
        return self._dataset

    def build(self, d: Dist) -> tuple[nn.Module, AutoencoderConfig]:
        """The autoencoder on this rank's device (the loop seeds torch first), and its shape."""
        self.device = d.device
        return Autoencoder(self.cfg.model).to(d.device), self.cfg.model

    def summary(self) -> str:
        """What the start line says besides the parameter count."""
        res = self.cfg.data.resolution_px
        shape = self.cfg.model.latent_shape(self.clip_frames, res, res)
        return f"latents {'x'.join(map(str, shape))} per clip of {self.clip_frames} frames"

    def draw(self, step: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip offsets [B] and posterior noise [B, z, T', H', W'] of global batch `step`."""
        gen = step_generator(self.cfg.run.seed, step, device)
        batch, res = self.cfg.run.batch_size, self.cfg.data.resolution_px
        last = self.padded_frames - self.clip_frames
        starts = torch.randint(0, last + 1, (batch,), generator=gen, device=device)
        shape = self.cfg.model.latent_shape(self.clip_frames, res, res)
        return starts, torch.randn((batch, *shape), generator=gen, device=device)

    def batch(self, videos: torch.Tensor, draw: tuple, part: slice) -> tuple:
        """uint8 videos [b, T, H, W, 3] -> (clips [b, 3, clip, H, W] in [-1, 1], their noise)."""
        starts, noise = draw
        x = to_model_video(videos.to(self.device, non_blocking=True))
        x = pad_frames(x, self.cfg.model.temporal_factor)
        return clips(x, starts[part], self.clip_frames), noise[part]

    def loss(self, net: nn.Module, inputs: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        """The reconstruction loss of one micro-batch and its parts (rec, kl, centroid_px)."""
        x, noise = inputs
        recon, post = net(x, noise=noise)
        w = self.cfg.loss
        loss, parts = reconstruction_loss(
            recon, x, post.kl(), w.fg_weight, w.kl_weight, w.centroid_weight
        )
        parts.pop("loss")
        return loss, parts

    def stats_videos(self) -> torch.Tensor:
        """The fixed uint8 videos [N, T, H, W, 3] of the latent statistics and the samples."""
        if self._stats_videos is None:
            ds = self._dataset
            n = min(self.cfg.data.stats_videos, len(ds))
            rows = np.random.default_rng(self.cfg.run.seed).choice(len(ds), n, replace=False)
            self._stats_videos = ds.render_rows(ds.rows[rows])["video"]
        return self._stats_videos

    def before_checkpoint(self, model: nn.Module, ema: nn.Module) -> None:
        """Re-estimate the latent normalisation with the EMA weights; copy it to the live ones."""
        latent_stats(ema, self.stats_videos())
        with torch.no_grad():
            model.latent_mean.copy_(ema.latent_mean)
            model.latent_std.copy_(ema.latent_std)

    def predictor(self, ema: nn.Module):
        """`reconstruct` with the EMA network: uint8 videos in, reconstructions out."""
        return functools.partial(reconstruct, ema)

    def samples(self, ema: nn.Module) -> dict[str, np.ndarray]:
        """A ground truth | reconstruction panel of `run.sample_count` training videos."""
        truth = self.stats_videos()[: self.cfg.run.sample_count]
        if not len(truth):
            return {}
        return {"train": side_by_side(truth.numpy(), reconstruct(ema, truth).numpy())}


#################################################################################
#                           Training and loading                                #
#################################################################################


def _refuse_old_format(path: Path) -> None:
    if path.suffix == ".safetensors" or (path / OLD_CHECKPOINT).is_file():
        raise PhylawError(
            f"{path} holds an autoencoder in the single-file format of earlier versions "
            f"({OLD_CHECKPOINT}), which this version does not read; retrain it with "
            "'phylaw train-ae --data DIR --out NEW_DIR'"
        )


def train_autoencoder(
    cfg: AETrainConfig, run_dir: str | Path, *, progress: bool = True
) -> TrainResult:
    """Train (or resume) the autoencoder run `cfg` in `run_dir` (`train.loop.fit`): until
    `run.steps`, `run.max_minutes` of training summed over resumes, or a signal."""
    _refuse_old_format(Path(run_dir))
    return fit(AutoencoderTask(cfg), run_dir, progress=progress)


def load_autoencoder(path: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The trained autoencoder of a run directory (its latest checkpoint) or of a checkpoint
    folder, with its EMA weights, in eval mode on `device`."""
    path = Path(path)
    _refuse_old_format(path)
    ckpt = resolve_checkpoint(path)
    state = read_state(ckpt, kind="autoencoder")
    model = Autoencoder(state["config"].model)
    load_module(model, ckpt / "ema.safetensors")
    return model.to(device).eval()
