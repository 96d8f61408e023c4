"""3D rotary position embedding (RoPE, Su et al. 2024) for spacetime patch tokens.

The paper (Sec. 2.2) uses "a 3D variant of RoPE" over the flattened spatio-temporal token
sequence. Here each attention head's channels are split into three groups, one per axis
(t, h, w); inside a group, channel pair i at integer position p is rotated by the angle
p * theta**(-2i / d_axis). Rotating q and k this way makes the attention logit
<R(p) q, R(p') k> a function of p - p' only (per axis), and each rotation preserves norms.

Split of the head dimension (`rope_axis_dims`): of the head_dim / 2 channel pairs, the time axis
gets floor(pairs / 3) and the two spatial axes share the rest, h taking the smaller half.
head_dim 64 (DiT-S/B/L) -> (20, 22, 22); 72 (DiT-XL) -> (24, 24, 24); 32 -> (10, 10, 12).
Pairs are adjacent channels (2i, 2i+1), and the groups are laid out t, then h, then w.
"""

from __future__ import annotations

import torch

__all__ = ["apply_rope", "grid_positions", "rope_angles", "rope_axis_dims"]


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels of one head given to the (t, h, w) axes; each even, summing to `head_dim`."""
    if head_dim % 2 != 0 or head_dim < 6:
        raise ValueError(f"3D RoPE needs an even head_dim of at least 6, got {head_dim}")
    pairs = head_dim // 2
    pairs_t = pairs // 3
    pairs_h = (pairs - pairs_t) // 2
    pairs_w = pairs - pairs_t - pairs_h
    return 2 * pairs_t, 2 * pairs_h, 2 * pairs_w


def grid_positions(
    grid: tuple[int, int, int], device: torch.device | str | None = None
) -> torch.Tensor:
    """Integer (t, h, w) patch indices of a token grid, row-major (w fastest): [N, 3], int64.

    The order matches flattening a [T', H', W'] token grid, as `DiT` does after patchifying.
    """
    axes = [torch.arange(n, device=device) for n in grid]
    tt, hh, ww = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([tt, hh, ww], dim=-1).reshape(-1, 3)


def rope_angles(
    positions: torch.Tensor,
    head_dim: int,
    theta: float = 10000.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Rotation angle of every channel pair at every position.

    positions: [N, 3] (t, h, w), integer or float. Returns [N, head_dim / 2] in `dtype`
    (computed in float64), the pairs grouped t, h, w as given by `rope_axis_dims`.
    """
    angles = []
    for axis, dim in enumerate(rope_axis_dims(head_dim)):
        exponent = torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim
        inv_freq = theta**-exponent  # [dim / 2]
        angles.append(positions[:, axis, None].double() * inv_freq)  # [N, dim / 2]
    return torch.cat(angles, dim=-1).to(dtype)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of `x` by `angles`.

    x: [..., N, D] (e.g. [B, heads, N, head_dim]); angles: [N, D / 2] from `rope_angles`.
    Returns a tensor of x's shape and dtype; the rotation is computed in float32 at least.
    """
    work = torch.promote_types(x.dtype, torch.float32)
    cos, sin = angles.to(work).cos(), angles.to(work).sin()  # [N, D/2]
    pairs = x.to(work).unflatten(-1, (-1, 2))  # [..., N, D/2, 2]
    x0, x1 = pairs[..., 0], pairs[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)  # [..., N, D/2, 2]
    return out.flatten(-2).to(x.dtype)
