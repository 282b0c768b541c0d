"""Seed 000's U-Net depth net: downscale, bottleneck, mirrored upscale with skips.

Each conv is 3x3 -> LeakyReLU(0.2) -> BN (the seed's order), two per block; 2x2 max pooling
down, nearest 2x upsampling up; a 1x1 conv and ReLU give metres. The seed predicts at input
resolution; a final 2x2 average keeps the contract every depth net here shares:
[B, 3, H, W] -> [B, 1, H/2, W/2] metres.
"""
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn
import torch.nn.functional as F


@dataclass(frozen=True)
class UNetConfig:
    """U-Net options; the defaults are seed 000's."""

    filters: Tuple[int, ...] = (16, 32, 64, 128, 256)  # per level; the last is the bottleneck
    negative_slope: float = 0.2


class ConvPair(nn.Sequential):
    """Two (3x3 conv -> LeakyReLU -> BN) layers."""

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float):
        layers = []
        for channels in (in_channels, out_channels):
            layers += [nn.Conv2d(channels, out_channels, 3, padding=1),
                       nn.LeakyReLU(negative_slope, inplace=True),
                       nn.BatchNorm2d(out_channels)]
        super().__init__(*layers)


class UNetDepthNet(nn.Module):
    """Seed 000's depth U-Net with the shared half-resolution metric output."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        *levels, bottleneck = config.filters
        slope = config.negative_slope
        self.down = nn.ModuleList()
        in_channels = 3
        for channels in levels:
            self.down.append(ConvPair(in_channels, channels, slope))
            in_channels = channels
        self.bottleneck = ConvPair(in_channels, bottleneck, slope)
        self.up = nn.ModuleList()
        in_channels = bottleneck
        for channels in reversed(levels):
            self.up.append(ConvPair(in_channels + channels, channels, slope))
            in_channels = channels
        self.head = nn.Conv2d(in_channels, 1, 1)

    @property
    def input_multiple(self) -> int:
        """H and W must be multiples of this (one 2x pool per level)."""
        return 2 ** len(self.down)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map [B, 3, H, W] normalised RGB to [B, 1, H/2, W/2] depth in metres."""
        skips = []
        x = image
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, scale_factor=2.0, mode='nearest')
            x = block(torch.cat((x, skip), dim=1))
        return F.avg_pool2d(F.relu(self.head(x)), 2)
