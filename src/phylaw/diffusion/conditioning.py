"""Frame conditioning (Sec. 2.2): the first c frames of the clean video, given to the network.

The network's input is the channel concatenation of the noisy video x_t, the condition video
(the first c clean frames, zero-padded to the full length) and a binary mask video (1 on the
condition frames). The loss ignores the condition frames (`objectives.training_loss`), and the
samplers can re-impose them (`samplers`). All functions here are pure.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["FrameCondition", "condition_inputs", "frame_mask", "model_input"]


class FrameCondition(NamedTuple):
    """The known frames: `video` [B, C, T, H, W] (zero after the condition frames) and `mask`
    [B, 1, T, H, W] (1 on condition frames, 0 elsewhere), in the video's dtype."""

    video: torch.Tensor
    mask: torch.Tensor


def condition_inputs(x0: torch.Tensor, num_cond_frames: int) -> FrameCondition:
    """Condition video and mask video from the clean video (Sec. 2.2).

    x0: [B, C, T, H, W]; 0 <= num_cond_frames <= T. Returns FrameCondition(video [B, C, T, H, W],
    mask [B, 1, T, H, W]); unpacks as `(cond_video, mask)`.
    """
    b, _, t, h, w = x0.shape
    if not 0 <= num_cond_frames <= t:
        raise ValueError(f"num_cond_frames must be in [0, {t}], got {num_cond_frames}")
    mask = torch.zeros(b, 1, t, h, w, dtype=x0.dtype, device=x0.device)  # [B, 1, T, H, W]
    mask[:, :, :num_cond_frames] = 1
    return FrameCondition(x0 * mask, mask)


def model_input(x_t: torch.Tensor, cond_video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The network's input: cat(x_t, cond_video, mask) on channels.

    x_t, cond_video: [B, C, T, H, W]; mask: [B, 1, T, H, W]. Returns [B, 2C + 1, T, H, W].
    (`models.dit.DiT` takes the three separately and concatenates them itself.)
    """
    return torch.cat([x_t, cond_video, mask.to(x_t.dtype)], dim=1)


def frame_mask(mask: torch.Tensor) -> torch.Tensor:
    """Per-frame condition flags from a mask video: [B, 1, T, H, W] -> [B, T] (1 = condition)."""
    return mask[:, 0, :, 0, 0]
