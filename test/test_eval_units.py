"""Evaluation building blocks against hand-computed values: tables, matching, alerts, GT."""
import math

import numpy as np
import pytest

from depthdet_ros.core.types import Box
from depthdet_ros.eval import bag_input
from depthdet_ros.eval.ground_truth import Box3D, classify_pixels, DEPTH_FROM_BOX3D
from depthdet_ros.eval.ground_truth import DEPTH_FROM_CENTER, GroundTruthObject
from depthdet_ros.eval.ground_truth import with_measured_depth
from depthdet_ros.eval.matching import iou_matrix, latest_at_or_before, match_boxes
from depthdet_ros.eval.matching import nearest_stamp
from depthdet_ros.eval.object_errors import distance_band, error_stats, error_tables
from depthdet_ros.eval.object_errors import ObjectSample, occlusion_level
from depthdet_ros.eval.proximity import AlertCounts, AlertTally

NAN = float('nan')


def sample(gt, est, cls='chair', vis=None, strategy='robust', source='ground_truth'):
    return ObjectSample(source, strategy, cls, gt, vis, est, 0)


def test_error_stats_by_hand():
    # errors +0.1 (gt 2), -0.6 (gt 5), +0.1 (gt 0.5), missing (gt 3)
    stats = error_stats([sample(2.0, 2.1), sample(5.0, 4.4), sample(0.5, 0.6),
                         sample(3.0, NAN)])
    assert stats.count == 4 and stats.missing == 1
    assert stats.mae_m == pytest.approx((0.1 + 0.6 + 0.1) / 3)
    assert stats.rmse_m == pytest.approx(math.sqrt((0.01 + 0.36 + 0.01) / 3))
    assert stats.bias_m == pytest.approx((0.1 - 0.6 + 0.1) / 3)
    assert stats.abs_rel == pytest.approx((0.05 + 0.12 + 0.2) / 3)
    # Relative errors 0.05, 0.12, 0.2 and one missing: over 10 %: 0.12, 0.2 and the
    # missing one; over 25 %: only the missing one.
    assert stats.over_10pct == pytest.approx(3 / 4)
    assert stats.over_25pct == pytest.approx(1 / 4)


def test_error_stats_empty_and_all_missing():
    assert error_stats([]).count == 0 and error_stats([]).mae_m is None
    stats = error_stats([sample(1.0, NAN)])
    assert (stats.count, stats.missing, stats.mae_m, stats.over_10pct) == (1, 1, None, 1.0)


def test_bands_and_occlusion_levels():
    edges = (1.0, 2.0, 4.0)
    assert [distance_band(d, edges) for d in (0.5, 1.0, 1.99, 2.0, 3.9, 4.0, 50.0)] == \
        ['<1 m', '1-2 m', '1-2 m', '2-4 m', '2-4 m', '>=4 m', '>=4 m']
    assert [occlusion_level(v) for v in (1.0, 0.9, 0.89, 0.5, 0.49, 0.0, None)] == \
        ['none', 'none', 'partial', 'partial', 'heavy', 'heavy', 'unknown']


def test_error_tables_group_by_class_distance_and_occlusion():
    samples = [sample(1.5, 1.8, 'chair', 1.0), sample(3.0, 2.7, 'chair', 0.6),
               sample(3.0, 3.3, 'person', 0.2), sample(1.5, 1.5, 'person', 0.95,
                                                       strategy='box_median'),
               sample(NAN, 1.0, 'chair', 1.0),  # no GT depth: left out
               sample(2.5, 2.5, 'chair', None, strategy='box_median'),
               sample(1.5, 1.0, 'chair', None, source='detected')]
    tables = error_tables(samples, ('robust', 'box_median'), (2.0,))
    robust = tables['ground_truth']['robust']
    assert robust.overall.count == 3
    assert robust.by_class['chair'].count == 2
    assert robust.by_class['chair'].mae_m == pytest.approx(0.3)
    assert list(robust.by_distance) == ['<2 m', '>=2 m']
    assert robust.by_distance['>=2 m'].count == 2
    assert {k: v.count for k, v in robust.by_occlusion.items()} == \
        {'none': 1, 'partial': 1, 'heavy': 1}
    box_median = tables['ground_truth']['box_median']
    assert box_median.overall.mae_m == pytest.approx(0.0)
    assert {k: v.count for k, v in box_median.by_occlusion.items()} == {'none': 1, 'unknown': 1}
    detected = tables['detected']['robust']
    assert detected.overall.mae_m == pytest.approx(0.5)
    assert detected.by_occlusion is None  # no object with a visibility
    assert tables['detected']['box_median'].overall.count == 0


