"""Synthetic bags (MCAP and sqlite3) read back through rosbags with the same content."""
import numpy as np
import pytest

from depthdet_ros.bags import BagWriter, bag_topics, header, image_to_array, make_typestore, \
    read_messages, stamp_to_ns, vision_msgs_dir
from depthdet_ros.sim import bag as simbag
from depthdet_ros.sim.world import SimWorld, generate_sequence

SIZE = (96, 72)
RATE = 20.0


@pytest.fixture(scope='module')
def frames():
    with SimWorld(*SIZE) as world:
        return list(generate_sequence(6, 3, 'tabletop', SIZE, rate_hz=RATE, world=world))


def test_typestore_knows_vision_msgs():
    store = make_typestore()
    assert (vision_msgs_dir() / 'Detection3DArray.msg').exists()
    for name in ('Detection2DArray', 'Detection3DArray', 'LabelInfo', 'BoundingBox3D'):
        assert f'vision_msgs/msg/{name}' in store.types


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_reads_back_with_the_written_content(tmp_path, frames, storage):
    path = tmp_path / f'synthetic_{storage}'
    assert simbag.write_bag(path, frames, storage, rate_hz=RATE) == len(frames)
    assert bag_topics(path) == {
        simbag.TOPIC_IMAGE: 'sensor_msgs/msg/Image',
        simbag.TOPIC_CAMERA_INFO: 'sensor_msgs/msg/CameraInfo',
        simbag.TOPIC_DEPTH: 'sensor_msgs/msg/Image',
        simbag.TOPIC_DETECTIONS: 'vision_msgs/msg/Detection2DArray',
        simbag.TOPIC_DETECTIONS_3D: 'vision_msgs/msg/Detection3DArray',
        simbag.TOPIC_INSTANCES: 'sensor_msgs/msg/Image',
        simbag.TOPIC_CAMERA_ODOMETRY: 'nav_msgs/msg/Odometry',
        simbag.TOPIC_TF: 'tf2_msgs/msg/TFMessage'}
    by_topic = {}
    for message in read_messages(path):
        msg = message.message
        if message.topic == simbag.TOPIC_TF:  # one transform: world -> the camera
            msg, = msg.transforms
        # Header stamp and bag timestamp are the same instant.
        assert stamp_to_ns(msg.header) == message.timestamp_ns
        # Odometry and the transform are in the world, of the camera's frame (its child).
        if message.topic in (simbag.TOPIC_CAMERA_ODOMETRY, simbag.TOPIC_TF):
            assert (msg.header.frame_id, msg.child_frame_id) == ('world', 'camera_optical_frame')
        else:
            assert msg.header.frame_id == 'camera_optical_frame'
        by_topic.setdefault(message.topic, []).append(message)
    expected_stamps = [simbag.frame_stamp_ns(i, RATE) for i in range(len(frames))]
    for messages in by_topic.values():
        assert [m.timestamp_ns for m in messages] == expected_stamps
    assert expected_stamps[1] - expected_stamps[0] == 50_000_000
    for i, frame in enumerate(frames):
        assert np.array_equal(image_to_array(by_topic[simbag.TOPIC_IMAGE][i].message), frame.rgb)
        pose = by_topic[simbag.TOPIC_CAMERA_ODOMETRY][i].message.pose.pose
        transform = by_topic[simbag.TOPIC_TF][i].message.transforms[0].transform
        assert (transform.translation.x, transform.translation.y, transform.translation.z) == \
            (pose.position.x, pose.position.y, pose.position.z) == \
            tuple(frame.camera_pose[:3, 3])
        assert transform.rotation == pose.orientation
        depth = by_topic[simbag.TOPIC_DEPTH][i].message
        assert depth.encoding == '32FC1'
        assert np.array_equal(image_to_array(depth), frame.depth, equal_nan=True)
        instances = image_to_array(by_topic[simbag.TOPIC_INSTANCES][i].message)
        assert instances.dtype == np.uint16 and np.array_equal(instances, frame.instance_mask)
        assert {str(v) for v in np.unique(instances) if v} <= \
            {str(o.instance_id) for o in frame.objects}
        info = by_topic[simbag.TOPIC_CAMERA_INFO][i].message
        assert np.allclose(info.k.reshape(3, 3), frame.camera.K)
        assert (info.width, info.height) == SIZE
        detections = by_topic[simbag.TOPIC_DETECTIONS][i].message.detections
        detections_3d = by_topic[simbag.TOPIC_DETECTIONS_3D][i].message.detections
        assert len(detections) == len(detections_3d) == len(frame.objects) > 0
        for obj, det, det3d in zip(frame.objects, detections, detections_3d):
            assert det.results[0].hypothesis.class_id == obj.class_name
            assert det.results[0].hypothesis.score == 1.0
            assert det.id == det3d.id == str(obj.instance_id)
            assert det.bbox.size_x == obj.box.width and det.bbox.size_y == obj.box.height
            assert det.bbox.center.position.x == obj.box.center[0]
            position = det.results[0].pose.pose.position
            assert (position.x, position.y, position.z) == \
                (obj.center.x, obj.center.y, obj.center.z)
            assert det3d.bbox.size.z == obj.size.z
            assert det3d.bbox.center.orientation.w == obj.orientation_xyzw[3]


