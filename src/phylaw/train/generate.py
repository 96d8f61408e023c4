"""Videos in and out of the diffusion space, and continuations of condition frames.

`Codec`: the diffusion space (identity on pixels in [-1, 1], or an autoencoder's latents);
`prepare_video` / `frame_condition` / `to_uint8`: uint8 videos to model inputs and back;
`generate`: a sampler run from noise on condition frames; `Continuation`: what evaluators and
`phylaw sample` call, uint8 videos in, generated uint8 videos out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from phylaw import PhylawError
from phylaw.diffusion import (
    condition_inputs,
    ddim_sample,
    ddpm_sample,
    dpmpp_2m_sample,
    make_schedule,
)
from phylaw.diffusion.conditioning import FrameCondition
from phylaw.diffusion.schedule import Schedule
from phylaw.models.autoencoder import Autoencoder, crop_frames, latent_condition, pad_frames
from phylaw.train.config import (
    TrainConfig,
    cond_frames_in_space,
    frame_indices,
    model_resolution,
    space_shape,
)
from phylaw.train.precision import autocast

__all__ = [
    "Codec",
    "Continuation",
    "autocast",
    "autoencoder_codec",
    "codec_for",
    "frame_condition",
    "generate",
    "pixel_codec",
    "prepare_video",
    "resize_video",
    "to_uint8",
]

SAMPLER_FNS = {"ddim": ddim_sample, "dpmpp-2m": dpmpp_2m_sample, "ddpm": ddpm_sample}


# ----------------------------------------------------------------------------------------------
# Videos in and out of the diffusion space
# ----------------------------------------------------------------------------------------------


class Codec(NamedTuple):
    """The seam to the latent path.

    encode: videos [B, 3, T, r, r] in [-1, 1] (r = model resolution) -> [B, C, T', H', W'], the
    shape `config.space_shape`; decode: back to [B, 3, T, r, r]. condition (optional):
    (first c frames [B, 3, c, r, r], T) -> (condition video, mask [B, 1, T', H', W']) in the
    latent space; None takes the first `cond_frames_in_space` frames of the encoding. module
    (optional): moved to the training device. Pixel space is the identity (`pixel_codec`);
    `autoencoder_codec` wraps a trained `models.autoencoder.Autoencoder`.
    """

    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    condition: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]] | None = None
    module: nn.Module | None = None


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def pixel_codec() -> Codec:
    """Pixel-space diffusion: the identity pair."""
    return Codec(_identity, _identity)


def autoencoder_codec(ae: Autoencoder, cfg: TrainConfig) -> Codec:
    """The latent path through a trained autoencoder (`models.autoencoder`): videos padded
    causally to 1 + f k frames, encoded to normalised posterior means; decoded, denormalised
    and cropped back to `data.frames`; conditioned with `latent_condition`."""
    a, s = ae.cfg, cfg.space
    have = (a.latent_channels, a.temporal_factor, a.spatial_factor)
    want = (s.latent_channels, s.temporal_factor, s.spatial_factor)
    if have != want:
        raise PhylawError(
            f"the autoencoder has (latent channels, temporal, spatial factor) = {have}, the "
            f"config {want}; set space.latent_channels/temporal_factor/spatial_factor to match"
        )
    ae.eval().requires_grad_(False)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return ae.normalize(ae.encode(pad_frames(x, a.temporal_factor)).mean)

    def decode(z: torch.Tensor) -> torch.Tensor:
        return crop_frames(ae.decode(ae.denormalize(z)), cfg.data.frames)

    def condition(frames: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        return latent_condition(ae, frames, num_frames)

    return Codec(encode, decode, condition, ae)


def codec_for(cfg: TrainConfig, device: torch.device | str = "cpu") -> Codec:
    """The codec a config needs: the identity in pixel space; in latent space the autoencoder
    run named by `space.autoencoder` (trained with 'phylaw train-ae')."""
    if cfg.space.kind == "pixel":
        return pixel_codec()
    if not cfg.space.autoencoder:
        raise PhylawError(
            "this config trains on autoencoder latents (space.kind=latent) but names no "
            "autoencoder: train one with 'phylaw train-ae' and --set space.autoencoder=DIR"
        )
    from phylaw.train.ae import load_autoencoder

    return autoencoder_codec(load_autoencoder(cfg.space.autoencoder, device), cfg)


def frame_condition(
    codec: Codec, cfg: TrainConfig, x: torch.Tensor, z0: torch.Tensor | None = None
) -> FrameCondition:
    """The condition in the diffusion space of pixel videos x [B, 3, T, r, r] (z0: their
    encoding, when at hand): the codec's own, else the first frames of the encoding."""
    if codec.condition is not None:
        video, mask = codec.condition(x[:, :, : cfg.diffusion.cond_frames], x.shape[2])
        return FrameCondition(video, mask)
    z0 = codec.encode(x) if z0 is None else z0
    return condition_inputs(z0, cond_frames_in_space(cfg))


def resize_video(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, C, T, size, size]: area average down; nearest up by an integer
    factor (each pixel becomes a block around the same centre, so coverage-weighted centroids
    do not move), bilinear up otherwise."""
    b, c, t, h, w = x.shape
    if (h, w) == (size, size):
        return x
    if size < h:
        return F.adaptive_avg_pool3d(x, (t, size, size))
    mode = "nearest" if size % h == 0 and size % w == 0 else "trilinear"
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(x, size=(t, size, size), mode=mode, **kwargs)


def prepare_video(
    video: torch.Tensor | np.ndarray, cfg: TrainConfig, device: torch.device | str
) -> torch.Tensor:
    """uint8 videos [B, T, H, W, 3] -> float32 [B, 3, T', r, r] in [-1, 1] on `device`.

    T' = `data.frames` frames at `frame_indices(cfg)`; r = `model_resolution(cfg)`, reached by
    area averaging (or, for smaller inputs, upsampling as `resize_video`).
    """
    video = torch.as_tensor(video)
    idx = frame_indices(cfg)
    if video.ndim != 5 or video.shape[-1] != 3 or video.shape[1] <= idx[-1]:
        raise PhylawError(
            f"videos must be uint8 [B, T, H, W, 3] with T > {idx[-1]} for this model; got "
            f"{tuple(video.shape)}"
        )
    x = video[:, idx].to(device, non_blocking=True).permute(0, 4, 1, 2, 3)  # [B, 3, T', H, W]
    x = x.float().mul_(1 / 127.5).sub_(1.0)
    return resize_video(x, model_resolution(cfg))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, 3] on the CPU (clamped, rounded)."""
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu()


# ----------------------------------------------------------------------------------------------
# Generation: continuations of the condition frames
# ----------------------------------------------------------------------------------------------


def noise_for(seeds: list[int], shape: tuple[int, ...], base_seed: int = 0) -> torch.Tensor:
    """Initial noise [len(seeds), *shape], one CPU generator per video seeded by (base, seed):
    a video's sample does not depend on its batch."""
    out = torch.empty((len(seeds), *shape))
    for i, s in enumerate(seeds):
        mixed = int(np.random.SeedSequence([base_seed, int(s)]).generate_state(1, np.uint64)[0])
        out[i] = torch.randn(shape, generator=torch.Generator().manual_seed(mixed))
    return out


def generate(
    model: nn.Module,
    cfg: TrainConfig,
    schedule: Schedule,
    cond: FrameCondition,
    noise: torch.Tensor,
    *,
    steps: int,
    sampler: str = "ddim",
    precision: str = "auto",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample videos in the diffusion space that continue the condition `cond`.

    cond: FrameCondition (video [B, C, T, H, W], mask [B, 1, T, H, W]), re-imposed where the
    mask is 1; noise: x_T [B, C, T, H, W]; generator: the noise of the stochastic sampler
    'ddpm' (unused by 'ddim', 'dpmpp-2m'). Pixel space clamps x0_hat to [-1, 1]. Returns
    [B, C, T, H, W] float32.
    """
    device = cond.video.device

    def denoiser(x: torch.Tensor, t: torch.Tensor, c: Any) -> torch.Tensor:
        return model(x, t, c.video, c.mask).float()

    with torch.no_grad(), autocast(device, precision):
        return SAMPLER_FNS[sampler](
            denoiser,
            tuple(noise.shape),
            cond,
            schedule,
            steps,
            cfg.diffusion.prediction,
            generator,
            known=cond,
            x_T=noise.to(device),
            clip_x0=1.0 if cfg.space.kind == "pixel" else None,
            device=device,
        )


class Continuation:
    """What an evaluator calls: uint8 videos [B, T, H, W, 3] -> generated [B, T', H, W, 3].

    The model sees frames `frame_indices` of each input video (T' of them) at its resolution;
    it is given the first `cond_frames` and generates the rest, which come back at the input's
    resolution (`resize_video`). The condition frames of the output are the input's own.
    Per-video noise comes from `seeds` (default 0..B-1), so results do not depend on batching
    (for the deterministic samplers ddim and dpmpp-2m).
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        codec: Codec | None = None,
        *,
        device: torch.device | str = "cpu",
        steps: int | None = None,
        sampler: str | None = None,
        batch_size: int = 16,
        precision: str | None = None,
        seed: int = 0,
    ) -> None:
        self.model, self.cfg = model, cfg
        self.codec = codec or pixel_codec()
        self.device = torch.device(device)
        self.steps = steps or cfg.diffusion.sample_steps
        self.sampler = sampler or cfg.diffusion.sampler
        self.batch_size, self.seed = batch_size, seed
        self.precision = precision or cfg.run.precision
        self.schedule = make_schedule(
            cfg.diffusion.schedule, cfg.diffusion.num_steps, cfg.diffusion.zero_terminal_snr
        )
        self.frame_indices = frame_indices(cfg)
        self.cond_frames = cfg.diffusion.cond_frames
        self.shape = space_shape(cfg)

    def __call__(
        self, videos: np.ndarray | torch.Tensor, seeds=None, size: int | None = None
    ) -> np.ndarray:
        """videos uint8 [B, T, H, W, 3] -> uint8 [B, T', size, size, 3] (size: default H).

        seeds: one integer per video (default 0..B-1). With another `size` than the input's,
        the condition frames are the model's (the known frames, resized), not the input's.
        """
        videos = torch.as_tensor(np.asarray(videos))
        seeds = list(range(len(videos))) if seeds is None else [int(s) for s in seeds]
        same = size is None or size == videos.shape[2]
        size = size or videos.shape[2]
        out = []
        for start in range(0, len(videos), self.batch_size):
            chunk = videos[start : start + self.batch_size]
            with torch.no_grad():
                cond = frame_condition(
                    self.codec, self.cfg, prepare_video(chunk, self.cfg, self.device)
                )
                batch_seeds = seeds[start : start + len(chunk)]
                noise = noise_for(batch_seeds, self.shape, self.seed)
                gen = torch.Generator(self.device).manual_seed(batch_seeds[0] + self.seed)
                z = generate(
                    self.model,
                    self.cfg,
                    self.schedule,
                    cond,
                    noise,
                    steps=self.steps,
                    sampler=self.sampler,
                    precision=self.precision,
                    generator=gen,
                )
                frames = to_uint8(resize_video(self.codec.decode(z).float(), size))
            if same:
                frames[:, : self.cond_frames] = chunk[:, self.frame_indices[: self.cond_frames]]
            out.append(frames.numpy())
        return np.concatenate(out)
