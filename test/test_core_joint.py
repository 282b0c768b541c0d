"""Joint model runtime (core.joint), the `mask` depth strategy and instance-mask images.

The joint model here is built with onnx.helper: constant detection rows and prototypes,
and depth = 1 + 4 * red (letterboxed input, 2x2 average-pooled), so every decoded box,
mask pixel and depth value is computed by hand below.
"""
import json

import numpy as np
import pytest
from onnx import helper, numpy_helper, TensorProto

from depthdet_ros.core import metadata
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import DepthView
from depthdet_ros.core.detector import DetectorConfig, letterbox
from depthdet_ros.core.joint import JointModel
from depthdet_ros.core.object_depth import box_median, estimate_objects, mask_depth, \
    MAD_TO_SIGMA, near_median, object_depth
from depthdet_ros.core.pipeline import FusionConfig, Pipeline, PipelineModels
from depthdet_ros.core.session import ModelLoadError
from depthdet_ros.core.types import Box, Detection2D, instance_image, InstanceMask, \
    ObjectDepth, ObjectEstimate
from onnx_fixtures import _save

INPUT = 64
NAMES = ('cup', 'chair')
CANONICAL_FOCAL = 50.0
# Image 96 wide, 48 tall -> letterbox gain 2/3, resized 64x32, 16 rows of padding on top.
IMAGE_H, IMAGE_W = 48, 96