def test_compressed_bag_holds_jpeg_images(tmp_path, frames):
    path = tmp_path / 'compressed'
    simbag.write_bag(path, frames[:1], 'mcap', compressed=True, rate_hz=RATE)
    (message,) = read_messages(path, [simbag.TOPIC_IMAGE_COMPRESSED])
    assert message.message.format == 'jpeg'
    decoded = image_to_array(message.message)
    assert decoded.shape == frames[0].rgb.shape
    assert np.mean(np.abs(decoded.astype(int) - frames[0].rgb)) < 8


def test_writer_refuses_to_mix_types_on_a_topic(tmp_path):
    store = make_typestore()
    msg_header = header(store, 5, 'f')
    with BagWriter(tmp_path / 'mixed', 'sqlite3', store) as bag:
        bag.write('/a', msg_header, 5)
        with pytest.raises(TypeError):
            bag.write('/a', store.types['std_msgs/msg/String'](data='x'), 6)


def test_the_camera_motion_from_the_bags_transforms_is_its_odometry(tmp_path, frames):
    """`depthdet eval --odom-frame world` reads the camera's motion off /tf: the same."""
    from depthdet_ros.core.odometry import CameraMotionUnavailable
    from depthdet_ros.eval.tracking import read_camera_odometry, read_camera_tf
    path = tmp_path / 'bag'
    simbag.write_bag(path, frames, rate_hz=RATE)
    store = make_typestore()
    from_tf = read_camera_tf(path, store, 'world')
    from_odometry = read_camera_odometry(path, store, simbag.TOPIC_CAMERA_ODOMETRY)
    frame_id = frames[0].camera.frame_id
    for i in range(len(frames)):
        stamp = simbag.frame_stamp_ns(i, RATE)
        if i < 2:  # its pose 0.1 s before is before the bag
            with pytest.raises(CameraMotionUnavailable, match='has none at or before'):
                from_tf.at(stamp, frame_id)
            continue
        # The mean over the last 0.1 s against the twist at the stamp (0.4 m/s).
        twist, mean = from_odometry.at(stamp, frame_id), from_tf.at(stamp, frame_id)
        assert np.linalg.norm(twist.linear) > 0.1
        assert mean.linear == pytest.approx(twist.linear, abs=0.01)
        assert mean.angular == pytest.approx(twist.angular, abs=0.01)
    with pytest.raises(CameraMotionUnavailable, match='the bag has no tf2_msgs/msg/TFMessage '
                                                      'topic /robot/tf'):
        read_camera_tf(path, store, 'world', '/robot/tf')