def test_alert_tally_objects_and_frames():
    tally = AlertTally()
    # Frame 1: detections 0 (raised, matched to GT alert 1), 1 (raised, unmatched),
    # 2 (not raised, matched to GT alert 0). GT 2 (far) unmatched.
    tally.add_frame([True, True, False], [True, True, False], [(0, 1), (2, 0)])
    # Frame 2: nothing raised, nothing near.
    tally.add_frame([False], [False], [(0, 0)])
    # Frame 3: raised on a far GT object.
    tally.add_frame([True], [False], [(0, 0)])
    objects, frames = tally.objects(), tally.frames()
    assert (objects.tp, objects.fp, objects.fn) == (1, 2, 1)
    assert objects.precision == pytest.approx(1 / 3) and objects.recall == pytest.approx(0.5)
    assert (frames.tp, frames.fp, frames.fn, frames.tn) == (1, 1, 0, 1)
    assert frames.as_dict()['f1'] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert AlertCounts(0, 0, 0).as_dict()['precision'] is None


def test_nearest_stamp_tolerance_and_ties():
    stamps = np.array([100, 200, 300], dtype=np.int64)
    assert nearest_stamp(stamps, 205, 5) == 1
    assert nearest_stamp(stamps, 206, 5) is None
    assert nearest_stamp(stamps, 250, 50) == 1  # equally near: the earlier
    assert nearest_stamp(stamps, 0, 100) == 0
    assert nearest_stamp(np.array([], np.int64), 0, 100) is None
    assert latest_at_or_before(stamps, 299) == 1 and latest_at_or_before(stamps, 99) is None


def test_iou_and_greedy_class_aware_matching():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    pred = np.array([[0, 0, 10, 5], [0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], float)
    ious = iou_matrix(pred, gt)
    assert ious[0, 0] == pytest.approx(0.5) and ious[1, 0] == 1.0 and ious[3].max() == 0.0
    # The higher-scored half box takes GT 0 first; the full box then has nothing left.
    pairs = match_boxes(pred, ['a', 'a', 'b', 'a'], [0.9, 0.8, 0.7, 0.6], gt, ['a', 'b'], 0.5)
    assert pairs == [(0, 0), (2, 1)]
    # Wrong class never matches.
    assert match_boxes(pred[2:3], ['a'], [0.9], gt[1:], ['b'], 0.5) == []


def _square_scene():
    """Box 3D z 2.0-2.4 on the axis; front face projects onto pixels 12..51."""
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 31.5], [0, 0, 1]])
    from depthdet_ros.core.camera import CameraModel
    camera = CameraModel(K=K, width=64, height=64)
    box3d = Box3D(np.array([0.0, 0.0, 2.2]), np.eye(3), np.array([0.8, 0.8, 0.4]))
    depth = np.full((64, 64), 5.0, np.float32)
    depth[12:52, 12:52] = 2.0
    depth[12:52, 12:32] = 1.0   # an occluder in front of the left half
    depth[40:52, 40:52] = 5.0   # a hole: background seen through the object
    return camera, box3d, depth


def test_pixels_inside_and_occluded_by_hand():
    camera, box3d, depth = _square_scene()
    (x1, y1, x2, y2), inside, occluded = classify_pixels(depth, box3d, camera)
    assert x1 <= 12 and x2 >= 52
    full_inside = np.zeros((64, 64), bool)
    full_inside[y1:y2, x1:x2] = inside
    full_occluded = np.zeros((64, 64), bool)
    full_occluded[y1:y2, x1:x2] = occluded
    assert np.count_nonzero(full_inside) == 20 * 40 - 12 * 12
    assert np.count_nonzero(full_occluded) == 20 * 40
    assert full_inside[12:52, 32:52].sum() == full_inside.sum()


