"""Moving objects in synthetic sequences: determinism, velocity truth, bags."""
import numpy as np
import pytest

from depthdet_ros.bags import bag_topics, read_messages
from depthdet_ros.sim import bag as simbag
from depthdet_ros.sim.motion import layout_at
from depthdet_ros.sim.objects import CLASS_NAMES
from depthdet_ros.sim.world import CameraSequence, frame_layout, generate_sequence, SimWorld

SIZE = (96, 72)
RATE = 10.0


@pytest.fixture(scope='module')
def world():
    with SimWorld(*SIZE, quality='fast') as w:
        yield w


def centre(truth):
    return np.array([truth.center.x, truth.center.y, truth.center.z])


def by_id(frame):
    return {o.instance_id: o for o in frame.objects}


def test_static_scene_is_unchanged_and_moving_is_deterministic(world):
    static = CameraSequence(3, 'room', SIZE, RATE, world=world)
    moving = CameraSequence(3, 'room', SIZE, RATE, world=world, moving=True)
    again = CameraSequence(3, 'room', SIZE, RATE, world=world, moving=True)
    n = len(static.layout.items)
    # Movers are added after the static scene, which stays as it was.
    assert moving.layout.items[:n] == static.layout.items
    assert len(moving.layout.items) > n and moving.shuttles == again.shuttles
    assert all(o.velocity is None for o in static.frame(4).objects)
    a, b = moving.frame(4), again.frame(4)
    assert np.array_equal(a.rgb, b.rgb) and a.objects == b.objects
    assert all(o.velocity is not None for o in a.objects)


def test_a_frame_shows_the_scene_at_the_time_given(world):
    # synthetic_camera renders at its stamps (a late tick), not at index / rate.
    sequence = CameraSequence(3, 'room', SIZE, RATE, world=world, moving=True)
    late, on_time = sequence.frame(4, t=0.53), sequence.frame(4)
    assert sequence.frame(4, t=0.4).objects == on_time.objects
    moved = [o for o in late.objects if not np.allclose(centre(o), centre(by_id(on_time)[
        o.instance_id]))]
    assert moved  # the camera and the walkers went on for 0.13 s
    walker = by_id(late)[moved[0].instance_id]
    assert centre(walker) == pytest.approx(
        centre(by_id(sequence.frame(53, t=0.53))[walker.instance_id]))


def test_approaching_walker_velocity_truth(world):
    sequence = CameraSequence(3, 'room', SIZE, RATE, world=world, moving=True)
    walker = sequence.shuttles[0]
    person = [i for i, item in enumerate(sequence.layout.items) if item.class_id >= 0]
    instance = person.index(walker.item) + 1
    # Half-way through the first walk toward the camera.
    meet = walker.pause + walker.leg_s - walker.phase
    t = meet - 0.5 * walker.leg_s
    index = int(round(t * RATE))
    frames = [sequence.frame(i) for i in (index - 1, index, index + 1)]
    truths = [by_id(f)[instance] for f in frames]
    speed = np.hypot(truths[1].world_velocity.x, truths[1].world_velocity.y)
    assert speed == pytest.approx(walker.speed, rel=1e-6)
    # The optical-frame velocity is d/dt of the centre: compare with the frames' centres.
    finite = (centre(truths[2]) - centre(truths[0])) * RATE / 2
    velocity = np.array([truths[1].velocity.x, truths[1].velocity.y, truths[1].velocity.z])
    assert np.allclose(velocity, finite, atol=0.05)
    # Walking at the camera: the range shrinks about as fast as the person walks.
    closing = -centre(truths[1]) @ velocity / np.linalg.norm(centre(truths[1]))
    assert closing > 0.5 * walker.speed
    # It ends up close in front of the camera.
    arrived = by_id(sequence.frame(int(np.ceil(meet * RATE))))[instance]
    assert arrived.depth < 1.2
    # Static objects: no world velocity, but an optical one from the camera's motion.
    still = [o for o in frames[1].objects if o.instance_id != instance]
    assert still and all(o.world_velocity.x == o.world_velocity.y == 0.0 for o in still)
    assert any(abs(o.velocity.z) > 0.01 for o in still)


def test_walkers_turn_about_their_centre(world):
    """A person turning round at the end of a walk: the box centre stays put.

    The GT centre is the bounding box's centre; turning about the model's origin made it
    jump 0.1-0.2 m in one frame while the published velocity said zero.
    """
    sequence = CameraSequence(7, 'room', SIZE, RATE, world=world, moving=True)
    walkers = [s for s in sequence.shuttles if s.face_motion]
    assert walkers

    def world_centre(shuttle, t):
        item = layout_at(sequence.layout, sequence.shuttles, t).items[shuttle.item]
        low, high = item.shape.bounds()
        return (item.world_from_object() @ np.append(0.5 * (low + high), 1.0))[:3]

    for walker in walkers:
        low, high = sequence.layout.items[walker.item].shape.bounds()
        assert np.hypot(*(low + high)[:2]) > 0.02  # the centre is off the origin
        arrive = walker.pause + walker.leg_s - walker.phase  # turns round, then waits
        for t in (arrive, arrive + walker.period_s / 2):  # at the far end, then back home
            before, after = world_centre(walker, t - 1e-6), world_centre(walker, t + 1e-6)
            assert np.linalg.norm(after - before) < 1e-4, (walker, t)
        # Walking back: the centre moves at the velocity the shuttle publishes.
        t = arrive + walker.pause + 0.5 * walker.leg_s
        _, velocity = walker.state(t)
        moved = (world_centre(walker, t + 0.01) - world_centre(walker, t - 0.01)) / 0.02
        assert np.allclose(moved, velocity, atol=1e-6)


