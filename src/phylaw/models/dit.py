"""The video diffusion transformer (Sec. 2.2 of the paper; after Peebles & Xie's DiT).

The input video (latent or pixel, C channels) is the channel concatenation of three videos
(Sec. 2.2): the noisy x_t, the condition video (the first c frames, zero-padded to the full
length) and a binary mask video (1 on the condition frames). A Conv3d with kernel = stride =
patch turns it into spacetime patch tokens; every block applies full self-attention over all
T' x H' x W' tokens (no factorisation into space and time) with 3D RoPE on q and k
(`rope.py`), then an MLP, each modulated by the timestep through adaLN-Zero. The final layer
maps each token back to a patch of C channels, so the output has the shape of x_t; what it
predicts (v, x0 or eps) is the diffusion process's business, not the network's.

adaLN comes in two flavours (`DiTConfig.shared_adaln`):
  * False (default): DiT's adaLN-Zero, one SiLU + Linear(hidden, 6 hidden) per block.
  * True: PixArt-alpha's adaLN-single, one SiLU + Linear(hidden, 6 hidden) shared by all blocks
    plus a learned [6, hidden] table per block. This is the accounting that reproduces the
    paper's Table 1 parameter counts (see `benchmarks/bench_dit_params.py`).
Both start every block as the identity and the whole network at exactly zero output.

Optional conditioning of Appendix A.6.1, off by default:
  * numeric state (`num_state_cond` > 0): the state vector [B, S] is embedded by an MLP, and
    each block adds its own linear projection of it to every video token ("layer-wise
    features added to video tokens").
  * text (`text_dim` > 0): text embeddings [B, D] (one pooled vector) or [B, L, D] (tokens)
    are projected to the hidden size, and each block gains a cross-attention layer from the
    video tokens to them (the paper used T5; this package uses the offline all-MiniLM-L6-v2,
    D = 384). Embeddings are computed outside the model, which needs no text dependency.
    With one pooled vector, cross-attention reduces to adding a learned projection of it.
Projections that feed these into the residual stream are zero-initialised, so switching a
condition on does not change the network at initialisation.

The timestep t is in the units of the diffusion schedule's steps (e.g. 0..999), as in DiT; a
process with continuous t in [0, 1] should scale it by 1000 before calling the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from phylaw.models.rope import apply_rope, grid_positions, rope_angles

__all__ = ["DIT_SIZES", "DiT", "DiTConfig", "count_params", "dit_config"]


@dataclass(frozen=True)
class DiTConfig:
    """Shape of the network. Defaults: the paper's DiT-S on its latent (32 frames of 128x128
    through a 4x temporal / 8x spatial VAE with 4 channels; patch 1x2x2)."""

    in_channels: int = 4  # C of x_t; the network sees 2C+1 (x_t, condition video, mask)
    input_size: tuple[int, int, int] = (8, 16, 16)  # (frames, height, width) of the default video
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw); kernel = stride of the Conv3d
    depth: int = 12  # transformer blocks
    hidden_size: int = 384  # token width
    num_heads: int = 6  # attention heads; hidden_size / num_heads = head_dim, even, >= 6
    mlp_ratio: float = 4.0  # MLP width / hidden_size
    qk_norm: bool = True  # RMSNorm on q and k per head: steadier attention logits in bf16
    shared_adaln: bool = False  # adaLN-single (PixArt-alpha) instead of per-block adaLN-Zero
    num_state_cond: int = 0  # dimension of the numeric state vector (A.6.1); 0 = off
    text_dim: int = 0  # dimension of text embeddings (A.6.1; 384 for all-MiniLM-L6-v2); 0 = off
    rope_theta: float = 10000.0  # RoPE base period

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        head_dim = self.hidden_size // self.num_heads
        if head_dim % 2 != 0 or head_dim < 6:
            raise ValueError(f"head_dim {head_dim} must be even and at least 6 for 3D RoPE")
        for n, p in zip(self.input_size, self.patch_size, strict=True):
            if n % p != 0:
                raise ValueError(
                    f"input_size {self.input_size} is not divisible by patch_size "
                    f"{self.patch_size}; pick a patch that divides every axis"
                )

    @property
    def out_channels(self) -> int:
        """Channels of the prediction: those of x_t."""
        return self.in_channels

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_tokens(self) -> int:
        """Tokens of a video of `input_size`: (T/pt)(H/ph)(W/pw)."""
        return math.prod(n // p for n, p in zip(self.input_size, self.patch_size, strict=True))


#################################################################################
#               Embedding layers for timesteps, states and text                 #
#################################################################################


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation: x [B, N, D], shift and scale [B, D]."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Diffusion step -> vector: sinusoidal features followed by an MLP (as in DiT)."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        """Sinusoidal features of t [B] (float or int): [B, dim], float32 (cos half first)."""
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t.float()[:, None] * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(t_freq.to(self.mlp[0].weight.dtype))


class Mlp(nn.Sequential):
    """Linear -> GELU(tanh) -> Linear."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__(
            nn.Linear(in_features, hidden_features),
            nn.GELU(approximate="tanh"),
            nn.Linear(hidden_features, out_features),
        )


