"""eval.metrics and the evaluation's matching against hand-computed values (no torch)."""
import math

import numpy as np
import pytest

from depthdet_ros.core.types import Box, Detection2D
from depthdet_ros.eval.metrics import (DepthAccumulator, depth_metrics, detection_map,
                                       FrameDetections)
from depthdet_ros.train.evaluate import match_detections


def test_depth_metrics_by_hand():
    # Pixels: (gt 2, pred 2.5), (gt 4, pred 4), (gt 1, pred 2); NaN and 0 are invalid.
    gt = np.array([2.0, 4.0, 1.0, np.nan, 3.0])
    pred = np.array([2.5, 4.0, 2.0, 1.0, 0.0])
    m = depth_metrics(pred, gt)
    assert m.pixels == 3
    assert m.rel == pytest.approx((0.25 + 0 + 1) / 3)
    assert m.rmse == pytest.approx(math.sqrt((0.25 + 0 + 1) / 3))
    assert m.log10 == pytest.approx((math.log10(1.25) + 0 + math.log10(2)) / 3)
    # Ratios 1.25 (not < 1.25), 1, 2: delta1 1/3, delta2 (< 1.5625) 2/3, delta3 (< 1.95) 2/3.
    assert (m.delta1, m.delta2, m.delta3) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_depth_mask_and_pooling_over_images():
    acc = DepthAccumulator()
    acc.add(np.array([[1.0, 9.0]]), np.array([[2.0, 3.0]]), mask=np.array([[True, False]]))
    acc.add(np.array([4.0, 4.0, 4.0]), np.array([4.0, 4.0, 4.0]))
    m = acc.result()
    # Pooled over the 4 valid pixels, not averaged per image: REL = 0.5 / 4.
    assert m.pixels == 4
    assert m.rel == pytest.approx(0.125)
    assert m.delta1 == pytest.approx(0.75)


def test_depth_metrics_without_valid_pixels_are_nan():
    m = depth_metrics(np.zeros(3), np.full(3, np.nan))
    assert m.pixels == 0 and math.isnan(m.rel)


def frame(boxes, classes, scores=None):
    return FrameDetections(np.array(boxes, float).reshape(-1, 4), np.array(classes),
                           None if scores is None else np.array(scores, float))


def test_detection_map_perfect_shifted_and_missed():
    gt = [frame([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    perfect = [frame([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1], [0.9, 0.8])]
    assert detection_map(gt, perfect, ['a', 'b']).as_dict() == {'map50': 1.0, 'map50_95': 1.0}
    # Class b shifted by 5 px: IoU 300 / 500 = 0.6, a hit at thresholds 0.50-0.60 (3 of 10).
    shifted = [frame([[0, 0, 10, 10], [25, 20, 45, 40]], [0, 1], [0.9, 0.8])]
    result = detection_map(gt, shifted, ['a', 'b'])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx((1.0 + 0.3) / 2)
    assert result.per_class_ap50 == {'a': 1.0, 'b': 1.0}
    # Missing class b entirely: AP_b = 0.
    missed = [frame([[0, 0, 10, 10]], [0], [0.9])]
    assert detection_map(gt, missed, ['a', 'b']).map50 == pytest.approx(0.5)
    assert detection_map(gt, [frame([], [], [])], ['a', 'b']).map50 == 0.0


def test_detection_map_ranks_by_score_across_images():
    # Two images, one box each; a false positive scored above the second true positive
    # halves precision at full recall: 101-point AP = (1 * 51 + 2/3 * 50) / 101.
    gt = [frame([[0, 0, 10, 10]], [0]), frame([[0, 0, 10, 10]], [0])]
    predictions = [frame([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], [0.9, 0.8]),
                   frame([[0, 0, 10, 10]], [0], [0.7])]
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert detection_map(gt, predictions, ['a']).map50 == pytest.approx(expected)


def detection(x1, y1, x2, y2, score, cls):
    return Detection2D(Box(x1, y1, x2, y2), score, cls, str(cls))


def test_matching_is_greedy_by_score_class_aware_and_one_to_one():
    truths = [{'bbox': [0, 0, 10, 10], 'category_id': 1},
              {'bbox': [100, 100, 10, 10], 'category_id': 2}]
    detections = [detection(1, 0, 11, 10, 0.5, 0),    # IoU 9/11 with truth 0
                  detection(0, 0, 10, 10, 0.9, 0),    # exact: taken first (higher score)
                  detection(100, 100, 110, 110, 0.8, 0),  # right place, wrong class
                  detection(100, 102, 110, 112, 0.7, 1)]  # IoU 80/120 with truth 1
    pairs = match_detections(detections, truths)
    assert [(d.score, t['category_id']) for d, t in pairs] == [(0.9, 1), (0.7, 2)]
