"""One network for boxes, instance masks and metric depth (seeds 001, 002, 004; issue 14).

A YOLOv5 backbone and PAN neck (nets.yolov5, the same layers and indices) feed three heads:

- detection: YOLOv5's anchor-based head whose rows carry k mask coefficients after the
  class probabilities, as YOLOv5-seg does: [cx, cy, w, h, obj, classes..., coeffs...];
  the coefficients stay linear (only boxes, objectness and classes are sigmoided);
- instance masks: a prototype module on the neck's P3 output gives k prototype masks at
  stride 4; an object's mask is sigmoid(coefficients . prototypes), cropped to its box;
- metric depth: seed 003's hybrid CNN decoder (nets.hybrid up-projection blocks) from the
  backbone's deepest (SPPF) features, with U-Net lateral connections from the backbone's
  stride 16, 8, 4 and 2 stages; metres (of the canonical camera, see core.depth) at half
  the input resolution (`depth_stride` 4: three up-projections, no stride-2 skip, a
  quarter of the resolution; the runtime reads the grid from the output).

`joint_mobilenetv2` is the lighter variant of seed 001's efficiency argument: MobileNetV2's
features (nets.mobilenetv2, `width_multiple` 0.5 by default) replace the YOLOv5 backbone, a
YOLOv5-style PAN neck (C3 blocks) runs over its stride 8, 16 and 32 taps, and the same three
heads follow, the depth decoder taking its lateral connections from the taps at strides
2-16.

Speed options (builder keywords, recorded as `depthdet_arch_kwargs`): `decoder_width`
scales the decoder's channels (at least 16 per stage), `proto_width` the prototype
module's hidden channels, `depth_stride` 4 drops the decoder's last (largest) stage.

Input: [B, 3, H, W] RGB in [0, 1], letterboxed like the detector's (H, W multiples of 32).
Eval output: (rows [B, 3 * sum(ny * nx), 5 + C + k], prototypes [B, k, H/4, W/4],
depth [B, 1, H/s, W/s], s = depth_stride).
Training output: (raw per-level maps [B, 3, ny, nx, 5 + C + k],
prototypes, depth).
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from depthdet_ros.nets.hybrid import decoder_widths, SkipFusion, UpProjection
from depthdet_ros.nets.mobilenetv2 import build_mobilenet_v2_features, \
    init_mobilenet_weights, mobilenet_v2_features
from depthdet_ros.nets.yolov5 import C3, Conv, DEFAULT_ANCHORS, Detect, make_divisible, \
    VARIANTS, YoloV5, YoloV5Config

DEFAULT_NUM_MASKS = 32
PROTO_STRIDE = 4
DEPTH_STRIDE = 2
DEPTH_STRIDES = (2, 4)


class MaskDetect(Detect):
    """Detect head whose rows end in `num_masks` mask coefficients (left linear by decode)."""

    def __init__(self, num_classes: int, num_masks: int, anchors_px, in_channels,
                 strides=(8, 16, 32)):
        super().__init__(num_classes, anchors_px, in_channels, strides, num_masks)
        self.num_masks = num_masks


class Proto(nn.Module):
    """Prototype masks: 3x3 conv, 2x nearest upsampling, 3x3 conv, 1x1 conv to k maps."""

    def __init__(self, in_channels: int, hidden: int, num_masks: int):
        super().__init__()
        self.cv1 = Conv(in_channels, hidden, 3)
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        self.cv2 = Conv(hidden, hidden, 3)
        self.cv3 = Conv(hidden, num_masks, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map P3 features [B, C, H/8, W/8] to prototypes [B, k, H/4, W/4]."""
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class DepthDecoder(nn.Module):
    """Seed 003's decoder over a YOLOv5 backbone: bridge, up-projections, U-Net skips.

    `skip_channels` are the backbone's channels at strides 2, 4, 8, 16, 32 (deepest last).
    Four up-projections give depth at stride 2, three (`output_stride` 4) at stride 4.
    """

    def __init__(self, skip_channels, decoder_width: float = 1.0, dropout: float = 0.0,
                 init_std: float = 1e-3, output_stride: int = DEPTH_STRIDE):
        super().__init__()
        if output_stride not in DEPTH_STRIDES:
            raise ValueError(f'depth_stride must be one of {DEPTH_STRIDES}, got {output_stride}')
        stages = 5 - output_stride.bit_length() + 1  # stride 2: 4 stages, stride 4: 3
        widths = decoder_widths(skip_channels[4], decoder_width)
        self.bridge = nn.Conv2d(skip_channels[4], widths[0], 1)
        self.bridge_bn = nn.BatchNorm2d(widths[0])
        self.up = nn.ModuleList(UpProjection(widths[i], widths[i + 1]) for i in range(stages))
        self.fuse = nn.ModuleList(SkipFusion(skip_channels[3 - i], widths[i + 1], widths[i + 1])
                                  for i in range(stages))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Conv2d(widths[stages], 1, 3, padding=1)
        # The authors' decoder initialisation (nets.hybrid): small weights, zero biases.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, init_std)
                nn.init.zeros_(module.bias)

    def forward(self, skips) -> torch.Tensor:
        """Backbone features at strides 2..32 -> [B, 1, H/s, W/s] metres (ReLU)."""
        x = self.bridge_bn(self.bridge(skips[4]))
        for stage, (up, fuse) in enumerate(zip(self.up, self.fuse)):
            x = fuse(skips[3 - stage], up(x))
        return F.relu(self.head(self.dropout(x)))