def test_gt_object_depth_and_visibility_by_hand():
    camera, box3d, depth = _square_scene()
    obj = GroundTruthObject('box', Box(32, 12, 52, 52), '1', None, box3d, 2.2,
                            DEPTH_FROM_CENTER, None)
    measured = with_measured_depth(obj, depth, camera)
    assert measured.depth_source == DEPTH_FROM_BOX3D
    assert measured.depth == pytest.approx(2.0)
    visible = 20 * 40 - 12 * 12
    assert measured.visibility == pytest.approx(visible / (visible + 800))
    # Without a depth map the centre's z stands.
    assert with_measured_depth(obj, None, camera) is obj


def test_gt_object_depth_from_a_depth_map_of_another_resolution():
    # The image is 128x128, the depth map and its camera 64x64: the 2D box (image
    # pixels) is halved onto the depth map's pixels, so the same pixels are found.
    camera, box3d, depth = _square_scene()
    obj = GroundTruthObject('box', Box(64, 24, 104, 104), '1', None, box3d, 2.2,
                            DEPTH_FROM_CENTER, None)
    measured = with_measured_depth(obj, depth, camera, image_size=(128, 128))
    assert measured.depth_source == DEPTH_FROM_BOX3D
    assert measured.depth == pytest.approx(2.0)
    visible = 20 * 40 - 12 * 12
    assert measured.visibility == pytest.approx(visible / (visible + 800))


def test_decode_depth_encodings():
    from types import SimpleNamespace
    metres = np.array([[1.5, np.nan], [0.0, 2.25]], '<f4')
    msg = SimpleNamespace(__msgtype__=bag_input.IMAGE, encoding='32FC1', is_bigendian=0,
                          height=2, width=2, step=8, data=metres.view(np.uint8).reshape(-1))
    out = bag_input.decode_depth(msg)
    assert out[0, 0] == 1.5 and out[1, 1] == 2.25 and np.isnan(out[0, 1]) and np.isnan(out[1, 0])
    mm = np.array([[1500, 0, 7]], '>u2')
    padded = np.zeros((1, 8), np.uint8)
    padded[0, :6] = mm.view(np.uint8)
    msg = SimpleNamespace(__msgtype__=bag_input.IMAGE, encoding='16UC1', is_bigendian=1,
                          height=1, width=3, step=8, data=padded.reshape(-1))
    out = bag_input.decode_depth(msg)
    assert out[0, 0] == pytest.approx(1.5) and np.isnan(out[0, 1])
    assert out[0, 2] == pytest.approx(0.007)
    with pytest.raises(ValueError, match='not 32FC1 or 16UC1'):
        bag_input.decode_depth(SimpleNamespace(__msgtype__=bag_input.IMAGE, encoding='rgb8',
                                               is_bigendian=0, height=1, width=1, step=3,
                                               data=bytes(3)))


def _compressed_depth(image_format, kind, a, b, png_values):
    """Build a compressedDepth message as image_transport writes it: ConfigHeader, PNG."""
    import cv2
    from types import SimpleNamespace
    ok, png = cv2.imencode('.png', png_values)
    assert ok
    header = np.array([kind], '<i4').tobytes() + np.array([a, b], '<f4').tobytes()
    return SimpleNamespace(__msgtype__=bag_input.COMPRESSED_IMAGE, format=image_format,
                           data=np.frombuffer(header + png.tobytes(), np.uint8))


