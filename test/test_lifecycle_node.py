"""depthdet_lifecycle_node driven through its transitions over the real ROS services."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import rclpy
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from vision_msgs.msg import Detection2DArray

from onnx_fixtures import constant_detector, red_depth, red_for_depth
from ros_harness import interrupt, pinhole, Probe, write_params

pytestmark = pytest.mark.ros
ROW = (200, 355, 200, 250, 0.9, 0.95, 0.1)


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


GOAL_STATE = {Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
              Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
              Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
              Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED}


class LifecycleProcess:
    """depthdet_lifecycle_node in a subprocess, with clients for its lifecycle services."""

    def __init__(self, probe, params, log_path):
        self.probe = probe
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'depthdet_ros.ros.lifecycle_node', '--ros-args',
             '--params-file', params], stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED='1'))
        self.change = probe.create_client(ChangeState, '/depthdet_node/change_state')
        self.get = probe.create_client(GetState, '/depthdet_node/get_state')

    def _try(self, client, request, timeout):
        """Call a service; None when no response came.

        Fast DDS drops a response sent before the client's response reader is
        discovered (the server warns 'failed to send response').
        """
        assert client.wait_for_service(timeout_sec=60.0), self.output()
        future = client.call_async(request)
        rclpy.spin_until_future_complete(self.probe, future, timeout_sec=timeout)
        return future.result() if future.done() else None

    def transition(self, transition_id):
        """Request a transition; returns whether it succeeded."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        response = self._try(self.change, request, timeout=30.0)
        if response is None:  # lost response: the state says whether it happened
            return self.state() == GOAL_STATE[transition_id]
        return response.success

    def state(self):
        """Return the current primary state id (asking again if a response is lost)."""
        for _ in range(4):
            response = self._try(self.get, GetState.Request(), timeout=15.0)
            if response is not None:
                return response.current_state.id
        raise AssertionError('get_state never answered\n' + self.output())

    def cpu_seconds(self):
        """Return the CPU time the node process has used so far."""
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def output(self):
        self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        interrupt(self.proc)
        self._log.close()


def spin_for(probe, seconds, send=None, period=0.05):
    """Spin the probe for `seconds`, calling `send` every `period`."""
    deadline = time.monotonic() + seconds
    next_send = 0.0
    while time.monotonic() < deadline:
        if send is not None and time.monotonic() >= next_send:
            send()
            next_send = time.monotonic() + period
        rclpy.spin_once(probe, timeout_sec=0.01)


def test_lifecycle_transitions_over_ros_services(ros, tmp_path):
    detector = tmp_path / 'det.onnx'
    constant_detector(detector, [ROW], names=('chair', 'bottle'))
    depth = red_depth(tmp_path / 'depth.onnx')
    params = write_params(tmp_path / 'params.yaml', detector_model=str(detector),
                          depth_model=depth, providers='cpu')
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = red_for_depth(2.0)
    camera = pinhole()
    probe = Probe({'detections': Detection2DArray})
    node = LifecycleProcess(probe, params, tmp_path / 'node.log')

    def send():
        probe.send(image, camera)

    def image_subscribers():
        return probe.count_subscribers('/image')

    def detections_publishers(expected):
        """Wait until /detections has `expected` publishers (graph discovery takes a moment)."""
        deadline = time.monotonic() + 15.0
        while probe.count_publishers('/detections') != expected:
            assert time.monotonic() < deadline, probe.count_publishers('/detections')
            spin_for(probe, 0.1)
        return True

    try:
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert probe.count_publishers('/detections') == 0
        # A transition the state does not have, by id (as a lifecycle manager sends
        # it): refused, and the node lives on (rclpy alone would raise out of spin).
        assert not node.transition(Transition.TRANSITION_ACTIVATE)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert 'change_state refused: transition id 3' in node.output()

        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_INACTIVE
        assert 'detector' in node.output()          # models loaded at configure
        # Outputs advertised from configure on, as rclcpp LifecyclePublishers are.
        assert detections_publishers(1)
        spin_for(probe, 1.0)
        assert image_subscribers() == 0

        assert node.transition(Transition.TRANSITION_ACTIVATE)
        assert node.state() == State.PRIMARY_STATE_ACTIVE
        msg = probe.wait_for('detections', resend=send, timeout=30)
        assert msg.detections[0].results[0].hypothesis.class_id == 'chair'
        cpu_before = node.cpu_seconds()
        spin_for(probe, 3.0, send)
        active_cpu = node.cpu_seconds() - cpu_before

        assert node.transition(Transition.TRANSITION_DEACTIVATE)
        assert node.state() == State.PRIMARY_STATE_INACTIVE
        spin_for(probe, 1.0)
        assert image_subscribers() == 0
        # Still advertised while inactive, so consumers stay matched; nothing published.
        assert probe.count_publishers('/detections') == 1
        received = len(probe.received['detections'])
        cpu_before = node.cpu_seconds()
        spin_for(probe, 3.0, send)
        inactive_cpu = node.cpu_seconds() - cpu_before
        assert len(probe.received['detections']) == received
        # Inactive, the same image stream costs the node next to nothing.
        assert inactive_cpu < 0.25 * active_cpu, (inactive_cpu, active_cpu)

        # cleanup frees the models (the next configure loads the file afresh) and
        # removes the publishers.
        assert node.transition(Transition.TRANSITION_CLEANUP)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert detections_publishers(0)
        replacement = tmp_path / 'det2.onnx'
        constant_detector(replacement, [ROW], names=('stool', 'bottle'))
        shutil.move(replacement, detector)
        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.transition(Transition.TRANSITION_ACTIVATE)
        start = len(probe.received['detections'])
        msg = probe.wait_for('detections', resend=send, start=start, timeout=30)
        assert msg.detections[0].results[0].hypothesis.class_id == 'stool'
        assert node.proc.poll() is None
        assert 'Traceback' not in node.output()
    finally:
        probe.destroy_node()
        node.close()


