"""The output bag's messages are field for field what depthdet_node publishes.

Both are compared as CDR after a rosbags round trip of the node's bytes, which zeroes
the alignment padding rclpy leaves uninitialised.
"""
import dataclasses
import math

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from depthdet_ros.bags import make_typestore
from depthdet_ros.core.object_depth import estimate_objects
from depthdet_ros.core.tracking import Tracker, TrackerConfig
from depthdet_ros.core.types import Box, Detection2D
from depthdet_ros.eval import output_bag
from depthdet_ros.ros import convert
from depthdet_ros.ros import message_layout as layout
from depthdet_ros.sim.messages import rosbags_factory
from eval_bags import pinhole


@pytest.fixture(scope='module')
def objects():
    """Estimates with 3D positions, with depth only, and without depth."""
    depth = np.full((256, 320), 3.0, np.float32)
    depth[:, :100] = 0.8
    depth[200:, 250:] = np.nan
    detections = [Detection2D(Box(10, 20, 90, 120), 0.9, 0, 'chair'),
                  Detection2D(Box(150, 50, 230, 180), 0.7, 1, 'person'),
                  Detection2D(Box(260, 210, 300, 250), 0.5, 0, 'chair')]
    with_camera = estimate_objects(detections, depth, pinhole(), 'robust', 1.0)
    without_camera = estimate_objects(detections, depth, None, 'robust', 1.0)
    return with_camera, without_camera


def _cdr_pair(build_rosbags, build_rclpy):
    store = make_typestore()
    make = rosbags_factory(store)
    rb_header = make('std_msgs/msg/Header',
                     stamp=make('builtin_interfaces/msg/Time', sec=12, nanosec=345),
                     frame_id='cam')
    rc_header = Header(frame_id='cam')
    rc_header.stamp.sec, rc_header.stamp.nanosec = 12, 345
    ours = build_rosbags(make, rb_header)
    nodes = store.deserialize_cdr(serialize_message(build_rclpy(rc_header)), ours.__msgtype__)
    return bytes(store.serialize_cdr(ours, ours.__msgtype__)), \
        bytes(store.serialize_cdr(nodes, ours.__msgtype__))


@pytest.mark.parametrize('camera', [True, False])
def test_detection_messages_equal_the_nodes(objects, camera):
    estimates = objects[0] if camera else objects[1]
    assert any(o.alert for o in estimates) and any(not o.depth.valid for o in estimates)
    outputs = [layout.from_estimate(o) for o in estimates]  # the output bag's, untracked
    cases = [
        (lambda m, h: layout.frame_messages(m, h, outputs)[0],
         lambda h: convert.detections_2d_msg(estimates, h)),
        (lambda m, h: layout.frame_messages(m, h, outputs)[1],
         lambda h: convert.detections_3d_msg(estimates, h)),
        (lambda m, h: layout.frame_messages(m, h, outputs)[2],
         lambda h: convert.detections_3d_msg([o for o in estimates if o.alert], h, True,
                                             alerts=True)),
    ]
    for ours, nodes in cases:
        a, b = _cdr_pair(ours, nodes)
        assert a == b


def test_tracked_messages_and_markers_are_the_same_with_rosbags_and_rclpy_types(objects):
    """One builder (message_layout) fills both type systems alike, tracked fields too."""
    tracker = Tracker(TrackerConfig(min_hits=1, alert_time_to_contact=5.0))
    for stamp in (0.0, 0.1, 0.2):
        tracked = tracker.update(objects[0], stamp, 1.0)
    outputs = [layout.from_tracked(t) for t in tracked]
    assert all(o.track_id is not None and o.velocity is not None for o in outputs[:2])
    assert outputs[0].alert_rules == ('proximity',)
    cases = [(lambda m, h, i=i: layout.frame_messages(m, h, outputs)[i],
              lambda h, i=i: convert.frame_messages(outputs, h)[i]) for i in range(3)]
    cases.append((lambda m, h: layout.markers(m, h, outputs),
                  lambda h: convert.markers_msg(outputs, h)))
    for ours, nodes in cases:
        a, b = _cdr_pair(ours, nodes)
        assert a == b
    alert = layout.frame_messages(rosbags_factory(make_typestore()), None, outputs)[2]
    chair = alert.detections[0]
    assert chair.id == str(outputs[0].track_id)
    assert [r.hypothesis.class_id for r in chair.results] == [
        'chair', 'velocity', 'time_to_contact', 'alert/proximity']


def test_the_published_size_is_taken_at_the_published_depth():
    """Width and height are box px x z / f: with a smoothed z, at that z (as the centre)."""
    camera = pinhole()
    box = Box(100, 60, 180, 160)  # 80 x 100 px
    tracker = Tracker(TrackerConfig(min_hits=1))
    for stamp, z in ((0.0, 2.0), (0.1, 2.0), (0.2, 2.0), (0.3, 3.0)):  # a one-frame jump
        depth = np.full((256, 320), z, np.float32)
        estimate = estimate_objects([Detection2D(box, 0.9, 0, 'chair')], depth, camera,
                                    'robust', 1.0)
        tracked, = tracker.update(estimate, stamp, 1.0)
    smoothed, raw = layout.from_tracked(tracked), layout.from_tracked(tracked, raw=True)
    assert raw.position.z == pytest.approx(3.0) and 2.0 < smoothed.position.z < 3.0
    z = smoothed.position.z
    assert (smoothed.size.x, smoothed.size.y) == pytest.approx(
        (80 * z / camera.fx, 100 * z / camera.fy))
    assert (raw.size.x, raw.size.y) == pytest.approx((80 * 3.0 / camera.fx,
                                                      100 * 3.0 / camera.fy))
    assert smoothed.size.z == raw.size.z  # the depth extent measured this frame


