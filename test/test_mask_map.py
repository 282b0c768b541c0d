"""Mask mAP (COCO 'segm') in eval.metrics.detection_map, with hand-computed values.

One 20x20 image holds one ground-truth object: a 10x10 square at x 5..14, y 5..14 (100
pixels). COCO matches a prediction at threshold t when IoU >= t (thresholds 0.50, 0.55,
..., 0.95); with one object and one prediction, AP at a threshold is 1 if they match and
0 if not, so mAP@0.5:0.95 is the share of the ten thresholds matched.
"""
import math

import numpy as np
import pytest

from depthdet_ros.eval.metrics import detection_map, FrameDetections, mask_rle

SIZE = 20
BOX = np.array([[5.0, 5.0, 15.0, 15.0]])


def square(x1, y1, x2, y2):
    """Return the HxW boolean mask of the pixels x1..x2-1, y1..y2-1."""
    mask = np.zeros((SIZE, SIZE), bool)
    mask[y1:y2, x1:x2] = True
    return mask


TRUTH = FrameDetections(BOX, np.array([0]), masks=[mask_rle(square(5, 5, 15, 15))])


def predicted(mask, box=BOX, score=0.9, class_id=0):
    return FrameDetections(np.asarray(box, float), np.array([class_id]), np.array([score]),
                           masks=[mask_rle(mask)])


def test_rle_round_trip_area_and_box():
    from faster_coco_eval.core import mask as mask_utils
    rle = mask_rle(square(2, 3, 7, 5))  # 5 wide, 2 tall
    assert rle['size'] == [SIZE, SIZE]
    assert np.array_equal(mask_utils.decode(rle).astype(bool), square(2, 3, 7, 5))
    assert float(mask_utils.area(rle)) == 10.0
    assert np.allclose(mask_utils.toBbox(rle), [2, 3, 5, 2])


def test_mask_equal_to_the_truth_scores_one():
    result = detection_map([TRUTH], [predicted(square(5, 5, 15, 15))], ['chair'], 'segm')
    assert (result.map50, result.map50_95) == (1.0, 1.0)
    assert result.per_class_ap50 == {'chair': 1.0}


def test_half_of_the_object_matches_at_iou_one_half_only():
    # The left half (x 5..9): intersection 50, union 100, IoU exactly 0.5 -> matched at
    # 0.50 only: mAP@0.5 1, mAP@0.5:0.95 1/10. The box is the truth's own, so the box
    # mAP is 1 at every threshold: segm scores the masks, not the boxes.
    prediction = predicted(square(5, 5, 10, 15))
    masks = detection_map([TRUTH], [prediction], ['chair'], 'segm')
    assert masks.map50 == 1.0
    assert masks.map50_95 == pytest.approx(0.1)
    boxes = detection_map([TRUTH], [prediction], ['chair'])
    assert (boxes.map50, boxes.map50_95) == (1.0, 1.0)


def test_shifted_by_half_misses_and_a_ring_scores_by_its_pixels():
    # Shifted right by 5: intersection 50, union 150, IoU 1/3 < 0.5: AP 0 everywhere.
    shifted = detection_map([TRUTH], [predicted(square(10, 5, 20, 15))], ['chair'], 'segm')
    assert (shifted.map50, shifted.map50_95) == (0.0, 0.0)
    # The truth's pixels less a 4x4 hole: 84 / 100 = 0.84: matched at 0.50 .. 0.80
    # (7 thresholds).
    ring = square(5, 5, 15, 15) & ~square(8, 8, 12, 12)
    result = detection_map([TRUTH], [predicted(ring)], ['chair'], 'segm')
    assert result.map50 == 1.0
    assert result.map50_95 == pytest.approx(0.7)


def test_a_confident_wrong_mask_ranks_first():
    # Two predictions of the one object: the wrong one (IoU 1/3) scores higher. At every
    # threshold the ranked list is [false positive, true positive]: precision 1/2 at
    # recall 1; COCO's interpolated precision is then 0.5 at all 101 recall points.
    truth = TRUTH
    both = FrameDetections(np.vstack([BOX, BOX]), np.array([0, 0]), np.array([0.9, 0.5]),
                           masks=[mask_rle(square(10, 5, 20, 15)),
                                  mask_rle(square(5, 5, 15, 15))])
    result = detection_map([truth], [both], ['chair'], 'segm')
    assert result.map50 == pytest.approx(0.5)
    assert result.map50_95 == pytest.approx(0.5)


def test_no_truth_is_nan_and_missing_masks_are_an_error():
    empty = FrameDetections(np.zeros((0, 4)), np.zeros(0, np.int64), masks=[])
    result = detection_map([empty], [predicted(square(5, 5, 15, 15))], ['chair'], 'segm')
    assert math.isnan(result.map50) and math.isnan(result.map50_95)
    without = FrameDetections(BOX, np.array([0]), np.array([0.9]))
    with pytest.raises(ValueError, match='masks'):
        detection_map([TRUTH], [without], ['chair'], 'segm')
    with pytest.raises(ValueError, match='iou_type'):
        detection_map([TRUTH], [without], ['chair'], 'mask')
