"""Hybrid CNN depth network (Harsanyi et al., MISSI 2018) and the depth-net registry.

A ResNet encoder, an up-projection decoder with U-Net skips, metres out at half the input
resolution.

`hybrid_resnet50` reproduces the published network module for module, including the
authors' state_dict key layout, so `load_authors_checkpoint` loads their
`hyb_net_weights.model` strictly. The lighter variants swap the encoder (resnet18/34,
MobileNetV2) and scale the decoder to the encoder's deepest channel count.

Contract for every net built by `build_depth_net`: input [B, 3, H, W] RGB normalised with the
ImageNet mean/std (`core.metadata.HYBRID_PREPROCESS`), H and W multiples of `input_multiple`;
output [B, 1, H/2, W/2] depth in metres.
"""
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Dict, List, Mapping

import torch
from torch import nn
import torch.nn.functional as F

from depthdet_ros.nets.mobilenetv2 import (build_mobilenet_v2_features, init_mobilenet_weights,
                                           mobilenet_v2_features)
from depthdet_ros.nets.resnet import (RESNET_SPECS, add_resnet_encoder, init_resnet_weights,
                                      resnet_features)
from depthdet_ros.nets.unet import UNetConfig, UNetDepthNet

ENCODERS = tuple(RESNET_SPECS) + ('mobilenet_v2',)


def interleave_2x2(top_left: torch.Tensor, bottom_left: torch.Tensor,
                   top_right: torch.Tensor, bottom_right: torch.Tensor) -> torch.Tensor:
    """Interleave four [B, C, H, W] maps into one [B, C, 2H, 2W] map.

    out[2i, 2j] = top_left, out[2i+1, 2j] = bottom_left, out[2i, 2j+1] = top_right,
    out[2i+1, 2j+1] = bottom_right.
    """
    top = torch.stack((top_left, top_right), dim=-1)          # [B, C, H, W, 2 (column)]
    bottom = torch.stack((bottom_left, bottom_right), dim=-1)
    # [B, C, H, 2 (row), W, 2 (column)] -> rows 2i+r, columns 2j+c.
    return torch.stack((top, bottom), dim=3).flatten(4, 5).flatten(2, 3)


