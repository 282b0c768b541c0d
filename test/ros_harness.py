"""Run depthdet_node as a real process and talk to it over DDS on localhost."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.ros import convert


def write_params(path, **values):
    """Write a ROS parameters YAML for depthdet_node."""
    lines = ['/**:', '  ros__parameters:']
    for key, value in values.items():
        if isinstance(value, str):
            value = f'"{value}"'
        elif isinstance(value, bool):
            value = str(value).lower()
        lines.append(f'    {key}: {value}')
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def interrupt(proc, timeout=10.0):
    """Stop a node process as Ctrl-C does; kill it if it has not exited in `timeout`."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def ctrl_c_group(proc, timeout=60.0):
    """Ctrl-C a process started with start_new_session as a terminal does: its whole group.

    Returns its output (stdout piped, stderr merged); kills the group if it hangs.
    """
    try:
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return output


class NodeProcess:
    """depthdet_node in a subprocess; stderr is kept for assertions."""

    def __init__(self, params_file, extra_args=(), log_path=None):
        self.cmd = [sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args',
                    '-r', '__node:=depthdet_node', '--params-file', params_file, *extra_args]
        self.log_path = log_path
        self.proc = None

    def __enter__(self):
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        self._log = open(self.log_path, 'w+') if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self

    def output(self):
        """Everything the node printed so far."""
        self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def __exit__(self, *exc):
        interrupt(self.proc)
        if self.log_path:
            self._log.close()


class Probe(Node):
    """Publishes camera input and records every output of depthdet_node."""

    def __init__(self, topics, input_qos=qos_profile_sensor_data, namespace=''):
        # A namespace of its own keeps a test's topics apart from any other node left
        # in the domain (its relative names resolve inside it, as the node's do).
        super().__init__('depthdet_probe', namespace=namespace)
        self.image_pub = self.create_publisher(Image, 'image', input_qos)
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', input_qos)
        self.received = {name: [] for name in topics}
        for name, msg_type in topics.items():
            self.create_subscription(msg_type, name,
                                     lambda m, n=name: self.received[n].append(m), 10)
        self.param_client = self.create_client(SetParameters, 'depthdet_node/set_parameters')

    def send(self, rgb, camera, stamp=(123, 456000000), frame_id='cam_optical', image=None):
        """Publish camera_info and an rgb8 image with the given stamp and frame."""
        header = self.send_camera_info(camera, stamp, frame_id)
        self.image_pub.publish(image if image is not None else
                               convert.rgb_to_image_msg(rgb, header))

    def send_camera_info(self, camera, stamp, frame_id='cam_optical'):
        """Publish camera_info (none if camera is None); return the header used."""
        header = Header(frame_id=frame_id)
        header.stamp.sec, header.stamp.nanosec = stamp
        if camera is not None:
            self.info_pub.publish(convert.camera_model_to_info(camera, header))
        return header

    def wait_for(self, topic, predicate=lambda m: True, timeout=30.0, resend=None, start=0):
        """Spin until a message on `topic` (after index `start`) satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < deadline:
            if resend is not None and time.monotonic() >= next_send:
                resend()
                next_send = time.monotonic() + 0.3
            rclpy.spin_once(self, timeout_sec=0.05)
            for msg in self.received[topic][start:]:
                if predicate(msg):
                    return msg
        last = self.received[topic][-1] if self.received[topic] else None
        raise AssertionError(f"no matching message on {topic} within {timeout} s; last: {last}")

    def set_parameter(self, name, value, timeout=10.0):
        """Set a parameter on depthdet_node as `ros2 param set` does (the type is value's).

        Returns the SetParametersResult.
        """
        assert self.param_client.wait_for_service(timeout_sec=timeout)
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        future = self.param_client.call_async(request)
        rclpy.spin_until_future_complete(self, future, timeout_sec=timeout)
        return future.result().results[0]


def pinhole(width=640, height=480, f=500.0):
    """Return a distortion-free camera with the principal point at the image centre."""
    K = np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]])
    return CameraModel(K=K, width=width, height=height)