@dataclass(frozen=True)
class JointConfig:
    """Joint network size; `name` is recorded as the ONNX `depthdet_arch`."""

    num_classes: int = 80
    depth_multiple: float = 0.33
    width_multiple: float = 0.25
    num_masks: int = DEFAULT_NUM_MASKS
    decoder_width: float = 1.0
    proto_width: float = 1.0     # prototype module's hidden channels, x P3's
    depth_stride: int = DEPTH_STRIDE
    anchors: tuple = DEFAULT_ANCHORS
    name: str = 'joint_yolov5n'


class JointHeads:
    """What the trainer and the exporter read of any joint net's heads (its joint_config)."""

    @property
    def num_masks(self) -> int:
        """Number of prototype masks k."""
        return self.joint_config.num_masks

    @property
    def depth_stride(self) -> int:
        """Input pixels per depth output cell (2 or 4)."""
        return self.joint_config.depth_stride


class JointNet(JointHeads, YoloV5):
    """YOLOv5 layers 0-23 shared by MaskDetect (layer 24), Proto and the depth decoder."""

    def __init__(self, config: JointConfig = JointConfig()):
        super().__init__(YoloV5Config(num_classes=config.num_classes,
                                      depth_multiple=config.depth_multiple,
                                      width_multiple=config.width_multiple,
                                      anchors=config.anchors, name=config.name))
        self.joint_config = config

        def ch(channels):
            return make_divisible(channels * config.width_multiple, 8)

        neck = (ch(256), ch(512), ch(1024))
        self.model[24] = MaskDetect(config.num_classes, config.num_masks, config.anchors, neck)
        self.detect.initialize_biases()
        self.proto = Proto(neck[0], make_divisible(neck[0] * config.proto_width, 8),
                           config.num_masks)
        self.depth_decoder = DepthDecoder((ch(64), ch(128), ch(256), ch(512), ch(1024)),
                                          config.decoder_width,
                                          output_stride=config.depth_stride)

    def forward(self, images: torch.Tensor):
        """Images [B, 3, H, W] in [0, 1] -> (detections, prototypes, depth); see module doc."""
        m = self.model
        stride2 = m[0](images)
        stride4 = m[2](m[1](stride2))
        backbone_p3 = m[4](m[3](stride4))
        backbone_p4 = m[6](m[5](backbone_p3))
        deepest = m[9](m[8](m[7](backbone_p4)))
        lateral_p5 = m[10](deepest)
        x = m[13](m[12]((m[11](lateral_p5), backbone_p4)))
        lateral_p4 = m[14](x)
        out_p3 = m[17](m[16]((m[15](lateral_p4), backbone_p3)))
        out_p4 = m[20](m[19]((m[18](out_p3), lateral_p4)))
        out_p5 = m[23](m[22]((m[21](out_p4), lateral_p5)))
        detections = m[24]((out_p3, out_p4, out_p5))
        depth = self.depth_decoder((stride2, stride4, backbone_p3, backbone_p4, deepest))
        return detections, self.proto(out_p3), depth


