"""Named training runs: functions returning a `TrainConfig`; a variant calls its base and edits.

| preset       | space  | frames x px      | model, patch, tokens        | pred | batch | steps |
|--------------|--------|------------------|-----------------------------|------|-------|-------|
| cpu-tiny     | pixel  | 8 x 16           | 2 x 64, (2, 4, 4), 64       | x0   | 4     | 20    |
| cpu-uniform  | pixel  | 8 (every 4th) x 32 | DiT-T 4x128, (1, 8, 8), 128 | x0 | 32    | 7K    |
| cpu-scenes   | pixel  | 12 (every 2nd) x 64 | DiT-T, (1, 16, 16), 192    | x0   | 32    | 7K    |
| gpu-uniform  | pixel  | 8 (every 4th) x 64 | DiT-S 12x384, (4, 8, 8), 128 | x0 | 256 | budget |
| paper-S      | latent | 32 x 128 (9x16²) | DiT-S 12x384, (1,2,2), 576  | v    | 256   | 100K  |
| paper-B/L/XL | latent | as paper-S       | DiT-B / DiT-L / DiT-XL      | v    | 256   | 100K  |

The paper presets are Sec. 3.1 and A.2: a fixed VAE (8x spatial, 4x temporal, 4 channels;
causal, so 32 frames give 9 latent frames, the first holding frame 0 alone; see
`models.autoencoder`, and set `space.autoencoder` to a 'phylaw train-ae' run), 32 frames of
128x128, 3 condition frames (latent frame 0 is given), v-prediction with zero terminal SNR,
AdamW at 1e-4, batch 256 for 100K steps, Table 1's sizes with adaLN-single (which reproduces
Table 1's parameter counts, benchmarks/bench_dit_params.py). Warmup (1K steps), gradient
clipping (1.0) and the EMA (0.9999) are not stated by the paper; they are DiT's usual choices.

`cpu-uniform` is the small problem sized to learn uniform motion on 2 cores in an hour: every
4th of the paper's 32 frames (t = 0.01, 0.41, ..., 2.81 s; 3 given, 5 generated) at 32x32 px,
DiT-T with (1, 8, 8) patches, 128 tokens, ~0.45 s per batch-32 step in fp32, 7K steps with a
cosine learning rate (~55 min plus quick evaluations). Measured (benchmarks/RESULTS.md): with
16 frames every 2nd (given frames 0.2 s apart, 256 tokens, 4K steps in 62 min) the model
read the velocity from the condition frames only partly (fitted slope 0.75, ID headline error
0.30); a 4-frame stride doubles the displacement between the given frames and the steps per
hour. Each 8x8x3 patch is wider than the 128-d token, so it predicts x0 (notes: v and eps
keep an error floor there).
fp32 on CPU: bf16 autocast measured 2-3x slower on AVX2 machines without avx512_bf16
(`--set run.precision=bf16` where it is faster). `cpu-tiny` shrinks it for tests and smoke runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from phylaw import PhylawError
from phylaw.train.config import (
    DataConfig,
    DiffusionConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SpaceConfig,
    TrainConfig,
)

__all__ = ["PRESETS", "get_preset", "preset_help"]


def paper(size: str = "DiT-S") -> TrainConfig:
    """The paper's fundamental-scenario run (Sec. 3.1) at one of Table 1's sizes."""
    return TrainConfig(
        preset=f"paper-{size.removeprefix('DiT-')}",
        model=ModelConfig(size=size, patch_size=(1, 2, 2), shared_adaln=True),
        space=SpaceConfig(kind="latent", latent_channels=4, temporal_factor=4, spatial_factor=8),
        diffusion=DiffusionConfig(
            schedule="scaled_linear", prediction="v", zero_terminal_snr=True, cond_frames=3
        ),
        data=DataConfig(resolution_px=128, frames=32, render_threads=8),
        optim=OptimConfig(lr=1e-4, warmup_steps=1000, grad_clip=1.0, ema_decay=0.9999),
        run=RunConfig(steps=100_000, batch_size=256, ckpt_every=2500, sample_every=5000),
    )


def cpu_uniform() -> TrainConfig:
    """Pixel-space DiT-T on 8 frames (every 4th) of 32x32 for a 2-core CPU (uniform motion)."""
    return TrainConfig(
        preset="cpu-uniform",
        model=ModelConfig(size="DiT-T", patch_size=(1, 8, 8)),
        space=SpaceConfig(kind="pixel"),
        diffusion=DiffusionConfig(
            schedule="cosine", prediction="x0", cond_frames=3, sampler="ddim", sample_steps=25
        ),
        data=DataConfig(resolution_px=32, frames=8, frame_stride=4, render_threads=1),
        optim=OptimConfig(lr=5e-4, warmup_steps=200, decay="cosine", ema_decay=0.999),
        run=RunConfig(
            steps=7_000,
            batch_size=32,
            log_every=10,
            ckpt_every=500,
            keep_last=2,
            sample_every=1000,
            sample_count=4,
            eval_every=1000,
            eval_videos=64,
        ),
    )


def cpu_scenes() -> TrainConfig:
    """`cpu-uniform`'s model on PHYRE-style scenes (Sec. 4): 12 frames every 2nd of the 32
    (t = 0.02 ... 7.35 s), 64x64 px so that the smallest bodies stay a few pixels wide, the first
    frame given as in the paper, (1, 16, 16) patches to keep 192 tokens."""
    base = cpu_uniform()
    return replace(
        base,
        preset="cpu-scenes",
        model=replace(base.model, patch_size=(1, 16, 16)),
        diffusion=replace(base.diffusion, cond_frames=1),
        data=replace(base.data, resolution_px=64, frames=12, frame_stride=2),
        run=replace(base.run, eval_every=0),
    )


def gpu_uniform() -> TrainConfig:
    """DiT-S in pixel space for minutes on one GPU: `cpu-uniform`'s clip (8 frames, every 4th)
    at 64x64 px, (4, 8, 8) spacetime patches (128 tokens), batch 256, a time-budgeted cosine
    (`--minutes`); eight render threads keep the GPU fed."""
    base = cpu_uniform()
    return replace(
        base,
        preset="gpu-uniform",
        model=ModelConfig(size="DiT-S", patch_size=(4, 8, 8)),
        diffusion=replace(base.diffusion, sample_steps=10),
        data=replace(base.data, resolution_px=64, render_threads=8),
        optim=OptimConfig(lr=1e-3, warmup_steps=300, decay="cosine", ema_decay=0.999),
        run=replace(
            base.run,
            steps=20_000,
            batch_size=256,
            log_every=100,
            ckpt_every=2000,
            keep_last=1,
            sample_every=0,
            eval_every=1000,
            eval_videos=128,
        ),
    )


def cpu_tiny() -> TrainConfig:
    """A few-second run of a 2-block model on 8 frames of 16x16: tests and smoke runs."""
    base = cpu_uniform()
    return replace(
        base,
        preset="cpu-tiny",
        model=replace(base.model, patch_size=(2, 4, 4), depth=2, hidden_size=64, num_heads=2),
        diffusion=replace(base.diffusion, num_steps=100, sample_steps=4),
        data=replace(base.data, resolution_px=16, frames=8, frame_stride=1),
        optim=replace(base.optim, lr=1e-3, warmup_steps=2, ema_decay=0.9),
        run=replace(
            base.run,
            steps=20,
            batch_size=4,
            log_every=5,
            ckpt_every=10,
            sample_every=10,
            sample_count=2,
            eval_every=0,
        ),
    )


# name -> (function, one-line description shown by `phylaw train --help`)
PRESETS: dict[str, tuple[Callable[[], TrainConfig], str]] = {
    "cpu-tiny": (cpu_tiny, "2 x 64 DiT, 8 frames of 16 px, 20 steps: tests and smoke runs"),
    "cpu-uniform": (cpu_uniform, "DiT-T on 8 frames of 32 px, pixel space, x0: a 2-core CPU"),
    "cpu-scenes": (cpu_scenes, "DiT-T on 12 frames of 64 px PHYRE-style scenes, first given"),
    "gpu-uniform": (gpu_uniform, "DiT-S on 8 frames of 64 px, pixel space: one GPU, minutes"),
    "paper-S": (lambda: paper("DiT-S"), "paper Sec. 3.1: DiT-S (22.5M) on VAE latents, 100K"),
    "paper-B": (lambda: paper("DiT-B"), "paper Sec. 3.1: DiT-B (89.5M) on VAE latents, 100K"),
    "paper-L": (lambda: paper("DiT-L"), "paper Sec. 3.1: DiT-L (310M) on VAE latents, 100K"),
    "paper-XL": (lambda: paper("DiT-XL"), "paper Sec. 3.1: DiT-XL (456M) on VAE latents, 100K"),
}


def get_preset(name: str) -> TrainConfig:
    """The config of a named preset; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise PhylawError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name][0]()


def preset_help() -> str:
    """One line per preset, for --help."""
    width = max(map(len, PRESETS))
    return "\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in PRESETS.items())
