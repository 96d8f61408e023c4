"""LPIPS (Zhang et al. 2018), v0.1 'alex': AlexNet features and learned linear heads.

The network of the ``lpips`` package (``lpips.LPIPS(net='alex')``, version 0.1), written here
without torchvision. For images x, y in [-1, 1]:

    d(x, y) = sum_l  mean_hw  w_l . (n(f_l(s(x))) - n(f_l(s(y))))^2

with s the ScalingLayer, f_l the ReLU outputs relu1..relu5 of torchvision's AlexNet ``features``,
n the unit-normalisation over channels and w_l a 1x1 convolution without bias. The authors used
``spatial=True`` and took the mean of the map: each layer's map is upsampled bilinearly to the input
size before the sum. That is the default here (``upsample=True``); ``upsample=False`` gives lpips'
default (a spatial mean per layer). The two differ by the interpolation only (about 1e-3 relative).

Weights: one file whose names are torchvision's ``features.{0,3,6,8,10}.{weight,bias}`` and lpips'
``lin{0..4}.model.1.weight``; build it with
:func:`phylaw.eval.metrics.nets.weights.merge_lpips_weights`.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from phylaw.eval.metrics.nets.weights import load_checked, read_state_dict, resolve_weights_path

__all__ = ["LPIPS", "LPIPS_ENV", "LPIPS_HOW"]

LPIPS_ENV = "PHYLAW_LPIPS_WEIGHTS"
LPIPS_HOW = (
    "build the file with phylaw.eval.metrics.nets.weights.merge_lpips_weights(alexnet, lin, "
    "out) from "
    "torchvision's alexnet-owt-7be5be79.pth (https://download.pytorch.org/models/"
    "alexnet-owt-7be5be79.pth) and lpips' weights/v0.1/alex.pth "
    "(https://github.com/richzhang/PerceptualSimilarity)"
)

# (in, out, kernel, stride, padding) of AlexNet's five convolutions (torchvision's `features`).
_CONVS = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1))
_CONVS = (*_CONVS, (256, 256, 3, 1, 1))
_CHANNELS = tuple(c[1] for c in _CONVS)  # 64, 192, 384, 256, 256
_TAPS = (1, 4, 7, 9, 11)  # indices in `features` of relu1..relu5


class _Head(nn.Module):
    """lpips' NetLinLayer: (dropout, 1x1 conv without bias); dropout is inert at evaluation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, h, w] -> [N, 1, h, w]."""
        return self.model(x)


def _alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features`` up to relu5 (indices 0..11, same parameter names)."""
    layers: list[nn.Module] = []
    for i, (cin, cout, k, s, p) in enumerate(_CONVS):
        if i in (1, 2):  # max-pools before conv2 and conv3
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        layers += [nn.Conv2d(cin, cout, k, stride=s, padding=p), nn.ReLU()]
    return nn.Sequential(*layers)


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """lpips' normalize_tensor: divide by the channel L2 norm. [N, C, h, w] -> same."""
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 with AlexNet: perceptual distance between image pairs.

    Build with :meth:`from_file` to get the pretrained network; ``LPIPS()`` alone has random
    weights (useful in tests only). Call with two batches of images in [-1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _alexnet_features()
        for i, c in enumerate(_CHANNELS):
            self.add_module(f"lin{i}", _Head(c))
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.eval().requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> LPIPS:
        """Load pretrained weights from ``path``, or from ``$PHYLAW_LPIPS_WEIGHTS`` when None.

        Raises:
            PhylawError: when no file is given or found, or its names or shapes do not fit.
        """
        p = resolve_weights_path(path, LPIPS_ENV, "LPIPS", LPIPS_HOW)
        net = cls()
        load_checked(net, read_state_dict(p), "LPIPS", str(p))
        return net

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1..relu5 of AlexNet for images in [-1, 1]: [N, 3, H, W] -> 5 x [N, C_l, h_l, w_l]."""
        h = (x - self.shift) / self.scale  # lpips' ScalingLayer
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAPS:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        """Distance per image pair.

        Args:
            x, y: [N, 3, H, W] images in [-1, 1].
            upsample: True (the authors' ``spatial=True`` then mean): upsample each layer's map
                to H x W before averaging; False: lpips' default spatial mean per layer.

        Returns:
            [N] distances (0 for identical images).
        """
        total = x.new_zeros(x.shape[0], 1, *x.shape[2:]) if upsample else x.new_zeros(x.shape[0])
        n = x.shape[0]
        for i, f in enumerate(self.layers(torch.cat([x, y]))):  # one pass for both batches
            f = _unit_normalize(f)
            d = getattr(self, f"lin{i}")((f[:n] - f[n:]) ** 2)  # [N, 1, h, w]
            if upsample:  # [N, 1, h, w] -> [N, 1, H, W]
                total = total + F.interpolate(
                    d, size=x.shape[2:], mode="bilinear", align_corners=False
                )
            else:
                total = total + d.mean(dim=(1, 2, 3))
        return total.mean(dim=(1, 2, 3)) if upsample else total