def test_tabletop_objects_slide(world):
    sequence = CameraSequence(6, 'tabletop', SIZE, RATE, world=world, moving=True)
    sliders = [s for s in sequence.shuttles if not s.face_motion]
    assert 1 <= len(sliders) <= 3
    assert all(0.05 <= s.speed <= 0.25 and s.start[2] > 0.3 for s in sliders)


def test_moving_bag_records_object_motion(tmp_path, world):
    frames = list(generate_sequence(3, 3, 'room', SIZE, RATE, world=world, moving=True))
    path = tmp_path / 'moving'
    simbag.write_bag(path, frames, 'mcap', rate_hz=RATE)
    topics = bag_topics(path)
    assert topics[simbag.TOPIC_MOTION] == 'nav_msgs/msg/Odometry'
    assert topics[simbag.TOPIC_MOTION_WORLD] == 'nav_msgs/msg/Odometry'
    motion = [m.message for m in read_messages(path, [simbag.TOPIC_MOTION])]
    assert len(motion) == sum(len(f.objects) for f in frames)
    first = {m.child_frame_id: m for m in motion[:len(frames[0].objects)]}
    for truth in frames[0].objects:
        message = first[str(truth.instance_id)]
        assert message.header.frame_id == frames[0].camera.frame_id
        assert message.pose.pose.position.z == pytest.approx(truth.center.z)
        assert message.twist.twist.linear.z == pytest.approx(truth.velocity.z)
    world_motion = [m.message for m in read_messages(path, [simbag.TOPIC_MOTION_WORLD])]
    assert {m.header.frame_id for m in world_motion} == {simbag.WORLD_FRAME_ID}


def test_the_camera_twist_moves_static_points_as_the_frames_show(world):
    # A static world point seen from the camera: its optical coordinates change as
    # d/dt p = -v - w x p, with (v, w) the camera's twist in its optical frame.
    sequence = CameraSequence(7, 'room', SIZE, RATE, world=world)
    point = np.array([1.0, 2.0, 0.5])

    def optical(t):
        position, rotation = sequence.path.pose(t)
        return rotation.T @ (point - position)
    for t in (0.0, 3.3, 11.0):
        twist = sequence.camera_twist(t)
        p = optical(t)
        finite = (optical(t + 1e-4) - optical(t - 1e-4)) / 2e-4
        assert np.allclose(-twist[:3] - np.cross(twist[3:], p), finite, atol=1e-5)
        # The path moves the camera at about its speed (0.4 m/s) and turns it slowly.
        assert 0.05 < np.linalg.norm(twist[:3]) < 1.0 and np.linalg.norm(twist[3:]) < 1.0
    assert np.array_equal(sequence.frame(33).camera_twist, sequence.camera_twist(3.3))


def test_a_bag_records_the_camera_odometry(tmp_path, world):
    frames = list(generate_sequence(3, 3, 'room', SIZE, RATE, world=world))
    path = tmp_path / 'camera'
    simbag.write_bag(path, frames, 'mcap', rate_hz=RATE)
    assert bag_topics(path)[simbag.TOPIC_CAMERA_ODOMETRY] == 'nav_msgs/msg/Odometry'
    odometry = [m.message for m in read_messages(path, [simbag.TOPIC_CAMERA_ODOMETRY])]
    assert len(odometry) == len(frames)
    for frame, message in zip(frames, odometry):
        assert message.header.frame_id == simbag.WORLD_FRAME_ID
        assert message.child_frame_id == frame.camera.frame_id
        twist = message.twist.twist
        assert [twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.x,
                twist.angular.y, twist.angular.z] == pytest.approx(list(frame.camera_twist))
        position = message.pose.pose.position
        assert [position.x, position.y, position.z] == pytest.approx(
            list(frame.camera_pose[:3, 3]))
        q = message.pose.pose.orientation
        # The quaternion's rotation turns the optical z axis as the pose does.
        x, y, z, w = q.x, q.y, q.z, q.w
        z_axis = [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)]
        assert z_axis == pytest.approx(list(frame.camera_pose[:3, 2]), abs=1e-9)


def person_distances(layout):
    """Depth (m) of each person in front of the camera (within 45 degrees of its axis)."""
    person = CLASS_NAMES.index('person')
    camera = layout.camera
    optical = [np.asarray(camera.rotation).T @ (np.asarray(item.position) - camera.position)
               for item in layout.items if item.class_id == person]
    return [float(p[2]) for p in optical if p[2] > 0 and abs(p[0]) < p[2]]


def test_moving_dataset_frames_show_people_near_the_camera():
    """`synth dataset --moving`: what independent frames seldom show, near walkers."""
    frames = 100
    moving = [person_distances(frame_layout(4, i, 'room', moving=True)) for i in range(frames)]
    still = [person_distances(frame_layout(4, i, 'room')) for i in range(frames)]
    # Someone in front of the camera in (nearly) every frame (67 of 100 still frames) ...
    assert sum(bool(d) for d in moving) >= 0.9 * frames
    # ... nearer than 1.5 m in a third of them (39; still frames: 19).
    near = sum(min(d, default=9.0) < 1.5 for d in moving)
    assert near >= 0.3 * frames and near > 1.5 * sum(min(d, default=9.0) < 1.5 for d in still)
    again = frame_layout(4, 7, 'room', moving=True)
    assert again.items == frame_layout(4, 7, 'room', moving=True).items
    assert np.array_equal(again.camera.position, frame_layout(4, 7, 'room',
                                                              moving=True).camera.position)
