"""`depthdet train evaluate`: model-card numbers of an ONNX detector + depth pair or joint net.

A joint model (--joint-model) gives boxes, instance masks and depth from one network.

Every frame of a held-out split goes through core.pipeline.Pipeline exactly as the node
runs it (letterbox, depth crop and inverse mapping, fusion). Reported:
- detection: COCO mAP@0.5 and @0.5:0.95 of all detections (score >= 0.001, NMS IoU 0.6);
  with a joint model also mask mAP (COCO segm) of their instance masks against the
  split's exact instance masks;
- depth: REL, RMSE, log10, delta1-3 of the pipeline's image-aligned depth map against the
  rendered depth, pooled over every pixel the network sees; each frame's CameraInfo scales
  focal-aware models (--no-focal-correction: as predicted); on frames wider or taller
  than the network input, also split into the bands a centre crop would miss ('bands')
  and the rest ('centre');
- per-object depth by strategy (object_depth.STRATEGIES), relative error
  against the sim's per-object depth (median z of the object's visible pixels), for all
  objects, hollow classes and solid ones, in four settings: `pipeline` (detections at the
  operating score threshold matched to ground truth by IoU >= 0.5 and class, predicted
  depth), `pipeline_oracle_depth` (the same detections on the rendered depth),
  `gt_boxes` (ground-truth boxes, predicted depth) and `oracle_depth` (ground-truth
  boxes and depth: the strategy's own error). `mask` takes each detection's own
  instance mask in the two pipeline settings (joint models only: the pair has no masks,
  so no `mask` rows there) and the object's ground-truth mask in the two ground-truth-box
  settings (what perfect masks would give).
- with a joint model, the hollow-object ratios of issue 14: mean REL of `mask` (own
  masks) over that of `box_median` on hollow objects, on the rendered and on the
  predicted depth (targets <= 0.5 and <= 0.7).
"""
import argparse
from dataclasses import asdict, dataclass, field
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from depthdet_ros.arg_types import non_negative_int, output_file
from depthdet_ros.core.detector import DetectorConfig
from depthdet_ros.core.types import Box, InstanceMask
from depthdet_ros.eval.metrics import DepthAccumulator, detection_map, FrameDetections, \
    instance_mask_rles
from depthdet_ros.tools.options import add_override, joint_conflict

# Kinds of the sim whose box is mostly background or seen through (sim.objects: hollow or
# open kinds).
HOLLOW_CLASSES = ('chair', 'table', 'cup', 'box', 'ring')
SETTINGS = ('pipeline', 'pipeline_oracle_depth', 'gt_boxes', 'oracle_depth')
# Settings whose boxes are detections (their masks are the network's own).
DETECTED_SETTINGS = ('pipeline', 'pipeline_oracle_depth')
# Issue 14's hollow-object targets: mask (own masks) / box_median mean REL on hollow
# objects, per setting.
HOLLOW_TARGETS = {'pipeline_oracle_depth': 0.5, 'pipeline': 0.7}
GROUPS = ('all', 'hollow', 'solid')
OPERATING_SCORE = 0.25
# mAP needs the low-score tail; YOLOv5's val.py decodes with the same settings.
MAP_DECODE = DetectorConfig(score_threshold=0.001, iou_threshold=0.6, max_detections=300)
MATCH_IOU = 0.5


@dataclass
class ObjectErrors:
    """Per-object relative errors of one strategy in one setting and group."""

    count: int
    mean_rel: float
    median_rel: float
    mean_abs_m: float


