"""Parameter and FLOP counts of every network (`python -m depthdet_ros.nets.summary`).

FLOPs come from torch.utils.flop_counter.FlopCounterMode on one forward pass (convolutions
and matrix products; 1 multiply-add = 2 FLOPs, so GMACs = GFLOPs / 2). Models are built on
the meta device: shapes only, no weights allocated, nothing computed.
"""
import argparse
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from depthdet_ros.nets.joint import SPEED_OPTIONS
from depthdet_ros.nets.registry import build_model

# (arch, builder kwargs, input [height, width]) rows of the default table.
DEFAULT_ROWS = (
    ('hybrid_resnet50', {}, (256, 320)),
    ('hybrid_resnet34', {}, (256, 320)),
    ('hybrid_resnet18', {}, (256, 320)),
    ('hybrid_resnet18', {'decoder_width': 0.5}, (256, 320)),
    ('hybrid_mobilenetv2', {}, (256, 320)),
    ('hybrid_mobilenetv2', {'decoder_width': 0.5}, (256, 320)),
    ('unet_seed000', {}, (256, 320)),
    ('yolov5n', {}, (640, 640)),
    ('yolov5s', {}, (640, 640)),
    ('yolov5m', {}, (640, 640)),
    # The bundled and candidate models as shipped (10 classes; the joint speed options).
    ('yolov5n', {'num_classes': 10}, (320, 320)),
    ('joint_yolov5n', {'num_classes': 10, **SPEED_OPTIONS}, (320, 320)),
    ('joint_mobilenetv2', {'num_classes': 10, **SPEED_OPTIONS}, (320, 320)),
)


@dataclass(frozen=True)
class ModelCost:
    """Size and compute of one network at one input size."""

    name: str
    input_size: Tuple[int, int]
    params: int
    flops: int

    @property
    def macs(self) -> float:
        """Multiply-accumulates (FLOPs / 2)."""
        return self.flops / 2


def count_flops(model: torch.nn.Module, input_size: Sequence[int]) -> int:
    """Count the FLOPs of one eval-mode forward pass on a [1, 3, H, W] input."""
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, *input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(image)
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def measure(arch: str, input_size: Sequence[int], **arch_kwargs) -> ModelCost:
    """Measure params and FLOPs of a registered arch (80 classes for detectors)."""
    with torch.device('meta'):
        model = build_model(arch, **arch_kwargs)
    params = sum(p.numel() for p in model.parameters())
    name = arch + ''.join(f' {k}={v}' for k, v in sorted(arch_kwargs.items()))
    return ModelCost(name, tuple(input_size), params, count_flops(model, input_size))


def format_table(costs: Sequence[ModelCost]) -> str:
    """Format costs as a fixed-width table of params (M), GFLOPs and GMACs."""
    width = max([len('network')] + [len(cost.name) for cost in costs])
    lines = [f'{"network":<{width}} {"input HxW":>10} {"params M":>9} {"GFLOPs":>8} '
             f'{"GMACs":>7}']
    for cost in costs:
        size = f'{cost.input_size[0]}x{cost.input_size[1]}'
        lines.append(f'{cost.name:<{width}} {size:>10} {cost.params / 1e6:>9.2f} '
                     f'{cost.flops / 1e9:>8.2f} {cost.macs / 1e9:>7.2f}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Print the table for DEFAULT_ROWS."""
    parser = argparse.ArgumentParser(prog='python -m depthdet_ros.nets.summary',
                                     description=__doc__)
    parser.parse_args(argv)
    print(format_table([measure(arch, size, **kwargs) for arch, kwargs, size in DEFAULT_ROWS]))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
