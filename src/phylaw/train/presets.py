"""Named training runs: functions returning a `TrainConfig`; a variant calls its base and edits.

| preset        | space  | frames x px         | model, patch, tokens       | pred | batch | steps |
|---------------|--------|---------------------|----------------------------|------|-------|-------|
| cpu-tiny      | pixel  | 8 x 16              | 2 x 64, (2, 4, 4), 64      | x0   | 4     | 20    |
| cpu-uniform   | pixel  | 8 (every 4th) x 32  | DiT-T 4x128, (4, 8, 8), 32 | x0   | 32    | 3K    |
| cpu-parabola  | pixel  | as cpu-uniform      | as cpu-uniform             | x0   | 32    | 3K    |
| cpu-collision | pixel  | as cpu-uniform      | as cpu-uniform             | x0   | 32    | 7K    |
| cpu-scenes    | pixel  | 12 (every 2nd) x 64 | 4 x 256, (12, 8, 8), 64    | x0   | 32    | 1K    |
| gpu-uniform   | pixel  | 8 (every 4th) x 64  | DiT-S 12x384, (4,8,8), 128 | x0   | 256   | 20K   |
| paper-S       | latent | 32 x 128 (9x16²)    | DiT-S 12x384, (1,2,2), 576 | v    | 256   | 100K  |
| paper-B/L/XL  | latent | as paper-S          | DiT-B / DiT-L / DiT-XL     | v    | 256   | 100K  |

The paper presets are Sec. 3.1 and A.2: a fixed VAE (8x spatial, 4x temporal, 4 channels;
causal, so 32 frames give 9 latent frames, the first holding frame 0 alone; see
`models.autoencoder`, and set `space.autoencoder` to a 'phylaw train-ae' run), 32 frames of
128x128, 3 condition frames (latent frame 0 is given), v-prediction with zero terminal SNR,
AdamW at 1e-4, batch 256 for 100K steps, Table 1's sizes with adaLN-single (which reproduces
Table 1's parameter counts, benchmarks/bench_dit_params.py). Warmup (1K steps), gradient
clipping (1.0) and the EMA (0.9999) are not stated by the paper; they are DiT's usual choices.

The CPU presets keep what the paper fixes (a DiT over spacetime patches with 3D RoPE, the
given frames by mask concatenation, zero-terminal-SNR diffusion with eq. 2's uniform
timesteps) and change, for a 2-core CPU only, each measured as steps to a target
(benchmarks/RESULTS.md, "Learning speed (issue 13)"): pixels instead of VAE latents, a small
clip (every 4th of the 32 frames at 32 px: 3 given, 5 generated), x0-prediction (a patch is
wider than the token, so v and eps keep an error floor), spacetime patches 4 frames deep (as
the paper's VAE compresses time 4x: 32 tokens, 2x fewer steps than 1-frame patches and ~3x
cheaper each), a peak learning rate of 2e-3 and 10 DDIM steps. `cpu-uniform` reaches ID
|mean v - v| <= 0.05 with OOD >= 5x ID after ~2,000 steps (~8 minutes at ~0.25 s per step on
a 2-core AVX2 CPU; the preset until issue 13 needed ~4,000 steps at 0.8 s). Precision: `auto`
measures fp32 against bf16 on the run's own network at start (`train.precision`): bf16 is
~20x slower on AVX2-only CPUs and ~7 % faster on Zen 4 (avx512_bf16) for this model, so fp32
wins on both; with AMX it may not. `cpu-tiny` shrinks it for tests and smoke runs.
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
    """Pixel-space DiT-T on 8 frames (every 4th) of 32x32 for a 2-core CPU (uniform motion).

    Kept from the paper: a DiT over spacetime patches with 3D RoPE, mask-concatenation of the
    3 given frames, zero-terminal-SNR diffusion. CPU-only choices, each measured (steps to
    ID |mean v - v| <= 0.05, benchmarks/RESULTS.md "Learning speed (issue 13)"): pixels
    instead of VAE latents; x0-prediction (the 8x8x3 patch is wider than the 128-d token);
    (4, 8, 8) patches, i.e. 4 frames per token as the paper's VAE compresses time 4x (32
    tokens: 2.0x fewer steps than (1, 8, 8)'s 128 tokens, each ~3x cheaper); peak learning
    rate 2e-3 (1.5x fewer steps than 5e-4) with a cosine to 3,000 steps; 10 DDIM steps (as
    good as 25: the pure-noise step decides the motion).
    """
    return TrainConfig(
        preset="cpu-uniform",
        model=ModelConfig(size="DiT-T", patch_size=(4, 8, 8)),
        space=SpaceConfig(kind="pixel"),
        diffusion=DiffusionConfig(
            schedule="cosine", prediction="x0", cond_frames=3, sampler="ddim", sample_steps=10
        ),
        data=DataConfig(resolution_px=32, frames=8, frame_stride=4, render_threads=1),
        optim=OptimConfig(lr=2e-3, warmup_steps=200, decay="cosine", ema_decay=0.999),
        run=RunConfig(
            steps=3_000,
            batch_size=32,
            log_every=10,
            ckpt_every=500,
            keep_last=2,
            sample_every=500,
            sample_count=4,
            eval_every=500,
            eval_videos=64,
        ),
    )


def cpu_parabola() -> TrainConfig:
    """`cpu-uniform` for parabolic motion: the same clip (the ball falls at most 9.8 world
    units in the 2.8 s it spans) and the same recipe, measured to the same target."""
    return replace(cpu_uniform(), preset="cpu-parabola")


def cpu_collision() -> TrainConfig:
    """`cpu-uniform` on collisions, trained 7,000 steps (~27 min at ~0.23 s per step on a
    2-core AVX2 CPU). Same clip: every 4th frame; the first two given frames (t = 0.01, 0.41
    s) precede any contact (t >= 0.8 s), the third (0.81 s) does in 95 % of videos; 58 % of
    ID ground-truth videos keep two post-contact frames with both balls in view, the rest
    have no post-contact velocity to score. Measured instead and not better: 16 frames every
    2nd (64 tokens, 2x the cost per step; ID headline |mean v - v| 1.35 after 1,000 steps
    against 0.70) and a peak learning rate of 4e-3 (per-frame e 0.69 against 0.58 after
    2,000 steps)."""
    base = cpu_uniform()
    return replace(base, preset="cpu-collision", run=replace(base.run, steps=7_000))


def cpu_scenes() -> TrainConfig:
    """`cpu-uniform`'s recipe on PHYRE-style scenes (Sec. 4): 12 frames every 2nd of the 32
    (t = 0.02 ... 7.35 s) at 64x64 px so that the smallest bodies stay a few pixels wide, the
    first frame given as in the paper. CPU-only: (12, 8, 8) patches, each token the whole clip
    of an 8x8 area (64 tokens), 256 wide so that a token can hold the given frame's 8x8x3
    values and copy them to every frame: with (1, 16, 16) (192 tokens of 768 values into 128
    dimensions) every body blurs and fades (PSNR 21 after 460 steps); here static bodies are
    reproduced exactly and PSNR reaches 25 after 1,000 steps. Moving bodies still blur."""
    base = cpu_uniform()
    return replace(
        base,
        preset="cpu-scenes",
        model=replace(base.model, patch_size=(12, 8, 8), hidden_size=256, num_heads=4),
        diffusion=replace(base.diffusion, cond_frames=1),
        data=replace(base.data, resolution_px=64, frames=12, frame_stride=2),
        run=replace(base.run, steps=1_000, eval_every=0),
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
            precision="fp32",  # tests compare runs bit for bit: no timing-dependent dtype
        ),
    )


# name -> (function, one-line description shown by `phylaw train --help`)
PRESETS: dict[str, tuple[Callable[[], TrainConfig], str]] = {
    "cpu-tiny": (cpu_tiny, "2 x 64 DiT, 8 frames of 16 px, 20 steps: tests and smoke runs"),
    "cpu-uniform": (cpu_uniform, "DiT-T on 8 frames of 32 px, pixel space, x0: a 2-core CPU"),
    "cpu-parabola": (cpu_parabola, "cpu-uniform's clip and recipe for parabolic motion"),
    "cpu-collision": (cpu_collision, "cpu-uniform's clip and recipe for collisions, 7K steps"),
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
