"""`depthdet train joint`: the joint network (nets.joint) on synthetic frames with masks.

The detector's and the depth net's recipes in one: each frame is letterboxed exactly as
the runtime does (core.detector.letterbox, the 'fit_pad' view of core.depth), then scaled
about the centre, shifted and flipped at random, with YOLOv5's HSV jitter. One affine warps
the image, the depth (nearest, straight onto the half-resolution output grid) and the
instance-id image (nearest); boxes are the extents of each kept instance's warped pixels,
and its mask target on the stride-4 prototype grid marks the cells at least half covered
by them, so boxes, masks and depth stay aligned. The depth target is on the network's
depth grid (stride 2, or 4 with --depth-stride 4).
Depth targets are in the canonical camera (train.augment) unless --canonical-focal is 0.

Loss (all x batch size, as YOLOv5 back-propagates): YOLOv5's box/objectness/class loss
(train.losses) + mask_gain x YOLOv5-seg's mask loss (per positive anchor, BCE of
coefficients . prototypes against its object's mask, averaged inside its box on the
prototype grid) + depth_gain x a depth loss of train.losses (silog_grad by default).
Validation each epoch reads the EMA weights' outputs with the runtime's own decoder
(core.joint.JointDecoder) on each letterboxed frame: box mAP@0.5 and @0.5:0.95, mean mask
IoU of the ground-truth objects (0 when no same-class detection overlaps at IoU >= 0.5) and
pooled depth REL and delta1 over valid pixels of the image grid.
"""
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import focal_scale
from depthdet_ros.core.detector import letterbox, PAD_VALUE
from depthdet_ros.eval.metrics import DepthAccumulator, detection_map, FrameDetections
from depthdet_ros.train import common
from depthdet_ros.train.augment import _view_transform, boxes_to_targets, \
    DetectAugmentConfig, hsv_jitter
from depthdet_ros.train.evaluate import MAP_DECODE
from depthdet_ros.train.options import JointTrainOptions

JOINT_ONNX = 'joint.onnx'
PROTO_STRIDE = 4


@dataclass
class JointSample:
    """One training input (SxSx3 uint8), its boxes, classes, masks and depth target."""

    rgb: np.ndarray
    boxes: np.ndarray     # N x 4 xyxy input pixels
    classes: np.ndarray   # N
    masks: np.ndarray     # N x S/4 x S/4 uint8, on the prototype grid
    depth: np.ndarray     # S/d x S/d float32 (canonical) metres, 0 invalid; d depth stride


def _grid(stride: int) -> np.ndarray:
    """Affine from input pixels to a stride-s grid: c' + 0.5 = (c + 0.5) / s (centres)."""
    return np.array([[1.0 / stride, 0.0, 0.5 / stride - 0.5],
                     [0.0, 1.0 / stride, 0.5 / stride - 0.5], [0.0, 0.0, 1.0]])