@dataclass
class EvaluationReport:
    """Everything `depthdet train evaluate` measures (see the module docstring)."""

    frames: int
    map50: float
    map50_95: float
    per_class_ap50: Dict[str, float]
    depth: Dict[str, float]
    recall_at_operating_score: float
    objects: Dict[str, Dict[str, Dict[str, ObjectErrors]]]  # setting -> group -> strategy
    hollow_classes: Sequence[str] = HOLLOW_CLASSES
    depth_regions: Dict[str, Dict[str, float]] = field(default_factory=dict)
    focal_correction: bool = True
    seconds: float = 0.0
    models: Dict[str, str] = field(default_factory=dict)
    # Joint models: COCO segm mAP of the instance masks ({'map50', 'map50_95'}) and the
    # hollow-object ratios {setting: mask / box_median mean REL} (HOLLOW_TARGETS).
    mask_map: Optional[Dict[str, float]] = None
    hollow_mask_ratio: Dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the report as JSON."""
        return json.dumps(asdict(self), indent=2)

    def markdown(self) -> str:
        """Return the tables for a model card."""
        d = self.depth
        lines = [f'Held-out frames: {self.frames}', '',
                 '| mAP@0.5 | mAP@0.5:0.95 | recall @ score 0.25 |', '|---|---|---|',
                 f'| {self.map50:.3f} | {self.map50_95:.3f} | '
                 f'{self.recall_at_operating_score:.3f} |', '']
        if self.per_class_ap50:  # classes with ground truth only
            lines += ['| class | ' + ' | '.join(self.per_class_ap50) + ' |',
                      '|---|' + '---|' * len(self.per_class_ap50),
                      '| AP@0.5 | ' + ' | '.join(f'{ap:.3f}' for ap in
                                                 self.per_class_ap50.values()) + ' |', '']
        if self.mask_map is not None:
            lines += ['| mask mAP@0.5 | mask mAP@0.5:0.95 |', '|---|---|',
                      f'| {self.mask_map["map50"]:.3f} | {self.mask_map["map50_95"]:.3f} |', '']
        lines += [
                 '| REL | RMSE (m) | log10 | δ1 | δ2 | δ3 |', '|---|---|---|---|---|---|',
                 f'| {d["rel"]:.3f} | {d["rmse"]:.3f} | {d["log10"]:.3f} | {d["delta1"]:.3f} '
                 f'| {d["delta2"]:.3f} | {d["delta3"]:.3f} |', '']
        if self.depth_regions:
            lines += ['| pixels (frames not of the net\'s aspect) | REL | δ1 | pixels |',
                      '|---|---|---|---|']
            lines += [f'| {name} | {r["rel"]:.3f} | {r["delta1"]:.3f} | {r["pixels"]} |'
                      for name, r in self.depth_regions.items()]
            lines.append('')
        lines += ['| setting | objects | strategy | mean REL | median REL | mean abs (m) | n |',
                  '|---|---|---|---|---|---|---|']
        for setting, groups in self.objects.items():
            for group, strategies in groups.items():
                for strategy, e in strategies.items():
                    lines.append(f'| {setting} | {group} | {strategy} | {e.mean_rel:.3f} | '
                                 f'{e.median_rel:.3f} | {e.mean_abs_m:.3f} | {e.count} |')
        if self.hollow_mask_ratio:
            lines += ['', '| hollow objects, own masks | mask / box_median mean REL | target |',
                      '|---|---|---|']
            lines += [f'| {setting} | {ratio:.3f} | <= {HOLLOW_TARGETS[setting]:g} |'
                      for setting, ratio in self.hollow_mask_ratio.items()]
        return '\n'.join(lines)


def _iou(a: Box, b: Box) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.width * a.height + b.width * b.height - inter)


def match_detections(detections, truths: Sequence[Dict], min_iou: float = MATCH_IOU):
    """Greedy one-to-one matching by descending score; returns [(detection, truth)].

    A detection matches the unmatched ground-truth object of its class with the highest
    IoU, if that IoU reaches `min_iou`.
    """
    boxes = [_truth_box(t) for t in truths]
    taken = [False] * len(truths)
    pairs = []
    for det in sorted(detections, key=lambda d: -d.score):
        best, best_iou = -1, min_iou
        for k, truth in enumerate(truths):
            if taken[k] or truth['category_id'] - 1 != det.class_id:
                continue
            iou = _iou(det.box, boxes[k])
            if iou >= best_iou:
                best, best_iou = k, iou
        if best >= 0:
            taken[best] = True
            pairs.append((det, truths[best]))
    return pairs


def _truth_box(truth: Dict) -> Box:
    x, y, w, h = truth['bbox']
    return Box(float(x), float(y), float(x + w), float(y + h))


def _summarise(errors: List[tuple]) -> ObjectErrors:
    """(relative, absolute) error pairs -> ObjectErrors (NaN when empty)."""
    if not errors:
        return ObjectErrors(0, math.nan, math.nan, math.nan)
    rel = np.array([e[0] for e in errors])
    absolute = np.array([e[1] for e in errors])
    return ObjectErrors(len(errors), float(rel.mean()), float(np.median(rel)),
                        float(absolute.mean()))


def _crop_bands(pipeline, height: int, width: int) -> np.ndarray:
    """Mask of the pixels a centre crop of the depth net's input would not see."""
    from depthdet_ros.core.depth import DepthEstimator, DepthView
    depth = pipeline.depth
    view = DepthView.for_image(height, width, depth.input_h, depth.input_w, depth.output_h,
                               depth.output_w, 'cover_crop')
    ones = np.ones((depth.output_h, depth.output_w), np.float32)
    return np.isnan(DepthEstimator.to_image(ones, view))


