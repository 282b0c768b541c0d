"""Scoring a bag frame by frame: dense depth, per-object depth, mAP, alerts and latency.

`evaluate_bag` runs the node's Pipeline on every image of a bag (see bag_input for how
frames are assembled) and feeds each result to an `Evaluation`, which accumulates:

- dense depth metrics (metrics.DepthAccumulator) on the pixels valid in both the GT and
  the predicted map, the prediction resized to the GT grid by nearest neighbour when
  they differ; again after scaling each frame's prediction by median(GT) / median(pred)
  (the usual protocol for relative-depth models), reported separately;
- per-object samples for every strategy and box source (object_errors); the `mask`
  strategy reads a detection's own instance mask (joint models) and, for GT boxes, the
  object's GT instance mask where the bag has them (else its `near_median` fallback);
- COCO mAP over the frames with GT detections (metrics.detection_map) on the
  detections the node publishes, i.e. after its score threshold; with a model that
  gives masks (`EvalSettings.score_masks`) and GT instance masks, mask mAP (COCO segm)
  over the frames that have both at the image's size;
- proximity-alert tallies for every strategy (proximity);
- per-stage latency: image decoding, the pipeline's own stages and their total;
- with a tracker, tracking scores (eval.tracking) with the tracker run over the
  frames in bag order on their header stamps, and its time per frame ('tracking').
"""
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from depthdet_ros.core.odometry import CameraMotionUnavailable
from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, object_depth, STRATEGIES
from depthdet_ros.core.types import FrameResult
from depthdet_ros.eval.bag_input import BagFrame, BagIndex, depth_unpaired, EvalTopics, \
    index_bag, plan_frames
from depthdet_ros.eval.bag_input import read_frames
from depthdet_ros.eval.matching import boxes_xyxy, match_boxes
from depthdet_ros.eval.metrics import DepthAccumulator, DepthMetrics, detection_map
from depthdet_ros.eval.metrics import DetectionMetrics, FrameDetections, valid_depth_mask
from depthdet_ros.eval.metrics import instance_mask_rles, mask_rle, rle_instance_mask
from depthdet_ros.eval.object_errors import DEFAULT_DISTANCE_EDGES_M, ObjectSample
from depthdet_ros.eval.proximity import alert_limit, AlertTally
from depthdet_ros.eval.tracking import BagTracking, read_motion, TrackingEvaluation


class NothingToEvaluate(ValueError):
    """The bag, or the window asked for, holds no image to evaluate."""


# Latency stages reported, in pipeline order; others the pipeline reports follow.
DECODE_STAGE, TOTAL_STAGE = 'decode', 'total'


@dataclass(frozen=True)
class EvalSettings:
    """How frames are scored."""

    configured_strategy: str = DEFAULT_STRATEGY
    max_depth: float = 1.0
    class_max_depth: Dict[str, float] = field(default_factory=dict)
    match_iou: float = 0.5
    distance_edges_m: Tuple[float, ...] = DEFAULT_DISTANCE_EDGES_M
    strategies: Tuple[str, ...] = STRATEGIES
    score_masks: bool = False  # the pipeline gives instance masks (a joint model)


@dataclass
class FrameCounts:
    """How many frames had what."""

    images: int = 0
    processed: int = 0
    corrupt_images: int = 0
    with_camera_info: int = 0
    camera_info_refused: int = 0  # of another aspect ratio than the image: no 3D
    camera_info_scaled: int = 0  # of another resolution, scaled to the image
    camera_info_other_frame: int = 0  # with another frame_id than the image's
    depth_refused: int = 0  # GT depth of another aspect ratio: not compared
    depth_other_frame: int = 0  # GT depth compared, with another frame_id than the image's
    repeated: int = 0  # copies of images (core.copies): skipped (bag_input.read_frames)
    with_gt_depth: int = 0
    with_gt_detections: int = 0


@dataclass
class EvalResults:
    """Everything an evaluation measured (report.py turns it into JSON and Markdown)."""

    frames: FrameCounts
    depth_metric: Optional[DepthMetrics]
    depth_median_scaled: Optional[DepthMetrics]
    median_scales: List[float]
    samples: List[ObjectSample]
    gt_depth_sources: Dict[str, int]
    detection: Optional[DetectionMetrics]
    detection_counts: Dict[str, int]
    alerts: Dict[str, AlertTally]
    latency_ms: Dict[str, List[float]]
    tracking: Optional[Dict] = None
    masks: Optional[DetectionMetrics] = None  # mask mAP; None: not measured
    mask_frames: int = 0  # frames it covers