def joint_sample(rgb: np.ndarray, depth: np.ndarray, instances: np.ndarray,
                 objects: Dict[int, int], size: int, rng: Optional[np.random.Generator],
                 options: JointTrainOptions, focal: Optional[Tuple[float, float]] = None
                 ) -> JointSample:
    """Make one training (rng given) or validation (rng None) sample of a full frame.

    `objects` maps the kept instance ids to class ids; `focal` is the frame's (fx, fy),
    needed with a canonical focal length.
    """
    image_h, image_w = depth.shape
    transform = _view_transform(image_h, image_w, size, size, 'fit_pad')
    flip = False
    if rng is not None:
        scale = rng.uniform(*options.scale_range)
        shift = rng.uniform(-options.translate, options.translate, 2) * size
        centre = (size - 1) / 2.0
        about = np.array([[scale, 0.0, (1 - scale) * centre + shift[0]],
                          [0.0, scale, (1 - scale) * centre + shift[1]], [0.0, 0.0, 1.0]])
        transform = about @ transform
        flip = rng.random() < options.flip_prob
    if flip:
        transform = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) \
            @ transform
    factor = 1.0
    if options.canonical_focal:
        if focal is None:
            raise ValueError('a canonical focal length needs the frame\'s focal length')
        effective = math.sqrt(focal[0] * abs(transform[0, 0]) * focal[1] * abs(transform[1, 1]))
        factor = options.canonical_focal / effective
    out_rgb = cv2.warpAffine(rgb, transform[:2], (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    if rng is not None:
        out_rgb = hsv_jitter(out_rgb, rng, DetectAugmentConfig())
    clean = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    stride = options.depth_stride
    out_depth = cv2.warpAffine(clean, (_grid(stride) @ transform)[:2],
                               (size // stride, size // stride),
                               flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0.0) * np.float32(factor)
    ids = np.asarray(instances, np.uint16)
    ids_input = cv2.warpAffine(ids, transform[:2], (size, size), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    grid = size // PROTO_STRIDE
    boxes, classes, masks = [], [], []
    for instance, class_id in objects.items():
        pixels = ids_input == instance
        ys, xs = np.nonzero(pixels)
        if len(xs) < options.min_instance_pixels:
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(class_id)
        cover = pixels.reshape(grid, PROTO_STRIDE, grid, PROTO_STRIDE).mean(axis=(1, 3))
        masks.append(cover >= 0.5)
    return JointSample(out_rgb, np.asarray(boxes, np.float64).reshape(-1, 4),
                       np.asarray(classes, np.int64),
                       np.asarray(masks, np.uint8).reshape(-1, grid, grid), out_depth)


def frame_objects(frames, index: int) -> Dict[int, int]:
    """{instance id: class id} of the kept annotations of frame `index`."""
    return {int(o['instance_id']): int(o['category_id']) - 1 for o in frames.objects(index)}


def frame_focal(frames, index: int):
    """(fx, fy) of frame `index` in its pixels."""
    K = frames.camera_matrix(index)
    return float(K[0, 0]), float(K[1, 1])


def load_sample(frames, index: int, size: int, rng, options: JointTrainOptions) -> JointSample:
    """Read frame `index` of a SimDataset-like source and make its sample."""
    rgb, depth = frames.load(index)
    return joint_sample(rgb, depth, frames.instances(index), frame_objects(frames, index), size,
                        rng, options, frame_focal(frames, index))


class JointBatches:
    """Deterministic training batches.

    Each is (uint8 NHWC images, targets [N, 6], masks [N, S/4, S/4], depth targets
    [B, 1, S/d, S/d], d the depth stride).
    """

    def __init__(self, frames, options: JointTrainOptions):
        self.frames = frames
        self.options = options

    def __call__(self, epoch: int, positions: np.ndarray, order: np.ndarray):
        """Build the batch of these positions of the epoch."""
        import torch
        size = self.options.image_size
        images, targets, masks, depths = [], [], [], []
        for slot, position in enumerate(positions):
            rng = common.sample_rng(self.options.seed, epoch, int(position))
            sample = load_sample(self.frames, int(order[position]), size, rng, self.options)
            images.append(sample.rgb)
            targets.append(boxes_to_targets(sample.boxes, sample.classes, slot, size))
            masks.append(sample.masks)
            depths.append(sample.depth)
        return (torch.from_numpy(np.stack(images)), torch.from_numpy(np.concatenate(targets)),
                torch.from_numpy(np.concatenate(masks)),
                torch.from_numpy(np.stack(depths)).unsqueeze(1))


class JointLoss:
    """YOLOv5 detection + YOLOv5-seg mask + depth losses of a JointNet in training mode."""

    def __init__(self, model, options: JointTrainOptions):
        from depthdet_ros.train.losses import DEPTH_LOSSES, YoloLossConfig, YoloV5Loss
        self.detect = model.detect
        self.options = options
        self.detection = YoloV5Loss(model.detect, YoloLossConfig(
            box=options.box_gain, obj=options.obj_gain, cls=options.cls_gain,
            anchor_t=options.anchor_t, image_size=options.image_size))
        self.depth_loss = DEPTH_LOSSES[options.depth_loss]
        self.target_limit = options.max_depth * (options.canonical_target_margin
                                                 if options.canonical_focal else 1.0)

    def mask_loss(self, raw, protos, targets, masks):
        """Mean over positives of the in-box BCE of their mask logits, over levels."""
        import torch
        import torch.nn.functional as F

        from depthdet_ros.train.losses import build_targets
        scored = 5 + self.detect.num_classes
        grids = [(int(x.shape[2]), int(x.shape[3])) for x in raw]
        assigned = build_targets(targets, self.detect.anchors, grids, self.options.anchor_t)
        grid_h, grid_w = protos.shape[2:]
        rows = torch.arange(grid_h, device=protos.device, dtype=protos.dtype) + 0.5
        cols = torch.arange(grid_w, device=protos.device, dtype=protos.dtype) + 0.5
        total = protos.sum() * 0.0
        for pred, tgt in zip(raw, assigned):
            if not tgt.image.numel():
                continue
            coefficients = pred[tgt.image, tgt.anchor, tgt.cell_y, tgt.cell_x, scored:]
            logits = torch.einsum('mk,mkhw->mhw', coefficients, protos[tgt.image])
            truth = masks[tgt.target].to(logits.dtype)
            grid = torch.tensor([grid_w, grid_h, grid_w, grid_h], dtype=targets.dtype,
                                device=targets.device)
            box = targets[tgt.target, 2:6] * grid
            x1, x2 = box[:, 0] - box[:, 2] / 2, box[:, 0] + box[:, 2] / 2
            y1, y2 = box[:, 1] - box[:, 3] / 2, box[:, 1] + box[:, 3] / 2
            inside = ((rows[None, :, None] >= y1[:, None, None])
                      & (rows[None, :, None] <= y2[:, None, None])
                      & (cols[None, None, :] >= x1[:, None, None])
                      & (cols[None, None, :] <= x2[:, None, None])).to(logits.dtype)
            bce = F.binary_cross_entropy_with_logits(logits, truth, reduction='none')
            per_object = (bce * inside).sum(dim=(1, 2)) / inside.sum(dim=(1, 2)).clamp_min(1)
            total = total + per_object.mean()
        return total / len(raw)

    def __call__(self, outputs, targets, masks, depth_targets):
        """Return (loss x batch, {'box', 'obj', 'cls', 'mask', 'depth'} floats)."""
        from depthdet_ros.train.depth import valid_target
        raw, protos, depth = outputs
        batch = protos.shape[0]
        scored = 5 + self.detect.num_classes
        detection, parts = self.detection([x[..., :scored] for x in raw], targets)
        mask = self.mask_loss(raw, protos, targets, masks)
        depth_loss = self.depth_loss(depth, depth_targets,
                                     valid_target(depth_targets, self.target_limit))
        total = detection + (self.options.mask_gain * mask
                             + self.options.depth_gain * depth_loss) * batch
        box, obj, cls = (float(v) for v in parts)
        return total, {'box': box, 'obj': obj, 'cls': cls, 'mask': float(mask.detach()),
                       'depth': float(depth_loss.detach())}


def mask_iou(predicted, truth: np.ndarray) -> float:
    """Return the IoU of an InstanceMask with a full-image boolean mask."""
    full = predicted.full(*truth.shape)
    union = np.count_nonzero(full | truth)
    return np.count_nonzero(full & truth) / union if union else 0.0


def _box_iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def evaluate_joint_model(model, frames, options: JointTrainOptions, names,
                         device=None) -> Dict[str, float]:
    """Box mAP, mean mask IoU and depth REL / delta1 of a torch JointNet (module doc)."""
    import torch

    from depthdet_ros.core.joint import JointDecoder
    device = device or next(model.parameters()).device
    size = options.image_size
    decoder = JointDecoder(names, model.num_masks, (size, size),
                           (size // PROTO_STRIDE, size // PROTO_STRIDE),
                           (size // options.depth_stride, size // options.depth_stride),
                           MAP_DECODE)
    predictions, truth, ious = [], [], []
    depth_acc = DepthAccumulator()
    for index in range(len(frames)):
        rgb, depth = frames.load(index)
        boxed, lb = letterbox(rgb, size, size)
        image = torch.from_numpy(boxed).permute(2, 0, 1)[None].float().div(255.0).to(device)
        rows, protos, pred_depth = (t[0].float().cpu().numpy() for t in model(image))
        scale = 1.0
        if options.canonical_focal:
            camera = CameraModel(frames.camera_matrix(index), rgb.shape[1], rgb.shape[0])
            scale = focal_scale(decoder.views(*rgb.shape[:2])[0], options.canonical_focal,
                                camera)
        result = decoder(rows, protos, pred_depth[0], lb, scale)
        boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in result.detections])
        predictions.append(FrameDetections(boxes.reshape(-1, 4),
                                           np.array([d.class_id for d in result.detections]),
                                           np.array([d.score for d in result.detections])))
        sample = frames.load_boxes(index)
        truth.append(FrameDetections(sample.boxes, sample.classes))
        instances = frames.instances(index)
        for instance, class_id in frame_objects(frames, index).items():
            gt_mask = instances == instance
            ys, xs = np.nonzero(gt_mask)
            if not len(xs):
                continue
            gt_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            best = max(((_box_iou(gt_box, (d.box.x1, d.box.y1, d.box.x2, d.box.y2)), i)
                        for i, d in enumerate(result.detections) if d.class_id == class_id),
                       default=(0.0, -1))
            ious.append(mask_iou(result.masks[best[1]], gt_mask) if best[0] >= 0.5 else 0.0)
        valid = np.isfinite(depth) & (depth > 0) & (depth <= options.max_depth)
        predicted = np.nan_to_num(result.depth, nan=0.0)
        depth_acc.add(predicted, np.nan_to_num(depth, nan=0.0), valid & (predicted > 0))
    scores = detection_map(truth, predictions, list(names))
    depth_result = depth_acc.result()
    return {'val_map50': scores.map50, 'val_map50_95': scores.map50_95,
            'val_mask_iou': float(np.mean(ious)) if ious else float('nan'),
            'val_rel': depth_result.rel, 'val_delta1': depth_result.delta1}


def train_joint(options: JointTrainOptions, train, val, log=print) -> Dict[str, Any]:
    """Train (or resume) a joint net; returns the last epoch's metrics row."""
    import torch

    from depthdet_ros.core import metadata
    from depthdet_ros.nets.registry import build_model, checkpoint_config, task_of
    from depthdet_ros.train.depth import init_head_bias
    from depthdet_ros.train.losses import DEPTH_LOSSES

    if task_of(options.arch) != metadata.TASK_JOINT:
        raise ValueError(f'{options.arch} is not a joint net')
    if options.depth_loss not in DEPTH_LOSSES:
        raise ValueError(f'unknown depth loss {options.depth_loss!r}; choose from '
                         f'{", ".join(DEPTH_LOSSES)}')
    if options.image_size % 32:
        raise ValueError(f'--image-size {options.image_size} is not a multiple of 32')
    names = list(train.class_names)
    if list(val.class_names) != names:
        raise ValueError('training and validation data name different classes')
    for source, role in ((train, 'training'), (val, 'validation')):
        if not hasattr(source, 'instances'):
            raise ValueError(f'the {role} frames have no instance masks (use splits written '
                             'by `depthdet synth dataset`)')
    options_plain = common.options_dict(options)
    device = common.select_device(options.device)
    common.seed_everything(options.seed, options.threads)
    arch_kwargs = {k: v for k, v in (('depth_multiple', options.depth_multiple),
                                     ('width_multiple', options.width_multiple),
                                     ('num_masks', options.num_masks),
                                     ('decoder_width', options.decoder_width),
                                     ('proto_width', options.proto_width),
                                     ('depth_stride', options.depth_stride))
                   if v is not None}
    model = build_model(options.arch, len(names), **arch_kwargs)
    size = (options.image_size, options.image_size)
    bias = None
    if not common.init_weights(model, options, size, log):
        model.detect.initialize_biases(options.image_size)
        bias = init_head_bias(model.depth_decoder, train, options.max_depth)
    layout = common.memory_format(options)
    model.to(device, memory_format=layout)
    config = checkpoint_config(options.arch, arch_kwargs, names=names, input_size=size)
    if options.canonical_focal:
        config['canonical_focal'] = float(options.canonical_focal)
    optimizer = common.make_optimizer(model, options)
    ema = common.ModelEma(model, options.ema_decay, options.ema_tau) \
        if options.ema_decay > 0 else None
    criterion = JointLoss(model, options)

    def train_step(batch):
        images, targets, masks, depths = batch
        images = (images.to(device).permute(0, 3, 1, 2).float() / 255.0).contiguous(
            memory_format=layout)
        loss, parts = criterion(model(images), targets.to(device), masks.to(device),
                                depths.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        return parts

    def validate(shipped):
        return evaluate_joint_model(shipped, val, options, names, device)

    def export(shipped, out_dir):
        from depthdet_ros.nets.export import export_joint
        return export_joint(shipped, os.path.join(out_dir, JOINT_ONNX), names, size,
                            arch_kwargs=arch_kwargs,
                            canonical_focal=options.canonical_focal or None).summary()

    task = common.TrainTask(
        model=model, config=config, optimizer=optimizer, train_count=len(train),
        make_batch=JointBatches(train, options), train_step=train_step, validate=validate,
        export=export, ema=ema,
        plot_keys=(('train_box', 'train_obj', 'train_cls', 'train_mask'), ('train_depth',),
                   ('val_map50', 'val_map50_95', 'val_mask_iou', 'val_delta1'),
                   ('val_rel',)))
    log(f'training {model.arch} ({len(names)} classes, {model.num_masks} prototypes) at '
        f'{options.image_size} on {len(train)} frames ({len(val)} validation) on {device}, '
        f'{torch.get_num_threads()} threads' +
        (f'; depth head bias {bias:.2f} m' if bias is not None else ''))
    return common.fit(task, options, options_plain, log)