def truth_mask(instances: np.ndarray, truth: Dict) -> InstanceMask:
    """Return the ground-truth object's instance mask inside its box (an InstanceMask)."""
    from depthdet_ros.core.joint import box_window
    box = _truth_box(truth)
    x, y, w, h = box_window(box, *instances.shape)
    return InstanceMask(x, y, instances[y:y + h, x:x + w] == int(truth['instance_id']))


def evaluate_models(detector_path: str, depth_path: str, dataset,
                    hollow_classes: Sequence[str] = HOLLOW_CLASSES,
                    operating_score: float = OPERATING_SCORE, log=None,
                    focal_correction: bool = True,
                    depth_coverage: str = 'full', joint_path: str = '') -> EvaluationReport:
    """Run the pipeline on every frame of a SimDataset split and measure it.

    With `joint_path` the joint model replaces the detector and depth pair (whose paths
    are then ignored).
    """
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.core.object_depth import object_depth, STRATEGIES
    from depthdet_ros.core.pipeline import Pipeline, PipelineModels

    start = time.perf_counter()
    pipeline = Pipeline(PipelineModels(detector_path, depth_path,
                                       depth_coverage=depth_coverage, joint_path=joint_path),
                        DetectorConfig(score_threshold=MAP_DECODE.score_threshold,
                                       iou_threshold=MAP_DECODE.iou_threshold,
                                       max_detections=MAP_DECODE.max_detections),
                        concurrent=False)
    joint = pipeline.joint is not None
    names = list(pipeline.detector.class_names)
    # A split without classes (an RGB-D recording, `depthdet train from-bag`) is evaluated
    # for depth alone: its detection and per-object figures come out NaN.
    if dataset.class_names and names != list(dataset.class_names):
        raise ValueError(f'the detector names {names}, the dataset {list(dataset.class_names)}')
    accumulator = DepthAccumulator()
    regions = {'bands': DepthAccumulator(), 'centre': DepthAccumulator()}
    bands_by_size = {}
    predictions, truth_frames = [], []
    # The pair has no masks: no `mask` rows where the boxes are its detections.
    strategies = {s: tuple(k for k in STRATEGIES if joint or k != 'mask'
                           or s not in DETECTED_SETTINGS) for s in SETTINGS}
    errors = {s: {g: {k: [] for k in strategies[s]} for g in GROUPS} for s in SETTINGS}
    matched = total = 0
    try:
        for index in range(len(dataset)):
            rgb, depth_gt = dataset.load(index)
            truths = dataset.objects(index)
            h, w = depth_gt.shape
            camera = CameraModel(K=dataset.camera_matrix(index), width=w, height=h)
            result = pipeline.process(rgb, camera if focal_correction else None)
            accumulator.add(result.depth_map, depth_gt)
            if (h, w) not in bands_by_size:
                # A joint model's depth always covers the whole image.
                bands_by_size[(h, w)] = np.zeros((h, w), bool) if joint else \
                    _crop_bands(pipeline, h, w)
            bands = bands_by_size[(h, w)]
            if bands.any():
                regions['bands'].add(result.depth_map[bands], depth_gt[bands])
                regions['centre'].add(result.depth_map[~bands], depth_gt[~bands])
            detections = [o.detection for o in result.objects]
            instances = dataset.instances(index) if truths else None
            truth_masks = [truth_mask(instances, t) for t in truths]
            predictions.append(FrameDetections(
                np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections],
                         np.float64).reshape(-1, 4),
                np.array([d.class_id for d in detections], np.int64),
                np.array([d.score for d in detections], np.float64),
                instance_mask_rles([o.mask for o in result.objects], h, w) if joint else None))
            truth_sample = dataset.load_boxes(index)
            truth_frames.append(FrameDetections(
                truth_sample.boxes, truth_sample.classes,
                masks=instance_mask_rles(truth_masks, h, w) if joint else None))
            own_masks = {id(o.detection): o.mask for o in result.objects}
            operating = [d for d in detections if d.score >= operating_score]
            pairs = match_detections(operating, truths)
            matched += len(pairs)
            total += len(truths)
            detected = [(det.box, own_masks[id(det)], t) for det, t in pairs]
            with_truth = [(_truth_box(t), m, t) for t, m in zip(truths, truth_masks)]
            cases = {'pipeline': (detected, result.depth_map),
                     'pipeline_oracle_depth': (detected, depth_gt),
                     'gt_boxes': (with_truth, result.depth_map),
                     'oracle_depth': (with_truth, depth_gt)}
            for setting, (items, depth_map) in cases.items():
                for box, mask, truth in items:
                    name = names[truth['category_id'] - 1]
                    group = 'hollow' if name in hollow_classes else 'solid'
                    gt = float(truth['depth'])
                    for strategy in strategies[setting]:
                        estimate = object_depth(depth_map, box, strategy, mask)
                        if not estimate.valid:
                            continue  # counted by the missing count, not as an error
                        err = (abs(estimate.depth - gt) / gt, abs(estimate.depth - gt))
                        errors[setting][group][strategy].append(err)
                        errors[setting]['all'][strategy].append(err)
            if log and (index + 1) % 50 == 0:
                log(f'{index + 1}/{len(dataset)} frames')
    finally:
        pipeline.close()
    detection = detection_map(truth_frames, predictions, names)
    mask_map = None
    if joint:
        masks = detection_map(truth_frames, predictions, names, 'segm')
        mask_map = {'map50': masks.map50, 'map50_95': masks.map50_95}
    depth = accumulator.result()
    objects = {s: {g: {k: _summarise(v) for k, v in strategies.items()}
                   for g, strategies in groups.items()} for s, groups in errors.items()}
    hollow = {setting: _ratio(objects[setting]['hollow']['mask'].mean_rel,
                              objects[setting]['hollow']['box_median'].mean_rel)
              for setting in HOLLOW_TARGETS} if joint else {}
    return EvaluationReport(
        frames=len(dataset), map50=detection.map50, map50_95=detection.map50_95,
        per_class_ap50=detection.per_class_ap50,
        depth={k: v for k, v in depth.as_dict().items()},
        recall_at_operating_score=matched / total if total else math.nan,
        objects=objects, hollow_classes=tuple(hollow_classes),
        depth_regions={name: _region_summary(acc.result()) for name, acc in regions.items()
                       if acc.result().pixels},
        focal_correction=focal_correction,
        seconds=time.perf_counter() - start,
        models={'joint': os.path.basename(joint_path)} if joint else
        {'detector': os.path.basename(detector_path), 'depth': os.path.basename(depth_path)},
        mask_map=mask_map, hollow_mask_ratio=hollow)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _region_summary(result) -> Dict[str, float]:
    return {'rel': result.rel, 'delta1': result.delta1, 'pixels': int(result.pixels)}


