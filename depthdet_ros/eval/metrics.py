"""Depth and detection metrics shared by training, model cards and bag evaluation.

Depth (Eigen et al., as in seeds 000-004): over valid pixels (finite, > 0 in both maps and
inside the optional mask), REL = mean |y - p| / y, RMSE = sqrt(mean (y - p)^2),
log10 = mean |log10 y - log10 p|, delta_k = share of pixels with max(y/p, p/y) < 1.25^k.
`DepthAccumulator` pools the sums over every valid pixel of every image, the way the
hybrid CNN's NYU numbers are computed; `depth_metrics` is the one-image shortcut.

Detection: COCO mAP@0.5 and mAP@0.5:0.95 via faster-coco-eval, from plain per-image
arrays (`FrameDetections`), so callers need no COCO JSON: of boxes ('bbox'), or of
instance masks ('segm', each mask a COCO RLE from `mask_rle`; IoU is then the masks').
"""
from dataclasses import asdict, dataclass, field
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

DELTA_BASE = 1.25


@dataclass(frozen=True)
class DepthMetrics:
    """Pooled depth errors; `pixels` is how many valid pixels they cover (0: all NaN)."""

    rel: float
    rmse: float
    log10: float
    delta1: float
    delta2: float
    delta3: float
    pixels: int

    def as_dict(self) -> Dict[str, float]:
        """Field name -> value."""
        return asdict(self)


def valid_depth_mask(pred, gt, mask=None) -> np.ndarray:
    """Pixels where both maps hold a finite positive depth (and `mask` is true)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ in shape')
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(pred) & np.isfinite(gt) & (pred > 0) & (gt > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    return valid


class DepthAccumulator:
    """Sums depth errors over images; `result()` gives the pooled DepthMetrics."""

    def __init__(self):
        self._abs_rel = 0.0
        self._sq = 0.0
        self._log10 = 0.0
        self._within = np.zeros(3)
        self._count = 0

    def add(self, pred, gt, mask=None) -> None:
        """Add one prediction / ground-truth pair (any shape, metres)."""
        valid = valid_depth_mask(pred, gt, mask)
        p = np.asarray(pred, dtype=np.float64)[valid]
        y = np.asarray(gt, dtype=np.float64)[valid]
        if not y.size:
            return
        diff = y - p
        self._abs_rel += float(np.sum(np.abs(diff) / y))
        self._sq += float(np.sum(diff * diff))
        self._log10 += float(np.sum(np.abs(np.log10(y) - np.log10(p))))
        ratio = np.maximum(y / p, p / y)
        self._within += [np.count_nonzero(ratio < DELTA_BASE ** k) for k in (1, 2, 3)]
        self._count += y.size

    def result(self) -> DepthMetrics:
        """Pooled metrics so far (NaN everywhere when no valid pixel was seen)."""
        n = self._count
        if not n:
            return DepthMetrics(*(math.nan,) * 6, pixels=0)
        d1, d2, d3 = (float(v) / n for v in self._within)
        return DepthMetrics(rel=self._abs_rel / n, rmse=math.sqrt(self._sq / n),
                            log10=self._log10 / n, delta1=d1, delta2=d2, delta3=d3, pixels=n)


def depth_metrics(pred, gt, mask=None) -> DepthMetrics:
    """Depth metrics of one prediction against its ground truth."""
    acc = DepthAccumulator()
    acc.add(pred, gt, mask)
    return acc.result()


IOU_TYPES = ('bbox', 'segm')


def mask_rle(mask) -> Dict:
    """COCO run-length encoding of an HxW boolean mask ({'size': [H, W], 'counts': ...})."""
    from faster_coco_eval.core import mask as mask_utils
    return mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))


def instance_mask_rles(masks, height: int, width: int) -> List[Dict]:
    """Return the COCO RLE of each core.types.InstanceMask on the HxW image (None: empty)."""
    empty = np.zeros((height, width), bool)
    return [mask_rle(empty if m is None else m.full(height, width)) for m in masks]


def rle_instance_mask(rle: Dict, box):
    """Return the pixels of a COCO RLE inside `box` (a Box) as a core.types.InstanceMask."""
    from faster_coco_eval.core import mask as mask_utils

    from depthdet_ros.core.joint import box_window
    from depthdet_ros.core.types import InstanceMask
    height, width = rle['size']
    x, y, w, h = box_window(box, height, width)
    pixels = mask_utils.decode(rle).astype(bool).reshape(height, width)
    return InstanceMask(x, y, pixels[y:y + h, x:x + w])


@dataclass
class FrameDetections:
    """Objects of one image: Nx4 xyxy pixels, N class ids, N scores (predictions only).

    `masks`: N instance masks as COCO RLE (mask_rle), all of the image's size; needed
    for 'segm' mAP only.
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: Optional[np.ndarray] = None
    masks: Optional[List[Dict]] = None

    @classmethod
    def empty(cls, with_scores: bool = False) -> 'FrameDetections':
        """No boxes."""
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64),
                   np.zeros(0) if with_scores else None)


