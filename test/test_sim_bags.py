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
        simbag.TOPIC_CAMERA_ODOMETRY: 'nav_msgs/msg/Odometry'}
    by_topic = {}
    for message in read_messages(path):
        # Header stamp and bag timestamp are the same instant.
        assert stamp_to_ns(message.message.header) == message.timestamp_ns
        # Odometry is in the world, of the camera's frame (its child).
        frame_id = message.message.child_frame_id \
            if message.topic == simbag.TOPIC_CAMERA_ODOMETRY else message.message.header.frame_id
        assert frame_id == 'camera_optical_frame'
        by_topic.setdefault(message.topic, []).append(message)
    expected_stamps = [simbag.frame_stamp_ns(i, RATE) for i in range(len(frames))]
    for messages in by_topic.values():
        assert [m.timestamp_ns for m in messages] == expected_stamps
    assert expected_stamps[1] - expected_stamps[0] == 50_000_000
    for i, frame in enumerate(frames):
        assert np.array_equal(image_to_array(by_topic[simbag.TOPIC_IMAGE][i].message), frame.rgb)
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
        assert len(detections) == len(detections_3d) == len(frame.objects)
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
