"""YOLOv5 v7.0 detector (CSP backbone, SPPF, PAN neck, anchor-based Detect head).

Module indices and names follow ultralytics' `DetectionModel` (`model.0.conv.weight`, ...,
`model.24.m.0.weight`, `model.24.anchors`), so a v7.0 state_dict loads by name.

Eval output (also what ONNX export records as `output0`): [B, 3 * sum(ny * nx), 5 + C]; rows
P3, P4, P5, within a level by anchor, then y, then x; columns cx, cy, w, h in input pixels,
sigmoided objectness, sigmoided class probabilities. Training output: the raw per-level maps,
a list of [B, 3, ny, nx, 5 + C], for the YOLOv5 loss.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

# Anchors (w, h) in input pixels for P3/8, P4/16, P5/32.
DEFAULT_ANCHORS = (
    ((10, 13), (16, 30), (33, 23)),
    ((30, 61), (62, 45), (59, 119)),
    ((116, 90), (156, 198), (373, 326)),
)
STRIDES = (8, 16, 32)
# Variant -> (depth multiple, width multiple).
VARIANTS = {
    'n': (0.33, 0.25),
    's': (0.33, 0.50),
    'm': (0.67, 0.75),
}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round up to a multiple of `divisor` (YOLOv5's channel rule)."""
    return int(math.ceil(value / divisor) * divisor)


