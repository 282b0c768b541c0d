"""MobileNetV2 feature extractor with torchvision's module names (no torchvision needed).

`features.0` .. `features.17` follow torchvision's `mobilenet_v2().features` layout, so its
ImageNet weights load by name (the 1280-channel `features.18` and the classifier are not
built: the depth decoder taps the 320-channel block).
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from depthdet_ros.nets.resnet import scaled_channels

# (expansion t, output channels c, repeats n, first stride s), from the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Indices into `features` whose outputs are the features at strides 2, 4, 8, 16, 32.
TAP_INDICES = (1, 3, 6, 13, 17)


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) -> BN -> ReLU6, named 0/1/2 like torchvision's Conv2dNormActivation."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 -> linear 1x1 projection; residual when shapes agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = self.conv(x)
        return x + out if self.use_residual else out


def build_mobilenet_v2_features(width: float = 1.0) -> Tuple[nn.Sequential, List[int]]:
    """Build `features.0..17` scaled by `width`; returns (features, channels at TAP_INDICES)."""
    in_channels = scaled_channels(32, width)
    layers: List[nn.Module] = [ConvBNReLU6(3, in_channels, stride=2)]
    for expansion, channels, repeats, stride in INVERTED_RESIDUAL_SETTINGS:
        out_channels = scaled_channels(channels, width)
        for index in range(repeats):
            layers.append(InvertedResidual(in_channels, out_channels,
                                           stride if index == 0 else 1, expansion))
            in_channels = out_channels
    features = nn.Sequential(*layers)
    channels = [_out_channels(features[i]) for i in TAP_INDICES]
    return features, channels


def _out_channels(block: nn.Module) -> int:
    return [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features


def mobilenet_v2_features(features: nn.Sequential, x: torch.Tensor) -> Sequence[torch.Tensor]:
    """Run `features` and return the outputs at TAP_INDICES (strides 2, 4, 8, 16, 32)."""
    taps = []
    for index, block in enumerate(features):
        x = block(x)
        if index in TAP_INDICES:
            taps.append(x)
    return taps


def init_mobilenet_weights(module: nn.Module) -> None:
    """Initialise as torchvision does (Kaiming normal fan_out for convs, unit BN)."""
    for child in module.modules():
        if isinstance(child, nn.Conv2d):
            nn.init.kaiming_normal_(child.weight, mode='fan_out')
        elif isinstance(child, nn.BatchNorm2d):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)