def test_a_held_alert_is_on_the_safety_topic_and_drawn_not_detected(objects):
    """A track in alert that this frame missed: on the safety topic, marked coasting."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    store = rosbags_factory(make_typestore())
    for stamp in (0.0, 0.1):
        tracker.update(objects[0], stamp, 1.0)
    tracked = tracker.update(objects[0][1:], 0.2, 1.0)  # the chair in alert is missed
    held = tracker.held_alerts()
    assert [h.raw.detection.class_name for h in held] == ['chair']
    outputs, shown = layout.tracked_outputs(tracked, held=held)
    detections, detections_3d, alerts = layout.frame_messages(store, None, outputs, shown)
    assert len(detections.detections) == len(tracked) == len(detections_3d.detections) + 1
    held_id = str(held[0].track_id)
    assert held_id not in {d.id for d in detections.detections}
    alert, = [d for d in alerts.detections if d.id == held_id]
    kinds = [r.hypothesis.class_id for r in alert.results]
    assert kinds[0] == 'chair' and kinds[-2:] == ['alert/proximity', 'track/coasting']
    assert alert.bbox.center.position.z == pytest.approx(held[0].position.z)
    # Markers and debug_image draw it as well, labelled as held, at its predicted box.
    drawn = layout.drawn(outputs, shown)
    assert drawn[-1].detection.box == held[0].box
    predicted = Box(20.0, 20.0, 100.0, 120.0)  # as if it had moved 10 px
    moved = layout.from_tracked(dataclasses.replace(held[0], box=predicted))
    assert moved.detection.box == predicted and moved.detection.class_name == 'chair'
    assert [o.track_id for o in drawn] == [o.track_id for o in outputs[:len(tracked)]] + \
        [held[0].track_id]
    assert layout.label_text(drawn[-1]).endswith(f'#{held_id} (held)')
    labels = [m for m in layout.markers(store, None, drawn).markers if m.ns == 'labels']
    assert labels[-1].id == held[0].track_id and labels[-1].text.endswith('(held)')


def test_a_tentative_held_alert_is_drawn_only_with_publish_tentative(objects):
    """publish_tentative false: markers show a tentative track neither seen nor held."""
    tracker = Tracker(TrackerConfig(min_hits=3))
    tracker.update(objects[0], 0.0, 1.0)
    tracked = tracker.update(objects[0][1:], 0.1, 1.0)  # the tentative chair in alert, missed
    held = tracker.held_alerts()
    assert [h.confirmed for h in held] == [False]
    outputs, shown = layout.tracked_outputs(tracked, tentative=False, held=held)
    assert layout.drawn(outputs, shown, tentative=False) == []
    assert [o.track_id for o in layout.drawn(outputs, shown)] == [held[0].track_id]


def test_every_alert_reaches_the_safety_topic_even_without_a_depth():
    """A time-to-contact alert from box expansion needs no depth: it was dropped."""
    from depthdet_ros.core.tracking import TIME_TO_CONTACT
    store = rosbags_factory(make_typestore())
    unranged = layout.OutputObject(
        detection=Detection2D(Box(10, 20, 90, 120), 0.9, 0, 'person'), depth=math.nan,
        depth_variance=math.nan, position=None, covariance=None, size=None, track_id=4,
        time_to_contact=0.8, alert_rules=(TIME_TO_CONTACT,))
    detections, detections_3d, alerts = layout.frame_messages(store, None, [unranged])
    assert len(detections.detections) == 1 and detections_3d.detections == []
    # Its time to contact is on detections too, the one topic it is on without an alert.
    kind, contact = detections.detections[0].results[1].hypothesis.class_id, \
        detections.detections[0].results[1].pose.pose.position
    assert kind == 'time_to_contact' and contact.x == 0.8
    assert math.isnan(contact.y) and math.isnan(contact.z)
    alert, = alerts.detections
    assert alert.id == '4' and [r.hypothesis.class_id for r in alert.results][-1] == \
        'alert/time_to_contact'
    position = alert.bbox.center.position
    assert all(math.isnan(v) for v in (position.x, position.y, position.z))
    assert (alert.bbox.size.x, alert.bbox.size.y, alert.bbox.size.z) == (0.0, 0.0, 0.0)


def test_a_tentative_track_says_so_on_every_message(objects):
    """Before min_hits a track carries a last hypothesis 'track/tentative' (score 0)."""
    tracker = Tracker(TrackerConfig(min_hits=2))
    store = rosbags_factory(make_typestore())
    for stamp, tentative in ((0.0, True), (0.1, False)):
        outputs = [layout.from_tracked(t) for t in tracker.update(objects[0], stamp, 1.0)]
        messages = layout.frame_messages(store, None, outputs)
        assert all(message.detections for message in messages)  # an alert among them
        for message in messages:
            for detection in message.detections:
                kinds = [r.hypothesis.class_id for r in detection.results]
                assert kinds[0] != 'track/tentative'
                assert (kinds[-1] == 'track/tentative') == tentative, kinds
                assert all(r.hypothesis.score == 0.0 for r in detection.results[1:])


def test_output_topics_under_prefix():
    assert output_bag.output_topics('depthdet')['depth/camera_info'] == \
        '/depthdet/depth/camera_info'
    assert output_bag.output_topics('/eval/run1/')['detections'] == '/eval/run1/detections'

    assert output_bag.output_topics('')['markers'] == '/markers'
    for bad in ('bad name!', '1st', 'a//b'):
        with pytest.raises(ValueError, match='is not a ROS topic namespace'):
            output_bag.output_topics(bad)
