"""Depth network wrapper: preprocessing geometry and the exact inverse mapping."""
import numpy as np
import pytest

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import DepthEstimator, DepthView
from depthdet_ros.core.session import ModelLoadError
from onnx_fixtures import constant_detector, depth_for_red, red_depth


def test_view_geometry_for_640x480():
    # s = max(320/640, 256/480) = 0.5333 -> ceil(341.33)=342 x 256, crop x (342-320)//2 = 11.
    view = DepthView.for_image(480, 640, 256, 320, 128, 160, 'cover_crop')
    assert (view.resized_w, view.resized_h, view.crop_x, view.crop_y) == (342, 256, 11, 0)
    ax, bx, xs = view.output_coords('x')
    # Input pixel u maps to output ((u + 0.5) * 342/640 - 11) / 2 - 0.5.
    for u in (0, 21, 320, 639):
        assert xs[u] == pytest.approx(((u + 0.5) * 342 / 640 - 11) / 2 - 0.5)


def test_inverse_mapping_places_each_output_pixel_on_its_input_pixels():
    view = DepthView.for_image(256, 320, 256, 320, 128, 160, 'cover_crop')
    output = np.arange(128 * 160, dtype=np.float32).reshape(128, 160) + 1
    depth = DepthEstimator.to_image(output, view)
    assert depth.shape == (256, 320)
    # Same aspect, 2x upsampling: the centre of 2x2 input block (2i..2i+1) is output i.
    np.testing.assert_allclose(0.5 * (depth[10, 20] + depth[11, 21]), output[5, 10])
    assert np.isfinite(depth).all()


def test_fit_pad_view_geometry_for_1280x720():
    # s = min(320/1280, 256/720) = 0.25 -> 320 x 180, padded by (256-180)//2 = 38 on top.
    view = DepthView.for_image(720, 1280, 256, 320, 128, 160, 'fit_pad')
    assert (view.resized_w, view.resized_h, view.crop_x, view.crop_y) == (320, 180, 0, -38)
    ay, by, ys = view.output_coords('y')
    # Input row v maps to output ((v + 0.5) * 0.25 + 38) / 2 - 0.5, inside [0, 127].
    for v in (0, 360, 719):
        assert ys[v] == pytest.approx(((v + 0.5) * 0.25 + 38) / 2 - 0.5)
    assert ys[0] > 0 and ys[-1] < 127


@pytest.mark.parametrize('height,width', [(480, 640), (720, 1280), (600, 600), (640, 360)])
def test_full_coverage_gives_every_pixel_a_depth(tmp_path, height, width):
    estimator = DepthEstimator(red_depth(tmp_path / 'depth.onnx'))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 100
    image[:, :width // 8, 0] = 20  # a band at the left edge the centre crop would miss
    depth = estimator.infer(image)
    assert np.isfinite(depth).all()
    assert depth[height // 2, 2] == pytest.approx(depth_for_red(20), abs=1e-5)
    assert depth[height // 2, width - 3] == pytest.approx(depth_for_red(100), abs=1e-5)


def test_focal_scale_by_hand_for_a_known_view(tmp_path):
    estimator = DepthEstimator(red_depth(tmp_path / 'depth.onnx', canonical_focal=250.0))
    # 1280x720 fits 320x180 (s = 0.25): fx = fy = 1000 px become 250 px = canonical.
    camera = CameraModel.from_fov(1280, 720, 2 * np.degrees(np.arctan(640 / 1000)))
    assert camera.fx == pytest.approx(1000.0)
    assert estimator.focal_scale(720, 1280, camera) == pytest.approx(1.0)
    # 640x480 fits 320x240 (s = 0.5): fx 600 -> 300 px, 1.2 x the canonical 250 px.
    camera = CameraModel(K=np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]),
                         width=640, height=480)
    assert estimator.focal_scale(480, 640, camera) == pytest.approx(1.2)
    # No camera: an assumed 90 degree field of view, fx = 320 px -> 160 px -> 0.64.
    assert estimator.focal_scale(480, 640, None, 90.0) == pytest.approx(0.64)
    assert estimator.focal_scale(480, 640) == 1.0
    assert estimator.canonical_hfov_deg == pytest.approx(
        2 * np.degrees(np.arctan(160 / 250)))
    # The factor multiplies the metres the network predicts.
    image = np.full((480, 640, 3), 100, np.uint8)
    depth = estimator.infer(image, scale=1.2)
    assert depth[240, 320] == pytest.approx(1.2 * depth_for_red(100), rel=1e-5)


def test_model_without_canonical_focal_is_used_unscaled(tmp_path):
    estimator = DepthEstimator(red_depth(tmp_path / 'depth.onnx'))
    camera = CameraModel.from_fov(640, 480, 60.0)
    assert estimator.canonical_focal is None
    assert estimator.focal_scale(480, 640, camera) == 1.0


def test_crop_coverage_leaves_outside_nan_and_values_are_exact(tmp_path):
    path = red_depth(tmp_path / 'depth.onnx')
    estimator = DepthEstimator(path, coverage='crop')
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = 100
    image[100:300, 200:400, 0] = 20
    depth = estimator.infer(image)
    assert depth.shape == (480, 640)
    # Columns the 320-wide crop never sees (about 20 on each side) are NaN.
    assert np.isnan(depth[:, :15]).all() and np.isnan(depth[:, -15:]).all()
    assert np.isfinite(depth[:, 30:-30]).all()
    assert depth[200, 300] == pytest.approx(depth_for_red(20), abs=1e-5)
    assert depth[20, 100] == pytest.approx(depth_for_red(100), abs=1e-5)


def test_non_positive_and_nan_predictions_become_nan():
    view = DepthView.for_image(128, 160, 128, 160, 64, 80, 'stretch')
    output = np.full((64, 80), 3.0, np.float32)
    output[:8, :8] = -1.0
    output[-8:, -8:] = np.nan
    depth = DepthEstimator.to_image(output, view)
    assert np.isnan(depth[:10, :10]).all() and np.isnan(depth[-10:, -10:]).all()
    assert depth[64, 80] == pytest.approx(3.0)


def test_detector_given_as_depth_model_is_refused(tmp_path):
    det = constant_detector(tmp_path / 'det.onnx', [(1, 1, 1, 1, 0.5, 0.5, 0.5)])
    with pytest.raises(ModelLoadError, match='is a detector, not a depth model'):
        DepthEstimator(det)
