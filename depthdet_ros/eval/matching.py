"""Pairing things up: messages by header stamp, detections with ground-truth boxes."""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from depthdet_ros.core.types import Box, iou_matrix


def nearest_stamp(stamps_ns: np.ndarray, query_ns: int, tolerance_ns: int) -> Optional[int]:
    """Index of the stamp nearest to `query_ns` within `tolerance_ns` (inclusive), or None.

    `stamps_ns` must be sorted ascending; of two equally near stamps the earlier wins.
    """
    if not len(stamps_ns):
        return None
    right = int(np.searchsorted(stamps_ns, query_ns))
    candidates = [i for i in (right - 1, right) if 0 <= i < len(stamps_ns)]
    best = min(candidates, key=lambda i: (abs(int(stamps_ns[i]) - query_ns), i))
    return best if abs(int(stamps_ns[best]) - query_ns) <= tolerance_ns else None


def latest_at_or_before(stamps_ns: np.ndarray, query_ns: int) -> Optional[int]:
    """Index of the last stamp <= `query_ns` in ascending `stamps_ns`, or None."""
    index = int(np.searchsorted(stamps_ns, query_ns, side='right')) - 1
    return index if index >= 0 else None


def boxes_xyxy(boxes: Sequence[Box]) -> np.ndarray:
    """Nx4 float array of boxes."""
    return np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float64).reshape(-1, 4)


def match_boxes(pred_boxes: np.ndarray, pred_classes: Sequence[str], pred_scores: Sequence[float],
                gt_boxes: np.ndarray, gt_classes: Sequence[str],
                iou_threshold: float = 0.5) -> List[Tuple[int, int]]:
    """Greedy one-to-one matching of predictions to GT boxes of the same class.

    Predictions are taken by descending score (as COCO does); each takes the unmatched
    GT box of its class with the highest IoU >= iou_threshold. Returns (pred, gt) index
    pairs in that order.
    """
    ious = iou_matrix(pred_boxes, gt_boxes)
    gt_classes = list(gt_classes)
    taken = np.zeros(len(gt_classes), dtype=bool)
    pairs = []
    for p in sorted(range(len(pred_classes)), key=lambda i: (-pred_scores[i], i)):
        best, best_iou = -1, -1.0
        for g, cls in enumerate(gt_classes):
            if not taken[g] and cls == pred_classes[p] and ious[p, g] >= iou_threshold \
                    and ious[p, g] > best_iou:
                best, best_iou = g, ious[p, g]
        if best >= 0:
            taken[best] = True
            pairs.append((p, best))
    return pairs