#################################################################################
#                                 Core DiT Model                                #
#################################################################################


class SelfAttention(nn.Module):
    """Full self-attention over all spacetime tokens, with 3D RoPE on q and k."""

    def __init__(self, hidden_size: int, num_heads: int, qk_norm: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = hidden_size // num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, -1))  # [B, N, 3, heads, hd]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, hd]
        # Norm and rotation in float32 (also under bf16 autocast), attention in v's dtype.
        q = apply_rope(self.q_norm(q.float()), angles).to(v.dtype)  # [B, heads, N, hd]
        k = apply_rope(self.k_norm(k.float()), angles).to(v.dtype)  # [B, heads, N, hd]
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, N, hd]
        return self.proj(out.transpose(1, 2).flatten(2))  # [B, N, D]


class CrossAttention(nn.Module):
    """Video tokens attend to text tokens (A.6.1); no positional embedding on either side."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(hidden_size, hidden_size)
        self.kv = nn.Linear(hidden_size, 2 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None
    ) -> torch.Tensor:
        q = self.q(x).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # [B, heads, N, hd]
        kv = self.kv(y).unflatten(-1, (2, self.num_heads, -1))  # [B, L, 2, heads, hd]
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, L, hd]
        attn_mask = None if y_mask is None else y_mask[:, None, None, :]  # [B, 1, 1, L]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, heads, N, hd]
        return self.proj(out.transpose(1, 2).flatten(2))  # [B, N, D]


class DiTBlock(nn.Module):
    """Self-attention and MLP, each behind adaLN-Zero; optional state and text inputs."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.shared_adaln = cfg.shared_adaln
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, cfg.num_heads, cfg.qk_norm)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(d, int(d * cfg.mlp_ratio), d)
        if cfg.shared_adaln:
            self.scale_shift_table = nn.Parameter(torch.zeros(6, d))
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.state_proj = nn.Linear(d, d) if cfg.num_state_cond else None
        if cfg.text_dim:
            self.norm_cross = nn.LayerNorm(d, eps=1e-6)
            self.cross_attn = CrossAttention(d, cfg.num_heads)
        else:
            self.norm_cross, self.cross_attn = None, None

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        angles: torch.Tensor,
        state: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, N, D]; c [B, 6D] (shared adaLN) or [B, D]; state [B, D]; text [B, L, D]."""
        if self.shared_adaln:
            mods = (self.scale_shift_table[None] + c.unflatten(-1, (6, -1))).unbind(1)
        else:
            mods = self.adaLN_modulation(c).chunk(6, dim=-1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods  # each [B, D]
        if self.state_proj is not None:
            x = x + self.state_proj(state).unsqueeze(1)
        x = x + gate_msa.unsqueeze(1) * self.attn(
            modulate(self.norm1(x), shift_msa, scale_msa), angles
        )
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm_cross(x), text, text_mask)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """adaLN, then a linear map from each token to its patch of output channels."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.shared_adaln = cfg.shared_adaln
        self.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(d, math.prod(cfg.patch_size) * cfg.out_channels)
        if cfg.shared_adaln:
            self.scale_shift_table = nn.Parameter(torch.zeros(2, d))
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        """x [B, N, D], t_emb [B, D] -> [B, N, pt*ph*pw*C]."""
        if self.shared_adaln:
            shift, scale = (self.scale_shift_table[None] + t_emb[:, None]).unbind(1)
        else:
            shift, scale = self.adaLN_modulation(t_emb).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """Video diffusion transformer over spacetime patches. See the module docstring."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.x_embedder = nn.Conv3d(
            2 * cfg.in_channels + 1, d, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )
        self.t_embedder = TimestepEmbedder(d)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d)) if cfg.shared_adaln else None
        self.state_embedder = Mlp(cfg.num_state_cond, d, d) if cfg.num_state_cond else None
        self.text_embedder = Mlp(cfg.text_dim, d, d) if cfg.text_dim else None
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final_layer = FinalLayer(cfg)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Every init decision of the network, in one place (after DiT)."""

        # Transformer linears: Xavier uniform, zero bias.
        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)

        # Patch embedding like a linear layer on the flattened patch (xavier, not Conv default).
        w = self.x_embedder.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)

        # Condition embedding MLPs: small normal weights.
        for mlp in (self.t_embedder.mlp, self.state_embedder, self.text_embedder):
            if mlp is not None:
                nn.init.normal_(mlp[0].weight, std=0.02)
                nn.init.normal_(mlp[2].weight, std=0.02)

        # adaLN-Zero: shift, scale and gate start at 0, so every block is the identity.
        if self.t_block is not None:
            nn.init.zeros_(self.t_block[-1].weight)
            nn.init.zeros_(self.t_block[-1].bias)
        for block in self.blocks:
            if block.shared_adaln:
                nn.init.zeros_(block.scale_shift_table)
            else:
                nn.init.zeros_(block.adaLN_modulation[-1].weight)
                nn.init.zeros_(block.adaLN_modulation[-1].bias)
            # Conditions enter the residual stream through zero-initialised projections.
            if block.state_proj is not None:
                nn.init.zeros_(block.state_proj.weight)
                nn.init.zeros_(block.state_proj.bias)
            if block.cross_attn is not None:
                nn.init.zeros_(block.cross_attn.proj.weight)
                nn.init.zeros_(block.cross_attn.proj.bias)

        # Final layer: zero modulation and zero output map, so the network outputs exactly 0.
        final = self.final_layer
        if final.shared_adaln:
            nn.init.zeros_(final.scale_shift_table)
        else:
            nn.init.zeros_(final.adaLN_modulation[-1].weight)
            nn.init.zeros_(final.adaLN_modulation[-1].bias)
        nn.init.zeros_(final.linear.weight)
        nn.init.zeros_(final.linear.bias)

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """x [B, N, pt*ph*pw*C] with N = T'H'W' -> video [B, C, T'pt, H'ph, W'pw]."""
        pt, ph, pw = self.cfg.patch_size
        nt, nh, nw = grid
        c = self.cfg.out_channels
        x = x.reshape(x.shape[0], nt, nh, nw, pt, ph, pw, c)
        x = torch.einsum("bthwpqrc->bctphqwr", x)
        return x.reshape(x.shape[0], c, nt * pt, nh * ph, nw * pw)

    def _check_inputs(
        self,
        x_t: torch.Tensor,
        cond_video: torch.Tensor,
        mask: torch.Tensor,
        state: torch.Tensor | None,
        text: torch.Tensor | None,
    ) -> None:
        cfg = self.cfg
        if x_t.ndim != 5 or x_t.shape[1] != cfg.in_channels:
            raise ValueError(f"x_t must be [B, {cfg.in_channels}, T, H, W], got {tuple(x_t.shape)}")
        if cond_video.shape != x_t.shape:
            raise ValueError(
                f"cond_video {tuple(cond_video.shape)} must have x_t's shape {tuple(x_t.shape)}"
            )
        b, _, *size = x_t.shape
        if tuple(mask.shape) != (b, 1, *size):
            raise ValueError(f"mask must be {(b, 1, *size)}, got {tuple(mask.shape)}")
        if any(n % p for n, p in zip(size, cfg.patch_size, strict=True)):
            raise ValueError(f"video size {tuple(size)} is not divisible by patch {cfg.patch_size}")
        if (state is not None) != bool(cfg.num_state_cond):
            raise ValueError(
                f"state given: {state is not None}, but num_state_cond = {cfg.num_state_cond}"
            )
        if (text is not None) != bool(cfg.text_dim):
            raise ValueError(f"text given: {text is not None}, but text_dim = {cfg.text_dim}")

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | float,
        cond_video: torch.Tensor,
        mask: torch.Tensor,
        state: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict from the noisy video.

        x_t, cond_video: [B, C, T, H, W]; mask: [B, 1, T, H, W] (1 on condition frames);
        t: [B] or a scalar, in diffusion steps; state: [B, S] when `num_state_cond`; text:
        [B, D] or [B, L, D] when `text_dim`, text_mask: [B, L] bool, True = attend.
        Returns [B, C, T, H, W] in x_t's layout.
        """
        self._check_inputs(x_t, cond_video, mask, state, text)
        b = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device).expand(b)  # [B]

        x = torch.cat([x_t, cond_video, mask.to(x_t.dtype)], dim=1)  # [B, 2C+1, T, H, W]
        x = self.x_embedder(x)  # [B, D, T', H', W']
        grid = tuple(x.shape[2:])  # (T', H', W')
        x = x.flatten(2).transpose(1, 2)  # [B, N, D], N = T'H'W', w fastest
        angles = rope_angles(
            grid_positions(grid, x.device), self.cfg.head_dim, self.cfg.rope_theta
        )  # [N, hd/2]

        t_emb = self.t_embedder(t)  # [B, D]
        c = self.t_block(t_emb) if self.t_block is not None else t_emb  # [B, 6D] or [B, D]
        s = self.state_embedder(state) if state is not None else None  # [B, D]
        y = None
        if text is not None:
            y = self.text_embedder(text if text.ndim == 3 else text[:, None])  # [B, L, D]

        for block in self.blocks:
            x = block(x, c, angles, s, y, text_mask)  # [B, N, D]
        x = self.final_layer(x, t_emb)  # [B, N, pt*ph*pw*C]
        return self.unpatchify(x, grid)  # [B, C, T, H, W]


def count_params(cfg: DiTConfig) -> int:
    """Exact parameter count of `DiT(cfg)`, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = DiT(cfg)
    return sum(p.numel() for p in model.parameters())


