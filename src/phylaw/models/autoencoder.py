"""The video autoencoder: a causal (2+1)D KL-VAE after the paper's (2+1)D-VAE (Sec. 2.2, A.3.1).

Structure (SD1.5-VAE-like, smaller, no attention). Every spatial operation is a per-frame 2D
convolution; time is mixed only by *causal* temporal convolutions (padded at the head of the
sequence by repeating the first frame, never at the tail), and GroupNorm statistics are taken per
frame. A latent or output frame therefore never depends on a later frame. The encoder's levels
end in a stride-2 spatial downsample; the last `log2(temporal_factor)` of them also halve time
with a causal stride-2 temporal convolution ("the final few 2D downsample blocks ... into 3D
ones"). The decoder mirrors it: temporal upsampling is a per-frame 1x1 convolution into two frames
(initialised to repeat the frame, i.e. nearest neighbour), spatial upsampling a 3x3 convolution
and a channel-to-space shuffle initialised to behave like nearest interpolation, as in A.3.1.
Latents are a diagonal Gaussian, KL-regularised towards N(0, I) during training.

Frame counts. Time is compressed causally with the first frame encoded on its own: T = 1 + f k
frames (f = temporal_factor) give 1 + k latent frames, latent frame 0 covers frame 0 alone and
latent frame j >= 1 covers frames f(j-1)+1 .. f j (and, through the causal receptive field, sees
earlier frames). The paper's 32-frame videos are padded to 33 by repeating the last frame
(`pad_frames`), encoded to 9 latent frames, and cropped back to 32 after decoding
(`crop_frames`). Repeating the last frame adds no new content and, the encoder being causal, the
first 8 latent frames are exactly those of the unpadded frames; only the last latent also sees
the repeated frame.

Conditioning in latent space (`latent_condition`). The paper conditions on c = 3 pixel frames,
but latent frame 1 covers frames 1..4, two of which are unknown. We encode the c condition
frames, padded by repeating the last one up to the end of the last latent frame they touch, and
give those latents to the DiT as its condition video; the mask is 1 only on latent frames whose
frames all lie among the condition frames (latent 0 for c = 3). So the condition carries all that
the 3 frames say (latent 1 of the padded clip encodes frames 1 and 2, i.e. the velocity), the
partly known latent 1 is still generated (it is in the loss and not re-imposed by the sampler),
and nothing the model sees depends on unknown frames. After decoding, the first c frames can be
replaced by the given condition frames; the evaluation skips them anyway.

Tensors at the API are [B, C, T, H, W] with pixels in [-1, 1]; internally activations are held
frame-major, [B, T, C, H, W], so that per-frame ops are views of a [B T, C, H, W] batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AE_PRESETS",
    "Autoencoder",
    "AutoencoderConfig",
    "DiagonalGaussian",
    "autoencoder_config",
    "crop_frames",
    "latent_condition",
    "latent_num_frames",
    "pad_frames",
]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Shape of the autoencoder. Defaults: `ae-paper` (8x spatial, 4x temporal, 4 channels)."""

    in_channels: int = 3  # RGB
    latent_channels: int = 4  # z channels (the DiT's in_channels)
    channels: tuple[int, ...] = (64, 128, 256, 256)  # width per level; levels - 1 downsamples
    temporal_down: tuple[bool, ...] = (False, True, True)  # which downsamples also halve time
    num_res_blocks: int = 1  # per encoder level; the decoder has one more (as SD1.5)
    resolution_px: int = 128  # frame size the preset is meant for (the network is convolutional)
    num_frames: int = 32  # video length the preset is meant for (padded to 1 + f k inside)

    def __post_init__(self) -> None:
        if len(self.temporal_down) != len(self.channels) - 1:
            raise ValueError(
                f"temporal_down needs one flag per downsample ({len(self.channels) - 1}), "
                f"got {len(self.temporal_down)}"
            )
        if any(c % 8 for c in self.channels):
            raise ValueError(f"channels must be multiples of 8 (GroupNorm), got {self.channels}")
        if self.resolution_px % self.spatial_factor:
            raise ValueError(
                f"resolution_px {self.resolution_px} is not divisible by the spatial factor "
                f"{self.spatial_factor}"
            )

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent pixel along H and W."""
        return 2 ** (len(self.channels) - 1)

    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame (after the first, which is encoded alone)."""
        return 2 ** sum(self.temporal_down)

    def latent_shape(self, num_frames: int, height_px: int, width_px: int) -> tuple[int, ...]:
        """(C, T', H', W') of the latent of a video, T' after padding (`latent_num_frames`)."""
        s = self.spatial_factor
        t = latent_num_frames(num_frames, self.temporal_factor)
        return (self.latent_channels, t, height_px // s, width_px // s)


#################################################################################
#                     Frame counts and latent conditioning                      #
#################################################################################


def latent_num_frames(num_frames: int, temporal_factor: int) -> int:
    """Latent frames of a T-frame video once padded to 1 + f k frames: 1 + ceil((T - 1) / f)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return 1 + math.ceil((num_frames - 1) / temporal_factor)


def pad_frames(video: torch.Tensor, temporal_factor: int) -> torch.Tensor:
    """Repeat the last frame until T = 1 + f k. video: [B, C, T, H, W] -> [B, C, 1 + f k, H, W]."""
    t = video.shape[2]
    extra = (latent_num_frames(t, temporal_factor) - 1) * temporal_factor + 1 - t
    if extra == 0:
        return video
    return torch.cat([video, video[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)


def crop_frames(video: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The first `num_frames` frames of a decoded video: [B, C, T, H, W] -> [B, C, T0, H, W]."""
    return video[:, :, :num_frames]


def latent_condition(
    ae: Autoencoder, frames: torch.Tensor, num_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Condition video and mask in latent space for c known pixel frames (module docstring).

    frames: [B, 3, c, H, W] in [-1, 1], the first c frames of a `num_frames`-frame video.
    Returns (cond [B, z, T', H', W'] normalised posterior means, zero on latent frames no
    condition frame touches; mask [B, 1, T', H', W'], 1 on latent frames covered only by
    condition frames). For c = 3 and f = 4: latents 0 and 1 are given, the mask marks latent 0.
    """
    f, c = ae.cfg.temporal_factor, frames.shape[2]
    if not 1 <= c <= num_frames:
        raise ValueError(f"need 1 <= condition frames <= {num_frames}, got {c}")
    touched = latent_num_frames(c, f)  # latent frames that see a condition frame
    known = 1 + (c - 1) // f  # latent frames that see nothing else
    lat = ae.normalize(ae.encode(pad_frames(frames, f)).mean)  # [B, z, touched, H', W']
    b, z, _, h, w = lat.shape
    t_lat = latent_num_frames(num_frames, f)
    cond = lat.new_zeros(b, z, t_lat, h, w)
    cond[:, :, :touched] = lat
    mask = lat.new_zeros(b, 1, t_lat, h, w)
    mask[:, :, :known] = 1
    return cond, mask


#################################################################################
#                                 Building blocks                               #
#################################################################################


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels, eps=1e-6)


def _per_frame(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D layer to every frame: x [B, T, C, H, W] -> [B, T, C', H', W']."""
    b, t = x.shape[:2]
    y = layer(x.flatten(0, 1))  # [B T, C', H', W']
    return y.unflatten(0, (b, t))


class CausalTimeConv(nn.Module):
    """Temporal convolution over `kernel` frames, causal: the head of the sequence is padded by
    repeating frame 0. Stride 2 maps T = 1 + 2m frames to 1 + m, output j seeing frames <= 2j.

    Implemented as a 1x1 2D convolution over the `kernel` shifted copies stacked on channels.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(kernel * c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if self.stride > 1 and (t - 1) % self.stride:
            raise ValueError(f"a causal stride-{self.stride} conv needs T = 1 + {self.stride}k")
        n = (t - 1) // self.stride + 1  # output frames
        head = x[:, :1].expand(-1, self.kernel - 1, -1, -1, -1)
        xp = torch.cat([head, x], dim=1)  # [B, T + k - 1, C, H, W]
        taps = [xp[:, i :: self.stride][:, :n] for i in range(self.kernel)]  # k x [B, n, C, H, W]
        return _per_frame(self.conv, torch.cat(taps, dim=2))  # [B, n, C_out, H, W]


class ResBlock(nn.Module):
    """(2+1)D residual block: two per-frame 3x3 convs, then a causal temporal conv (zero-init,
    so the block starts as its 2D counterpart), each behind GroupNorm and SiLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.norm_t, self.conv_t = _norm(c_out), CausalTimeConv(c_out, c_out)
        nn.init.zeros_(self.conv_t.conv.weight)
        nn.init.zeros_(self.conv_t.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        f = x.flatten(0, 1)  # [B T, Ci, H, W]: frames as a batch
        h = self.conv1(F.silu(self.norm1(f)))  # [B T, Co, H, W]
        h = self.conv2(F.silu(self.norm2(h)))
        x = (self.skip(f) + h).unflatten(0, (b, t))  # [B, T, Co, H, W]
        return x + self.conv_t(F.silu(_per_frame(self.norm_t, x)))  # [B, T, Co, H, W]


class Downsample(nn.Module):
    """Stride-2 3x3 conv per frame; with `temporal`, then a causal stride-2 temporal conv."""

    def __init__(self, channels: int, temporal: bool) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.temporal = CausalTimeConv(channels, channels, 3, stride=2) if temporal else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _per_frame(self.spatial, x)  # [B, T, C, H/2, W/2]
        return x if self.temporal is None else self.temporal(x)  # [B, (T+1)/2, C, H/2, W/2]


class Upsample(nn.Module):
    """With `temporal`, a per-frame 1x1 conv into two frames (the first frame's first copy is
    dropped: T -> 2T - 1); then 3x3 conv + channel-to-space (H, W -> 2H, 2W). Both start as
    nearest-neighbour interpolation followed by a 3x3 conv (A.3.1)."""

    def __init__(self, channels: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = nn.Conv2d(channels, 2 * channels, 1) if temporal else None
        if self.temporal is not None:
            eye = torch.eye(channels)[:, :, None, None]
            with torch.no_grad():
                self.temporal.weight.copy_(torch.cat([eye, eye]))  # both copies = the frame
                self.temporal.bias.zero_()
        self.spatial = nn.Conv2d(channels, 4 * channels, 3, padding=1)
        with torch.no_grad():  # ICNR: the 4 sub-pixels share one kernel
            base = self.spatial.weight[::4].clone()
            self.spatial.weight.copy_(base.repeat_interleave(4, dim=0))
            self.spatial.bias.copy_(self.spatial.bias[::4].repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal is not None:
            b, t, c, h, w = x.shape
            x = _per_frame(self.temporal, x).reshape(b, 2 * t, c, h, w)[:, 1:]  # [B, 2T-1, ...]
        return F.pixel_shuffle(_per_frame(self.spatial, x), 2)  # [B, T, C, 2H, 2W]


class DiagonalGaussian(NamedTuple):
    """The encoder's posterior: `mean` and `logvar`, both [B, z, T', H', W']."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(
        self, generator: torch.Generator | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z = mean + std * eps, [B, z, T', H', W']; eps = `noise` when given, else drawn."""
        if noise is not None:
            eps = noise.to(self.mean.dtype)
        else:
            eps = torch.randn(
                self.mean.shape,
                generator=generator,
                device=self.mean.device,
                dtype=self.mean.dtype,
            )
        return self.mean + torch.exp(0.5 * self.logvar) * eps

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent element, [B, z, T', H', W']."""
        return 0.5 * (self.mean**2 + self.logvar.exp() - 1.0 - self.logvar)


#################################################################################
#                                 The autoencoder                               #
#################################################################################


class Encoder(nn.Module):
    """[B, T, 3, H, W] -> [B, T', 2z, H/s, W/s] (posterior mean and log-variance)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, c in enumerate(ch):
            c_prev = ch[max(i - 1, 0)]
            blocks += [ResBlock(c_prev if j == 0 else c, c) for j in range(cfg.num_res_blocks)]
            if i < len(ch) - 1:
                blocks.append(Downsample(c, cfg.temporal_down[i]))
        blocks.append(ResBlock(ch[-1], ch[-1]))  # mid block
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = _norm(ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)
        with torch.no_grad():  # log-variance starts at -5 (std 0.08): early training is not
            self.conv_out.bias[cfg.latent_channels :] = -5.0  # drowned in posterior noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(_per_frame(self.conv_in, x))  # [B, T', C, H', W']
        return _per_frame(self.conv_out, F.silu(_per_frame(self.norm_out, x)))  # [B, T', 2z, ..]


class Decoder(nn.Module):
    """[B, T', z, H/s, W/s] -> [B, T, 3, H, W]."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[-1], 3, padding=1)
        blocks: list[nn.Module] = [ResBlock(ch[-1], ch[-1])]  # mid block
        for i in reversed(range(len(ch))):
            c_prev = ch[min(i + 1, len(ch) - 1)]
            blocks += [
                ResBlock(c_prev if j == 0 else ch[i], ch[i]) for j in range(cfg.num_res_blocks + 1)
            ]
            if i > 0:
                blocks.append(Upsample(ch[i], cfg.temporal_down[i - 1]))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = _norm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(_per_frame(self.conv_in, z))  # [B, T, C0, H, W]
        return _per_frame(self.conv_out, F.silu(_per_frame(self.norm_out, x)))  # [B, T, 3, H, W]


class Autoencoder(nn.Module):
    """Causal (2+1)D KL autoencoder. Videos [B, 3, T, H, W] in [-1, 1] with T = 1 + f k (use
    `pad_frames` first) <-> latents [B, z, 1 + k, H/s, W/s].

    `latent_mean` / `latent_std` (buffers, per channel, set after training) map raw latents to
    roughly unit scale for the diffusion model: `normalize` and `denormalize`.
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    def _check(self, video: torch.Tensor) -> None:
        _, c, t, h, w = video.shape
        f, s = self.cfg.temporal_factor, self.cfg.spatial_factor
        if c != self.cfg.in_channels or (t - 1) % f or h % s or w % s:
            raise ValueError(
                f"video [B, C, T, H, W] = {tuple(video.shape)} needs C = {self.cfg.in_channels}, "
                f"T = 1 + {f}k (see pad_frames) and H, W divisible by {s}"
            )

    def encode(self, video: torch.Tensor) -> DiagonalGaussian:
        """video [B, 3, T, H, W] -> posterior over latents [B, z, T', H/s, W/s]."""
        self._check(video)
        h = self.encoder(video.transpose(1, 2))  # [B, T', 2z, H', W']
        mean, logvar = h.transpose(1, 2).chunk(2, dim=1)  # each [B, z, T', H', W']
        return DiagonalGaussian(mean, logvar.clamp(-30.0, 20.0))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents [B, z, T', H', W'] -> video [B, 3, 1 + f (T' - 1), H' s, W' s]."""
        return self.decoder(z.transpose(1, 2)).transpose(1, 2)

    def forward(
        self,
        video: torch.Tensor,
        sample: bool = True,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        """Reconstruct: video [B, 3, T, H, W] -> (recon [B, 3, T, H, W], posterior). The latent
        is a posterior sample (its eps drawn with `generator`, or `noise` [B, z, T', H', W'] when
        given), or the posterior mean when `sample` is False."""
        post = self.encode(video)
        z = post.sample(generator, noise) if sample else post.mean  # [B, z, T', H', W']
        return self.decode(z), post

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents [B, z, ...] -> diffusion-scale latents (per-channel standardised)."""
        shape = (1, -1) + (1,) * (z.ndim - 2)
        return (z - self.latent_mean.view(shape)) / self.latent_std.view(shape)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalize`."""
        shape = (1, -1) + (1,) * (z.ndim - 2)
        return z * self.latent_std.view(shape) + self.latent_mean.view(shape)


def count_params(cfg: AutoencoderConfig) -> int:
    """Parameters of `Autoencoder(cfg)`, built on the meta device."""
    with torch.device("meta"):
        return sum(p.numel() for p in Autoencoder(cfg).parameters())


#################################################################################
#                                    Presets                                    #
#################################################################################

# name: AutoencoderConfig. `ae-paper`: the paper's compression (32 frames of 128x128 -> 9 x 16 x 16
# x 4 after padding to 33 frames), SD1.5-like at half width, time halved in the last two
# downsamples. `ae-small`: 4x spatial, 4x temporal at 32x32 for the 2-core CPU
# (`benchmarks/bench_autoencoder.py`): 32 frames -> 9 x 8 x 8 x 4.
AE_PRESETS: dict[str, AutoencoderConfig] = {
    "ae-paper": AutoencoderConfig(),
    "ae-small": AutoencoderConfig(
        channels=(32, 64, 64), temporal_down=(True, True), resolution_px=32
    ),
}


def autoencoder_config(name: str, **overrides: object) -> AutoencoderConfig:
    """The config of a named preset, with any `AutoencoderConfig` field overridden by keyword."""
    if name not in AE_PRESETS:
        raise KeyError(f"unknown autoencoder preset {name!r}; valid: {', '.join(AE_PRESETS)}")
    return replace(AE_PRESETS[name], **overrides)
