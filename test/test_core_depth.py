"""Depth network wrapper: preprocessing geometry and the exact inverse mapping."""
import numpy as np
import pytest

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


def test_region_outside_the_crop_is_nan_and_values_are_exact(tmp_path):
    path = red_depth(tmp_path / 'depth.onnx')
    estimator = DepthEstimator(path)
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
