"""ClearNet: a compact NAFNet-style U-Net for blind deblurring, built from ops cv2.dnn imports.

Contract (also in training/README.md and docs/ai.md)
----------------------------------------------------
input  : float32 NCHW, N >= 1, 3 channels (RGB order), sRGB-encoded values in [0, 1],
         H and W multiples of ``ClearNet.multiple`` (16); the runtime reflect-pads to it.
output : float32 NCHW, same shape, sRGB-encoded restored image (not clipped).

Architecture
------------
6x6 stride-2 conv (space-to-depth + 3x3 conv in one) -> encoder levels at 1/2, 1/4 (NAF
blocks, 2x2 stride-2 conv down) -> middle NAF blocks at 1/8 -> decoder (1x1 conv + PixelShuffle
up, additive skips, NAF blocks) -> 3x3 conv -> PixelShuffle(2) -> global residual
(output = input + net).

A NAF block (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022): channel
LayerNorm written with plain ops, 1x1 conv to 2C, depthwise 3x3, SimpleGate (split channels,
multiply), 1x1 conv, zero-initialised residual scale; then LayerNorm and a gated 1x1
feed-forward. (A first run without LayerNorm learned far too slowly: the gates multiply two
small signals, so the residual scales had to grow by orders of magnitude; it also spiked.)
NAFNet's simplified channel attention is left out on purpose: its global average pool makes the
output depend on the tile size (so tiled != untiled); without it the net is purely local (a
finite receptive field of +-64 px) and tiling with overlap is exact up to blending. SimpleGate
is written with constant slices (ONNX Slice), which OpenCV's importer handles.
"""

from __future__ import annotations

import torch
from torch import nn


class SimpleGate(nn.Module):
    """Split 2C channels in two halves and multiply them (constant slices: ONNX Slice)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.c] * x[:, self.c : 2 * self.c]


class LayerNorm2d(nn.Module):
    """Channel LayerNorm from plain ops (ReduceMean, Sub, Mul, Sqrt, Div): cv2.dnn imports it."""

    def __init__(self, c: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1, keepdim=True)
        d = x - mu
        var = (d * d).mean(dim=1, keepdim=True)
        return d / torch.sqrt(var + self.eps) * self.weight + self.bias


class NAFBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.dw = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.sg = SimpleGate(c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sg(self.dw(self.conv1(self.norm1(x))))
        y = x + self.conv3(y) * self.beta
        z = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + z * self.gamma


class ClearNet(nn.Module):
    multiple = 16  # the default layout's; an instance holds its own (2 ** (levels + 2))

    def __init__(
        self,
        width: int = 16,
        enc_blocks: tuple[int, ...] = (1, 2),
        middle_blocks: int = 4,
        dec_blocks: tuple[int, ...] = (2, 1),
    ) -> None:
        super().__init__()
        self.config = {
            "width": width,
            "enc_blocks": list(enc_blocks),
            "middle_blocks": middle_blocks,
            "dec_blocks": list(dec_blocks),
        }
        if len(dec_blocks) != len(enc_blocks):
            msg = f"enc_blocks {enc_blocks} and dec_blocks {dec_blocks} need the same length"
            raise ValueError(msg)
        # the stride-2 intro and one stride-2 down per level, times 4 for headroom (the runtime
        # reflect-pads tiles to it)
        self.multiple = 2 ** (len(enc_blocks) + 2)
        # 6x6 stride-2 conv: the same support as PixelUnshuffle(2) + 3x3 conv, which cv2.dnn
        # cannot import with dynamic sizes (SpaceToDepth becomes Reshape with unknown shape).
        self.intro = nn.Conv2d(3, width, 6, stride=2, padding=2)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        c = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle_blocks)])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(width, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.ending.weight)  # start as the identity (global residual)
        nn.init.zeros_(self.ending.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.intro(x)
        skips = []
        for enc, down in zip(self.encoders, self.downs, strict=False):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips), strict=False):
            h = dec(up(h) + skip)
        return x + self.shuffle(self.ending(h))


def count_macs_per_pixel(model: ClearNet) -> float:
    """Multiply-accumulates per input pixel (convolutions only)."""
    total = 0.0
    scale = {}

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += out.numel() * k * mod.in_channels / mod.groups

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    for h in hs:
        h.remove()
    del scale
    return total / (64 * 64)


def effective_receptive_px(model: ClearNet, share: float = 0.999, side: int = 512) -> int:
    """Radius (px) of the square around an output pixel that holds ``share`` of its input
    gradient's mass (the identity path left out), on smooth random images: how much context a
    tile needs for the tiled result to match the untiled one. Rounded up to 8 px."""
    model = model.eval()
    c = side // 2
    mass = torch.zeros(side, side)
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        x = torch.rand(1, 3, side + 8, side + 8, generator=gen)
        x = nn.functional.avg_pool2d(x, 9, 1).requires_grad_(True)
        model(x)[0, :, c, c].sum().backward()
        mass += x.grad.abs().sum(dim=(0, 1))
    mass[c, c] = 0.0
    total = float(mass.sum())
    for r in range(1, c):
        if float(mass[c - r : c + r + 1, c - r : c + r + 1].sum()) >= share * total:
            return int(-(-r // 8) * 8)
    return c