#################################################################################
#                                 DiT Configs                                   #
#################################################################################

# name: (depth, hidden_size, num_heads). DiT-S/B/L/XL are the paper's Table 1 (22.5M / 89.5M /
# 310M / 456M as the paper counts; `benchmarks/bench_dit_params.py` compares ours). The small
# presets are for the 2-core CPU (shared/spec/cpu-training-notes.md): DiT-T at 16x32x32 pixels
# with patch (1,8,8) trains at ~0.5 s per batch-32 step (fp32), DiT-XS (4.4M) at ~10 s with
# 1024 tokens; head_dim 32 in both.
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "DiT-T": (4, 128, 4),
    "DiT-XS": (6, 192, 6),
    "DiT-S": (12, 384, 6),
    "DiT-B": (12, 768, 12),
    "DiT-L": (24, 1024, 16),
    "DiT-XL": (28, 1152, 16),
}


def dit_config(name: str, **overrides: object) -> DiTConfig:
    """The config of a named size, with any other `DiTConfig` field overridden by keyword."""
    if name not in DIT_SIZES:
        raise KeyError(f"unknown DiT size {name!r}; valid sizes: {', '.join(DIT_SIZES)}")
    depth, hidden_size, num_heads = DIT_SIZES[name]
    base = DiTConfig(depth=depth, hidden_size=hidden_size, num_heads=num_heads)
    return replace(base, **overrides)