class JointMobileNetV2(JointHeads, nn.Module):
    """MobileNetV2 features shared by a PAN neck, MaskDetect, Proto and the depth decoder.

    The neck is YOLOv5's at a third of the channels it gives a backbone of the same width
    (P3, P4, P5 widths 64, 128, 256 x `width_multiple`), one C3 block per node.
    """

    input_multiple = 32

    def __init__(self, config: JointConfig):
        super().__init__()
        self.config = self.joint_config = config
        self.arch = config.name
        self.features, taps = build_mobilenet_v2_features(config.width_multiple)
        init_mobilenet_weights(self.features)
        n3, n4, n5 = (make_divisible(c * config.width_multiple, 8) for c in (64, 128, 256))
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        self.lateral_p5 = Conv(taps[4], n4, 1)
        self.top_down_p4 = C3(n4 + taps[3], n4, 1, False)
        self.lateral_p4 = Conv(n4, n3, 1)
        self.top_down_p3 = C3(n3 + taps[2], n3, 1, False)
        self.down_p3 = Conv(n3, n3, 3, 2)
        self.bottom_up_p4 = C3(2 * n3, n4, 1, False)
        self.down_p4 = Conv(n4, n4, 3, 2)
        self.bottom_up_p5 = C3(2 * n4, n5, 1, False)
        self.detect = MaskDetect(config.num_classes, config.num_masks, config.anchors,
                                 (n3, n4, n5))
        self.detect.initialize_biases()
        self.proto = Proto(n3, make_divisible(n3 * config.proto_width, 8), config.num_masks)
        self.depth_decoder = DepthDecoder(taps, config.decoder_width,
                                          output_stride=config.depth_stride)

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return self.config.num_classes

    @property
    def stride(self) -> torch.Tensor:
        """Strides of the P3, P4, P5 outputs: tensor([8., 16., 32.])."""
        return self.detect.stride

    def forward(self, images: torch.Tensor):
        """Images [B, 3, H, W] in [0, 1] -> (detections, prototypes, depth); see module doc."""
        taps = mobilenet_v2_features(self.features, images)
        lateral_p5 = self.lateral_p5(taps[4])
        lateral_p4 = self.lateral_p4(
            self.top_down_p4(torch.cat((self.upsample(lateral_p5), taps[3]), 1)))
        out_p3 = self.top_down_p3(torch.cat((self.upsample(lateral_p4), taps[2]), 1))
        out_p4 = self.bottom_up_p4(torch.cat((self.down_p3(out_p3), lateral_p4), 1))
        out_p5 = self.bottom_up_p5(torch.cat((self.down_p4(out_p4), lateral_p5), 1))
        detections = self.detect((out_p3, out_p4, out_p5))
        return detections, self.proto(out_p3), self.depth_decoder(taps)


MOBILENET_ARCH = 'joint_mobilenetv2'
MOBILENET_DEFAULT_WIDTH = 0.5
JOINT_ARCHS = tuple(f'joint_yolov5{variant}' for variant in VARIANTS) + (MOBILENET_ARCH,)
# The speed options the bundled joint model was trained with (tools/train_joint_cpu.sh).
SPEED_OPTIONS = {'proto_width': 0.5, 'depth_stride': 4, 'decoder_width': 0.5}


def build_joint(arch: str = 'joint_yolov5n', num_classes: int = 80,
                depth_multiple: Optional[float] = None, width_multiple: Optional[float] = None,
                num_masks: int = DEFAULT_NUM_MASKS, decoder_width: float = 1.0,
                proto_width: float = 1.0, depth_stride: int = DEPTH_STRIDE,
                anchors=DEFAULT_ANCHORS):
    """Build 'joint_yolov5n' / 's' / 'm' or 'joint_mobilenetv2'.

    Multiples override the variant's (the name records it); joint_mobilenetv2 takes a
    width_multiple (of MobileNetV2 and its neck) and no depth_multiple.
    """
    if arch not in JOINT_ARCHS:
        raise ValueError(f'unknown joint arch {arch!r}; choose from {", ".join(JOINT_ARCHS)}')
    if arch == MOBILENET_ARCH:
        if depth_multiple is not None:
            raise ValueError(f'{arch} takes no depth_multiple')
        depth, width = 1.0, MOBILENET_DEFAULT_WIDTH
    else:
        depth, width = VARIANTS[arch[len('joint_yolov5'):]]
    name = arch
    if depth_multiple is not None or width_multiple is not None:
        depth = depth if depth_multiple is None else depth_multiple
        width = width if width_multiple is None else width_multiple
        name = f'{name}-w{width:g}' if arch == MOBILENET_ARCH else \
            f'{name}-d{depth:g}-w{width:g}'
    if num_masks < 1:
        raise ValueError(f'num_masks must be >= 1, got {num_masks}')
    if not proto_width > 0:
        raise ValueError(f'proto_width must be > 0, got {proto_width}')
    config = JointConfig(num_classes=num_classes, depth_multiple=depth, width_multiple=width,
                         num_masks=int(num_masks), decoder_width=decoder_width,
                         proto_width=proto_width, depth_stride=int(depth_stride),
                         anchors=anchors, name=name)
    return JointMobileNetV2(config) if arch == MOBILENET_ARCH else JointNet(config)
