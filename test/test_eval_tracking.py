"""Tracking scores (eval.tracking) on hand-made tracked streams with hand-computed figures."""
import dataclasses
import math

import numpy as np
import pytest

from depthdet_ros.core.tracking import PROXIMITY, TIME_TO_CONTACT, TrackedObject, Tracker, \
    TrackerConfig
from depthdet_ros.core.types import Box, Detection2D, ObjectDepth, ObjectEstimate, Point3D
from depthdet_ros.eval.ground_truth import DEPTH_FROM_BOX3D, GroundTruthObject
from depthdet_ros.eval.tracking import BagTracking, motion_topics, MotionTruth, \
    TrackingEvaluation

WALKER_BOX = (100, 100, 160, 260)
CHAIR_BOX = (300, 100, 360, 200)
STAMP0, PERIOD = 1_700_000_000_000_000_000, 100_000_000
# The walker: centre 4.0 m ahead closing at 1 m/s; its surface 0.15 m nearer.
WALKER_Z = [4.0 - 0.1 * k for k in range(6)]
# The chair, static: GT surface depth, raw estimates +-0.1 m about it, tracked +0.05/0.
CHAIR_GT = [1.05, 0.98, 0.97, 0.96, 1.08, 1.10]
CHAIR_RAW = [g + 0.1 * (-1) ** k for k, g in enumerate(CHAIR_GT)]  # 1.15 0.88 1.07 0.86 ...
CHAIR_TRACKED = [g + (0.05 if k % 2 == 0 else 0.0) for k, g in enumerate(CHAIR_GT)]
CHAIR_PROXIMITY = [False, True, True, True, False, False]  # hysteresis held it
WALKER_TTC = [1.1 * (z - 0.15) for z in WALKER_Z[:5]] + [math.inf]


def tracked(track_id, box, class_name, raw_depth, depth, ttc=math.inf, rules=()):
    raw = ObjectEstimate(Detection2D(Box(*box), 0.9, 0, class_name),
                         ObjectDepth(raw_depth, 0.05, 1.0), None, None, None, raw_depth < 1.0)
    return TrackedObject(track_id, True, 5, raw, Box(*box), depth, None, None, None, None,
                         depth, 0.0, ttc, rules)


def gt(instance, box, class_name, centre_z, depth):
    return GroundTruthObject(class_name, Box(*box), instance, Point3D(0.0, 0.0, centre_z), None,
                             depth, DEPTH_FROM_BOX3D, None)


@pytest.fixture(scope='module')
def summary():
    motion = {STAMP0 + k * PERIOD: {'7': MotionTruth(np.array([0.0, 0.0, -1.0]), 1.0),
                                    '8': MotionTruth(np.zeros(3), 0.0)} for k in range(6)}
    evaluation = TrackingEvaluation(max_depth=1.0, motion=motion)
    for k in range(6):
        surface = WALKER_Z[k] - 0.15
        gts = [gt('7', WALKER_BOX, 'person', WALKER_Z[k], surface),
               gt('8', CHAIR_BOX, 'chair', CHAIR_GT[k] + 0.2, CHAIR_GT[k])]
        # The walker's track changes ID after frame 2 (one ID switch).
        outputs = [tracked(2 if k < 3 else 3, WALKER_BOX, 'person', surface + 0.2,
                           surface + 0.1, WALKER_TTC[k]),
                   tracked(1, CHAIR_BOX, 'chair', CHAIR_RAW[k], CHAIR_TRACKED[k],
                           rules=(PROXIMITY,) if CHAIR_PROXIMITY[k] else ())]
        evaluation.add(k, STAMP0 + k * PERIOD, gts, outputs)
    return evaluation.summary()


def test_identity_scores(summary):
    identity = summary['identity']
    assert identity['id_switches'] == 1 and identity['gt_object_frames'] == 12
    # IDTP 3 (walker: best single ID) + 6 (chair) = 9; IDFN 3; IDFP 3: 18 / 24.
    assert identity['idf1'] == pytest.approx(0.75)
    assert identity['mota'] == pytest.approx(1 - 1 / 12)
    assert identity['id_switches_per_100_object_frames'] == pytest.approx(100 / 12)


def test_id_switches_are_listed_with_the_gap_before_them():
    evaluation = TrackingEvaluation(max_depth=1.0)
    for k in range(6):
        outputs = [] if k == 3 else [tracked(2 if k < 3 else 3, WALKER_BOX, 'person', 3.0, 3.0)]
        evaluation.add(10 + k, STAMP0 + k * PERIOD, [gt('7', WALKER_BOX, 'person', 3.2, 3.0)],
                       outputs)
    # Track 2 on frames 10-12, missed on 13, track 3 from 14: one switch, 2 frames on.
    assert evaluation.id_switches() == [(14, '7', 2, 3, 2)]
    assert evaluation.summary()['identity']['id_switches'] == 1