def joint_model(path, rows, protos, focal=CANONICAL_FOCAL, task=metadata.TASK_JOINT):
    """Build a joint ONNX model with constant rows / prototypes and depth 1 + 4 * red."""
    cells = sum((INPUT // s) ** 2 for s in (8, 16, 32))
    table = np.zeros((3 * cells, len(rows[0])), np.float32)
    table[:len(rows)] = np.asarray(rows, np.float32)
    protos = np.asarray(protos, np.float32)[None]
    inits = [numpy_helper.from_array(table[None], 'table'),
             numpy_helper.from_array(protos, 'proto_table'),
             numpy_helper.from_array(np.array(0.0, np.float32), 'zero'),
             numpy_helper.from_array(np.array(4.0, np.float32), 'four'),
             numpy_helper.from_array(np.array(1.0, np.float32), 'one')]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (
        ('start', [0]), ('end', [1]), ('axis', [1]))]
    nodes = [
        helper.make_node('ReduceMean', ['images'], ['mean'], keepdims=0),
        helper.make_node('Mul', ['mean', 'zero'], ['nothing']),
        helper.make_node('Add', ['table', 'nothing'], ['output0']),
        helper.make_node('Add', ['proto_table', 'nothing'], ['protos']),
        helper.make_node('Slice', ['images', 'start', 'end', 'axis'], ['red']),
        helper.make_node('Mul', ['red', 'four'], ['red4']),
        helper.make_node('Add', ['red4', 'one'], ['full']),
        helper.make_node('AveragePool', ['full'], ['depth'], kernel_shape=[2, 2],
                         strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, 'constant_joint',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, INPUT, INPUT])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, list(table[None].shape)),
         helper.make_tensor_value_info('protos', TensorProto.FLOAT, list(protos.shape)),
         helper.make_tensor_value_info('depth', TensorProto.FLOAT,
                                       [1, 1, INPUT // 2, INPUT // 2])],
        initializer=inits)
    meta = {metadata.NAMES: metadata.format_names(NAMES), metadata.STRIDE: '32',
            metadata.TASK: task, metadata.MASK_PROTOTYPES: str(protos.shape[1]),
            metadata.INPUT_SIZE: json.dumps([INPUT, INPUT]),
            metadata.CANONICAL_FOCAL: str(focal)}
    return _save(graph, path, meta)


# Object A (chair, score 0.9 * 0.8 = 0.72, B's 0.63): letterboxed box cx 30, cy 32, w 20,
# h 16, i.e. x 20..40, y 24..40, which is x 30..60, y 12..36 in the image. Its coefficients
# select prototype 0: +10 on prototype cells x 5..6, y 6..9 (letterboxed x 20..28, y
# 24..40; see a_mask for the pixels). A weaker duplicate of A (row 0, suppressed by NMS)
# and object B (cup, no mask pixels: prototype 1 is -10 everywhere) carry other
# coefficients: a wrong row index would give A the wrong mask.
ROW_A = [30, 32, 20, 16, 0.9, 0.1, 0.8, 1.0, 0.0]
ROW_A_WEAK = [31, 32, 20, 16, 0.8, 0.1, 0.8, 0.0, 1.0]
ROW_B = [52, 44, 8, 8, 0.9, 0.7, 0.1, 0.0, 1.0]


def prototypes():
    """Return the two 16x16 prototype maps (input / 4): the A pattern and all -10."""
    protos = np.full((2, INPUT // 4, INPUT // 4), -10.0, np.float32)
    protos[0, 6:10, 5:7] = 10.0
    return protos


def a_mask():
    """Object A's mask over its box window (24 rows x 30 columns from image (30, 12)).

    Image pixel centres map to prototype cells as u = x / 6 - 5 / 12, v = y / 6 + 43 / 12
    (gain 2/3, then input / 4; 16 rows of padding). Bilinear interpolation of a rectangle
    of ones (cells 5..6 by 6..9) is the product of the 1-D ramps, > 0.5 inside the mask.
    """
    def ramp(t, first, last):
        return np.clip(np.minimum(t - (first - 1), (last + 1) - t), 0.0, 1.0)

    u = np.arange(30, 60) / 6 - 5 / 12
    v = np.arange(12, 36) / 6 + 43 / 12
    return ramp(v, 6, 9)[:, None] * ramp(u, 5, 6)[None, :] > 0.5


@pytest.fixture
def model_path(tmp_path):
    """Write the hand-built joint model; returns its path."""
    return joint_model(tmp_path / 'joint.onnx', [ROW_A_WEAK, ROW_A, ROW_B], prototypes())


def two_tone_image():
    """Red 50 left of column 42 (letterboxed x 28, a depth-cell edge), 200 from there."""
    rgb = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
    rgb[:, :42, 0] = 50
    rgb[:, 42:, 0] = 200
    return rgb


def red_depth(red):
    """Depth the model predicts for a red value (float32 arithmetic as onnxruntime)."""
    return float(np.float32(red) / np.float32(255) * np.float32(4) + np.float32(1))


def test_letterbox_is_the_fit_pad_view():
    """The runtime maps joint outputs back with DepthView 'fit_pad': it must be the letterbox."""
    for h, w, ih, iw in ((48, 96, 64, 64), (480, 640, 320, 320), (721, 1283, 384, 640),
                         (1080, 1920, 320, 320), (37, 5, 64, 96)):
        boxed, lb = letterbox(np.zeros((h, w, 3), np.uint8), ih, iw)
        view = DepthView.for_image(h, w, ih, iw, ih // 2, iw // 2, 'fit_pad')
        assert (-view.crop_x, -view.crop_y) == (lb.pad_x, lb.pad_y)
        assert abs(view.scale_x - lb.gain) < 0.5 / w + 1e-9


def test_joint_model_decodes_boxes_masks_and_depth(model_path):
    """Boxes in image pixels, the right row's mask, depth everywhere on the image grid."""
    model = JointModel(model_path)
    assert (model.num_classes, model.num_masks, model.class_names) == (2, 2, list(NAMES))
    result = model.infer(two_tone_image())
    names = [d.class_name for d in result.detections]
    assert names == ['chair', 'cup']  # the weak duplicate of A is suppressed
    chair, cup = result.detections
    assert chair.score == pytest.approx(0.72)
    assert (chair.box.x1, chair.box.y1, chair.box.x2, chair.box.y2) == pytest.approx(
        (30, 12, 60, 36))
    assert (cup.box.x1, cup.box.y1, cup.box.x2, cup.box.y2) == pytest.approx((72, 36, 84, 48))
    mask = result.masks[0]
    assert (mask.x, mask.y, mask.pixels.shape) == (30, 12, (24, 30))
    expected = a_mask()
    # Columns 30..41 and rows 12..35 reach 0.5 on their own; corners fall below it.
    assert expected[:, :12].any(axis=0).all() and not expected[:, 12:].any()
    assert expected.sum() == 288 - 12  # three pixels cut off each corner
    np.testing.assert_array_equal(mask.pixels, expected)
    assert result.masks[1].area == 0
    depth = result.depth
    assert depth.shape == (IMAGE_H, IMAGE_W) and not np.isnan(depth).any()
    # Away from the colour edge and the letterbox padding: the colour's depth exactly.
    assert depth[4:44, 4:38] == pytest.approx(red_depth(50), rel=1e-6)
    assert depth[4:44, 48:92] == pytest.approx(red_depth(200), rel=1e-6)


def test_focal_correction_and_class_filter(model_path):
    """Depth scales by the camera's effective focal length over the canonical one."""
    model = JointModel(model_path, config=DetectorConfig(class_filter=frozenset({'cup'})))
    # fx 75 image px x gain 2/3 = 50 px at the input = canonical: factor 1; fx 150: 2.
    for fx, factor in ((75.0, 1.0), (150.0, 2.0)):
        camera = CameraModel(np.array([[fx, 0, 47.5], [0, fx, 23.5], [0, 0, 1]]), IMAGE_W,
                             IMAGE_H)
        assert model.focal_scale(IMAGE_H, IMAGE_W, camera) == pytest.approx(factor)
    result = model.infer(two_tone_image(), scale=2.0)
    assert [d.class_name for d in result.detections] == ['cup'] and len(result.masks) == 1
    assert result.depth[20, 10] == pytest.approx(2 * red_depth(50), rel=1e-6)


def test_pipeline_runs_the_joint_model_with_the_mask_strategy(model_path):
    """PipelineModels(joint_path=...): same FrameResult, plus masks; `mask` reads the object."""
    pipeline = Pipeline(PipelineModels(joint_path=model_path),
                        fusion_config=FusionConfig(strategy='mask', max_depth=3.0))
    try:
        assert pipeline.providers == {'detector': 'cpu', 'depth': 'cpu'}
        assert pipeline.detector.class_names == list(NAMES)
        result = pipeline.process(two_tone_image())
    finally:
        pipeline.close()
    chair, cup = result.objects
    # The chair's mask covers the red-50 part of its box (one column at the colour edge
    # interpolates), its box is 18 of 30 columns red 200: box_median reads that.
    assert chair.depth.depth == pytest.approx(red_depth(50), rel=1e-6)
    assert chair.alert
    assert box_median(result.depth_map, chair.detection.box).depth == pytest.approx(
        red_depth(200), rel=1e-6)
    assert chair.mask is not None and chair.mask.area == 276
    # No mask pixels: `near_median` on the box.
    assert cup.depth == near_median(result.depth_map, cup.detection.box)
    assert {'joint_pre', 'joint', 'joint_post', 'inference', 'fusion'} <= set(result.timings_ms)
    image = instance_image(result.objects, IMAGE_H, IMAGE_W)
    assert image.dtype == np.uint16 and int(image.sum()) == 276
    assert image[20, 30] == 1 and image[12, 32] == 1 and image[12, 30] == image[20, 42] == 0


def test_joint_model_refuses_other_models(tmp_path):
    """A file that is not a joint model fails at start-up with a one-line reason."""
    path = joint_model(tmp_path / 'det.onnx', [ROW_A], prototypes(), task='detector')
    with pytest.raises(ModelLoadError, match='not a joint model'):
        JointModel(path)


# --- the mask strategy on hand-computed maps -------------------------------------------------

def hollow_object():
    """Return a 3 m wall with a hollow square frame (2 px, 1.0 / 1.2 m), box, mask."""
    depth = np.full((40, 40), 3.0, np.float32)
    frame = np.zeros((40, 40), bool)
    frame[10:30, 10:30] = True
    frame[12:28, 12:28] = False                   # 400 - 256 = 144 frame pixels
    values = np.where(np.arange(40)[None, :] % 2 == 0, 1.0, 1.2).astype(np.float32)
    depth[frame] = np.broadcast_to(values, depth.shape)[frame]
    return depth, Box(10, 10, 30, 30), InstanceMask(10, 10, frame[10:30, 10:30].copy())


def test_mask_strategy_reads_the_hollow_object_not_the_wall():
    """box_median reads the wall (256 of 400 pixels); `mask` the frame: 1.1 m, MAD 0.1."""
    depth, box, mask = hollow_object()
    assert np.count_nonzero(depth[10:30, 10:30] < 2) == 144
    assert box_median(depth, box).depth == 3.0
    result = object_depth(depth, box, 'mask', mask)
    # 72 pixels at 1.0 and 72 at 1.2: median (1.0 + 1.2) / 2, |v - 1.1| = 0.1 everywhere.
    assert result.depth == pytest.approx(1.1)
    assert result.spread == pytest.approx(MAD_TO_SIGMA * 0.1, rel=1e-5)
    assert result.fraction == pytest.approx(144 / 400)


def test_mask_strategy_falls_back_to_near_median():
    """No mask, or under 4 valid depths under it: the `near_median` estimate of the box."""
    depth, box, mask = hollow_object()
    assert mask_depth(depth, box, None) == near_median(depth, box)
    holed = depth.copy()
    holed[mask.full(40, 40)] = np.nan
    holed[10, 10:13] = 1.0                         # 3 valid mask pixels only
    assert mask_depth(holed, box, mask) == near_median(holed, box)
    # A blurred object (2.00, 2.04, ... 3.56 m) before a 4 m wall, as a network draws it:
    # the median of the nearest 30 of 100 pixels, 2.58 m (`robust` would read the wall).
    blurred = np.full((10, 10), 4.0, np.float32)
    blurred.flat[:40] = 2.0 + 0.04 * np.arange(40)
    assert mask_depth(blurred, Box(0, 0, 10, 10), None).depth == pytest.approx(2.58, abs=1e-5)
    with pytest.raises(ValueError, match='masks for'):
        estimate_objects([Detection2D(box, 0.9, 0, 'cup')], depth, None, 'mask', 1.0, None, [])


def test_estimate_objects_carries_masks_and_instance_image_layers():
    """Masks reach ObjectEstimate; the nearer object wins overlapping pixels; labels given."""
    depth, box, mask = hollow_object()
    far_mask = InstanceMask(0, 0, np.ones((40, 40), bool))
    detections = [Detection2D(box, 0.9, 0, 'cup'), Detection2D(Box(0, 0, 40, 40), 0.8, 1, 'x')]
    objects = estimate_objects(detections, depth, None, 'mask', 2.0, None, [mask, far_mask])
    assert objects[0].mask is mask and objects[0].depth.depth == pytest.approx(1.1)
    assert objects[0].alert and not objects[1].alert
    image = instance_image(objects, 40, 40)
    assert image[10, 10] == 1 and image[20, 20] == 2 and image[0, 0] == 2
    labelled = instance_image(objects, 40, 40, labels=[7, 9])
    assert labelled[10, 10] == 7 and labelled[20, 20] == 9
    # Objects without masks (the two-model pair) paint nothing; old call sites still work.
    plain = ObjectEstimate(detections[0], ObjectDepth(1.0, 0.1, 1.0), None, None, None, False)
    assert plain.mask is None and not instance_image([plain], 40, 40).any()


def test_a_joint_model_given_as_detector_or_depth_model_says_so(model_path):
    """Start-up names the mistake instead of a class-count or output-shape puzzle."""
    from depthdet_ros.core.depth import DepthEstimator
    from depthdet_ros.core.detector import Detector
    for role in (Detector, DepthEstimator):
        with pytest.raises(ModelLoadError, match='is a joint model'):
            role(model_path)