def publishers_of(probe, topic, expected, timeout=15.0):
    """Wait until `topic` has `expected` publishers (graph discovery takes a moment)."""
    deadline = time.monotonic() + timeout
    while probe.count_publishers(topic) != expected:
        assert time.monotonic() < deadline, (topic, probe.count_publishers(topic))
        spin_for(probe, 0.1)
    return True


def set_parameter(probe, name, value):
    """Set one parameter of /depthdet_node; return the SetParametersResult."""
    client = probe.create_client(SetParameters, '/depthdet_node/set_parameters')
    assert client.wait_for_service(timeout_sec=30.0)
    future = client.call_async(SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg()]))
    rclpy.spin_until_future_complete(probe, future, timeout_sec=30.0)
    return future.result().results[0]


def test_a_configure_failed_on_a_model_is_fixed_by_setting_the_model(ros, tmp_path):
    """Models are set while unconfigured and used by the next configure, without a restart.

    Before, detector_model was read-only in every state (an outsider found a node whose
    configure failed on its model unrecoverable).
    """
    bad = tmp_path / 'garbage.onnx'
    bad.write_bytes(b'not an onnx model')
    good = constant_detector(tmp_path / 'det.onnx', [ROW], names=('chair', 'bottle'))
    params = write_params(tmp_path / 'params.yaml', detector_model=str(bad),
                          depth_model=red_depth(tmp_path / 'depth.onnx'), providers='cpu')
    probe = Probe({})
    node = LifecycleProcess(probe, params, tmp_path / 'node.log')
    try:
        assert not node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert 'configure failed: ' in node.output()
        assert 'Traceback' not in node.output()
        assert node.proc.poll() is None
        # A path that does not exist is refused at once, as at start-up.
        missing = set_parameter(probe, 'detector_model', str(tmp_path / 'missing.onnx'))
        assert not missing.successful and 'missing.onnx' in missing.reason
        assert set_parameter(probe, 'detector_model', str(good)).successful
        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_INACTIVE
        assert f'detector {good} (' in node.output()  # configure's line for the new model
        assert publishers_of(probe, '/depth', 1)  # publish_depth (true) applies
        # Configured: the models in use stay until cleanup.
        refused = set_parameter(probe, 'detector_model', str(bad))
        assert not refused.successful
        assert 'only while the node is unconfigured' in refused.reason
        assert set_parameter(probe, 'max_depth', 2.5).successful  # run-time ones still change
        assert node.transition(Transition.TRANSITION_CLEANUP)
        assert set_parameter(probe, 'publish_depth', False).successful
        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert publishers_of(probe, '/depth', 0)  # set while unconfigured: applied
        assert probe.count_publishers('/detections') == 1
        assert node.proc.poll() is None
    finally:
        probe.destroy_node()
        node.close()