def test_depth_error_and_jitter_of_the_static_object(summary):
    depth = summary['depth']
    # |raw - GT|: chair 0.1 x 6, walker 0.2 x 6; tracked: chair 0.05 x 3, walker 0.1 x 6.
    assert depth['raw_mae_m'] == pytest.approx(1.8 / 12)
    assert depth['tracked_mae_m'] == pytest.approx(0.75 / 12)
    jitter = summary['jitter']
    # Only the chair is static: error steps raw +-0.2, tracked +-0.05 (5 steps).
    assert jitter['objects'] == 1 and jitter['static_only']
    assert jitter['raw_m'] == pytest.approx(0.2) and jitter['tracked_m'] == pytest.approx(0.05)
    assert jitter['ratio'] == pytest.approx(0.25)


def test_time_to_contact_error(summary):
    ttc = summary['time_to_contact']
    # GT: surface range / 1 m/s; estimates 10 % long, the last one none (counts 100 %).
    assert ttc['samples'] == 6 and ttc['objects'] == 1 and ttc['no_estimate'] == 1
    assert ttc['median_rel_error'] == pytest.approx(0.1)
    assert ttc['mean_rel_error'] == pytest.approx((5 * 0.1 + 1.0) / 6)


def test_alert_transitions_and_flicker(summary):
    alerts = summary['alerts']
    chair = alerts['per_object']['8']
    assert chair['raw'] == {'enters': 2, 'leaves': 2}
    assert chair['tracked'] == {'enters': 1, 'leaves': 1}
    assert chair['ground_truth'] == {'enters': 1, 'leaves': 1}
    assert alerts['objects_with_alerts'] == 1
    assert alerts['transitions'] == {'raw': 4, 'tracked': 2, 'time_to_contact': 0,
                                     'ground_truth': 2}
    assert alerts['flickering_objects'] == {'raw': 1, 'tracked': 0}


def test_the_alert_topic_over_the_same_stream(summary):
    # The chair's tracked alert is on the topic exactly while its GT is in alert.
    topic = summary['alert_topic']
    assert (topic['gt_alert_object_frames'], topic['on_topic'], topic['recall']) == (3, 3, 1.0)
    assert (topic['entries'], topic['entries_due'], topic['entries_on_no_gt_object']) == \
        (3, 3, 0)
    assert topic['per_object'] == {'8': {'topic': {'enters': 1, 'leaves': 1},
                                         'ground_truth': {'enters': 1, 'leaves': 1}}}
    assert topic['flickering_objects'] == 0


def test_the_alert_topic_counts_every_frame_and_the_held_alerts():
    """What proximity_alert gives, over the frames a detector missed too.

    The chair is nearer than 1 m in frames 1-4. Its alert is on the topic in frames 1
    and 2 (held through a missed detection), off in 3 (its track gone), on in 4 and 5,
    off in 6: 3 of 4 GT-alert frames, two enters and two leaves against one of each,
    so it flickers. Due by the GT: frames 1, 2, 4, and 5 (GT 1.05 m, within the
    hysteresis' 1.1 m). A person alert in frame 5 matches no GT object; the walker's
    time-to-contact alert in frame 6 is due (GT 3.9 m closing at 2 m/s: 1.95 s < 2 s).
    """
    chair_gt = [1.2, 0.9, 0.9, 0.9, 0.9, 1.05, 1.2]
    closing = {STAMP0 + 6 * PERIOD: {'7': MotionTruth(np.array([0.0, 0.0, -2.0]), 2.0)}}
    evaluation = TrackingEvaluation(max_depth=1.0, motion=closing, tracker=TrackerConfig(
        alert_hysteresis=0.1, alert_time_to_contact=1.5, ttc_hysteresis=0.5))
    near = tracked(1, CHAIR_BOX, 'chair', 0.9, 0.9, rules=(PROXIMITY,))
    clear = tracked(1, CHAIR_BOX, 'chair', 1.2, 1.2)
    stray = tracked(5, (500, 300, 560, 400), 'person', 0.5, 0.5, rules=(PROXIMITY,))
    walker = tracked(2, WALKER_BOX, 'person', 3.9, 3.9, ttc=1.9, rules=(TIME_TO_CONTACT,))
    frames = [([clear], []), ([near], []), ([], [near]), ([], []), ([near], []),
              ([near, stray], []), ([clear, walker], [])]
    for k, (outputs, held) in enumerate(frames):
        gts = [gt('8', CHAIR_BOX, 'chair', chair_gt[k] + 0.2, chair_gt[k]),
               gt('7', WALKER_BOX, 'person', 4.0, 3.9)]
        evaluation.add(k, STAMP0 + k * PERIOD, gts, outputs, held)
    topic = evaluation.summary()['alert_topic']
    assert (topic['gt_alert_object_frames'], topic['on_topic']) == (4, 3)
    assert topic['recall'] == pytest.approx(0.75)
    assert (topic['entries'], topic['entries_due'], topic['entries_duplicate'],
            topic['entries_on_no_gt_object']) == (6, 5, 0, 1)
    assert topic['per_object'] == {'7': {'topic': {'enters': 1, 'leaves': 0},
                                         'ground_truth': {'enters': 0, 'leaves': 0}},
                                   '8': {'topic': {'enters': 2, 'leaves': 2},
                                         'ground_truth': {'enters': 1, 'leaves': 1}}}
    assert topic['transitions'] == {'topic': 5, 'ground_truth': 2}
    assert (topic['objects_with_alerts'], topic['flickering_objects']) == (2, 1)


