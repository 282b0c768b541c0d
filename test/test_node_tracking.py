"""depthdet_node with tracking, markers and a joint model, over DDS on localhost.

The detector fixture sees one chair at image box (100,150)-(300,400) whatever the
image; the depth fixture reads the red level as metres (onnx_fixtures.red_depth), so
a uniformly red frame puts the chair at a chosen depth. Frames are sent one at a time
with stamps 0.1 s apart, each after the node answered the previous one.
"""
import contextlib
import math
import os
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from onnx_fixtures import constant_detector, depth_for_red, red_depth, red_for_depth
from ros_harness import NodeProcess, pinhole, Probe, write_params
import test_core_joint as joint_fixtures

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE)
TOPICS = {'detections': Detection2DArray, 'detections_3d': Detection3DArray,
          'proximity_alert': Detection3DArray, 'markers': MarkerArray}
FRAME_S = 0.1


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('models')
    chair = (200, 355, 200, 250, 0.9, 0.95, 0.1)
    return {'detector': constant_detector(root / 'det.onnx', [chair]),
            'depth': red_depth(root / 'depth.onnx'),
            # Depth scaled for the camera's focal length (focal / 250 px here).
            'focal_depth': red_depth(root / 'focal.onnx', canonical_focal=250.0)}


def node_params(tmp_path, **values):
    """Write the node's parameters; any recent CameraInfo serves a frame.

    The probe's CameraInfo never changes. Under CPU load the one with a frame's own
    stamp can come later than the node waits for it (ros.node.CAMERA_INFO_WAIT_S), and
    the frame then has no 3D position; these tests are about tracking.
    """
    return write_params(tmp_path / 'params.yaml', camera_info_tolerance=10.0,
                        diagnostics_period=0.2, **values)


def chair_params(models, tmp_path, **values):
    """node_params for the chair fixtures on the CPU, without the depth output."""
    return node_params(tmp_path, detector_model=models['detector'],
                       depth_model=models['depth'], providers='cpu', publish_depth=False,
                       **values)