def test_decode_compressed_depth_formats():
    # 32FC1 by the transport's defaults (depth_max 10 m, depth_quantization 100):
    # a = 100 * 101 = 10100, b = 1 - a / 10 = -1009, q = uint16(a / d + b), 0 for
    # d >= 10 m or NaN. 2 m -> q 4041 -> 10100 / 5050 = 2.0; 3 m -> q 2357 (2357.67
    # truncated) -> 10100 / 3366 = 3.000594 m.
    q = np.array([[4041, 2357, 0]], np.uint16)
    out = bag_input.decode_depth(_compressed_depth('32FC1; compressedDepth png', 0, 10100.0,
                                                   -1009.0, q))
    assert out.dtype == np.float32 and out.shape == (1, 3)
    assert out[0, 0] == pytest.approx(2.0) and out[0, 1] == pytest.approx(10100 / 3366)
    assert np.isnan(out[0, 2])
    # Older publishers wrote no compression name after the encoding ('32FC1; compressedDepth').
    old = bag_input.decode_depth(_compressed_depth('32FC1; compressedDepth', 0, 10100.0,
                                                   -1009.0, q))
    np.testing.assert_array_equal(old, out)
    # 16UC1: millimetres, 0 invalid; a plain PNG (the compressed transport) alike.
    mm = np.array([[1500, 0, 7]], np.uint16)
    out = bag_input.decode_depth(_compressed_depth('16UC1; compressedDepth png', 0, 0.0, 0.0,
                                                   mm))
    assert out[0, 0] == pytest.approx(1.5) and np.isnan(out[0, 1])
    assert out[0, 2] == pytest.approx(0.007)
    import cv2
    from types import SimpleNamespace
    plain = SimpleNamespace(__msgtype__=bag_input.COMPRESSED_IMAGE, format='16UC1; png',
                            data=cv2.imencode('.png', mm)[1].reshape(-1))
    np.testing.assert_array_equal(bag_input.decode_depth(plain), out)
    for image_format, data, reason in (
            ('32FC1; compressedDepth rvl', None, 'RVL is not supported'),
            ('rgb8; jpeg compressed bgr8', None, 'encoding is not 32FC1 or 16UC1'),
            ('32FC1; png', cv2.imencode('.png', q)[1].reshape(-1),
             '32FC1 comes only as compressedDepth'),
            ('16UC1; compressedDepth png', np.zeros(12, np.uint8), 'holds no image'),
            ('16UC1; compressedDepth png', np.zeros(40, np.uint8), 'not a 16-bit')):
        msg = _compressed_depth(image_format, 0, 1.0, 0.0, q)
        if data is not None:
            msg.data = data
        with pytest.raises(ValueError, match=reason):
            bag_input.decode_depth(msg)


def test_topic_selection_by_type_and_errors():
    types = {'/cam/image': bag_input.IMAGE, '/cam/image/compressed': bag_input.COMPRESSED_IMAGE,
             '/cam/camera_info': bag_input.CAMERA_INFO, '/cam/depth': bag_input.IMAGE,
             '/cam/depth/camera_info': bag_input.CAMERA_INFO,
             '/ground_truth/detections': bag_input.DETECTION_2D_ARRAY,
             '/depthdet/detections': bag_input.DETECTION_2D_ARRAY}
    topics = bag_input.select_topics(types)
    assert topics == bag_input.EvalTopics('/cam/image', '/cam/camera_info', '/cam/depth',
                                          '/ground_truth/detections', None)
    compressed = bag_input.select_topics(types, image='/cam/image/compressed')
    assert compressed.camera_info == '/cam/camera_info'
    with pytest.raises(bag_input.BagInputError, match=r'/nope .*topics in the bag: '
                                                      r'/cam/camera_info \[sensor_msgs'):
        bag_input.select_topics(types, depth='/nope')
    with pytest.raises(bag_input.BagInputError, match='carries sensor_msgs/msg/CameraInfo'):
        bag_input.select_topics(types, image='/cam/camera_info')
    with pytest.raises(bag_input.BagInputError, match='no camera image topic found'):
        bag_input.select_topics({'/cam/camera_info': bag_input.CAMERA_INFO})
    # A compressed depth topic is taken when no raw one is recorded.
    packed = {'/cam/image': bag_input.IMAGE,
              '/cam/depth/image_rect_raw/compressedDepth': bag_input.COMPRESSED_IMAGE}
    assert bag_input.select_topics(packed).depth == '/cam/depth/image_rect_raw/compressedDepth'
    assert bag_input.select_topics(dict(types, **packed)).depth == '/cam/depth'
    # A RealSense recording: its own-view depth beside the one aligned to the colour image.
    realsense = {'/camera/color/image_raw': bag_input.IMAGE,
                 '/camera/depth/image_rect_raw': bag_input.IMAGE,
                 '/camera/aligned_depth_to_color/image_raw': bag_input.IMAGE}
    assert bag_input.select_topics(realsense).depth == '/camera/aligned_depth_to_color/image_raw'
    two = dict(types, **{'/left/image': bag_input.IMAGE})
    with pytest.raises(bag_input.BagInputError, match='--image-topic'):
        bag_input.select_topics(two)
