"""depthdet_node scales depth to the camera: by CameraInfo, else by assumed_hfov_deg.

The depth fixture predicts 0.5 + 10 * red metres for a canonical focal length of 250 px
at its 320x256 input. A 640x480 frame fits that input at scale 0.5 ('full' coverage).
"""
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from vision_msgs.msg import Detection2DArray

from onnx_fixtures import constant_detector, depth_for_red, red_depth
from ros_harness import NodeProcess, pinhole, Probe, write_params

RED = 60  # the whole frame: a flat wall


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def _depth_of_first_detection(probe, image, camera, predicate=lambda z: True):
    msg = probe.wait_for('detections', lambda m: m.detections and predicate(
        m.detections[0].results[0].pose.pose.position.z),
        resend=lambda: probe.send(image, camera), timeout=60)
    return msg.detections[0].results[0].pose.pose.position.z


def test_depth_follows_camera_info_and_the_assumed_field_of_view(ros, tmp_path):
    detector = constant_detector(tmp_path / 'det.onnx', [(320, 240, 200, 200, 0.9, 0.95, 0.1)])
    depth = red_depth(tmp_path / 'depth.onnx', canonical_focal=250.0)
    params = write_params(tmp_path / 'params.yaml', detector_model=detector, depth_model=depth,
                          providers='cpu', assumed_hfov_deg=90.0)
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = RED
    raw = float(depth_for_red(RED))
    topics = {'detections': Detection2DArray, '/diagnostics': DiagnosticArray}
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics)
        try:
            # No camera_info: 90 deg over 640 px -> fx 320 px -> 160 px at the input.
            z = _depth_of_first_detection(probe, image, None)
            assert z == pytest.approx(raw * 160 / 250, rel=1e-4)
            diag = probe.wait_for('/diagnostics', lambda m: any(
                v.key == 'depth_scaled_for' and 'assumed 90' in v.value
                for v in m.status[0].values))
            assert diag.status[0].level == DiagnosticStatus.WARN  # no camera_info
            assert int({v.key: v.value for v in diag.status[0].values}[
                'images_without_camera_info']) >= 1
            # With camera_info fx = 600 px -> 300 px at the input: 1.2 x the prediction.
            camera = pinhole(f=600.0)
            z = _depth_of_first_detection(probe, image, camera,
                                          lambda z: abs(z - raw * 1.2) < 1e-3)
            assert z == pytest.approx(raw * 1.2, rel=1e-4)
            # A frame whose camera_info is late or lost: no 3D, but the depth keeps the
            # scale of the last camera_info (it used to fall back to the assumed 90 deg,
            # 0.53x, which an outsider saw as objects suddenly nearer).
            late = probe.wait_for('detections', lambda m: m.header.stamp.sec == 200,
                                  resend=lambda: probe.send(image, None, stamp=(200, 0)),
                                  timeout=60)
            position = late.detections[0].results[0].pose.pose.position
            assert np.isnan(position.x) and position.z == pytest.approx(raw * 1.2, rel=1e-4)
            # A camera_info of another aspect ratio (not this camera's): no 3D either, and
            # the depth still keeps the scale of the last one that fits (outsider round 39:
            # it fell back to the assumed field of view).
            stray = probe.wait_for('detections', lambda m: m.header.stamp.sec == 201,
                                   resend=lambda: probe.send(image, pinhole(640, 360, 600.0),
                                                             stamp=(201, 0)),
                                   timeout=60)
            position = stray.detections[0].results[0].pose.pose.position
            assert np.isnan(position.x) and position.z == pytest.approx(raw * 1.2, rel=1e-4)
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None, node.output()
        assert node.output().count('no camera_info for this frame: depth is scaled') == 1


def test_joint_model_without_camera_info_uses_its_own_camera(ros, tmp_path):
    """A joint model names its canonical camera too: frames without CameraInfo keep going."""
    import test_core_joint as joint

    model = joint.joint_model(tmp_path / 'joint.onnx', [joint.ROW_A], joint.prototypes())
    params = write_params(tmp_path / 'params.yaml', joint_model=model, providers='cpu',
                          depth_strategy='mask')
    image = np.zeros((joint.IMAGE_H, joint.IMAGE_W, 3), np.uint8)
    image[..., 0] = RED
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe({'detections': Detection2DArray})
        try:
            z = _depth_of_first_detection(probe, image, None)
        finally:
            probe.destroy_node()
        log = node.output()
        assert node.proc.poll() is None, log
    # Factor 1: the model's own camera, 2 atan(32 / 50) = 65.2 deg over its 64-pixel input.
    assert z == pytest.approx(joint.red_depth(RED), rel=1e-5)
    assert "the depth model's own camera (65 deg over its input)" in log
    assert 'frame failed' not in log
