"""calibrate-focal finds the focal length at which a model's metres are right."""
import numpy as np
import onnx
import pytest

from depthdet_ros.core import metadata
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.train.calibrate_focal import calibrate, write_with_focal
from depthdet_ros.train.data import ArrayFrames
from onnx_fixtures import depth_for_red, red_depth


def test_calibrated_focal_by_hand(tmp_path):
    path = red_depth(tmp_path / 'depth.onnx')
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[..., 0] = 80
    # The truth is twice the prediction; fx = fy = 500 px -> 250 px at the 320x256 input
    # (fit scale 0.5): metres come out right at a canonical focal length of 125 px.
    truth = np.full((480, 640), 2 * depth_for_red(80), np.float32)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    frames = ArrayFrames([rgb] * 3, [truth] * 3, cameras=[K] * 3)
    focal, per_frame = calibrate(str(path), frames)
    assert focal == pytest.approx(125.0, rel=1e-4)
    assert len(per_frame) == 3
    out = tmp_path / 'calibrated.onnx'
    assert write_with_focal(str(path), str(out), focal) is None
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props[metadata.CANONICAL_FOCAL] == '125.0'
    # A model that named one already: replaced, and said so (it was silent).
    assert write_with_focal(str(out), str(tmp_path / 'again.onnx'), 130.0) == '125.0'
    estimator = DepthEstimator(str(out))
    camera = CameraModel(K=K, width=640, height=480)
    scale = estimator.focal_scale(480, 640, camera)
    assert estimator.infer(rgb, scale=scale)[240, 320] == pytest.approx(truth[240, 320], rel=1e-4)