class UnpoolAsConv(nn.Module):
    """Fast up-convolution (Laina et al.): four biased convs whose outputs interleave 2x.

    Equivalent to zero-insertion unpooling followed by a 5x5 conv, at a quarter of the cost.
    The asymmetric paddings keep every output the input's size and line the four phases up.
    """

    # (left, right, top, bottom) padding of the input to conv_B, conv_C and conv_D.
    PAD_B = (1, 1, 0, 1)
    PAD_C = (0, 1, 1, 1)
    PAD_D = (0, 1, 0, 1)

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_A = nn.Conv2d(in_channels, out_channels, (3, 3), padding=1)
        self.conv_B = nn.Conv2d(in_channels, out_channels, (2, 3))
        self.conv_C = nn.Conv2d(in_channels, out_channels, (3, 2))
        self.conv_D = nn.Conv2d(in_channels, out_channels, (2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample [B, Cin, H, W] to [B, Cout, 2H, 2W]."""
        return interleave_2x2(self.conv_A(x),
                              self.conv_B(F.pad(x, self.PAD_B)),
                              self.conv_C(F.pad(x, self.PAD_C)),
                              self.conv_D(F.pad(x, self.PAD_D)))


class UpProjection(nn.Module):
    """Up-projection block: relu(main(x) + residual(x)), both branches 2x upsampling.

    main = unpool-as-conv -> BN -> ReLU -> 3x3 conv -> BN; residual = unpool-as-conv -> BN.
    The unpool modules are registered twice (`unpool_main` and `main_branch.0`, `unpool_res`
    and `residual_branch.0`), as in the authors' code: one module, two state_dict key sets.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.unpool_main = UnpoolAsConv(in_channels, out_channels)
        self.unpool_res = UnpoolAsConv(in_channels, out_channels)
        self.main_branch = nn.Sequential(
            self.unpool_main,
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels))
        self.residual_branch = nn.Sequential(self.unpool_res, nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample [B, Cin, H, W] to [B, Cout, 2H, 2W]."""
        return F.relu(self.main_branch(x) + self.residual_branch(x))


class SkipFusion(nn.Module):
    """Fuse a skip: 1x1 conv (bias, no BN/ReLU) over concat[skip, decoder]; `con_convN`."""

    def __init__(self, skip_channels: int, decoder_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(skip_channels + decoder_channels, out_channels, 1)

    def forward(self, skip: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        """Fuse the encoder skip (first) with the decoder features (second)."""
        return self.conv(torch.cat((skip, decoded), dim=1))


@dataclass(frozen=True)
class HybridConfig:
    """Hybrid depth net options; the defaults are the published network."""

    encoder: str = 'resnet50'       # one of ENCODERS
    width: float = 1.0              # encoder channel multiplier
    decoder_width: float = 1.0      # decoder channel multiplier
    dropout: float = 0.5
    decoder_init_std: float = 1e-3  # authors: decoder weights ~ N(0, 0.001)


def decoder_widths(deepest_channels: int, decoder_width: float = 1.0) -> List[int]:
    """Channels of [bridge, up_proj1..4]: half the deepest encoder width, halving per stage.

    For ResNet-50 (2048) this gives the published 1024, 512, 256, 128, 64. Other encoders
    are rounded to multiples of 8, at least 16.
    """
    widths = []
    for stage in range(5):
        channels = deepest_channels * decoder_width / 2 ** (stage + 1)
        widths.append(max(16, int(channels / 8 + 0.5) * 8))
    return widths


class HybridDepthNet(nn.Module):
    """Encoder + bridge (conv2, bn2) + up_proj1..4 with con_conv1..4 skips + conv3 head."""

    input_multiple = 32

    def __init__(self, config: HybridConfig = HybridConfig()):
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ValueError(f'unknown encoder {config.encoder!r}; choose from {ENCODERS}')
        self.config = config
        # Encoder modules sit at the top level (conv1, layer1, ... / features) to keep the
        # authors' and torchvision's key names.
        if config.encoder == 'mobilenet_v2':
            self.features, skips = build_mobilenet_v2_features(config.width)
            init_mobilenet_weights(self.features)
        else:
            skips = add_resnet_encoder(self, config.encoder, config.width)
            init_resnet_weights(self)  # only the encoder exists yet
        widths = decoder_widths(skips[4], config.decoder_width)
        self.conv2 = nn.Conv2d(skips[4], widths[0], 1)
        self.bn2 = nn.BatchNorm2d(widths[0])
        for stage in range(1, 5):
            self.add_module(f'up_proj{stage}', UpProjection(widths[stage - 1], widths[stage]))
        self.dropout = nn.Dropout(config.dropout)
        self.conv3 = nn.Conv2d(widths[4], 1, 3, padding=1)
        for stage in range(1, 5):
            self.add_module(f'con_conv{stage}',
                            SkipFusion(skips[4 - stage], widths[stage], widths[stage]))
        self._init_decoder(config.decoder_init_std)

    def _init_decoder(self, std: float) -> None:
        decoder = [self.conv2, self.conv3] + [getattr(self, f'{name}{stage}')
                                              for name in ('up_proj', 'con_conv')
                                              for stage in range(1, 5)]
        for module in decoder:
            for child in module.modules():
                if isinstance(child, nn.Conv2d):
                    nn.init.normal_(child.weight, 0.0, std)
                    nn.init.zeros_(child.bias)

    def encode(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Return the encoder features at strides 2, 4, 8, 16, 32."""
        if self.config.encoder == 'mobilenet_v2':
            return mobilenet_v2_features(self.features, x)
        return resnet_features(self, x)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map [B, 3, H, W] normalised RGB to [B, 1, H/2, W/2] depth in metres."""
        skip2, skip4, skip8, skip16, deepest = self.encode(image)
        x = self.bn2(self.conv2(deepest))
        x = self.con_conv1(skip16, self.up_proj1(x))
        x = self.con_conv2(skip8, self.up_proj2(x))
        x = self.con_conv3(skip4, self.up_proj3(x))
        x = self.con_conv4(skip2, self.up_proj4(x))
        return F.relu(self.conv3(self.dropout(x)))

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                        assign: bool = False):
        """Load like nn.Module, tolerating absent BatchNorm `num_batches_tracked` counters.

        Every other key must match (when strict), and the two key sets of each aliased unpool
        module must hold equal tensors: a file whose aliases disagree is ambiguous.
        """
        state_dict = complete_batchnorm_counters(self, state_dict)
        check_aliases_agree(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def complete_batchnorm_counters(model: nn.Module,
                                state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict':
    """Return a copy of `state_dict` with each missing BN `num_batches_tracked` filled in.

    Older checkpoints (and files saved with the counters stripped) lack them; the counter only
    matters for BN momentum=None, so the model's current value is used.
    """
    completed = OrderedDict(state_dict)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        completed._metadata = metadata
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            key = f'{name}.num_batches_tracked' if name else 'num_batches_tracked'
            completed.setdefault(key, module.num_batches_tracked.detach().clone())
    return completed


def _aliased_module_names(model: nn.Module) -> List[List[str]]:
    names: Dict[int, List[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
    return [group for group in names.values() if len(group) > 1]


def check_aliases_agree(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise ValueError if two key sets of one aliased module carry different tensors."""
    for group in _aliased_module_names(model):
        module = model.get_submodule(group[0])
        for local in module.state_dict():
            present = [f'{prefix}.{local}' for prefix in group if f'{prefix}.{local}' in
                       state_dict]
            for key in present[1:]:
                if not torch.equal(state_dict[key], state_dict[present[0]]):
                    raise ValueError(f'aliased checkpoint entries disagree: {present[0]} vs '
                                     f'{key} (the same module is registered under both)')


def load_authors_checkpoint(path: str) -> HybridDepthNet:
    """Load the authors' `hyb_net_weights.model` (a plain state_dict) into hybrid_resnet50.

    The load is strict apart from BN `num_batches_tracked`; returns the model in eval mode.
    """
    state_dict = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(state_dict, Mapping):
        raise ValueError(f'{path}: expected a state_dict, got {type(state_dict).__name__}')
    model = HybridDepthNet(HybridConfig())
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


# Registry name -> HybridConfig encoder (None: the seed-000 U-Net).
DEPTH_ARCHS = {
    'hybrid_resnet50': 'resnet50',
    'hybrid_resnet34': 'resnet34',
    'hybrid_resnet18': 'resnet18',
    'hybrid_mobilenetv2': 'mobilenet_v2',
    'unet_seed000': None,
}


def build_depth_net(arch: str, **kwargs) -> nn.Module:
    """Build a depth net by registry name (see DEPTH_ARCHS).

    Keyword arguments go to HybridConfig (width, decoder_width, dropout, decoder_init_std)
    or to UNetConfig for 'unet_seed000'. Every net maps [B, 3, H, W] to [B, 1, H/2, W/2]
    metres; H and W must be multiples of the net's `input_multiple`.
    """
    if arch not in DEPTH_ARCHS:
        raise ValueError(f'unknown depth arch {arch!r}; choose from {sorted(DEPTH_ARCHS)}')
    encoder = DEPTH_ARCHS[arch]
    config = UNetConfig if encoder is None else HybridConfig
    options = sorted(f.name for f in fields(config) if f.name != 'encoder')
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(f'{arch} has no option {", ".join(unknown)}; its options: '
                         f'{", ".join(options)}')
    if encoder is None:
        return UNetDepthNet(UNetConfig(**kwargs))
    return HybridDepthNet(HybridConfig(encoder=encoder, **kwargs))