@dataclass(frozen=True)
class DetectionMetrics:
    """COCO mAP; `per_class_ap50` maps class name -> AP@0.5 (classes with GT only)."""

    map50: float
    map50_95: float
    per_class_ap50: Dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, float]:
        """Return the two headline numbers."""
        return {'map50': self.map50, 'map50_95': self.map50_95}


def _coco_dicts(ground_truth: Sequence[FrameDetections],
                predictions: Sequence[FrameDetections], class_names: Sequence[str],
                iou_type: str = 'bbox'):
    images, annotations, results = [], [], []
    for image_id, (gt, pred) in enumerate(zip(ground_truth, predictions), start=1):
        segm = iou_type == 'segm'
        if segm and (gt.masks is None or pred.masks is None):
            raise ValueError(f'segm mAP needs masks for every frame; frame {image_id - 1} has '
                             f'{"none" if gt.masks is None else "no predicted ones"}')
        gt_masks = gt.masks if segm else [None] * len(gt.classes)
        pred_masks = pred.masks if segm else [None] * len(pred.classes)
        height, width = (gt_masks + pred_masks)[0]['size'] if segm and \
            (gt_masks or pred_masks) else (1, 1)
        images.append({'id': image_id, 'width': int(width), 'height': int(height)})
        for box, cls, mask in zip(np.asarray(gt.boxes, float), np.asarray(gt.classes),
                                  gt_masks):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotation = {'id': len(annotations) + 1, 'image_id': image_id,
                          'category_id': int(cls) + 1, 'iscrowd': 0, 'area': w * h,
                          'bbox': [float(box[0]), float(box[1]), w, h]}
            if segm:
                annotation.update(segmentation=mask, area=_rle_area(mask))
            annotations.append(annotation)
        for box, cls, score, mask in zip(np.asarray(pred.boxes, float),
                                         np.asarray(pred.classes),
                                         np.asarray(pred.scores, float), pred_masks):
            result = {'image_id': image_id, 'category_id': int(cls) + 1, 'score': float(score)}
            if segm:  # faster-coco-eval then takes the area (and box) from the mask
                result['segmentation'] = mask
            else:
                result['bbox'] = [float(box[0]), float(box[1]), float(box[2] - box[0]),
                                  float(box[3] - box[1])]
            results.append(result)
    categories = [{'id': i + 1, 'name': str(name)} for i, name in enumerate(class_names)]
    return {'images': images, 'annotations': annotations, 'categories': categories}, results


def _rle_area(rle) -> float:
    from faster_coco_eval.core import mask as mask_utils
    return float(np.asarray(mask_utils.area(rle)).reshape(-1)[0])


def detection_map(ground_truth: Sequence[FrameDetections],
                  predictions: Sequence[FrameDetections],
                  class_names: Sequence[str], iou_type: str = 'bbox') -> DetectionMetrics:
    """COCO mAP@0.5 and mAP@0.5:0.95 (101-point, area 'all', up to 100 objects per image).

    `ground_truth[i]` and `predictions[i]` describe the same image; class ids index
    `class_names`. `iou_type` 'bbox' scores boxes, 'segm' the frames' instance masks.
    With no ground-truth object at all both numbers are NaN; with no prediction they
    are 0.
    """
    from faster_coco_eval import COCO, COCOeval_faster

    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type {iou_type!r} is not one of {", ".join(IOU_TYPES)}')
    if len(ground_truth) != len(predictions):
        raise ValueError(f'{len(ground_truth)} ground-truth frames but '
                         f'{len(predictions)} prediction frames')
    gt_dict, results = _coco_dicts(ground_truth, predictions, class_names, iou_type)
    if not gt_dict['annotations']:
        return DetectionMetrics(math.nan, math.nan)
    if not results:
        return DetectionMetrics(0.0, 0.0, {})
    coco_gt = COCO(gt_dict)
    coco_dt = coco_gt.loadRes(results)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType=iou_type, print_function=_silent)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = evaluator.stats
    return DetectionMetrics(float(stats[1]), float(stats[0]),
                            _per_class_ap50(evaluator, class_names))


def _silent(*_args, **_kwargs):
    pass


def _per_class_ap50(evaluator, class_names) -> Dict[str, float]:
    # precision: [IoU thresholds, recall points, classes, area ranges, max dets]; -1 = no GT.
    precision = evaluator.eval['precision']
    iou_index = int(np.argmin(np.abs(np.asarray(evaluator.params.iouThrs) - 0.5)))
    out = {}
    for k, category in enumerate(evaluator.params.catIds):
        values = precision[iou_index, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            out[str(class_names[category - 1])] = float(values.mean())
    return out
