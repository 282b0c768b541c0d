"""`depthdet train detector`: YOLOv5 (nets.yolov5) with YOLOv5's assignment and losses.

Training images are mosaics of four frames with a random affine, HSV jitter and flips;
the last `close_mosaic` epochs use single letterboxed frames (the runtime's view) with the
same affine. Weights are averaged (EMA) as in YOLOv5 and the average is what is validated,
shipped and exported. Validation letterboxes each frame and decodes it with the runtime's
own decoder (core.detector.decode, score >= 0.001, NMS IoU 0.6), then scores COCO
mAP@0.5 and mAP@0.5:0.95.
"""
import os
from typing import Any, Dict

import numpy as np

from depthdet_ros.core.detector import decode, letterbox
from depthdet_ros.eval.metrics import detection_map, FrameDetections
from depthdet_ros.train import common
from depthdet_ros.train.augment import boxes_to_targets, DetectAugmentConfig, \
    detection_train_sample
from depthdet_ros.train.data import BoxFrames
from depthdet_ros.train.evaluate import MAP_DECODE
from depthdet_ros.train.options import DetectorTrainOptions

DETECTOR_ONNX = 'detector.onnx'


class DetectorBatches:
    """Deterministic training batches: (uint8 NHWC images, targets [N, 6])."""

    def __init__(self, frames: BoxFrames, options: DetectorTrainOptions):
        self.frames = frames
        self.options = options
        self.augment = DetectAugmentConfig(mosaic_prob=options.mosaic_prob)

    def uses_mosaic(self, epoch: int) -> bool:
        """Mosaic is off for the last `close_mosaic` epochs."""
        return epoch < self.options.epochs - self.options.close_mosaic

    def __call__(self, epoch: int, positions: np.ndarray, order: np.ndarray):
        """Build the batch of these positions of the epoch."""
        import torch
        size = self.options.image_size
        images, targets = [], []
        for slot, position in enumerate(positions):
            rng = common.sample_rng(self.options.seed, epoch, int(position))
            index = int(order[position])
            mosaic = self.uses_mosaic(epoch) and rng.random() < self.augment.mosaic_prob
            others = rng.integers(0, len(self.frames), 3) if mosaic else []
            samples = [self.frames.load_boxes(i) for i in [index, *others]]
            sample = detection_train_sample(samples, size, rng, self.augment, mosaic)
            images.append(sample.rgb)
            targets.append(boxes_to_targets(sample.boxes, sample.classes, slot, size))
        return torch.from_numpy(np.stack(images)), torch.from_numpy(np.concatenate(targets))


def predict_frames(model, frames: BoxFrames, image_size: int, device=None,
                   batch_size: int = 16):
    """Run a torch YOLOv5 on every frame; returns (predictions, ground truth) lists."""
    import torch
    device = device or next(model.parameters()).device
    predictions, truth = [], []
    for start in range(0, len(frames), batch_size):
        stop = min(start + batch_size, len(frames))
        samples = [frames.load_boxes(i) for i in range(start, stop)]
        boxed = [letterbox(s.rgb, image_size, image_size) for s in samples]
        images = torch.from_numpy(np.stack([b[0] for b in boxed])).to(device)
        rows = model(images.permute(0, 3, 1, 2).float() / 255.0).float().cpu().numpy()
        for sample, (_, lb), output in zip(samples, boxed, rows):
            xyxy, scores, classes = decode(output, 'yolov5', MAP_DECODE)
            boxes = lb.to_image(xyxy) if len(xyxy) else xyxy.reshape(0, 4)
            predictions.append(FrameDetections(boxes, classes, scores))
            truth.append(FrameDetections(sample.boxes, sample.classes))
    return predictions, truth


def train_detector(options: DetectorTrainOptions, train: BoxFrames, val: BoxFrames,
                   log=print) -> Dict[str, Any]:
    """Train (or resume) a YOLOv5 detector; returns the last epoch's metrics row."""
    import torch

    from depthdet_ros.core import metadata
    from depthdet_ros.nets.registry import build_model, checkpoint_config, task_of
    from depthdet_ros.train.losses import YoloLossConfig, YoloV5Loss

    if task_of(options.arch) != metadata.TASK_DETECTOR:
        raise ValueError(f'{options.arch} is not a detector')
    names = list(train.class_names)
    if list(val.class_names) != names:
        raise ValueError('training and validation data name different classes')
    if options.image_size % 32:
        raise ValueError(f'--image-size {options.image_size} is not a multiple of 32')
    options_plain = common.options_dict(options)
    device = common.select_device(options.device)
    common.seed_everything(options.seed, options.threads)
    arch_kwargs = {k: v for k, v in (('depth_multiple', options.depth_multiple),
                                     ('width_multiple', options.width_multiple))
                   if v is not None}
    model = build_model(options.arch, len(names), **arch_kwargs)
    if not common.init_weights(model, options, (options.image_size, options.image_size), log):
        model.detect.initialize_biases(options.image_size)
    layout = common.memory_format(options)
    model.to(device, memory_format=layout)
    config = checkpoint_config(options.arch, arch_kwargs, names=names,
                               input_size=(options.image_size, options.image_size))
    optimizer = common.make_optimizer(model, options)
    ema = common.ModelEma(model, options.ema_decay, options.ema_tau)
    criterion = YoloV5Loss(model.detect, YoloLossConfig(
        box=options.box_gain, obj=options.obj_gain, cls=options.cls_gain,
        anchor_t=options.anchor_t, image_size=options.image_size))

    def train_step(batch):
        images, targets = batch
        images = (images.to(device).permute(0, 3, 1, 2).float() / 255.0).contiguous(
            memory_format=layout)
        loss, parts = criterion(model(images), targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        box, obj, cls = (float(v) for v in parts)
        return {'box': box, 'obj': obj, 'cls': cls}

    def validate(shipped):
        predictions, truth = predict_frames(shipped, val, options.image_size, device)
        result = detection_map(truth, predictions, names)
        return {'val_map50': result.map50, 'val_map50_95': result.map50_95}

    def export(shipped, out_dir):
        from depthdet_ros.nets.export import export_detector
        return export_detector(shipped, os.path.join(out_dir, DETECTOR_ONNX), names,
                               (options.image_size, options.image_size)).summary()

    batches = DetectorBatches(train, options)
    task = common.TrainTask(
        model=model, config=config, optimizer=optimizer, train_count=len(train),
        make_batch=batches, train_step=train_step, validate=validate, export=export,
        plot_keys=(('train_box', 'train_obj', 'train_cls'), ('val_map50', 'val_map50_95')),
        ema=ema)
    log(f'training {model.arch} ({len(names)} classes) at {options.image_size} on '
        f'{len(train)} frames ({len(val)} validation) on {device}, '
        f'{torch.get_num_threads()} threads')
    return common.fit(task, options, options_plain, log)
