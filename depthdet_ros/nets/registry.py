"""Every network by name, and the training-checkpoint format the exporter reads.

A training checkpoint is a dict saved with torch.save, loadable with weights_only=True:

    {'model': state_dict,
     'config': {'arch': 'hybrid_mobilenetv2',          # a name from ARCHS
                'arch_kwargs': {'decoder_width': 0.5},  # optional, passed to the builder
                'names': ['person', ...],               # detectors: class names, in order
                'num_classes': 80,                      # detectors without names
                'input_size': [256, 320]},              # optional, [height, width]
     ...}                                               # anything else is ignored here

`checkpoint_config` writes such a 'config'; `model_from_checkpoint` rebuilds the model.
"""
import inspect
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from torch import nn

from depthdet_ros.core import metadata
from depthdet_ros.nets.hybrid import DEPTH_ARCHS, build_depth_net
from depthdet_ros.nets.joint import build_joint, JOINT_ARCHS
from depthdet_ros.nets.yolov5 import VARIANTS, build_yolov5

DETECTOR_ARCHS = tuple(f'yolov5{variant}' for variant in VARIANTS)
ARCHS = DETECTOR_ARCHS + tuple(DEPTH_ARCHS) + JOINT_ARCHS
# Default input [height, width] per task.
DEFAULT_INPUT_SIZE = {metadata.TASK_DETECTOR: (640, 640), metadata.TASK_DEPTH: (256, 320),
                      metadata.TASK_JOINT: (320, 320)}


def task_of(arch: str) -> str:
    """Return metadata.TASK_DETECTOR, TASK_DEPTH or TASK_JOINT for a registry name."""
    if arch in DETECTOR_ARCHS:
        return metadata.TASK_DETECTOR
    if arch in DEPTH_ARCHS:
        return metadata.TASK_DEPTH
    if arch in JOINT_ARCHS:
        return metadata.TASK_JOINT
    raise ValueError(f'unknown arch {arch!r}; choose from {", ".join(ARCHS)}')


def build_model(arch: str, num_classes: Optional[int] = None, **arch_kwargs) -> nn.Module:
    """Build any registered network; `num_classes` is for detectors and joint nets (80).

    Detector kwargs: depth_multiple, width_multiple, anchors (see build_yolov5).
    Depth kwargs: see build_depth_net. Joint kwargs: those of detectors plus num_masks and
    decoder_width (see nets.joint.build_joint).
    """
    task = task_of(arch)
    if task in (metadata.TASK_DETECTOR, metadata.TASK_JOINT):
        builder = build_yolov5 if task == metadata.TASK_DETECTOR else build_joint
        # Its first two parameters are the arch and num_classes (build_depth_net checks
        # its own options against its config).
        options = sorted(list(inspect.signature(builder).parameters)[2:])
        unknown = sorted(set(arch_kwargs) - set(options))
        if unknown:
            raise ValueError(f'{arch} has no option {", ".join(unknown)}; its options: '
                             f'{", ".join(options)}')
        return builder(arch, 80 if num_classes is None else num_classes, **arch_kwargs)
    if num_classes is not None:
        raise ValueError(f'{arch} is a depth net: it takes no num_classes')
    return build_depth_net(arch, **arch_kwargs)


def checkpoint_config(arch: str, arch_kwargs: Optional[Mapping[str, Any]] = None,
                      names: Optional[Sequence[str]] = None,
                      input_size: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """Return the plain-typed 'config' entry of a training checkpoint."""
    task_of(arch)
    config: Dict[str, Any] = {'arch': arch, 'arch_kwargs': dict(arch_kwargs or {})}
    if names is not None:
        config['names'] = [str(name) for name in names]
    if input_size is not None:
        config['input_size'] = [int(v) for v in input_size]
    return config


def model_from_checkpoint(checkpoint: Mapping[str, Any]) -> Tuple[nn.Module, Dict[str, Any]]:
    """Rebuild the model a training checkpoint describes and load its weights strictly.

    Returns (model in eval mode, config dict).
    """
    if not isinstance(checkpoint, Mapping) or 'model' not in checkpoint \
            or 'config' not in checkpoint:
        raise ValueError("a training checkpoint is a dict with 'model' and 'config' entries")
    config = dict(checkpoint['config'])
    if 'arch' not in config:
        raise ValueError("checkpoint config has no 'arch'")
    names = config.get('names')
    num_classes = len(names) if names is not None else config.get('num_classes')
    model = build_model(config['arch'], num_classes, **config.get('arch_kwargs', {}))
    model.load_state_dict(checkpoint['model'], strict=True)
    return model.eval(), config