def add_parser(commands):
    """Register `depthdet train evaluate` under `depthdet train`."""
    from depthdet_ros.assets import default_model

    parser = commands.add_parser(
        'evaluate', help='model-card numbers of a detector + depth net (or a joint net) on a '
        'held-out split', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True, metavar='SPLIT_DIR',
                        help='held-out split written by `depthdet synth dataset`')
    parser.add_argument('--detector', default=None,
                        help=f'detector ONNX (default: the bundled {default_model("detector")})')
    parser.add_argument('--depth', default=None,
                        help=f'depth ONNX (default: the bundled {default_model("depth")})')
    add_override(parser, 'joint_model', 'joint ONNX (boxes, instance masks and depth in one '
                 'network) evaluated instead of the --detector / --depth pair; adds mask mAP '
                 'and the hollow-object ratios')
    parser.add_argument('--max-frames', type=non_negative_int, default=0, metavar='N',
                        help='evaluate only the first N frames (0: all; card numbers use all)')
    parser.add_argument('--json', metavar='PATH', help='also write the report as JSON')
    parser.add_argument('--no-focal-correction', dest='focal_correction', action='store_false',
                        help='use the depth as predicted, without scaling it to each frame\'s '
                             'camera (to measure what the correction does)')
    parser.add_argument('--depth-coverage', choices=('full', 'crop'), default='full',
                        help='the depth net\'s view, as the node\'s depth_coverage parameter '
                             '(default full)')
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run `depthdet train evaluate`."""
    from depthdet_ros.assets import default_model
    from depthdet_ros.cli import CliError
    from depthdet_ros.train.data import SimDataset, Subset
    pair = [f'--{kind}' for kind in ('detector', 'depth') if getattr(args, kind)]
    if args.joint_model and pair:
        raise CliError(joint_conflict('--joint-model', pair[0]))
    if args.json:
        output_file(args.json, '--json')
    try:
        dataset = Subset(SimDataset(args.data), args.max_frames)
        report = evaluate_models(args.detector or default_model('detector'),
                                 args.depth or default_model('depth'), dataset, log=print,
                                 focal_correction=args.focal_correction,
                                 depth_coverage=args.depth_coverage,
                                 joint_path=args.joint_model or '')
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(report.markdown())
    if args.json:
        with open(args.json, 'w') as f:
            f.write(report.to_json())
    return 0