@pytest.fixture
def namespace(request):
    """Return a namespace for one test's node and probe.

    Every test here sends the same stamps; a node or camera left over in the domain
    by another test (seen in a full in-place run) would otherwise mix its messages in,
    or reset the tracker with stamps that go backwards.
    """
    # The name's tail: a ROS name has no double underscore.
    return f'/tracking_{os.getpid()}_{request.node.name.split("[")[0][-40:].lstrip("_")}'


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def stamp_of(k):
    return (100 + (k // 10), int(round((k % 10) * FRAME_S * 1e9)))


def same_stamp(msg, stamp):
    return (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp


def play(probe, depths, camera, first=0):
    """Send one uniformly red frame per depth; return each frame's three messages."""
    frames = []
    for k, depth in enumerate(depths, start=first):
        rgb = np.zeros((480, 640, 3), np.uint8)
        rgb[..., 0] = red_for_depth(depth)
        stamp = stamp_of(k)
        start = {name: len(probe.received[name]) for name in TOPICS}
        probe.send(rgb, camera, stamp=stamp)
        got = {name: probe.wait_for(name, lambda m: same_stamp(m, stamp), timeout=30.0,
                                    start=start[name])
               for name in ('detections', 'detections_3d', 'proximity_alert')}
        frames.append(got)
    return frames


def wait_for_node(probe):
    """Wait until the node subscribes to the inputs, publishes, and has had a CameraInfo.

    Matching seen from the probe's side does not prove the node's side has matched too
    (discovery is not symmetric: CI runs lost every CameraInfo of a test after a fixed
    one-second settle). So a CameraInfo stamped far from the test's frames (unused by
    them) is sent until the node's /diagnostics count it; with `auto` input QoS this
    starts once the node holds its reliable subscriptions only.
    """
    diagnostics = []
    subscription = probe.create_subscription(DiagnosticArray, '/diagnostics',
                                             diagnostics.append, 10)
    status_name = f'{probe.get_namespace().lstrip("/")}/depthdet_node: pipeline'
    camera = pinhole()
    deadline = time.monotonic() + 60.0
    try:
        while time.monotonic() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
            if not (probe.image_pub.get_subscription_count() == 1
                    and probe.info_pub.get_subscription_count() == 1
                    and all(probe.count_publishers(name) for name in TOPICS)):
                continue
            if any(int(values_of(status).get('camera_info_received', 0))
                   for msg in diagnostics for status in msg.status
                   if status.name == status_name):
                return
            probe.send_camera_info(camera, stamp=(1, 0))
            settle = time.monotonic() + 0.2
            while time.monotonic() < settle:
                rclpy.spin_once(probe, timeout_sec=0.05)
    finally:
        probe.destroy_subscription(subscription)
    raise AssertionError('depthdet_node did not come up or never counted a CameraInfo')


@contextlib.contextmanager
def node_and_probe(params, tmp_path, namespace, topics=TOPICS):
    """Run depthdet_node in `namespace` with a probe on `topics`, once the node is up."""
    with NodeProcess(params, ('-r', f'__ns:={namespace}'), log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics, input_qos=RELIABLE, namespace=namespace)
        try:
            wait_for_node(probe)
            yield node, probe
        finally:
            probe.destroy_node()


def values_of(status):
    return {kv.key: kv.value for kv in status.values}


def diagnostic_value(probe, diagnostics, key, expected, timeout=10.0):
    """Return the latest value of the node's /diagnostics `key`, once it reads `expected`.

    `diagnostics` collects the probe's /diagnostics messages; the last value seen is
    returned if `expected` does not come within `timeout` s.
    """
    status_name = f'{probe.get_namespace().lstrip("/")}/depthdet_node: pipeline'
    deadline = time.monotonic() + timeout
    value = None
    while value != expected and time.monotonic() < deadline:
        rclpy.spin_once(probe, timeout_sec=0.1)
        value = next((values_of(st).get(key) for msg in reversed(diagnostics)
                      for st in msg.status if st.name == status_name), None)
    return value


def set_param(probe, name, value):
    """Set one parameter of the probe's depthdet_node with its value's ROS type; the result."""
    client = probe.create_client(SetParameters, 'depthdet_node/set_parameters')
    assert client.wait_for_service(timeout_sec=10.0)
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    future = client.call_async(request)
    rclpy.spin_until_future_complete(probe, future, timeout_sec=10.0)
    return future.result().results[0]


def results_by_id(detection):
    return {r.hypothesis.class_id: r for r in detection.results}


def test_an_approaching_object_keeps_its_id_and_alerts_by_time_to_contact(
        models, ros, tmp_path, namespace):
    """2 m/s toward the camera from 5 m: one ID, velocity, a time_to_contact alert, markers."""
    params = chair_params(models, tmp_path, max_depth=0.5, alert_time_to_contact=3.0)
    camera = pinhole()
    speed = 2.0
    depths = [5.0 - speed * FRAME_S * k for k in range(15)]
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        frames = play(probe, depths, camera)
        last_stamp = stamp_of(len(depths) - 1)
        markers = probe.wait_for('markers', lambda m: same_stamp(m.markers[0], last_stamp))
        assert node.proc.poll() is None, node.output()
    # One track all along, the same ID on the 2D and 3D detections.
    ids = {d.id for f in frames for d in f['detections'].detections}
    ids |= {d.id for f in frames for d in f['detections_3d'].detections}
    assert len(ids) == 1 and ids.pop().isdigit()
    track_id = frames[0]['detections'].detections[0].id
    # Velocity (optical frame) converges to the approach: about -2 m/s along z.
    last = results_by_id(frames[-1]['detections_3d'].detections[0])
    assert last['chair'].hypothesis.score > 0 and last['velocity'].hypothesis.score == 0.0
    assert last['velocity'].pose.pose.position.z == pytest.approx(-speed, rel=0.25)
    # Time to contact: distance over closing speed; the object is 2.2 m away at 2 m/s.
    ttc, closing, distance = (getattr(last['time_to_contact'].pose.pose.position, a)
                              for a in 'xyz')
    # The box centre (200, 275) is 120 px left of and 35 px below the principal point.
    raw_z = float(depth_for_red(red_for_depth(depths[-1])))
    true_distance = raw_z * math.hypot(120 / 500, 35 / 500, 1.0)
    assert distance == pytest.approx(true_distance, rel=0.05)
    assert ttc == pytest.approx(true_distance / speed, rel=0.25)
    assert ttc == pytest.approx(distance / closing, rel=1e-6)
    # Smoothed depth: not the raw one (the filter lags a moving object a little).
    z = last['chair'].pose.pose.position.z
    assert z != pytest.approx(raw_z, abs=1e-4) and z == pytest.approx(raw_z, rel=0.1)
    # The alert: by time to contact (max_depth 0.5 m never fires), once, and it stays.
    alerted = [bool(f['proximity_alert'].detections) for f in frames]
    first = alerted.index(True)
    assert 3 <= first <= 10 and all(alerted[first:]), alerted
    for f in frames[first:]:
        (alert,) = f['proximity_alert'].detections
        assert alert.id == track_id
        rules = [r.hypothesis.class_id for r in alert.results if r.hypothesis.class_id
                 .startswith('alert/')]
        assert rules == ['alert/time_to_contact']
        assert alert.results[0].hypothesis.class_id == 'chair'
    # Markers: the input's header, DELETEALL first, then box, label and arrow of the track.
    first_marker = markers.markers[0]
    assert first_marker.action == Marker.DELETEALL
    assert all(m.header.frame_id == 'cam_optical' for m in markers.markers)
    by_ns = {m.ns: m for m in markers.markers[1:]}
    assert set(by_ns) == {'boxes', 'labels', 'velocity'}
    assert all(m.id == int(track_id) for m in by_ns.values())
    assert by_ns['boxes'].type == Marker.CUBE
    assert by_ns['boxes'].pose.position.z == pytest.approx(z)
    assert by_ns['labels'].text.startswith(f'chair {z:.2f} m #{track_id} ')
    # They expire after stale_input_timeout (2 s): a stopped camera leaves no boxes.
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (2, 0) for m in by_ns.values())
    tail, head = by_ns['velocity'].points
    assert head.z - tail.z == pytest.approx(last['velocity'].pose.pose.position.z)


def odometry(stamp, linear, child_frame_id='cam_optical'):
    msg = Odometry(child_frame_id=child_frame_id)
    msg.header.frame_id = 'odom'
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = linear
    return msg


def subscribed(probe, publisher, timeout=10.0):
    """Spin until the node subscribes to `publisher`'s topic (or `timeout` s pass)."""
    deadline = time.monotonic() + timeout
    while not publisher.get_subscription_count() and time.monotonic() < deadline:
        rclpy.spin_once(probe, timeout_sec=0.05)


def test_the_camera_odometry_gives_a_static_object_its_time_to_contact_at_once(
        models, ros, tmp_path, namespace):
    """The camera drives at 1 m/s at a still chair 5 m away: closing known from frame 1."""
    params = chair_params(models, tmp_path, max_depth=0.5, use_odometry=True)
    camera = pinhole()
    depths = [5.0 - FRAME_S * k for k in range(4)]
    diagnostics = []
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        publisher = probe.create_publisher(Odometry, 'odometry', RELIABLE)
        subscribed(probe, publisher)
        # The history is by stamp: every frame's twist can come first. The last two are
        # another frame's (a base's odometry): the third frame takes the usable one 0.1 s
        # before it, the last has none (tracked without it; diagnostics say so while no
        # later frame has the camera's motion).
        for k in range(len(depths)):
            publisher.publish(odometry(stamp_of(k), (0.0, 0.0, 1.0),
                                       'base_link' if k >= 2 else 'cam_optical'))
        assert diagnostic_value(probe, diagnostics, 'odometry_received', '4') == '4'
        frames = play(probe, depths, camera)
        assert diagnostic_value(probe, diagnostics, 'frames_without_odometry', '1') == '1'
        time.sleep(0.5)
        rclpy.spin_once(probe, timeout_sec=0.1)
        status_name = f'{namespace.lstrip("/")}/depthdet_node: pipeline'
        messages = [st.message for msg in diagnostics for st in msg.status
                    if st.name == status_name]
        assert any("gives the motion of 'base_link', not of the camera's optical frame "
                   "'cam_optical'" in m for m in messages), messages[-3:]
        assert node.proc.poll() is None, node.output()
    # The box centre (200, 275) is 120 px left of and 35 px below the principal point:
    # the chair's ray, and the share of the camera's 1 m/s along it, are fixed.
    ray = math.hypot(120 / 500, 35 / 500, 1.0)
    result = results_by_id(frames[0]['detections_3d'].detections[0])
    ttc, closing, distance = (getattr(result['time_to_contact'].pose.pose.position, a)
                              for a in 'xyz')
    raw_z = float(depth_for_red(red_for_depth(depths[0])))
    assert distance == pytest.approx(raw_z * ray, rel=1e-6)
    assert closing == pytest.approx(1.0 / ray, rel=1e-6)
    assert ttc == pytest.approx(raw_z * ray * ray, rel=1e-6)
    # Published velocities stay relative to the camera: the still chair comes at it.
    velocity = result['velocity'].pose.pose.position
    assert (velocity.x, velocity.y, velocity.z) == pytest.approx((0.0, 0.0, -1.0), abs=1e-9)
    # Next frame: the filter blends the prediction (0.1 m nearer) with the new depth.
    result = results_by_id(frames[1]['detections_3d'].detections[0])
    ttc, closing, distance = (getattr(result['time_to_contact'].pose.pose.position, a)
                              for a in 'xyz')
    assert closing == pytest.approx(1.0 / ray, rel=0.02)
    assert ttc == pytest.approx(distance / closing, rel=1e-9)
    assert ttc == pytest.approx(float(depth_for_red(red_for_depth(depths[1]))) * ray * ray,
                                rel=0.03)


def mounting(parent, child, translation, rotation_xyzw):
    transform = TransformStamped(child_frame_id=child)
    transform.header.frame_id = parent
    t, q = transform.transform.translation, transform.transform.rotation
    t.x, t.y, t.z = translation
    q.x, q.y, q.z, q.w = rotation_xyzw
    return transform


def latch_tf_static(probe, transforms):
    """Publish transforms on /tf_static as robot_state_publisher does (transient local)."""
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    publisher = probe.create_publisher(TFMessage, '/tf_static', latched)
    publisher.publish(TFMessage(transforms=transforms))
    return publisher


def test_a_robot_bases_odometry_reaches_the_camera_through_tf_static(
        models, ros, tmp_path, namespace):
    """A robot's odometry (base_link) and its camera mounting latched on /tf_static.

    The base drives ahead (+x) at 1 m/s; the camera's optical frame is mounted 0.2 m
    ahead and 0.5 m up, looking ahead (z = base x): it drives along its z at 1 m/s, and
    a still chair has its time to contact from the first frame, as with the camera's
    own odometry.
    """
    params = chair_params(models, tmp_path, max_depth=0.5, use_odometry=True)
    diagnostics = []
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        # As robot_state_publisher latches it: two links, the optical rotation second.
        # Two that are no transform, both left out (outsider round 41: only the first
        # was said, and a loop was used).
        latch_tf_static(probe, [
            mounting('base_link', 'camera_link', (0.2, 0.0, 0.5), (0.0, 0.0, 0.0, 1.0)),
            mounting('camera_link', 'cam_optical', (0.0, 0.0, 0.0), (-0.5, 0.5, -0.5, 0.5)),
            mounting('base_link', 'lidar', (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
            mounting('cam_optical', 'base_link', (1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 1.0))])
        publisher = probe.create_publisher(Odometry, 'odometry', RELIABLE)
        subscribed(probe, publisher)
        assert diagnostic_value(probe, diagnostics, 'static_transforms', '2') == '2'
        assert diagnostic_value(probe, diagnostics, 'static_transforms_refused', '2') == '2'
        depths = [5.0, 4.9]
        for k in range(len(depths)):
            publisher.publish(odometry(stamp_of(k), (1.0, 0.0, 0.0), 'base_link'))
        assert diagnostic_value(probe, diagnostics, 'odometry_received', '2') == '2'
        frames = play(probe, depths, pinhole())
        assert diagnostic_value(probe, diagnostics, 'frames_without_odometry', '0') == '0'
        assert node.proc.poll() is None, node.output()
        warning, = [line for line in node.output().splitlines() if 'left out' in line]
    assert "2 transform(s) left out: /tf_static: transform 'base_link' -> 'lidar' has a " \
        "rotation quaternion of squared length 0" in warning
    assert "transform 'cam_optical' -> 'base_link' would close a loop" in warning
    ray = math.hypot(120 / 500, 35 / 500, 1.0)
    result = results_by_id(frames[0]['detections_3d'].detections[0])
    ttc, closing, distance = (getattr(result['time_to_contact'].pose.pose.position, a)
                              for a in 'xyz')
    raw_z = float(depth_for_red(red_for_depth(depths[0])))
    assert closing == pytest.approx(1.0 / ray, rel=1e-6)
    assert ttc == pytest.approx(raw_z * ray * ray, rel=1e-6)


def test_a_camera_on_a_moving_arm_takes_its_motion_from_tf(models, ros, tmp_path, namespace):
    """A wrist camera: no odometry, its pose in a fixed arm's base_link on /tf (odom_frame).

    The wrist moves ahead (+x of base_link) at 1 m/s, its transform on /tf at 50 Hz; the
    optical frame is fixed on it looking ahead (/tf_static): the camera drives along its
    z at 1 m/s, and a still chair has its time to contact from the first frame, as with
    the camera's own odometry.
    """
    params = chair_params(models, tmp_path, max_depth=0.5, use_odometry=True,
                          odom_frame='base_link')
    diagnostics = []
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        latch_tf_static(probe, [
            mounting('wrist', 'cam_optical', (0.0, 0.0, 0.05), (-0.5, 0.5, -0.5, 0.5))])
        # tf2's TransformBroadcaster keeps 100: the burst below is 17 (one was lost at 10).
        tf = probe.create_publisher(TFMessage, '/tf', 100)
        subscribed(probe, tf)
        # Its poses from 0.2 s before the first frame to the second; one not a transform.
        first_ns = stamp_of(0)[0] * 10**9 + stamp_of(0)[1]
        for k in range(-10, 7):
            stamp_ns = first_ns + k * 20_000_000
            wrist = mounting('base_link', 'wrist', (0.3 + k * 0.02, 0.1, 0.4),
                             (0.0, 0.0, 0.0, 1.0))
            wrist.header.stamp.sec, wrist.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            # Twice a transform that is none, for one frame: both counted (since start).
            tf.publish(TFMessage(transforms=[wrist] if k not in (3, 4) else [
                wrist, mounting('base_link', 'gripper', (0.0, 0.0, 0.0), (0, 0, 0, 0))]))
        assert diagnostic_value(probe, diagnostics, 'tf_received', '17') == '17'
        assert diagnostic_value(probe, diagnostics, 'tf_transforms_refused', '2') == '2'
        assert diagnostic_value(probe, diagnostics, 'odometry_received',
                                'not read (odom_frame set)') == 'not read (odom_frame set)'
        frames = play(probe, [5.0, 4.9], pinhole())
        assert diagnostic_value(probe, diagnostics, 'frames_without_odometry', '0') == '0'
        assert node.proc.poll() is None, node.output()
        log = node.output()
    assert "/tf: transform 'base_link' -> 'gripper' has a rotation quaternion" in log
    assert "the camera's motion for the tracker from its pose in 'base_link'" in log
    ray = math.hypot(120 / 500, 35 / 500, 1.0)
    result = results_by_id(frames[0]['detections_3d'].detections[0])
    ttc, closing, distance = (getattr(result['time_to_contact'].pose.pose.position, a)
                              for a in 'xyz')
    raw_z = float(depth_for_red(red_for_depth(5.0)))
    assert closing == pytest.approx(1.0 / ray, rel=1e-6)
    assert ttc == pytest.approx(raw_z * ray * ray, rel=1e-6)
    velocity = result['velocity'].pose.pose.position
    assert (velocity.x, velocity.y, velocity.z) == pytest.approx((0.0, 0.0, -1.0), abs=1e-6)


def test_a_frame_waits_briefly_for_odometry_published_after_it(
        models, ros, tmp_path, namespace):
    """Odometry of a frame's stamp sent just after its image is still the one used."""
    params = chair_params(models, tmp_path, max_depth=0.5, use_odometry=True)
    camera = pinhole()
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        publisher = probe.create_publisher(Odometry, 'odometry', RELIABLE)
        subscribed(probe, publisher)
        # Frame 0 at 1 m/s, sent ahead; frame 1's twist (2 m/s) only 20 ms after its
        # image: without the wait the frame would take frame 0's, 0.1 s away.
        publisher.publish(odometry(stamp_of(0), (0.0, 0.0, 1.0)))
        time.sleep(0.3)
        frames = []
        for k, depth, speed in ((0, 5.0, 1.0), (1, 4.85, 2.0)):
            rgb = np.zeros((480, 640, 3), np.uint8)
            rgb[..., 0] = red_for_depth(depth)
            start = len(probe.received['detections_3d'])
            probe.send(rgb, camera, stamp=stamp_of(k))
            if k:
                time.sleep(0.02)
                publisher.publish(odometry(stamp_of(k), (0.0, 0.0, speed)))
            frames.append(probe.wait_for('detections_3d',
                                         lambda m, k=k: same_stamp(m, stamp_of(k)),
                                         timeout=30.0, start=start))
        assert node.proc.poll() is None, node.output()
    ray = math.hypot(120 / 500, 35 / 500, 1.0)
    closing = results_by_id(frames[1].detections[0])['time_to_contact'].pose.pose.position.y
    assert closing == pytest.approx(2.0 / ray, rel=0.1)


def test_without_odometry_a_static_object_has_no_time_to_contact_at_first(
        models, ros, tmp_path, namespace):
    params = chair_params(models, tmp_path, max_depth=0.5)
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        frames = play(probe, [5.0, 4.9], pinhole())
    result = results_by_id(frames[0]['detections_3d'].detections[0])
    assert result['time_to_contact'].pose.pose.position.x == math.inf


def test_depth_measured_otherwise_starts_tracking_over(models, ros, tmp_path, namespace):
    """A camera zooming out (focal 500 -> 400 px) scales every depth by 0.8 in one frame.

    Taken for motion, the static chair closed in at 4 m/s and alerted by time to contact;
    as after a change of depth_strategy (outsider round 53: 0.64 m/s for a second).
    Tracking starts over instead: a new ID, no velocity from the step, no alert.
    """
    params = node_params(tmp_path, detector_model=models['detector'],
                         depth_model=models['focal_depth'], providers='cpu',
                         publish_depth=False, max_depth=0.5)
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        before = play(probe, [2.0] * 6, pinhole(f=500.0))
        after = play(probe, [2.0] * 6, pinhole(f=400.0), first=6)
        assert node.proc.poll() is None, node.output()
        log = node.output()
    chairs = [f['detections_3d'].detections[0] for f in before + after]
    depths = [c.results[0].pose.pose.position.z for c in chairs]
    assert depths[-1] == pytest.approx(0.8 * depths[5], rel=0.02)
    assert len({c.id for c in chairs[:6]}) == 1 and not {c.id for c in chairs[6:]} & {
        chairs[0].id}
    assert all(not f['proximity_alert'].detections for f in after), [
        [r.hypothesis.class_id for d in f['proximity_alert'].detections for r in d.results]
        for f in after]
    assert 'depth is measured otherwise from this frame on (focal scale 1.000 -> 0.800)' in log


def test_an_object_hovering_at_max_depth_alerts_once_and_its_depth_is_smoothed(
        models, ros, tmp_path, namespace):
    """Depth alternating 1.9 / 2.1 m around max_depth 2 m: the per-frame rule would flicker."""
    params = chair_params(models, tmp_path, max_depth=2.0, alert_hysteresis=0.3,
                          alert_time_to_contact=0.0)
    camera = pinhole()
    depths = [2.0 + (0.12 if k % 2 else -0.1) for k in range(14)]
    raw = [float(depth_for_red(red_for_depth(d))) for d in depths]
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        frames = play(probe, depths, camera)
        # Run-time settings: validated, and tracking off gives today's per-frame output.
        refused = [set_param(probe, name, value) for name, value in (
            ('alert_hysteresis', -1.0), ('ttc_source', 'sideways'), ('track_min_hits', 0),
            ('class_filter', ['Chair']), ('class_max_depth', ['chair:inf']),
            ('class_max_depth', ['chair:1', 'chair:2']))]
        assert not any(r.successful for r in refused), refused
        assert set_param(probe, 'tracking', False).successful
        (untracked,) = play(probe, [2.1, 1.9], camera, first=len(depths))[1:]
        # Back on: a new track, under an ID never given before.
        assert set_param(probe, 'tracking', True).successful
        (retracked,) = play(probe, [2.0], camera, first=len(depths) + 2)
        assert node.proc.poll() is None, node.output()
    assert 'ttc_source' in refused[1].reason and 'track_min_hits' in refused[2].reason
    # A misspelt class would filter out everything, silently: refused with the model's.
    assert "class_filter names 'Chair'" in refused[3].reason and 'chair' in refused[3].reason
    assert '1000.0' in refused[4].reason and "'chair' twice" in refused[5].reason
    track_id = int(frames[-1]['detections'].detections[0].id)
    assert int(retracked['detections'].detections[0].id) > track_id
    (detection,) = untracked['detections_3d'].detections
    assert detection.id == '' and len(detection.results) == 1
    (detection,) = untracked['detections'].detections
    assert [r.hypothesis.class_id for r in detection.results] == ['chair']
    assert detection.results[0].pose.pose.position.z == pytest.approx(raw[0], abs=1e-4)
    (alert,) = untracked['proximity_alert'].detections
    assert [r.hypothesis.class_id for r in alert.results] == ['chair', 'alert/proximity']
    per_frame_rule = [d < 2.0 for d in raw]
    assert sum(a != b for a, b in zip(per_frame_rule, per_frame_rule[1:])) == len(raw) - 1
    alerted = [bool(f['proximity_alert'].detections) for f in frames]
    assert all(alerted), alerted
    # The track is tentative until track_min_hits (3) frames: said on every topic.
    for index, f in enumerate(frames):
        (alert,) = f['proximity_alert'].detections
        (detection,) = f['detections'].detections
        kinds = [r.hypothesis.class_id for r in alert.results]
        if index < 2:
            assert kinds[-2:] == ['alert/proximity', 'track/tentative']
            assert [r.hypothesis.class_id for r in detection.results] == [
                'chair', 'time_to_contact', 'track/tentative']
        else:
            assert kinds[-1] == 'alert/proximity'
            assert [r.hypothesis.class_id for r in detection.results] == [
                'chair', 'time_to_contact']
            # The same time to contact as on detections_3d (seconds, closing speed, distance).
            (located,) = f['detections_3d'].detections
            ttc_2d, ttc_3d = (next(r.pose.pose.position for r in d.results
                                   if r.hypothesis.class_id == 'time_to_contact')
                              for d in (detection, located))
            np.testing.assert_array_equal([ttc_2d.x, ttc_2d.y, ttc_2d.z],
                                          [ttc_3d.x, ttc_3d.y, ttc_3d.z])
    # From detections: the first frame may beat its CameraInfo (z known, no 3D detection).
    published = [f['detections'].detections[0].results[0].pose.pose.position.z
                 for f in frames]
    assert np.std(np.diff(published[4:])) < 0.5 * np.std(np.diff(raw[4:]))


def test_a_missed_detection_does_not_take_an_alert_off_the_safety_topic(
        models, ros, tmp_path, namespace):
    """The detector misses the near chair for a frame: its alert is held, marked coasting."""
    params = chair_params(models, tmp_path, max_depth=3.0, alert_time_to_contact=0.0)
    camera = pinhole()
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        seen = play(probe, [2.0] * 4, camera)
        # The chair scores 0.9 x 0.95: above 0.9 nothing is detected (a missed frame).
        assert set_param(probe, 'score_threshold', 0.9).successful
        (missed,) = play(probe, [2.0], camera, first=4)
        markers = probe.wait_for('markers', lambda m: same_stamp(m.markers[0], stamp_of(4)))
        assert set_param(probe, 'score_threshold', 0.25).successful
        (again,) = play(probe, [2.0], camera, first=5)
        assert node.proc.poll() is None, node.output()
    track_id = seen[-1]['proximity_alert'].detections[0].id
    assert missed['detections'].detections == [] and missed['detections_3d'].detections == []
    (held,) = missed['proximity_alert'].detections
    kinds = [r.hypothesis.class_id for r in held.results]
    assert held.id == track_id and kinds[0] == 'chair'
    assert kinds[-2:] == ['alert/proximity', 'track/coasting']
    assert held.bbox.center.position.z == pytest.approx(
        seen[-1]['proximity_alert'].detections[0].bbox.center.position.z, abs=0.05)
    (alert,) = again['proximity_alert'].detections
    assert alert.id == track_id
    assert 'track/coasting' not in [r.hypothesis.class_id for r in alert.results]
    # RViz shows what the safety topic carries: the held alert is drawn, labelled so.
    (label,) = [m for m in markers.markers if m.ns == 'labels']
    assert str(label.id) == track_id and label.text.endswith(f'#{track_id} (held)')


def test_an_object_back_after_its_track_ended_takes_its_id_again(
        models, ros, tmp_path, namespace):
    """Missed for longer than track_max_age, the chair is recognised by its colours."""
    params = chair_params(models, tmp_path, max_depth=1.0, track_max_age=0.25)
    camera = pinhole()

    def gone_and_back(probe, first):
        # Above 0.9 x 0.95 nothing is detected: 4 frames (0.4 s) without the chair.
        assert set_param(probe, 'score_threshold', 0.9).successful
        missed = play(probe, [2.0] * 4, camera, first=first)
        assert set_param(probe, 'score_threshold', 0.25).successful
        back = play(probe, [2.0] * 3, camera, first=first + 4)
        assert all(not f['detections'].detections for f in missed)
        return [f['detections'].detections[0] for f in back]

    diagnostics = []
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        before = play(probe, [2.0] * 4, camera)
        again = gone_and_back(probe, 4)
        # Off at run time: the next return is a new object.
        assert set_param(probe, 'track_reid_max_age', 0.0).successful
        anew = gone_and_back(probe, 11)
        # /diagnostics counts the IDs given back: one.
        assert diagnostic_value(probe, diagnostics, 'track_ids_taken_back', '1') == '1'
        assert node.proc.poll() is None, node.output()
    track_id = before[-1]['detections'].detections[0].id
    assert [d.id for d in again] == [track_id] * 3
    # A track again from its first frame: tentative until track_min_hits (3) matches.
    tentative = ['track/tentative' in results_by_id(d) for d in again]
    assert tentative == [True, True, False]
    assert {d.id for d in anew} == {str(int(track_id) + 1)}


def test_a_chair_detected_twice_is_one_track_unless_duplicates_are_kept(
        models, ros, tmp_path, namespace):
    """The detector's second box of the chair, inside the first at its depth, is dropped.

    Whole chair (100,150)-(300,400), score 0.9 x 0.95; its seat (130,260)-(270,380),
    0.8 x 0.9, lies wholly inside it (IoU 0.34: NMS at 0.45 keeps both). Uniform red: one
    depth for both.
    """
    whole = (200, 355, 200, 250, 0.9, 0.95, 0.1)
    seat = (200, 400, 140, 120, 0.8, 0.9, 0.1)
    params = node_params(tmp_path, detector_model=constant_detector(
        tmp_path / 'twice.onnx', [whole, seat]), depth_model=models['depth'],
        providers='cpu', publish_depth=False, max_depth=1.0)
    camera = pinhole()
    diagnostics = []
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        once = play(probe, [2.0] * 3, camera)
        assert diagnostic_value(probe, diagnostics, 'track_duplicates_dropped', '3') == '3'
        assert set_param(probe, 'track_duplicate_overlap', 0.0).successful
        twice = play(probe, [2.0] * 2, camera, first=3)
        assert node.proc.poll() is None, node.output()
    boxes = [f['detections'].detections for f in once]
    assert [len(b) for b in boxes] == [1, 1, 1]
    # The whole chair's box is the one kept (centre 200, 275; 200 x 250).
    box = boxes[-1][0].bbox
    assert (box.center.position.x, box.center.position.y) == pytest.approx((200, 275), abs=1)
    assert (box.size_x, box.size_y) == pytest.approx((200, 250), abs=1)
    assert len({b[0].id for b in boxes}) == 1
    # Kept at run time: the seat is a second object with a track of its own.
    assert [len(f['detections'].detections) for f in twice] == [2, 2]
    assert len({d.id for d in twice[-1]['detections'].detections}) == 2


def test_confirmed_tracks_only_still_alerts_on_the_first_frame(models, ros, tmp_path, namespace):
    """publish_tentative false: detections wait for track_min_hits, the alert does not."""
    params = chair_params(models, tmp_path, max_depth=3.0, publish_tentative=False,
                          track_min_hits=3)
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        frames = play(probe, [2.0, 2.0, 2.0, 2.0], pinhole())
        assert node.proc.poll() is None, node.output()
    assert [len(f['detections'].detections) for f in frames] == [0, 0, 1, 1]
    assert [len(f['detections_3d'].detections) for f in frames] == [0, 0, 1, 1]
    ids = {f['proximity_alert'].detections[0].id for f in frames}
    assert ids == {frames[2]['detections'].detections[0].id}


def test_a_frame_without_usable_camera_info_publishes_no_3d_with_tracking(
        models, ros, tmp_path, namespace):
    """The track knows x, y; a frame whose CameraInfo is refused still publishes none."""
    params = chair_params(models, tmp_path, max_depth=0.5)
    with node_and_probe(params, tmp_path, namespace) as (node, probe):
        frames = play(probe, [2.0, 2.0, 2.0], pinhole())
        frames += play(probe, [2.0], pinhole(f=0.0), first=3)  # refused: zero focal
        assert node.proc.poll() is None, node.output()
    assert [len(f['detections_3d'].detections) for f in frames] == [1, 1, 1, 0]
    ids = {f['detections'].detections[0].id for f in frames}
    assert len(ids) == 1
    last = frames[-1]['detections'].detections[0].results[0].pose.pose.position
    assert math.isnan(last.x) and math.isnan(last.y)
    assert last.z == pytest.approx(float(depth_for_red(red_for_depth(2.0))), abs=0.05)


def test_joint_model_publishes_instance_masks_labelled_by_track_id(ros, tmp_path, namespace):
    """A joint model: detections as usual plus a 16UC1 instance image aligned to the input."""
    model = joint_fixtures.joint_model(
        tmp_path / 'joint.onnx', [joint_fixtures.ROW_A_WEAK, joint_fixtures.ROW_A,
                                  joint_fixtures.ROW_B], joint_fixtures.prototypes())
    # detector_model and depth_coverage crop do not apply to a joint model: said once.
    params = node_params(tmp_path, joint_model=model, providers='cpu',
                         depth_strategy='mask', max_depth=3.0, detector_model=model,
                         depth_coverage='crop')
    topics = dict(TOPICS, instance_masks=Image)
    topics['/diagnostics'] = DiagnosticArray
    camera = pinhole(joint_fixtures.IMAGE_W, joint_fixtures.IMAGE_H, 50.0)
    rgb = joint_fixtures.two_tone_image()
    with node_and_probe(params, tmp_path, namespace, topics=topics) as (node, probe):
        masks = probe.wait_for('instance_masks', resend=lambda: probe.send(rgb, camera))
        stamp = (masks.header.stamp.sec, masks.header.stamp.nanosec)
        detections = probe.wait_for('detections', lambda m: same_stamp(m, stamp))
        # The network's time is reported as the joint stage (it read 0 ms as the
        # detector and depth stages, which a joint model does not have).
        diagnostics = probe.wait_for('/diagnostics', lambda m: any(
            v.key == 'latency_joint_p50_ms' for s in m.status for v in s.values),
            timeout=10)
        log = node.output()
        assert node.proc.poll() is None, log
    assert 'joint model' in log
    assert 'joint_model is set: detector_model not used' in log
    assert 'depth_coverage crop does not apply to a joint model' in log
    latency = {v.key: float(v.value) for s in diagnostics.status for v in s.values
               if v.key.startswith('latency_')}
    assert latency['latency_joint_p50_ms'] > 0
    assert not any(key.startswith(('latency_detector', 'latency_depth')) for key in latency)
    assert (masks.encoding, masks.height, masks.width) == ('16UC1', joint_fixtures.IMAGE_H,
                                                           joint_fixtures.IMAGE_W)
    assert masks.header.frame_id == 'cam_optical'
    labels = np.frombuffer(bytes(masks.data), '<u2').reshape(masks.height, masks.width)
    chair = next(d for d in detections.detections
                 if d.results[0].hypothesis.class_id == 'chair')
    # The chair's mask (276 pixels, test_core_joint) carries its track ID; the cup has none.
    assert np.count_nonzero(labels) == 276
    assert set(np.unique(labels)) == {0, int(chair.id)}
    assert labels[20, 30] == int(chair.id) and labels[12, 30] == 0


def test_a_model_that_is_not_joint_given_as_joint_model_stops_with_one_line(models, tmp_path):
    import subprocess
    import sys
    params = write_params(tmp_path / 'p.yaml', joint_model=models['depth'], providers='cpu')
    proc = subprocess.run([sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args',
                           '--params-file', params], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'not a joint model' in lines[0], proc.stderr
    assert 'Traceback' not in proc.stderr


def test_track_max_age_shorter_than_the_frame_interval_is_reported(
        models, ros, tmp_path, namespace):
    """Every track dies between frames then (no IDs kept, no velocity): diagnostics WARN.

    An outsider found 0.05 s at 10 Hz accepted in silence, every object a new ID per frame.
    """
    params = chair_params(models, tmp_path, track_max_age=0.05)
    topics = {**TOPICS, '/diagnostics': DiagnosticArray}
    with node_and_probe(params, tmp_path, namespace, topics=topics) as (node, probe):
        frames = play(probe, [2.0] * 4, pinhole())  # one frame at a time, > 0.05 s apart
        ids = [f['detections'].detections[0].id for f in frames]
        assert len(set(ids)) == 4, ids  # what the warning is about
        probe.wait_for('/diagnostics', lambda m: any(
            'track_max_age 0.05 s is shorter than the' in s.message and
            s.level == DiagnosticStatus.WARN for s in m.status), timeout=10,
            start=len(probe.received['/diagnostics']))
        assert set_param(probe, 'track_max_age', 5.0).successful
        probe.wait_for('/diagnostics', lambda m: all(
            'track_max_age' not in s.message for s in m.status), timeout=10,
            start=len(probe.received['/diagnostics']))
        assert node.proc.poll() is None, node.output()