def test_the_alert_topic_counts_duplicates_and_the_time_to_contact_truth():
    """A held alert beside its object's new track is a duplicate, not a false alert.

    A GT object 1.3 s from contact (3.9 m at 3 m/s) alerts by the time-to-contact rule.
    """
    closing = {STAMP0: {'7': MotionTruth(np.array([0.0, 0.0, -3.0]), 3.0)}}
    evaluation = TrackingEvaluation(max_depth=1.0, motion=closing,
                                    tracker=TrackerConfig(alert_time_to_contact=2.0))
    new_track = tracked(3, CHAIR_BOX, 'chair', 0.8, 0.8, rules=(PROXIMITY,))
    held = dataclasses.replace(tracked(1, CHAIR_BOX, 'chair', 0.8, 0.8, rules=(PROXIMITY,)),
                               held=True)
    gts = [gt('8', CHAIR_BOX, 'chair', 1.0, 0.8), gt('7', WALKER_BOX, 'person', 4.0, 3.9)]
    evaluation.add(0, STAMP0, gts, [new_track], [held])
    topic = evaluation.summary()['alert_topic']
    assert (topic['gt_alert_object_frames'], topic['on_topic']) == (2, 1)
    assert (topic['entries'], topic['entries_due'], topic['entries_duplicate'],
            topic['entries_on_no_gt_object']) == (2, 1, 1, 0)
    assert topic['per_object']['7'] == {'topic': {'enters': 0, 'leaves': 0},
                                        'ground_truth': {'enters': 1, 'leaves': 0}}


def placed_chair(z):
    """Return the chair detected at depth z straight ahead, placed in 3D (alerts < 1 m)."""
    return ObjectEstimate(Detection2D(Box(*CHAIR_BOX), 0.9, 0, 'chair'),
                          ObjectDepth(z, 0.01, 1.0), Point3D(0.0, 0.0, z),
                          Point3D(0.4, 0.4, 0.2), np.diag([1e-6, 1e-6, 1e-4]), z < 1.0)


def test_the_bag_loop_puts_the_trackers_held_alerts_on_the_topic():
    """The bag loop (BagTracking) scores what the node publishes: held alerts too."""
    evaluation = TrackingEvaluation(max_depth=1.0)
    loop = BagTracking(Tracker(TrackerConfig()), evaluation, None, 1.0, {}, 0.5)
    chair = placed_chair(0.8)
    truth = [gt('8', CHAIR_BOX, 'chair', 1.0, 0.8)]
    held_per_frame = []
    image = np.zeros((480, 640, 3), np.uint8)
    for k, objects in enumerate([[chair], [chair], [chair], [], [chair]]):  # frame 3 missed
        _, held, _ = loop.step(k, STAMP0 + k * PERIOD, objects, truth, image)
        held_per_frame.append(len(held))
    assert held_per_frame == [0, 0, 0, 1, 0]
    topic = evaluation.summary()['alert_topic']
    assert (topic['gt_alert_object_frames'], topic['on_topic'], topic['flickering_objects']) \
        == (5, 5, 0)