def _resized_to(pred: np.ndarray, shape) -> np.ndarray:
    if pred.shape == tuple(shape):
        return pred
    import cv2
    return cv2.resize(pred, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


class Evaluation:
    """Accumulates the scores of frames one at a time."""

    def __init__(self, settings: EvalSettings):
        self.settings = settings
        self.frames = FrameCounts()
        self._metric = DepthAccumulator()
        self._scaled = DepthAccumulator()
        self._scales: List[float] = []
        self._samples: List[ObjectSample] = []
        self._gt_sources: Dict[str, int] = {}
        self._class_ids: Dict[str, int] = {}
        self._gt_frames: List[FrameDetections] = []
        self._pred_frames: List[FrameDetections] = []
        self._gt_mask_frames: List[FrameDetections] = []
        self._pred_mask_frames: List[FrameDetections] = []
        self._counts = {'gt_objects': 0, 'detections': 0, 'matched': 0}
        self._alerts = {s: AlertTally() for s in settings.strategies}
        self._latency: Dict[str, List[float]] = {DECODE_STAGE: []}

    def add_corrupt(self) -> None:
        """Count a frame whose image could not be used."""
        self.frames.images += 1
        self.frames.corrupt_images += 1

    def add(self, frame: BagFrame, result: FrameResult, total_ms: float) -> None:
        """Score one processed frame."""
        counts = self.frames
        counts.images += 1
        counts.processed += 1
        counts.with_camera_info += frame.camera is not None
        counts.camera_info_refused += frame.camera_info_refused
        counts.camera_info_scaled += frame.camera_info_scaled
        counts.camera_info_other_frame += frame.camera_info_other_frame
        counts.depth_refused += frame.depth_refused
        counts.depth_other_frame += frame.depth_other_frame
        self._latency[DECODE_STAGE].append(frame.decode_ms)
        for stage, value in result.timings_ms.items():
            self._latency.setdefault(stage, []).append(value)
        self._latency.setdefault(TOTAL_STAGE, []).append(total_ms)
        if frame.gt_depth is not None and result.depth_map is not None:
            counts.with_gt_depth += 1
            self._add_dense(result.depth_map, frame.gt_depth)
        if frame.gt_objects is not None:
            counts.with_gt_detections += 1
            self._add_objects(frame, result)

    def _add_dense(self, pred, gt):
        pred = _resized_to(pred, gt.shape)
        self._metric.add(pred, gt)
        valid = valid_depth_mask(pred, gt)
        if valid.any():
            scale = float(np.median(gt[valid]) / np.median(pred[valid]))
            self._scales.append(scale)
            self._scaled.add(pred * scale, gt)

    def _class_id(self, name: str) -> int:
        return self._class_ids.setdefault(name, len(self._class_ids))

    def _add_objects(self, frame: BagFrame, result: FrameResult):
        settings = self.settings
        gts, objects = frame.gt_objects, result.objects
        depth_map = result.depth_map
        for gt in gts:
            self._gt_sources[gt.depth_source] = self._gt_sources.get(gt.depth_source, 0) + 1
        detections = [o.detection for o in objects]
        pairs = match_boxes(boxes_xyxy([d.box for d in detections]),
                            [d.class_name for d in detections], [d.score for d in detections],
                            boxes_xyxy([g.box for g in gts]), [g.class_name for g in gts],
                            settings.match_iou)
        self._counts['gt_objects'] += len(gts)
        self._counts['detections'] += len(detections)
        self._counts['matched'] += len(pairs)

        def limit(name):
            return alert_limit(name, settings.max_depth, settings.class_max_depth)

        gt_alert = [bool(g.depth < limit(g.class_name)) for g in gts]
        gt_masks = self._gt_masks(frame)
        for strategy in settings.strategies:
            estimates = [self._estimate(depth_map, o.detection.box, strategy, o.mask)
                         for o in objects]
            raised = [bool(e < limit(d.class_name)) for e, d in zip(estimates, detections)]
            self._alerts[strategy].add_frame(raised, gt_alert, pairs)
            for p, g in pairs:
                self._samples.append(self._sample('detected', strategy, gts[g], estimates[p],
                                                  frame.index))
            for k, gt in enumerate(gts):
                mask = rle_instance_mask(gt_masks[k], gt.box) \
                    if strategy == 'mask' and gt_masks is not None else None
                self._samples.append(self._sample(
                    'ground_truth', strategy, gt,
                    self._estimate(depth_map, gt.box, strategy, mask), frame.index))
        gt_frame = FrameDetections(
            boxes_xyxy([g.box for g in gts]),
            np.array([self._class_id(g.class_name) for g in gts], np.int64))
        pred_frame = FrameDetections(
            boxes_xyxy([d.box for d in detections]),
            np.array([self._class_id(d.class_name) for d in detections], np.int64),
            np.array([d.score for d in detections], np.float64))
        self._gt_frames.append(gt_frame)
        self._pred_frames.append(pred_frame)
        if gt_masks is not None and settings.score_masks:
            h, w = frame.rgb.shape[:2]
            gt_frame.masks = gt_masks
            pred_frame.masks = instance_mask_rles([o.mask for o in objects], h, w)
            self._gt_mask_frames.append(gt_frame)
            self._pred_mask_frames.append(pred_frame)

    @staticmethod
    def _gt_masks(frame: BagFrame):
        """Each GT object's mask (COCO RLE; empty when its id has no pixels), or None.

        None when the frame has no GT instance image, or one of another size than the
        camera image (masks are compared pixel for pixel).
        """
        if frame.gt_masks is None:
            return None
        h, w = frame.rgb.shape[:2]
        if any(list(rle['size']) != [h, w] for rle in frame.gt_masks.values()):
            return None
        empty = None
        masks = []
        for gt in frame.gt_objects:
            rle = frame.gt_masks.get(gt.instance_id)
            if rle is None:
                empty = empty or mask_rle(np.zeros((h, w), bool))
                rle = empty
            masks.append(rle)
        return masks

    @staticmethod
    def _estimate(depth_map, box, strategy, mask=None) -> float:
        if depth_map is None:
            return math.nan
        return object_depth(depth_map, box, strategy, mask).depth

    @staticmethod
    def _sample(source, strategy, gt, estimate, frame_index) -> ObjectSample:
        return ObjectSample(box_source=source, strategy=strategy, class_name=gt.class_name,
                            gt_depth=gt.depth, visibility=gt.visibility, estimate=estimate,
                            frame=frame_index)

    def results(self) -> EvalResults:
        """Return the scores of the frames added so far."""
        with_gt = self.frames.with_gt_detections > 0
        detection = None
        if with_gt:
            names = sorted(self._class_ids, key=self._class_ids.get)
            detection = detection_map(self._gt_frames, self._pred_frames, names)
        masks = None
        if self._gt_mask_frames:
            masks = detection_map(self._gt_mask_frames, self._pred_mask_frames, names, 'segm')
        with_depth = self.frames.with_gt_depth > 0
        return EvalResults(
            frames=self.frames,
            depth_metric=self._metric.result() if with_depth else None,
            depth_median_scaled=self._scaled.result() if with_depth else None,
            median_scales=list(self._scales), samples=list(self._samples),
            gt_depth_sources=dict(self._gt_sources), detection=detection,
            detection_counts=dict(self._counts),
            alerts=self._alerts if with_gt else {},
            latency_ms={k: list(v) for k, v in self._latency.items()},
            masks=masks, mask_frames=len(self._gt_mask_frames))


def evaluate_bag(path, topics: EvalTopics, pipeline, settings: EvalSettings, typestore,
                 tolerance_ns: int, max_pixels: int, output_bag=None,
                 progress: bool = True, tracker=None, gt_depth_noise: Optional[float] = None,
                 window_s: Tuple[float, float] = (0.0, math.inf), camera_odometry=None
                 ) -> Tuple[EvalResults, BagIndex]:
    """Run `pipeline` on every image of the bag and score it (see the module doc).

    `output_bag` (an output_bag.OutputBag or None) receives a copy of every input
    message and the pipeline's outputs of every frame. `tracker` (core.tracking.Tracker
    or None) tracks the objects of every frame; its scores need GT detections. With
    `gt_depth_noise`, the tracker gets the GT depth of matched detections with that
    relative noise instead of the network's (eval.tracking.with_ground_truth_depth).
    Only images stamped within `window_s` (seconds after the first image's stamp, start
    included, end excluded) are read, run and scored; the output bag still copies every
    message. NothingToEvaluate, before any frame is read, when no image is in the window.
    `camera_odometry` (a core.odometry.CameraMotionSource: odometry or transforms) gives the
    tracker the camera's own motion at each frame; a frame it has none for is tracked as
    the node tracks it (the last motion stands in for a while) and counted in the
    tracking section's `frames_without_camera_motion`.
    """
    from tqdm import tqdm

    index = index_bag(path, topics, typestore)
    stamps = [stamp for _, stamp, _ in index.images if stamp is not None]
    first = min(stamps, default=0)
    start_ns, end_ns = (first + s * 1e9 for s in window_s)
    # Images outside the window are not decoded; unreadable ones are counted wherever
    # they are (their stamp is unknown), but do not make an empty window worth reading.
    plans = [p if index.images[p.image_ordinal][1] is None
             or start_ns <= index.images[p.image_ordinal][1] < end_ns else None
             for p in plan_frames(index, tolerance_ns)]
    if not index.images:
        listed = index.listed.get(topics.image, 0)
        raise NothingToEvaluate(
            f'{topics.image} has no images' if not listed else
            f'{topics.image}: the bag lists {listed} messages on it, but none could be read '
            '(a damaged file?)')
    index.depth_unpaired = depth_unpaired(index, plans, tolerance_ns)
    if stamps and not any(start_ns <= s < end_ns for s in stamps):
        start, end = window_s
        when = f'{start:g} s or more' if math.isinf(end) else \
            f'between {start:g} s and {end:g} s'
        raise NothingToEvaluate(f'no image of {topics.image} is stamped {when} after the '
                                f'first (its images span {(max(stamps) - first) * 1e-9:.1f} s)')
    selected = sum(p is not None for p in plans)
    evaluation = Evaluation(settings)
    tracking = None
    if tracker is not None:
        scores = None
        if topics.gt_detections:
            scores = TrackingEvaluation(settings.max_depth, dict(settings.class_max_depth),
                                        settings.match_iou, read_motion(path, typestore),
                                        tracker=tracker.config)
        tracking = BagTracking(tracker, scores, gt_depth_noise, settings.max_depth,
                               settings.class_max_depth, settings.match_iou)
    on_message = output_bag.copy if output_bag is not None else None
    without_motion, motion_problem = 0, None
    frames = read_frames(path, index, plans, typestore, max_pixels, on_message)
    for frame in tqdm(frames, total=selected, unit='frame', disable=not progress,
                      desc='depthdet eval'):
        if frame.rgb is None:
            evaluation.add_corrupt()
            continue
        t0 = time.perf_counter()
        result = pipeline.process(frame.rgb, frame.camera, frame.depth_camera)
        total_ms = frame.decode_ms + (time.perf_counter() - t0) * 1e3
        tracked, held = None, ()
        if tracking is not None:
            motion = None
            if camera_odometry is not None:
                try:
                    motion = camera_odometry.at(frame.stamp_ns, frame.header.frame_id)
                except CameraMotionUnavailable as exc:
                    without_motion += 1
                    motion_problem = motion_problem or str(exc)
            tracked, held, tracking_ms = tracking.step(
                frame.index, frame.stamp_ns, result.objects, frame.gt_objects, frame.rgb,
                motion, frame.bag_time_ns, result.depth_measured)
            result.timings_ms['tracking'] = tracking_ms
            total_ms += tracking_ms
        evaluation.add(frame, result, total_ms)
        if output_bag is not None:
            output_bag.add_frame(frame, result, tracked, held)
    evaluation.frames.repeated = index.repeated_images
    results = evaluation.results()
    if tracking is not None and tracking.evaluation is not None:
        results.tracking = tracking.evaluation.summary()
        if camera_odometry is not None:
            results.tracking['frames_without_camera_motion'] = without_motion
            results.tracking['camera_motion_problem'] = motion_problem
            results.tracking['transforms_refused'] = camera_odometry.refused_transforms()
    return results, index


def strategy_order(configured: str, strategies: Sequence[str] = STRATEGIES) -> Tuple[str, ...]:
    """Strategies with the configured one first (how tables list them)."""
    return (configured,) + tuple(s for s in strategies if s != configured)
