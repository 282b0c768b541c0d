"""core.odometry: the camera's motion at an image's stamp from odometry twists."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from depthdet_ros.core.odometry import CameraMotionHistory, CameraMotionUnavailable, \
    MovingFrames, StaticFrames, TfCameraMotion

S = 1_000_000_000  # ns per second


def test_the_nearest_twist_within_the_gap_gives_the_motion():
    history = CameraMotionHistory('/odom')
    # Added out of order, as messages can arrive: they are kept by stamp.
    history.add(1 * S, (0, 0, 1.2, 0, 0, 0.5), 'cam')
    history.add(0, (0, 0, 1, 0, 0, 0), 'cam')
    assert history.at(150_000_000, 'cam').linear == (0.0, 0.0, 1.0)
    assert history.at(850_000_000, 'cam').angular == (0.0, 0.0, 0.5)
    assert history.at(S + 100_000_000, 'cam').linear == (0.0, 0.0, 1.2)


def test_no_twist_near_the_image_is_said():
    history = CameraMotionHistory('/odom')
    with pytest.raises(CameraMotionUnavailable, match='no message on /odom yet'):
        history.at(0, 'cam')
    history.add(0, (0, 0, 1, 0, 0, 0), 'cam')
    history.add(1 * S, (0, 0, 1, 0, 0, 0), 'cam')
    with pytest.raises(CameraMotionUnavailable, match='no message within 0.2 s of the image '
                                                      r'stamped 0.500 s \(nearest 0.500 s'):
        history.at(S // 2, 'cam')
    assert history.at(S + 200_000_000, 'cam')  # 0.2 s after the last: still taken


def test_a_twist_of_another_frame_or_not_finite_is_refused():
    history = CameraMotionHistory('/odom')
    history.add(0, (0, 0, 1, 0, 0, 0), 'base_link')
    with pytest.raises(CameraMotionUnavailable, match="motion of 'base_link', not of the "
                                                      "camera's optical frame 'cam'"):
        history.at(0, 'cam')
    with pytest.raises(CameraMotionUnavailable, match='no fixed transforms between frames '
                                                      'are given'):
        history.at(0, 'cam')
    # Transforms all left out are still where the way out is (review: an empty
    # StaticFrames was taken for none, and the message named /tf_static).
    frames = StaticFrames('/robot1/tf_static')
    history = CameraMotionHistory('/odom', frames=frames)
    history.add(0, (0, 0, 1, 0, 0, 0), 'base_link')
    with pytest.raises(CameraMotionUnavailable, match='no transform on /robot1/tf_static '
                                                      'links the two'):
        history.at(0, 'cam')
    history = CameraMotionHistory('/odom')
    history.add(0, (0, math.nan, 1, 0, 0, 0), 'cam')
    with pytest.raises(CameraMotionUnavailable, match='/odom: a twist that is not finite'):
        history.at(0, 'cam')
    # Glitches faster than any camera (outsider round 40: 1e200 m/s failed every frame).
    for twist in ((0, 0, 1e200, 0, 0, 0), (0, 0, 101.0, 0, 0, 0), (0, 0, 0, 0, 21.0, 0)):
        history = CameraMotionHistory('/odom')
        history.add(0, twist, 'cam')
        with pytest.raises(CameraMotionUnavailable, match='a twist faster than a camera moves '
                                                          r'\(100 m/s, 20 rad/s\)'):
            history.at(0, 'cam')
    history = CameraMotionHistory('/odom')
    history.add(0, (0, 0, 99.0, 0, 19.0, 0), 'cam')
    assert history.at(0, 'cam').linear == (0.0, 0.0, 99.0)


def test_a_twist_far_off_the_one_before_is_a_glitch():
    # 10 Hz odometry at 1 m/s; one sample reads -5 m/s (outsider round 40: the tracks
    # were carried off their depths and a proximity alert dropped for two frames).
    history = CameraMotionHistory('/odom')
    for k, speed in enumerate((1.0, 1.0, -5.0, 1.0, 1.1)):
        history.add(k * S // 10, (0, 0, speed, 0, 0, 0), 'cam')
    # The image of the glitch's stamp takes the usable sample 0.1 s before it instead.
    assert history.at(2 * S // 10, 'cam').linear == (0.0, 0.0, 1.0)
    # The sample right after the glitch is near the one before it: taken (it was
    # refused as off the glitch, and the image took the last motion held instead).
    assert history.at(3 * S // 10, 'cam').linear == (0.0, 0.0, 1.0)
    # Braking or speeding up as robots do (0.1 m/s in 0.1 s): taken.
    assert history.at(4 * S // 10, 'cam').linear == (0.0, 0.0, 1.1)
    # With no usable neighbour within 0.2 s, the glitch's reason is given.
    sparse = CameraMotionHistory('/odom')
    for k, speed in enumerate((1.0, -10.0)):
        sparse.add(k * 3 * S // 10, (0, 0, speed, 0, 0, 0), 'cam')
    with pytest.raises(CameraMotionUnavailable, match=r'a twist 11.00 m/s, 0.00 rad/s off the '
                                                      r'one 0.300 s before it: a glitch'):
        sparse.at(3 * S // 10, 'cam')
    # A turn rate jumping 5 rad/s in 0.1 s: refused too.
    turning = CameraMotionHistory('/odom')
    turning.add(0, (0, 0, 1.0, 0, 0.0, 0), 'cam')
    turning.add(S // 10, (0, 0, 1.0, 0, 5.0, 0), 'cam')
    with pytest.raises(CameraMotionUnavailable, match='5.00 rad/s off'):
        turning.at(S // 10 + 150_000_000, 'cam')


def test_noisy_high_rate_odometry_is_not_taken_for_glitches():
    # 1 kHz odometry of a camera at 0.5 m/s with 2 cm/s of noise (review: without a
    # floor on the jump, a quarter of the images found no motion).
    rng = np.random.default_rng(0)
    history = CameraMotionHistory('/odom')
    for k in range(2000):
        history.add(k * S // 1000, (0, 0, 0.5 + rng.normal(0, 0.02), 0,
                                    rng.normal(0, 0.02), 0), 'cam')
    for k in range(1, 20):
        assert history.at(k * S // 10, 'cam').linear[2] == pytest.approx(0.5, abs=0.1)


def test_the_history_keeps_the_last_seconds():
    history = CameraMotionHistory('/odom', keep_s=0.25)
    for k in range(5):
        history.add(k * S // 10, (0, 0, k, 0, 0, 0), 'cam')
    assert len(history) == 3  # 0.2-0.4 s: within 0.25 s of the newest
    assert history.at(0, 'cam').linear == (0.0, 0.0, 2.0)


# A camera on a robot as robot_state_publisher gives it: base_link -> camera_link, 0.2 m
# ahead and 0.5 m up, -> camera_optical (z ahead, x right, y down: REP 103's optical
# rotation, roll -90 deg then yaw -90 deg, quaternion xyzw (-0.5, 0.5, -0.5, 0.5)).
OPTICAL_XYZW = (-0.5, 0.5, -0.5, 0.5)


def robot_frames():
    frames = StaticFrames()
    frames.set('camera_link', 'camera_optical', (0, 0, 0), OPTICAL_XYZW)
    frames.set('base_link', 'camera_link', (0.2, 0, 0.5), (0, 0, 0, 1))
    frames.set('base_link', 'laser', (0.1, 0, 0.3), (0, 0, 1, 0))  # another branch
    return frames


def test_static_frames_compose_along_the_tree():
    frames = robot_frames()
    # The optical axes in base_link: x right = -y, y down = -z, z ahead = +x.
    rotation, translation = frames.pose('camera_optical', 'base_link')
    assert rotation == pytest.approx(np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]]), abs=1e-12)
    assert translation == pytest.approx([0.2, 0, 0.5])
    rotation, translation = frames.pose('base_link', 'camera_optical')  # the inverse
    assert rotation == pytest.approx(np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]]), abs=1e-12)
    assert translation == pytest.approx([0, 0.5, -0.2])
    # Across branches, through base_link: the laser (turned 180 deg about z) is 0.1 m
    # ahead of base_link, so the camera is 0.1 m behind it in the laser's own x.
    rotation, translation = frames.pose('camera_optical', 'laser')
    assert translation == pytest.approx([-0.1, 0, 0.2])
    assert rotation[:, 2] == pytest.approx([-1, 0, 0])  # the camera looks along -x_laser
    assert frames.pose('camera_optical', 'odom') is None  # not linked
    assert frames.pose('base_link', 'base_link')[1] == pytest.approx([0, 0, 0])


def test_static_frames_refuse_what_is_not_a_transform():
    frames = StaticFrames('/robot/tf_static')
    for parent, child, translation, rotation, message in (
            ('a', 'a', (0, 0, 0), (0, 0, 0, 1), "'a' -> 'a' does not join two different"),
            ('', 'b', (0, 0, 0), (0, 0, 0, 1), 'does not join two different frames'),
            ('a', 'b', (math.nan, 0, 0), (0, 0, 0, 1), 'is not 7 finite numbers'),
            ('a', 'b', (0, 0, 0), (0, 0, 0, 0), 'quaternion of squared length 0, not 1'),
            ('a', 'b', (0, 0, 0), (0, 0, 0, 2), 'squared length 4, not 1: normalise it')):
        with pytest.raises(ValueError, match=f'^/robot/tf_static: transform .*{message}'):
            frames.set(parent, child, translation, rotation)
    assert len(frames) == 0
    frames.set('a', 'b', (0, 0, 0), (0, 0, 0.0005, 1))  # within tf2's tolerance
    # A link back up the tree (outsider round 41: it was used, through the bogus link).
    frames.set('b', 'c', (1, 0, 0), (0, 0, 0, 1))
    with pytest.raises(ValueError, match="'c' -> 'a' would close a loop"):
        frames.set('c', 'a', (0, 0, 0), (0, 0, 0, 1))
    assert frames.pose('c', 'a')[1] == pytest.approx([1, 0, 0], abs=1e-3)
    assert len(frames) == 2


def transform(parent, child, translation, rotation_xyzw):
    """Return a geometry_msgs/TransformStamped look-alike (the fields add_message reads)."""
    xyz, xyzw = ('x', 'y', 'z'), ('x', 'y', 'z', 'w')
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=parent), child_frame_id=child,
        transform=SimpleNamespace(translation=SimpleNamespace(**dict(zip(xyz, translation))),
                                  rotation=SimpleNamespace(**dict(zip(xyzw, rotation_xyzw)))))


def test_static_frames_count_what_is_left_out_now_and_strip_slashes():
    frames = StaticFrames()
    bad = transform('base_link', 'camera_link', (0, 0, 0.5), (0, 0, 0, 0))
    good = transform('/base_link', '/camera_link', (0, 0, 0.5), (0, 0, 0, 1))
    refused, = frames.add_message([bad, transform('base_link', 'laser', (0.1, 0, 0),
                                                  (0, 0, 0, 1))])
    assert "'base_link' -> 'camera_link' has a rotation quaternion" in refused
    assert frames.refused == [refused] and len(frames) == 1
    # Published again, right (with ROS 1's leading slashes, which tf2 drops): no longer
    # counted as left out (review: the count only grew), and linked to the rest.
    assert frames.add_message([good]) == []
    assert frames.refused == [] and len(frames) == 2
    assert frames.pose('camera_link', 'laser')[1] == pytest.approx([-0.1, 0, 0.5])
    assert frames.pose('/camera_link', '/base_link')[1] == pytest.approx([0, 0, 0.5])
    history = CameraMotionHistory('/odom', frames=frames)
    history.add(0, (1.0, 0, 0, 0, 0, 0), '/camera_link')
    assert history.at(0, 'camera_link').linear == (1.0, 0, 0)
    frames.note_unreadable('/tf_static: a message that cannot be read')
    assert frames.refused == ['/tf_static: a message that cannot be read']


def test_a_robot_bases_odometry_gives_the_camera_motion_through_its_mounting():
    history = CameraMotionHistory('/odom', frames=robot_frames())
    # The base drives at 0.5 m/s and turns left at 1 rad/s.
    history.add(0, (0.5, 0, 0, 0, 0, 1.0), 'base_link')
    motion = history.at(0, 'camera_optical')
    # The camera, 0.2 m ahead of the turning axis, also moves left at 0.2 m/s:
    # v = (0.5, 0, 0) + (0, 0, 1) x (0.2, 0, 0.5) = (0.5, 0.2, 0) in base_link, that is
    # 0.5 m/s ahead (+z) and 0.2 m/s left (-x) in the optical frame; the turn about
    # base_link's +z (up) is about the optical -y.
    assert motion.linear == pytest.approx((-0.2, 0, 0.5))
    assert motion.angular == pytest.approx((0, -1.0, 0))
    # A frame the transforms do not reach is still refused, with the way out.
    history = CameraMotionHistory('/odom', frames=robot_frames())
    history.add(0, (0.5, 0, 0, 0, 0, 1.0), 'odom_child')
    with pytest.raises(CameraMotionUnavailable, match='publish the camera.s mounting'):
        history.at(0, 'camera_optical')


def stamped(parent, child, stamp_ns, translation, rotation_xyzw):
    """Return a TransformStamped look-alike with a stamp (as /tf carries them)."""
    message = transform(parent, child, translation, rotation_xyzw)
    message.header.stamp = SimpleNamespace(sec=stamp_ns // S, nanosec=stamp_ns % S)
    return message


def yaw_xyzw(angle):
    """Return the quaternion (x, y, z, w) of a turn by `angle` about z."""
    return (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2))


def test_moving_frames_interpolate_between_the_transforms_either_side():
    static = StaticFrames()
    static.set('base_link', 'camera_link', (0.2, 0, 0.5), (0, 0, 0, 1))
    frames = MovingFrames(static)
    # odom -> base_link: at 0 s at the origin, at 1 s 1 m ahead and turned 90 deg left.
    assert frames.add_message([stamped('odom', 'base_link', 0, (0, 0, 0), yaw_xyzw(0)),
                               stamped('odom', 'base_link', S, (1, 0, 0),
                                       yaw_xyzw(math.pi / 2))]) == []
    rotation, translation = frames.pose('camera_link', 'odom', S // 2)
    # Halfway: 0.5 m ahead, turned 45 deg; the camera 0.2 m ahead of the base on that
    # heading: (0.5 + 0.2 cos 45, 0.2 sin 45, 0.5).
    c = math.cos(math.pi / 4)
    assert translation == pytest.approx([0.5 + 0.2 * c, 0.2 * c, 0.5])
    assert rotation @ np.array([1.0, 0, 0]) == pytest.approx([c, c, 0])
    assert frames.newest_stamp('camera_link', 'odom') == S
    with pytest.raises(CameraMotionUnavailable, match="'odom' -> 'base_link' has none at or "
                                                      r'after 1.500 s yet \(newest 1.000 s\)'):
        frames.pose('camera_link', 'odom', 3 * S // 2)
    with pytest.raises(CameraMotionUnavailable, match="link 'camera_link' to 'map'"):
        frames.pose('camera_link', 'map', S // 2)
    # Not a transform: left out and said; a child given another parent starts afresh.
    refused, = frames.add_message([stamped('odom', 'base_link', 2 * S, (0, 0, 0),
                                           (0, 0, 0, 0))])
    assert 'squared length 0' in refused and frames.refused == [refused]
    frames.add_message([stamped('map', 'base_link', 2 * S, (0, 0, 0), (0, 0, 0, 1))])
    assert frames.refused == [] and frames.newest_stamp('camera_link', 'map') == 2 * S
    with pytest.raises(CameraMotionUnavailable):
        frames.pose('camera_link', 'odom', S // 2)


def test_the_camera_motion_from_its_poses_on_a_turning_robot():
    # The robot drives at 0.5 m/s turning left at 1 rad/s (a circle of 0.5 m radius),
    # its odometry on /tf at 50 Hz; the camera is mounted as in robot_frames(). The same
    # twist as odometry: 0.5 m/s ahead (+z) and 0.2 m/s left (-x) in the optical frame,
    # turning about the optical -y (test_a_robot_bases_odometry_...).
    frames = MovingFrames(robot_frames())
    for k in range(60):
        time_s = k * 0.02
        frames.add_message([stamped(
            '/odom', 'base_link', k * S // 50,
            (0.5 * math.sin(time_s), 0.5 * (1 - math.cos(time_s)), 0.0), yaw_xyzw(time_s))])
    motion = TfCameraMotion(frames, 'odom')
    at = motion.at(S, 'camera_optical')
    assert at.linear == pytest.approx((-0.2, 0, 0.5), abs=1e-3)
    assert at.angular == pytest.approx((0, -1.0, 0), abs=1e-6)
    assert motion.newest_stamp('camera_optical') == 59 * S // 50
    # Transforms 40 ms behind the image (slow or late /tf, within the 0.2 s a twist may
    # be off): the window ends at the newest (outsider round 43: no motion at 10 Hz /tf).
    late = motion.at(59 * S // 50 + 40_000_000, 'camera_optical')
    assert late.linear == pytest.approx((-0.2, 0, 0.5), abs=1e-3)
    with pytest.raises(CameraMotionUnavailable, match='has none at or after'):
        motion.at(59 * S // 50 + 300_000_000, 'camera_optical')
    # Before the first pose of the window, and a jump of the pose (30 m in 20 ms).
    with pytest.raises(CameraMotionUnavailable, match='has none at or before'):
        motion.at(S // 20, 'camera_optical')
    frames.add_message([stamped('odom', 'base_link', 60 * S // 50, (30, 0, 0),
                                yaw_xyzw(1.2))])
    with pytest.raises(CameraMotionUnavailable, match='faster than a camera'):
        motion.at(60 * S // 50, 'camera_optical')


def test_moving_frames_keep_one_transform_per_stamp_in_order_and_start_again_back_in_time():
    frames = MovingFrames(StaticFrames(), keep_s=5.0)

    def at(stamp_s, x):
        return stamped('odom', 'base_link', int(stamp_s * S), (x, 0, 0), (0, 0, 0, 1))

    # Out of order, and a stamp sent again (the last one received holds, as in tf2).
    frames.add_message([at(1.0, 1.0), at(0.0, 0.0), at(0.5, 7.0), at(0.5, 0.5)])
    assert frames.pose('base_link', 'odom', int(0.25 * S))[1] == pytest.approx([0.25, 0, 0])
    assert frames.pose('base_link', 'odom', int(0.5 * S))[1] == pytest.approx([0.5, 0, 0])
    for _ in range(1000):  # a paused clock re-sending one stamp: nothing piles up
        frames.add_message([at(1.0, 1.0)])
    assert len(frames) == 3
    # Time back by more than the 5 s kept (a bag played again): the history starts
    # again, rather than refusing every new transform as too old.
    frames.add_message([at(20.0, 20.0)])
    frames.add_message([at(10.0, 10.0), at(10.2, 10.2)])
    assert frames.pose('base_link', 'odom', int(10.1 * S))[1] == pytest.approx([10.1, 0, 0])
    with pytest.raises(CameraMotionUnavailable, match='has none at or after 15.000 s'):
        frames.pose('base_link', 'odom', 15 * S)
    # Back by less than the history kept, on another path (a simulation reset): afresh
    # too, not mixed with the poses of before (outsider round 43: false speeds of 5-10 m/s).
    # Exactly 1 s back is still a late message.
    frames.add_message([at(9.2, 9.2)])
    assert frames.pose('base_link', 'odom', int(9.6 * S))[1] == pytest.approx([9.6, 0, 0])
    frames.add_message([at(8.0, 100.0), at(8.1, 100.1)])
    assert frames.pose('base_link', 'odom', int(8.05 * S))[1] == pytest.approx([100.05, 0, 0])
    with pytest.raises(CameraMotionUnavailable, match='has none at or after 10.100 s'):
        frames.pose('base_link', 'odom', int(10.1 * S))
    # A transform closing a loop is left out (review: it was used, with a wrong pose).
    refused, = frames.add_message([stamped('base_link', 'odom', 8 * S, (5, 0, 0),
                                           (0, 0, 0, 1))])
    assert "'base_link' -> 'odom' would close a loop" in refused
    assert frames.pose('base_link', 'odom', int(8.05 * S))[1] == pytest.approx([100.05, 0, 0])


def test_time_going_back_clears_every_moving_frame():
    # A base on /tf at 50 Hz and a pan head at 5 Hz turning at 1 rad/s; a simulation reset
    # from 4 s to 1 s, both still after it: no turn may come from the head's poses of the
    # old timeline (review: only the frame whose stamp went back was cleared).
    static = StaticFrames()
    static.set('head', 'camera', (0, 0, 0), (0, 0, 0, 1))
    frames = MovingFrames(static)
    for k in range(21):  # 0-4 s: the head turns
        frames.add_message([stamped('base_link', 'head', k * S // 5, (0, 0, 0),
                                    yaw_xyzw(k * 0.2))])
    for k in range(201):
        frames.add_message([stamped('odom', 'base_link', k * S // 50, (0, 0, 0),
                                    (0, 0, 0, 1))])
    for k in range(50, 61):  # 1-1.2 s after the reset: all still
        frames.add_message([stamped('odom', 'base_link', k * S // 50, (0, 0, 0),
                                    (0, 0, 0, 1))])
    motion = TfCameraMotion(frames, 'odom')
    # The head has published nothing since: no motion, rather than its old turn.
    with pytest.raises(CameraMotionUnavailable):
        motion.at(6 * S // 5, 'camera')
    frames.add_message([stamped('base_link', 'head', S, (0, 0, 0), (0, 0, 0, 1)),
                        stamped('base_link', 'head', 6 * S // 5, (0, 0, 0), (0, 0, 0, 1))])
    assert motion.at(6 * S // 5, 'camera').angular == pytest.approx((0, 0, 0), abs=1e-9)


def test_the_odometry_history_starts_again_back_in_time():
    history = CameraMotionHistory('/odom', keep_s=5.0)
    history.add(20 * S, (1.0, 0, 0, 0, 0, 0), 'cam')
    history.add(10 * S, (2.0, 0, 0, 0, 0, 0), 'cam')  # a bag played again
    assert len(history) == 1 and history.at(10 * S, 'cam').linear == (2.0, 0, 0)
    history.add(9 * S, (3.0, 0, 0, 0, 0, 0), 'cam')  # exactly 1 s back: a late one
    assert len(history) == 2
    history.add(6 * S, (4.0, 0, 0, 0, 0, 0), 'cam')  # 3 s back, within the 5 s kept
    assert len(history) == 1 and history.at(6 * S, 'cam').linear == (4.0, 0, 0)