def test_images_recorded_with_one_stamp_are_tracked_by_their_record_times():
    """A camera that left the stamp 0, recorded: the bag's record times keep time.

    On the stamps alone the tracker's clock stood still: the chair's track, lost after
    frame 2, lived on with its alert held on the topic to the end of the bag.
    """
    loop = BagTracking(Tracker(TrackerConfig(max_age=1.0, alert_hold=0.5)), None, None, 1.0,
                       {}, 0.5)
    chair = placed_chair(0.8)
    image = np.zeros((480, 640, 3), np.uint8)
    held, tracks = [], []
    for k in range(20):  # 10 Hz: the chair in frames 0-2, gone from 0.3 s
        _, alerts, _ = loop.step(k, 0, [chair] if k < 3 else [], None, image,
                                 recorded_ns=STAMP0 + k * PERIOD)
        held.append(len(alerts))
        tracks.append(len(loop.tracker))
    # Held 0.5 s after the last match (0.2 s): to 0.7 s; deleted after max_age, past 1.2 s.
    assert held == [0] * 3 + [1] * 5 + [0] * 12
    assert tracks == [1] * 13 + [0] * 7


def test_the_depth_jitter_steps_over_a_copy_left_out():
    """A copy of an image skipped by read_frames leaves a gap in the bag's ordinals.

    The jitter took only ordinals one apart as neighbours: each copy cost a step (outsider
    round 51: with every image recorded twice, no object had enough steps).
    """
    evaluation = TrackingEvaluation(max_depth=1.0)
    loop = BagTracking(Tracker(TrackerConfig()), evaluation, None, 1.0, {}, 0.5)
    image = np.zeros((480, 640, 3), np.uint8)
    truth = [gt('8', CHAIR_BOX, 'chair', 1.0, 0.8)]
    for k, ordinal in enumerate((0, 1, 2, 4, 5, 6, 7, 8)):  # ordinal 3: a copy, skipped
        z = 2.0 + 0.1 * (-1) ** k
        loop.step(ordinal, STAMP0 + k * PERIOD, [placed_chair(z)], truth, image)
    jitter = evaluation.summary()['jitter']
    assert jitter['per_object']['8']['steps'] == 7
    assert jitter['raw_m'] == pytest.approx(0.2)


def test_a_frame_without_ground_truth_is_a_step_the_jitter_does_not_bridge():
    # Frame 3 is tracked but has no GT message: frames 2 and 4 are two steps apart, not
    # neighbours (their change would count as one frame's).
    evaluation = TrackingEvaluation(max_depth=1.0)
    loop = BagTracking(Tracker(TrackerConfig()), evaluation, None, 1.0, {}, 0.5)
    image = np.zeros((480, 640, 3), np.uint8)
    truth = [gt('8', CHAIR_BOX, 'chair', 1.0, 0.8)]
    for k in range(8):
        z = 2.0 + 0.1 * (-1) ** k
        loop.step(k, STAMP0 + k * PERIOD, [placed_chair(z)], truth if k != 3 else None, image)
    assert evaluation.summary()['jitter']['per_object']['8']['steps'] == 5  # 0-1-2, 4-5-6-7


def test_the_bag_loop_starts_over_where_depth_is_measured_otherwise():
    """As the node: the first camera_info after frames of an assumed field of view."""
    loop = BagTracking(Tracker(TrackerConfig(min_hits=1)), None, None, 1.0, {}, 0.5)
    image = np.zeros((480, 640, 3), np.uint8)
    ids = []
    for k, (z, scale) in enumerate([(2.0, 1.0)] * 3 + [(1.6, 0.8)] * 2 + [(1.6, 0.8004)]):
        tracked, _, _ = loop.step(k, STAMP0 + k * PERIOD, [placed_chair(z)], None, image,
                                  depth_measured=('near_median', scale))
        ids.append(tracked[0].track_id)
    assert ids == [1, 1, 1, 2, 2, 2]  # a scale within 1e-3 is the same camera's
    from depthdet_ros.core.pipeline import depth_measured_otherwise
    assert depth_measured_otherwise(('near_median', 1.0), ('box_median', 1.0)) == \
        'depth_strategy near_median -> box_median'


def test_motion_topics_are_found_by_type_and_name():
    types = {'/ground_truth/object_motion': 'nav_msgs/msg/Odometry',
             '/ground_truth/object_motion_world': 'nav_msgs/msg/Odometry',
             '/odom': 'nav_msgs/msg/Odometry', '/camera/image': 'sensor_msgs/msg/Image'}
    assert motion_topics(types) == ('/ground_truth/object_motion',
                                    '/ground_truth/object_motion_world')
    assert motion_topics({'/odom': 'nav_msgs/msg/Odometry'}) == (None, None)