class Conv(nn.Module):
    """Conv2d (no bias, 'same' padding unless given) -> BN(eps 1e-3, momentum 0.03) -> SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 padding: Optional[int] = None):
        super().__init__()
        padding = kernel // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, BN and SiLU."""
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 Conv -> 3x3 Conv, plus the input when `shortcut` and the widths agree."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool = True,
                 expansion: float = 0.5):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.cv1 = Conv(in_channels, hidden, 1, 1)
        self.cv2 = Conv(hidden, out_channels, 3, 1)
        self.add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the bottleneck."""
        out = self.cv2(self.cv1(x))
        return x + out if self.add else out


class C3(nn.Module):
    """CSP bottleneck with 3 convs: cv3(cat(m(cv1(x)), cv2(x)))."""

    def __init__(self, in_channels: int, out_channels: int, repeats: int = 1,
                 shortcut: bool = True):
        super().__init__()
        hidden = int(out_channels * 0.5)
        self.cv1 = Conv(in_channels, hidden, 1, 1)
        self.cv2 = Conv(in_channels, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, out_channels, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, expansion=1.0)
                                 for _ in range(repeats)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the CSP block."""
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained k x k max pools, concatenated."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 5):
        super().__init__()
        hidden = in_channels // 2
        self.cv1 = Conv(in_channels, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, out_channels, 1, 1)
        self.m = nn.MaxPool2d(kernel, 1, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply SPPF."""
        x = self.cv1(x)
        pooled1 = self.m(x)
        pooled2 = self.m(pooled1)
        return self.cv2(torch.cat((x, pooled1, pooled2, self.m(pooled2)), dim=1))


class Concat(nn.Module):
    """Channel concatenation (a module only to keep ultralytics' layer indices)."""

    def forward(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate along channels."""
        return torch.cat(tuple(tensors), dim=1)


class Detect(nn.Module):
    """Anchor-based head: one 1x1 conv per level predicting 3 anchors x (5 + C).

    `anchors` (buffer, [levels, 3, 2]) is in grid units of each level, as in YOLOv5, which is
    what its loss uses; `anchors * stride` gives pixels.
    """

    def __init__(self, num_classes: int, anchors_px, in_channels: Sequence[int],
                 strides: Sequence[int] = STRIDES, extra_outputs: int = 0):
        super().__init__()
        self.num_classes = num_classes
        # extra_outputs: columns after the classes (e.g. mask coefficients, nets.joint).
        self.num_outputs = num_classes + 5 + extra_outputs
        self.num_levels = len(anchors_px)
        self.num_anchors = len(anchors_px[0])
        self.strides = tuple(strides)
        stride = torch.tensor(strides, dtype=torch.float32)
        anchors = torch.tensor(anchors_px, dtype=torch.float32).view(self.num_levels, -1, 2)
        self.register_buffer('anchors', anchors / stride.view(-1, 1, 1))
        self.register_buffer('stride', stride, persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(channels, self.num_outputs * self.num_anchors, 1)
                               for channels in in_channels)

    def initialize_biases(self, image_size: int = 640) -> None:
        """YOLOv5's prior: ~8 objects per 640 image, class probability ~0.6 / C."""
        with torch.no_grad():
            for conv, stride in zip(self.m, self.strides):
                bias = conv.bias.view(self.num_anchors, -1)
                bias[:, 4] += math.log(8 / (image_size / stride) ** 2)
                bias[:, 5:5 + self.num_classes] += math.log(
                    0.6 / (self.num_classes - 0.99999))

    def forward(self, features: Sequence[torch.Tensor]
                ) -> Union[List[torch.Tensor], torch.Tensor]:
        """Raw maps [B, 3, ny, nx, 5+C] per level (training) or decoded rows (eval)."""
        raw = []
        for level, x in enumerate(features):
            x = self.m[level](x)
            # Grid sizes as Python ints: an ONNX export then has a fixed grid and a dynamic
            # batch only, with no shape arithmetic in the graph.
            ny, nx = int(x.shape[2]), int(x.shape[3])
            raw.append(x.view(-1, self.num_anchors, self.num_outputs, ny, nx)
                       .permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return raw
        return torch.cat([self.decode(level, x) for level, x in enumerate(raw)], dim=1)

    def decode(self, level: int, raw: torch.Tensor) -> torch.Tensor:
        """Decode one level's raw map to [B, 3 * ny * nx, 5 + C] rows in input pixels."""
        ny, nx = int(raw.shape[2]), int(raw.shape[3])
        stride = self.stride[level]
        rows = torch.arange(ny, dtype=raw.dtype, device=raw.device)
        cols = torch.arange(nx, dtype=raw.dtype, device=raw.device)
        grid_y, grid_x = torch.meshgrid(rows, cols, indexing='ij')
        grid = torch.stack((grid_x, grid_y), dim=-1).view(1, 1, ny, nx, 2)
        anchor_px = (self.anchors[level] * stride).view(1, self.num_anchors, 1, 1, 2)
        scored = self.num_classes + 5
        # Columns past the scores (a subclass's mask coefficients) stay linear.
        extra = (raw[..., scored:],) if self.num_outputs > scored else ()
        if extra:
            raw = raw[..., :scored]
        xy, wh, scores = raw.sigmoid().split((2, 2, self.num_classes + 1), dim=4)
        xy = (xy * 2 - 0.5 + grid) * stride
        wh = (wh * 2) ** 2 * anchor_px
        rows = self.num_anchors * ny * nx
        return torch.cat((xy, wh, scores) + extra, dim=4).reshape(-1, rows, self.num_outputs)


@dataclass(frozen=True)
class YoloV5Config:
    """YOLOv5 size and task; `name` is recorded as the ONNX `depthdet_arch`."""

    num_classes: int = 80
    depth_multiple: float = 0.33
    width_multiple: float = 0.25
    anchors: Tuple = DEFAULT_ANCHORS
    name: str = 'yolov5n'


class YoloV5(nn.Module):
    """YOLOv5 v7.0 detection model; input [B, 3, H, W] RGB in [0, 1], H, W multiples of 32."""

    input_multiple = 32

    def __init__(self, config: YoloV5Config = YoloV5Config()):
        super().__init__()
        self.config = config
        self.arch = config.name

        def ch(channels):
            return make_divisible(channels * config.width_multiple, 8)

        def n(repeats):
            return max(round(repeats * config.depth_multiple), 1) if repeats > 1 else repeats

        layers = [
            Conv(3, ch(64), 6, 2, 2),                         # 0  P1/2
            Conv(ch(64), ch(128), 3, 2),                      # 1  P2/4
            C3(ch(128), ch(128), n(3)),                       # 2
            Conv(ch(128), ch(256), 3, 2),                     # 3  P3/8
            C3(ch(256), ch(256), n(6)),                       # 4
            Conv(ch(256), ch(512), 3, 2),                     # 5  P4/16
            C3(ch(512), ch(512), n(9)),                       # 6
            Conv(ch(512), ch(1024), 3, 2),                    # 7  P5/32
            C3(ch(1024), ch(1024), n(3)),                     # 8
            SPPF(ch(1024), ch(1024), 5),                      # 9
            Conv(ch(1024), ch(512), 1, 1),                    # 10
            nn.Upsample(None, 2, 'nearest'),                  # 11
            Concat(),                                         # 12 cat 6
            C3(ch(512) * 2, ch(512), n(3), False),            # 13
            Conv(ch(512), ch(256), 1, 1),                     # 14
            nn.Upsample(None, 2, 'nearest'),                  # 15
            Concat(),                                         # 16 cat 4
            C3(ch(256) * 2, ch(256), n(3), False),            # 17 P3 out
            Conv(ch(256), ch(256), 3, 2),                     # 18
            Concat(),                                         # 19 cat 14
            C3(ch(256) * 2, ch(512), n(3), False),            # 20 P4 out
            Conv(ch(512), ch(512), 3, 2),                     # 21
            Concat(),                                         # 22 cat 10
            C3(ch(512) * 2, ch(1024), n(3), False),           # 23 P5 out
            Detect(config.num_classes, config.anchors, (ch(256), ch(512), ch(1024))),  # 24
        ]
        self.model = nn.ModuleList(layers)
        self.detect.initialize_biases()

    @property
    def detect(self) -> Detect:
        """The Detect head (anchors, strides, output convs)."""
        return self.model[24]

    @property
    def stride(self) -> torch.Tensor:
        """Strides of the P3, P4, P5 outputs: tensor([8., 16., 32.])."""
        return self.detect.stride

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return self.config.num_classes

    def forward(self, images: torch.Tensor):
        """Images [B, 3, H, W] -> decoded rows (eval) or raw per-level maps (training)."""
        m = self.model
        x = m[1](m[0](images))
        x = m[3](m[2](x))
        backbone_p3 = m[4](x)
        backbone_p4 = m[6](m[5](backbone_p3))
        x = m[9](m[8](m[7](backbone_p4)))
        lateral_p5 = m[10](x)
        x = m[13](m[12]((m[11](lateral_p5), backbone_p4)))
        lateral_p4 = m[14](x)
        out_p3 = m[17](m[16]((m[15](lateral_p4), backbone_p3)))
        out_p4 = m[20](m[19]((m[18](out_p3), lateral_p4)))
        out_p5 = m[23](m[22]((m[21](out_p4), lateral_p5)))
        return m[24]((out_p3, out_p4, out_p5))


def build_yolov5(variant: str = 'n', num_classes: int = 80,
                 depth_multiple: Optional[float] = None,
                 width_multiple: Optional[float] = None, anchors=DEFAULT_ANCHORS) -> YoloV5:
    """Build YOLOv5 'n', 's' or 'm' (also 'yolov5n' ...) for `num_classes` classes.

    `depth_multiple` / `width_multiple` override the variant's, e.g. width 0.125 for a model
    smaller than n; the recorded name then reads 'yolov5n-d0.33-w0.125'.
    """
    key = variant[len('yolov5'):] if variant.startswith('yolov5') else variant
    if key not in VARIANTS:
        raise ValueError(f'unknown YOLOv5 variant {variant!r}; choose from '
                         f'{sorted(VARIANTS)} (or yolov5n, ...)')
    depth, width = VARIANTS[key]
    name = f'yolov5{key}'
    if depth_multiple is not None or width_multiple is not None:
        depth = depth if depth_multiple is None else depth_multiple
        width = width if width_multiple is None else width_multiple
        name = f'{name}-d{depth:g}-w{width:g}'
    return YoloV5(YoloV5Config(num_classes=num_classes, depth_multiple=depth,
                               width_multiple=width, anchors=anchors, name=name))
