"""The synthetic_camera node publishes over DDS (localhost only) and exits cleanly."""
import os
import signal
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

pytestmark = pytest.mark.ros


def start_node(*params):
    command = [sys.executable, '-m', 'depthdet_ros.ros.synthetic_camera', '--ros-args',
               '-p', 'width:=96', '-p', 'height:=72', '-p', 'rate:=10']
    for param in params:
        command += ['-p', param]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'), text=True)


def receive(types, timeout=30.0):
    """Subscribe to {topic: type} and return the first message of each."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('synthetic_camera_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = {}
    for topic, msg_type in types.items():
        node.create_subscription(msg_type, topic,
                                 lambda msg, topic=topic: received.setdefault(topic, msg), 10)
    deadline = time.monotonic() + timeout
    try:
        while len(received) < len(types) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return received


def test_publishes_image_and_camera_info_then_stops_on_ctrl_c():
    process = start_node()
    try:
        received = receive({'image': Image, 'camera_info': CameraInfo,
                            'ground_truth/detections': Detection2DArray})
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert set(received) == {'image', 'camera_info', 'ground_truth/detections'}, output
    image, info = received['image'], received['camera_info']
    assert (image.width, image.height, image.encoding) == (96, 72, 'rgb8')
    assert len(image.data) == 96 * 72 * 3
    assert (info.width, info.height) == (96, 72) and info.k[0] > 0
    assert image.header.frame_id == info.header.frame_id == 'camera_optical_frame'
    assert process.returncode == 0, output
    assert 'Traceback' not in output


def test_a_finite_sequence_without_loop_ends_by_itself():
    process = start_node('frames:=2', 'loop:=false', 'rate:=20.0')
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert 'published all 2 frames' in output


def test_moving_objects_publish_their_motion():
    from nav_msgs.msg import Odometry
    from vision_msgs.msg import Detection3DArray
    process = start_node('moving:=true', 'seed:=3')
    try:
        received = receive({'ground_truth/object_motion': Odometry,
                            'ground_truth/object_motion_world': Odometry,
                            'ground_truth/detections_3d': Detection3DArray})
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert len(received) == 3, output
    optical, world = received['ground_truth/object_motion'], \
        received['ground_truth/object_motion_world']
    assert optical.header.frame_id == 'camera_optical_frame' and world.header.frame_id == 'world'
    # child_frame_id is the instance id, as the Detection ids.
    assert int(optical.child_frame_id) >= 1 and int(world.child_frame_id) >= 1
    detections = received['ground_truth/detections_3d'].detections
    assert detections and all(int(d.id) >= 1 for d in detections)
    assert 'moving objects' in output and process.returncode == 0, output


def test_the_camera_publishes_its_own_odometry():
    from nav_msgs.msg import Odometry
    from tf2_msgs.msg import TFMessage
    process = start_node('seed:=3')
    try:
        received = receive({'odometry': Odometry, 'image': Image, '/tf': TFMessage})
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert len(received) == 3, output
    # Its pose on /tf too, as a robot's transforms give it (use_odometry, odom_frame world).
    transform, = received['/tf'].transforms
    assert transform.header.frame_id == 'world'
    assert transform.child_frame_id == received['image'].header.frame_id
    q = transform.transform.rotation
    assert q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 == pytest.approx(1.0)
    odometry = received['odometry']
    # The camera's own motion, as depthdet_node's use_odometry reads it: of the image's
    # frame, its twist in that frame; the camera path moves at about 0.4 m/s.
    assert odometry.header.frame_id == 'world'
    assert odometry.child_frame_id == received['image'].header.frame_id
    linear = odometry.twist.twist.linear
    assert 0.05 < (linear.x ** 2 + linear.y ** 2 + linear.z ** 2) ** 0.5 < 1.0
    assert process.returncode == 0, output


@pytest.mark.parametrize('arguments, message', [
    # Before: a 23-line InvalidParameterTypeException traceback, or a value taken silently.
    (['-p', 'width:=abc'], 'width must be of type int (default 640)'),
    (['-p', 'publish_depth:=1'], 'publish_depth must be of type bool (default True)'),
    (['-p', 'rate:=abc'], "rate must be a finite number, got 'abc'"),
    (['-p', 'rate:=true'], 'rate must be a finite number, got True'),
    (['-p', 'speed:=inf'], 'speed must be a finite number, got inf'),
    # Before: exit 0, so scripts and CI saw no failure.
    (['--params-file', '/nonexistent/params.yaml'], 'could not start with these arguments'),
])
def test_unusable_parameters_stop_the_camera_with_one_line(arguments, message):
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.ros.synthetic_camera',
                             '--ros-args', *arguments], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'synthetic_camera: ' in result.stderr and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