def test_time_to_contact_of_moving_objects_apart(summary):
    # The walker moves in the world, so its samples are all the moving ones.
    moving = summary['time_to_contact']['moving_objects']
    assert moving['samples'] == 6 and moving['median_rel_error'] == pytest.approx(0.1)


def test_ground_truth_depth_replaces_the_networks_along_the_ray():
    from depthdet_ros.eval.tracking import with_ground_truth_depth
    covariance = np.diag([1e-4, 1e-4, 0.01])  # spread 0.1 m along z (ray (0.25, 0, 1))
    obj = ObjectEstimate(Detection2D(Box(*CHAIR_BOX), 0.9, 0, 'chair'),
                         ObjectDepth(2.0, 0.1, 1.0), Point3D(0.5, 0.0, 2.0),
                         Point3D(0.4, 0.4, 0.2), covariance, False)
    stray = ObjectEstimate(Detection2D(Box(*WALKER_BOX), 0.9, 0, 'chair'),
                           ObjectDepth(3.0, 0.1, 1.0), None, None, None, False)
    truth = [gt('8', CHAIR_BOX, 'chair', 4.2, 4.0)]
    out = with_ground_truth_depth([obj, stray], truth, 0.0, np.random.default_rng(0), 0.5,
                                  1.0, {'chair': 4.5})
    assert out[1] is stray  # no GT box of its own
    moved = out[0]
    assert moved.depth.depth == 4.0 and moved.depth.spread == 0.0
    assert (moved.position.x, moved.position.y, moved.position.z) == (1.0, 0.0, 4.0)
    # Scaled by (4 / 2)^2, less the old spread (0.2 m at 4 m) along the ray.
    ray = np.array([0.25, 0.0, 1.0])
    assert np.allclose(moved.covariance, covariance * 4 - 0.04 * np.outer(ray, ray))
    assert moved.detection is obj.detection
    assert moved.alert and not obj.alert  # 4 m is within the chair's 4.5 m


def test_with_ground_truth_depth_duplicates_are_dropped_on_the_networks_depths():
    """The tracker drops the same boxes as the node: before the GT depth replaces any.

    The whole chair matches its GT box and takes its GT depth (4 m); the seat inside it
    (IoU 0.25 < 0.5) matches nothing and keeps the network's 2 m. Dropped after the
    replacement, the seat would be a second object, 2 m from its twin.
    """

    def chair(box, score):
        return ObjectEstimate(Detection2D(Box(*box), score, 0, 'chair'),
                              ObjectDepth(2.0, 0.1, 1.0), None, None, None, False)

    seat = (310, 150, 340, 200)  # 30 x 50 px, all inside the chair's 60 x 100
    truth = [gt('8', CHAIR_BOX, 'chair', 4.2, 4.0)]
    image = np.zeros((480, 640, 3), np.uint8)
    for overlap, kept in ((0.8, 1), (0.0, 2)):
        loop = BagTracking(Tracker(TrackerConfig(duplicate_overlap=overlap)),
                           TrackingEvaluation(max_depth=1.0), 0.0, 1.0, {}, 0.5)
        tracked, _, _ = loop.step(0, STAMP0, [chair(CHAIR_BOX, 0.9), chair(seat, 0.6)],
                                  truth, image)
        assert len(tracked) == kept
        assert tracked[0].raw.depth.depth == 4.0  # the whole chair, at its GT depth


def test_with_ground_truth_depth_boxes_apart_on_the_networks_depths_stay_apart():
    """Duplicates are not looked for again once the GT depth has replaced the network's.

    The network reads the chair at 3 m and the seat inside it at 2.05 m (two objects to the
    node); the GT puts the chair at 2 m, within 10 % of the seat's 2.05 m.
    """

    def chair(box, score, depth):
        return ObjectEstimate(Detection2D(Box(*box), score, 0, 'chair'),
                              ObjectDepth(depth, 0.1, 1.0), None, None, None, False)

    tracker = Tracker(TrackerConfig())
    loop = BagTracking(tracker, TrackingEvaluation(max_depth=1.0), 0.0, 1.0, {}, 0.5)
    tracked, _, _ = loop.step(0, STAMP0, [chair(CHAIR_BOX, 0.9, 3.0),
                                          chair((310, 150, 340, 200), 0.6, 2.05)],
                              [gt('8', CHAIR_BOX, 'chair', 2.2, 2.0)],
                              np.zeros((480, 640, 3), np.uint8))
    assert [t.raw.depth.depth for t in tracked] == [2.0, 2.05]
    assert tracker.dropped == []
