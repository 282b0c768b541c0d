"""Options of the trainers: plain dataclasses, importable without torch (for the CLI)."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple


@dataclass
class TrainOptions:
    """Options common to both trainers (the command line fills them)."""

    out: str = 'runs/train'
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = 'adamw'          # adamw | sgd
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    schedule: str = 'cosine'          # cosine | step (halve at step_epochs)
    step_epochs: Sequence[int] = ()
    final_lr_fraction: float = 0.05
    seed: int = 0
    device: str = 'auto'
    threads: int = 0                  # 0: torch's default
    workers: int = 0
    checkpoint_every: int = 50
    max_train_frames: int = 0         # 0: all
    max_val_frames: int = 0
    channels_last: bool = True        # NHWC convolutions: ~1.2-1.6x faster on CPU
    init_from: str = ''               # ONNX file to start from (fine-tuning; BatchNorm frozen)
    resume: bool = False
    export: bool = True


@dataclass
class DepthTrainOptions(TrainOptions):
    """`depthdet train depth` options (see add_arguments for their meaning)."""

    arch: str = 'hybrid_mobilenetv2'
    arch_kwargs: Dict[str, Any] = field(default_factory=dict)
    loss: str = 'berhu'
    input_size: Tuple[int, int] = (256, 320)
    augment: bool = True
    max_depth: float = 10.0
    canonical_focal: float = 250.0    # network-input pixels; 0: targets in plain metres
    canonical_target_margin: float = 3.0  # canonical targets valid up to max_depth x this
    pad_prob: float = 0.0             # share of samples in the padded ('fit_pad') view
    ema_decay: float = 0.0            # 0: no EMA of the weights
    ema_tau: float = 2000.0


@dataclass
class YoloTrainOptions(TrainOptions):
    """Options of the trainers with a YOLOv5 backbone and Detect head (detector, joint)."""

    arch: str = 'yolov5n'
    depth_multiple: Optional[float] = None
    width_multiple: Optional[float] = None
    image_size: int = 320
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0
    box_gain: float = 0.05
    obj_gain: float = 1.0
    cls_gain: float = 0.5
    anchor_t: float = 4.0


@dataclass
class DetectorTrainOptions(YoloTrainOptions):
    """`depthdet train detector` options (see add_arguments for their meaning)."""

    mosaic_prob: float = 1.0
    close_mosaic: int = 2


@dataclass
class JointTrainOptions(YoloTrainOptions):
    """`depthdet train joint` options (see train.cli for their meaning)."""

    arch: str = 'joint_yolov5n'
    num_masks: int = 32
    decoder_width: float = 1.0
    proto_width: float = 1.0          # prototype module's hidden channels, x P3's
    depth_stride: int = 2             # depth output (and its targets) at 1/2 or 1/4
    scale_range: Tuple[float, float] = (0.6, 1.4)
    translate: float = 0.1
    flip_prob: float = 0.5
    min_instance_pixels: int = 16     # smaller visible parts are no targets
    mask_gain: float = 0.05           # YOLOv5-seg weighs its mask loss like the box loss
    depth_gain: float = 0.1
    depth_loss: str = 'silog_grad'
    max_depth: float = 10.0
    canonical_focal: float = 250.0    # network-input pixels; 0: targets in plain metres
    canonical_target_margin: float = 3.0
