"""Property-based tests: no exception escapes, boxes stay in the image, depths are sane."""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import DepthEstimator, DepthView
from depthdet_ros.core.detector import decode, DetectorConfig, LAYOUT_YOLOV5, letterbox
from depthdet_ros.core.image import decode_raw, ImageDecodeError, SUPPORTED_ENCODINGS
from depthdet_ros.core.object_depth import estimate_objects, MAD_TO_SIGMA, near_median, \
    NEAR_FRACTION, object_depth, STRATEGIES
from depthdet_ros.core.types import Box, Detection2D

SETTINGS = settings(max_examples=60, deadline=None)
sizes = st.integers(min_value=1, max_value=64)
finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@SETTINGS
@given(encoding=st.sampled_from(SUPPORTED_ENCODINGS + ('16UC1', 'junk')), h=sizes, w=sizes,
       pad=st.integers(0, 8), extra=st.integers(-3, 3), big_endian=st.booleans(),
       seed=st.integers(0, 2**16))
def test_decode_raw_returns_rgb_or_refuses(encoding, h, w, pad, extra, big_endian, seed):
    rng = np.random.default_rng(seed)
    bpp = {'mono8': 1, 'bayer_rggb8': 1, 'mono16': 2, 'rgb16': 6, 'rgba8': 4,
           'yuv422': 2}.get(encoding, 3)
    step = w * bpp + pad
    data = rng.integers(0, 256, max(step * h + extra, 0), dtype=np.uint8).tobytes()
    try:
        out = decode_raw(encoding, h, w, step, data, big_endian)
    except ImageDecodeError:
        return
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


@SETTINGS
@given(h=st.integers(1, 2000), w=st.integers(1, 2000), box=st.tuples(
    *[st.floats(-100, 800, allow_nan=False)] * 4))
def test_letterbox_inverse_keeps_boxes_inside_the_image(h, w, box):
    _, lb = letterbox(np.zeros((h, w, 3), np.uint8), 64, 64) if h * w < 50000 else \
        (None, _letterbox_only(h, w))
    mapped = lb.to_image(np.array([box], np.float64))
    assert (mapped[:, [0, 2]] >= 0).all() and (mapped[:, [0, 2]] <= w).all()
    assert (mapped[:, [1, 3]] >= 0).all() and (mapped[:, [1, 3]] <= h).all()


def _letterbox_only(h, w):
    from depthdet_ros.core.detector import Letterbox, letterbox_geometry
    _, _, top, _, left, _, gain = letterbox_geometry(h, w, 64, 64)
    return Letterbox(gain, float(left), float(top), w, h)


@SETTINGS
@given(rows=arrays(np.float32, st.tuples(st.integers(0, 40), st.just(8)), elements=finite_or_not),
       thr=st.floats(0, 1), iou=st.floats(0, 1))
def test_decode_never_raises_and_scores_pass_the_threshold(rows, thr, iou):
    rows = np.where(np.isfinite(rows), rows, 0).astype(np.float32)
    xyxy, scores, classes = decode(rows, LAYOUT_YOLOV5, DetectorConfig(thr, iou))
    assert len(xyxy) == len(scores) == len(classes)
    assert (scores > thr).all() and ((classes >= 0) & (classes < 3)).all()


def _huge_patch():
    """Ones with a patch of float32's largest depths: their float32 variance overflowed."""
    depth = np.ones((29, 25), np.float32)
    depth[10:20, 5:20] = 3e38
    return depth


@SETTINGS
@given(depth=arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)),
                    elements=finite_or_not),
       box=st.tuples(*[st.floats(-50, 90, allow_nan=False)] * 4),
       strategy=st.sampled_from(STRATEGIES))
@example(depth=_huge_patch(), box=(0.0, 0.0, 32.0, 29.0), strategy='center_mean')
def test_strategies_give_finite_positive_depth_or_invalid(depth, box, strategy):
    x1, y1, x2, y2 = box
    est = object_depth(depth, Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)),
                       strategy)
    if est.valid:
        assert est.depth > 0 and np.isfinite(est.depth) and np.isfinite(est.spread)
        assert 0 < est.fraction <= 1
    else:
        assert np.isnan(est.depth)


@SETTINGS
@given(depth=arrays(np.float32, st.tuples(st.integers(2, 30), st.integers(2, 30)),
                    elements=st.floats(0.125, 50, width=32) | st.just(float('nan'))))
def test_near_median_is_the_median_of_the_sorted_nearest_slice(depth):
    """The one-partition near_median against a plain sort of the box's valid depths."""
    h, w = depth.shape
    est = near_median(depth, Box(0, 0, w, h))
    values = np.sort(depth[np.isfinite(depth)])
    if values.size < 4:
        assert not est.valid
        return
    near = values[:min(values.size, max(4, int(np.ceil(NEAR_FRACTION * values.size))))]
    median = float(np.median(near.astype(np.float64)))
    assert est.depth == pytest.approx(median, rel=1e-6)
    assert est.spread == pytest.approx(
        MAD_TO_SIGMA * float(np.median(np.abs(near.astype(np.float64) - median))),
        rel=1e-5, abs=1e-5)
    assert est.fraction == pytest.approx(near.size / values.size)


@SETTINGS
@given(depth=arrays(np.float32, (30, 40), elements=st.floats(0.125, 50, width=32)),
       u=st.floats(0, 40), v=st.floats(0, 30), f=st.floats(10, 1000))
def test_estimates_with_camera_have_finite_geometry(depth, u, v, f):
    camera = CameraModel(K=np.array([[f, 0, 20], [0, f, 15], [0, 0, 1.0]]), width=40, height=30)
    det = Detection2D(Box(max(u - 5, 0), max(v - 5, 0), u, v), 0.5, 0, 'thing')
    (obj,) = estimate_objects([det], depth, camera, 'robust', 1.0)
    if obj.depth.valid:
        assert np.isfinite([obj.position.x, obj.position.y, obj.position.z]).all()
        assert np.isfinite(obj.covariance).all() and np.isfinite(obj.size.x)


@SETTINGS
@given(h=st.integers(1, 300), w=st.integers(1, 300), resize=st.sampled_from(
    ['cover_crop', 'stretch']))
def test_depth_view_maps_into_the_output_grid_or_nan(h, w, resize):
    view = DepthView.for_image(h, w, 32, 40, 16, 20, resize)
    output = np.full((16, 20), 2.0, np.float32)
    depth = DepthEstimator.to_image(output, view)
    assert depth.shape == (h, w)
    finite = depth[np.isfinite(depth)]
    assert np.allclose(finite, 2.0)
    # The network always sees the image's centre pixel.
    assert np.isfinite(depth[(h - 1) // 2, (w - 1) // 2])
