"""ResNet building blocks with torchvision's module names (no torchvision needed).

The names (conv1, bn1, layer1..layer4, layerN.i.convK/bnK, layerN.0.downsample.{0,1}) match
torchvision's resnet18/34/50, so ImageNet weights and the hybrid depth net's published
checkpoint map onto these modules without renaming.
"""
from typing import List, Sequence

import torch
from torch import nn


def scaled_channels(channels: float, width: float = 1.0, divisor: int = 8) -> int:
    """Scale a channel count by `width`, rounded to a multiple of `divisor` (at least one)."""
    if width == 1.0:
        return int(channels)
    value = max(divisor, int(channels * width + divisor / 2) // divisor * divisor)
    # Never round down by more than 10 % (same rule as MobileNet's _make_divisible).
    if value < 0.9 * channels * width:
        value += divisor
    return value


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut; resnet18/34."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 expand x4."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


# name -> (block type, blocks per stage)
RESNET_SPECS = {
    'resnet18': (BasicBlock, (2, 2, 2, 2)),
    'resnet34': (BasicBlock, (3, 4, 6, 3)),
    'resnet50': (Bottleneck, (3, 4, 6, 3)),
}


def make_stage(block, in_channels: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """Build one ResNet stage (torchvision's `_make_layer`); returns layerN."""
    out_channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(_conv1x1(in_channels, out_channels, stride),
                                   nn.BatchNorm2d(out_channels))
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(out_channels, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def add_resnet_encoder(owner: nn.Module, name: str, width: float = 1.0) -> List[int]:
    """Register conv1, bn1, relu, maxpool, layer1..layer4 of resnet `name` on `owner`.

    The modules go straight onto `owner` (not into a child) so state_dict keys read
    `conv1.weight`, `layer1.0.conv1.weight`, ... as in torchvision and the published hybrid
    checkpoint. Returns the channels of [stem, layer1, layer2, layer3, layer4], i.e. of the
    features at strides 2, 4, 8, 16, 32; run them with `resnet_features`.
    """
    block, blocks = RESNET_SPECS[name]
    stem = scaled_channels(64, width)
    owner.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
    owner.bn1 = nn.BatchNorm2d(stem)
    owner.relu = nn.ReLU(inplace=True)
    owner.maxpool = nn.MaxPool2d(3, 2, 1)
    channels = [stem]
    in_channels = stem
    for index, count in enumerate(blocks):
        planes = scaled_channels(64 * 2 ** index, width)
        stage = make_stage(block, in_channels, planes, count, 1 if index == 0 else 2)
        owner.add_module(f'layer{index + 1}', stage)
        in_channels = planes * block.expansion
        channels.append(in_channels)
    return channels


def resnet_features(owner: nn.Module, x: torch.Tensor) -> Sequence[torch.Tensor]:
    """Run the encoder registered by `add_resnet_encoder`; features at strides 2..32."""
    stem = owner.relu(owner.bn1(owner.conv1(x)))
    out1 = owner.layer1(owner.maxpool(stem))
    out2 = owner.layer2(out1)
    out3 = owner.layer3(out2)
    return stem, out1, out2, out3, owner.layer4(out3)


def init_resnet_weights(module: nn.Module) -> None:
    """Initialise convs and BNs as torchvision does (Kaiming normal, fan_out)."""
    for child in module.modules():
        if isinstance(child, nn.Conv2d):
            nn.init.kaiming_normal_(child.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(child, nn.BatchNorm2d):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)
