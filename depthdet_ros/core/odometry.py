"""The camera's own motion at an image's stamp, from odometry or transforms (no ROS imports).

The tracker wants the camera's motion at each image (core.tracking.CameraMotion). Two
sources, shared by the node and the bag evaluation:

- Odometry (CameraMotionHistory): a robot's odometry, or a visual-inertial odometry of the
  camera, comes at its own rate; the history keeps the recent twists by stamp and gives
  the nearest one within MAX_GAP_S of the image. A twist is in its message's child frame:
  the camera's own optical frame is taken as it is; another frame (a robot's base_link)
  is turned into the camera's through the fixed transforms between them (StaticFrames,
  from /tf_static: the camera's mounting as robot_state_publisher gives it).
- Transforms (TfCameraMotion): the camera's pose in a frame fixed in the world (odom; a
  fixed arm's base_link) from /tf and /tf_static (MovingFrames), its change over
  TF_MOTION_WINDOW_S before the image turned into a twist: a camera on a moving joint
  (a pan-tilt head, an arm's wrist) moves with its joints and with the robot.
"""
import bisect
import math
import threading
from typing import List, Optional, Protocol, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from depthdet_ros.core.tracking import CameraMotion, TIME_BACK_S

# Farthest a twist's stamp may be from an image's for it to give the camera's motion (s).
MAX_GAP_S = 0.2
# Fastest a camera is taken to move (m/s) and turn (rad/s): a twist beyond is a glitch
# (outsider round 40: 1e200 m/s made every frame fail), refused as a missing one.
MAX_SPEED = 100.0
MAX_TURN = 20.0
# Fastest change of the camera's velocity from the message before (m/s^2; angular rad/s^2),
# above a floor for the twist's own noise (m/s; rad/s): a robot braking hard changes it by
# 1 m/s in 0.1 s; a sample 5 m/s off its neighbour is a glitch, which would carry every
# track off its depths (outsider round 40). The floor keeps 200 Hz-1 kHz odometry with a
# few cm/s of noise from being refused (review).
MAX_ACCELERATION = 30.0
MAX_ANGULAR_ACCELERATION = 30.0
JUMP_FLOOR = 0.5
# Most a rotation quaternion's squared length may be off 1 (tf2's tolerance).
QUATERNION_TOLERANCE = 0.01
# Seconds of twists kept before the newest (a frame looks up its stamp after inference).
HISTORY_S = 5.0
# A message stamped more than TIME_BACK_S (core.tracking's) before the newest kept of its
# kind is time going back (a bag played again, a simulation reset), not a late one: the
# history starts afresh, as tf2 clears its buffer when time jumps back (old and new poses
# mixed would give false speeds: outsider round 43, 5-10 m/s after a 3 s jump).
_TIME_BACK_NS = int(TIME_BACK_S * 1e9)
# Where robot_state_publisher latches a robot's fixed transforms, and where the moving
# ones go (absolute names).
TF_STATIC = '/tf_static'
TF = '/tf'
# Seconds over which TfCameraMotion takes the camera's change of pose, ending at the
# image: a frame at 10 Hz, the interval the tracker predicts over (a pose's noise is
# divided by the distance covered in it).
TF_MOTION_WINDOW_S = 0.1


class CameraMotionSource(Protocol):
    """What the node and the bag evaluation ask of a source of the camera's motion.

    CameraMotionHistory (odometry) and TfCameraMotion (transforms) both give it; the
    image's frame matters to the transforms only.
    """

    source: str

    def newest_stamp(self, frame_id: str) -> Optional[int]:
        """Return the newest image stamp (ns) a motion can be had at, or None."""

    def at(self, stamp_ns: int, frame_id: str) -> CameraMotion:
        """Return the camera's motion at an image; CameraMotionUnavailable if none fits."""

    def refused_transforms(self) -> List[str]:
        """Say why each transform was left out."""


class CameraMotionUnavailable(ValueError):
    """No twist gives the camera's motion at an image (the message says why)."""


class _Refusals:
    """What a set of transforms left out: each child frame's last refusal, unreadable messages.

    Subclasses hold `_lock` while they change `_refused`.
    """

    def __init__(self, source: str):
        self.source = source  # the topic they come from, for messages
        self._refused = {}  # child frame: why its last transform was left out
        self._unreadable: List[str] = []  # messages that could not be read, why
        self._lock = threading.Lock()

    @property
    def refused(self) -> List[str]:
        """Say why each transform is left out.

        A child frame's last transform, unless a later one was kept; and each message
        that could not be read.
        """
        with self._lock:
            return list(self._refused.values()) + self._unreadable

    def note_unreadable(self, reason: str) -> None:
        """Count a message that could not be read among those left out."""
        with self._lock:
            self._unreadable.append(reason)


class StaticFrames(_Refusals):
    """Fixed transforms between frames (a tree, as /tf_static holds them), thread-safe.

    No pip-installable library fits: tf2_ros has no wheel, and its buffer is what this
    replaces for static transforms only (parents and poses, composed along the tree).
    Frame names are taken as tf2 takes them, without a leading '/'.
    """

    def __init__(self, source: str = TF_STATIC):
        super().__init__(source)
        self._parent = {}  # child frame: (parent frame, rotation 3x3, translation 3)

    def add_message(self, transforms) -> List[str]:
        """Keep a TFMessage's transforms (geometry_msgs/TransformStamped, rclpy's or rosbags').

        Returns why each one left out was (set's ValueErrors), also added to `refused`.
        """
        refused = []
        for transform in transforms:
            parent, child, translation, rotation = _transform_fields(transform)
            try:
                self.set(parent, child, translation, rotation)
            except ValueError as exc:
                refused.append(str(exc))
                with self._lock:
                    self._refused[child] = str(exc)
        return refused

    def __len__(self):
        """Return the number of transforms kept (one per child frame)."""
        return len(self._parent)

    def set(self, parent: str, child: str, translation: Sequence[float],
            rotation_xyzw: Sequence[float]) -> None:
        """Keep the pose of `child` in `parent` (a later one replaces it).

        ValueError, naming the transform, if a frame name is empty, the two are the
        same, a number is not finite, the quaternion is not of unit length (within
        QUATERNION_TOLERANCE of its squared length, as tf2 refuses it), or the
        transform would close a loop (`child` an ancestor of `parent`: a tree has none;
        tf2 keeps such a transform and fails every lookup through it).
        """
        parent, child = frame_name(parent), frame_name(child)
        numbers = _checked_transform(self.source, parent, child, translation, rotation_xyzw)
        rotation = Rotation.from_quat(numbers[3:]).as_matrix()
        with self._lock:
            if child in self._ancestors(parent):
                raise ValueError(f'{self.source}: transform {parent!r} -> {child!r} would close '
                                 f'a loop ({child!r} is already above '
                                 f'{parent!r}): the frames must form a tree')
            self._parent[child] = (parent, rotation, np.array(numbers[:3]))
            self._refused.pop(child, None)

    def pose(self, frame: str, in_frame: str):
        """Return (R, t), the pose of `frame` in `in_frame` (p_in = R p + t), or None.

        None when no chain of transforms links them.
        """
        frame, in_frame = frame_name(frame), frame_name(in_frame)
        with self._lock:
            return _relative_pose(self._ancestors(frame), self._ancestors(in_frame))

    def frames(self) -> set:
        """Return every frame a transform kept names."""
        with self._lock:
            return {f for child, (parent, _, _) in self._parent.items() for f in (child, parent)}

    def parent_of(self, frame: str):
        """Return (parent, R, t), the pose of `frame` in its parent, or None for a root."""
        with self._lock:
            return self._parent.get(frame_name(frame))

    def _ancestors(self, frame):
        """{ancestor: pose of `frame` in it}, from `frame` itself up to the root."""
        return _chain(frame, self._parent.get)


def _transform_fields(transform):
    """Return (parent, child, translation, quaternion xyzw) of a TransformStamped."""
    t, q = transform.transform.translation, transform.transform.rotation
    return (frame_name(transform.header.frame_id), frame_name(transform.child_frame_id),
            (t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def _checked_transform(source, parent, child, translation, rotation_xyzw) -> List[float]:
    """Return a transform's 7 numbers; ValueError, naming it, if it is none.

    Frame names empty or the same, a number not finite, or a rotation quaternion not of
    unit length (within QUATERNION_TOLERANCE of its squared length, as tf2 refuses it).
    """
    name = f'{source}: transform {parent!r} -> {child!r}'
    if not parent or not child or parent == child:
        raise ValueError(f'{name} does not join two different frames')
    numbers = [float(v) for v in (*translation, *rotation_xyzw)]
    if len(numbers) != 7 or not all(map(math.isfinite, numbers)):
        raise ValueError(f'{name} is not 7 finite numbers: {numbers}')
    length2 = sum(q * q for q in numbers[3:])
    if abs(length2 - 1.0) > QUATERNION_TOLERANCE:
        raise ValueError(f'{name} has a rotation quaternion of squared length '
                         f'{length2:.4g}, not 1: normalise it (tf2 refuses it too)')
    return numbers


def _chain(frame, parent_of):
    """{ancestor: pose of `frame` in it}, from `frame` up to the root of the tree.

    parent_of(frame) gives (parent, R, t) or None at the root.
    """
    rotation, translation = np.eye(3), np.zeros(3)
    chain = {frame: (rotation, translation)}
    link = parent_of(frame)
    while link is not None:
        frame, r, t = link
        if frame in chain:  # a loop: the transforms are not a tree
            break
        rotation, translation = r @ rotation, r @ translation + t
        chain[frame] = (rotation, translation)
        link = parent_of(frame)
    return chain


def _common_ancestor(up, down):
    """Return the first frame of chain `up` that chain `down` holds too, or None."""
    return next((f for f in up if f in down), None)


def _relative_pose(up, down):
    """Pose (R, t) of the frame of chain `up` in that of chain `down`; None if unlinked."""
    common = _common_ancestor(up, down)
    if common is None:
        return None
    (r_up, t_up), (r_down, t_down) = up[common], down[common]
    return r_down.T @ r_up, r_down.T @ (t_up - t_down)


class MovingFrames(_Refusals):
    """Transforms that change with time (as /tf carries them), by stamp, and the fixed ones.

    A pose is looked up at a stamp: each moving transform on the way interpolated between
    the two either side of it (linearly, and spherically for the rotation), as tf2's
    buffer does, never past the newest nor before the oldest kept; the fixed transforms
    (`static`, from /tf_static) as they are. Thread-safe. No pip-installable library fits
    (tf2_ros has no wheel).
    """

    def __init__(self, static: StaticFrames, source: str = TF,
                 keep_s: Optional[float] = HISTORY_S):
        super().__init__(source)
        self.static = static
        self._keep_ns = None if keep_s is None else int(keep_s * 1e9)  # None: a bag read whole
        # child frame: (parent, stamps ns, translations, quaternions xyzw), stamp order
        self._moving = {}

    def add_message(self, transforms) -> List[str]:
        """Keep a TFMessage's stamped transforms; return why each one left out was.

        A child frame given another parent starts its history afresh; a stamp going back
        by more than TIME_BACK_S (live, `keep_s` set) starts every frame's afresh, as tf2
        clears its buffer; a transform of a stamp already kept replaces it. One that
        would close a loop in the tree is left out.
        """
        refused = []
        for transform in transforms:
            parent, child, translation, rotation = _transform_fields(transform)
            stamp = transform.header.stamp
            try:
                numbers = _checked_transform(self.source, parent, child, translation,
                                             rotation)
                with self._lock:
                    if child in _chain(parent, self._link_newest):
                        raise ValueError(
                            f'{self.source}: transform {parent!r} -> {child!r} would close a '
                            f'loop ({child!r} is already above {parent!r}): the frames must '
                            'form a tree')
            except ValueError as exc:
                refused.append(str(exc))
                with self._lock:
                    self._refused[child] = str(exc)
                continue
            stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
            with self._lock:
                self._refused.pop(child, None)
                kept = self._moving.get(child)
                if self._keep_ns is not None and kept and kept[1] \
                        and stamp_ns < kept[1][-1] - _TIME_BACK_NS:
                    # Time went back: every frame's poses are of the old timeline (one
                    # moving frame cleared alone would mix them in through the others).
                    self._moving.clear()
                    kept = None
                if kept is None or kept[0] != parent:
                    kept = self._moving[child] = (parent, [], [], [])
                _, stamps, translations, rotations = kept
                k = bisect.bisect_left(stamps, stamp_ns)
                if k < len(stamps) and stamps[k] == stamp_ns:  # the same stamp again
                    translations[k], rotations[k] = np.array(numbers[:3]), numbers[3:]
                    continue
                stamps.insert(k, stamp_ns)
                translations.insert(k, np.array(numbers[:3]))
                rotations.insert(k, numbers[3:])
                if self._keep_ns is not None:
                    old = bisect.bisect_left(stamps, stamps[-1] - self._keep_ns)
                    del stamps[:old], translations[:old], rotations[:old]
        return refused

    def __len__(self):
        """Stamped transforms kept, over every moving frame."""
        with self._lock:
            return sum(len(kept[1]) for kept in self._moving.values())

    def frames(self) -> List[str]:
        """Return every frame a transform kept names, fixed or moving, sorted."""
        with self._lock:
            names = {f for child, kept in self._moving.items() for f in (child, kept[0])}
        return sorted(names | self.static.frames())

    def newest_stamp(self, frame: str, in_frame: str) -> Optional[int]:
        """Return the newest stamp a pose of `frame` in `in_frame` can be had at.

        The oldest of the newest transforms of the moving links between them; None
        when a moving link has none or they are not linked.
        """
        with self._lock:
            moving = {f: kept[1][-1] for f, kept in self._moving.items() if kept[1]}
            up = _chain(frame_name(frame), self._link_newest)
            down = _chain(frame_name(in_frame), self._link_newest)
        common = _common_ancestor(up, down)
        if common is None:
            return None
        on_the_way = [f for chain in (up, down) for f in _below(chain, common) if f in moving]
        return min((moving[f] for f in on_the_way), default=_ALWAYS)

    def pose(self, frame: str, in_frame: str, stamp_ns: int):
        """Return (R, t), the pose of `frame` in `in_frame` at stamp_ns (p_in = R p + t).

        CameraMotionUnavailable, saying why, when no chain of transforms links them or a
        moving one has no transform either side of the stamp.
        """
        frame, in_frame = frame_name(frame), frame_name(in_frame)
        problems = []

        def link(child):
            with self._lock:
                kept = self._moving.get(child)
                if kept is None:
                    return self.static.parent_of(child)
                parent, stamps, translations, rotations = kept
                try:
                    return (parent, *_interpolate(stamps, translations, rotations, stamp_ns))
                except ValueError as exc:
                    problems.append(f'{self.source}: {parent!r} -> {child!r} {exc}')
                    return None

        relative = _relative_pose(_chain(frame, link), _chain(in_frame, link))
        if relative is None:
            raise CameraMotionUnavailable(
                problems[0] if problems else
                f'no transforms on {self.source} and {self.static.source} link {frame!r} '
                f'to {in_frame!r}')
        return relative

    def _link_newest(self, child):
        """parent_of for newest_stamp: the link to the parent at any time (lock held)."""
        kept = self._moving.get(child)
        if kept is not None:
            return kept[0], np.eye(3), np.zeros(3)
        return self.static.parent_of(child)


# newest_stamp of frames linked by fixed transforms alone: any stamp.
_ALWAYS = 1 << 62


def _below(chain, common):
    """Return the frames of `chain` (ancestors in order) before `common`: links used."""
    frames = []
    for frame in chain:
        if frame == common:
            break
        frames.append(frame)
    return frames


def _interpolate(stamps, translations, rotations, stamp_ns):
    """Return (R, t) at stamp_ns from the two kept either side; ValueError if none."""
    k = bisect.bisect_left(stamps, stamp_ns)
    if k < len(stamps) and stamps[k] == stamp_ns:
        return Rotation.from_quat(rotations[k]).as_matrix(), translations[k]
    if not stamps:
        raise ValueError('has no transform')
    if k == len(stamps):
        raise ValueError(f'has none at or after {stamp_ns * 1e-9:.3f} s yet (newest '
                         f'{stamps[-1] * 1e-9:.3f} s)')
    if k == 0:
        raise ValueError(f'has none at or before {stamp_ns * 1e-9:.3f} s (oldest kept '
                         f'{stamps[0] * 1e-9:.3f} s)')
    share = (stamp_ns - stamps[k - 1]) / (stamps[k] - stamps[k - 1])
    return (Rotation.from_quat(_slerp(rotations[k - 1], rotations[k], share)).as_matrix(),
            (1.0 - share) * translations[k - 1] + share * translations[k])


def _slerp(q0, q1, share):
    """Return the quaternion `share` of the way from q0 to q1 on the shorter arc.

    In numpy: scipy's Slerp object costs about 0.3 ms to build, per link and lookup.
    """
    q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
    cos = float(q0 @ q1)
    if cos < 0.0:  # q and -q are one rotation: take the shorter way
        q1, cos = -q1, -cos
    if cos > 0.9995:  # nearly the same: the chord is the arc
        q = q0 + share * (q1 - q0)
        return q / np.linalg.norm(q)
    angle = math.acos(cos)
    return (math.sin((1.0 - share) * angle) * q0 + math.sin(share * angle) * q1) / \
        math.sin(angle)


def frame_name(frame_id: str) -> str:
    """Return a frame's name as tf2 compares it: without a leading '/' (ROS 1 style)."""
    return frame_id.lstrip('/')


def twist_of_mounted(twist: Sequence[float], rotation, translation) -> tuple:
    """Return the twist (linear, angular) of a frame rigidly mounted on a moving one.

    `twist`: the moving frame's velocity and angular velocity, in it; rotation,
    translation: the mounted frame's pose in it. The mounted frame's origin moves at
    v + w x t, and both vectors are turned into the mounted frame's axes.
    """
    v, w = np.asarray(twist[:3], float), np.asarray(twist[3:], float)
    return tuple((rotation.T @ (v + np.cross(w, translation))).tolist()
                 + (rotation.T @ w).tolist())


class TfCameraMotion:
    """The camera's motion at an image from its poses in a frame fixed in the world.

    The camera's pose in `fixed_frame` (MovingFrames: /tf and /tf_static) at the image's
    stamp and TF_MOTION_WINDOW_S before it: the move between them, in the camera's axes
    halfway, over the window is its velocity, the turn its angular velocity (the mean
    over the window: the interval the tracker predicts over at 10 Hz). `fixed_frame` is
    fixed in the world (a mobile robot's odom, whose odometry node publishes odom ->
    base_link; a fixed arm's base_link; continuous, not map): a camera on a pan-tilt
    head or an arm's wrist then moves with its joints as well as with the robot.
    """

    def __init__(self, frames: MovingFrames, fixed_frame: str,
                 window_s: float = TF_MOTION_WINDOW_S):
        self.frames = frames
        self.fixed_frame = frame_name(fixed_frame)
        self.source = f'{frames.source} (the camera\'s pose in {self.fixed_frame!r})'
        self._window_ns = int(round(window_s * 1e9))

    def newest_stamp(self, frame_id: str) -> Optional[int]:
        """Return the newest image stamp the transforms can give the motion at, or None."""
        return self.frames.newest_stamp(frame_id, self.fixed_frame)

    def refused_transforms(self) -> List[str]:
        """Say why each transform is left out, the fixed ones' first."""
        return self.frames.static.refused + self.frames.refused

    def at(self, stamp_ns: int, frame_id: str) -> CameraMotion:
        """Return the camera's motion at an image; CameraMotionUnavailable if none fits.

        When the transforms do not reach the stamp yet (slow or late /tf) but reach
        within MAX_GAP_S of it, the window ends at the newest instead, as the nearest
        twist within MAX_GAP_S serves from odometry. Refused as CameraMotionHistory
        refuses a twist: no pose at either end (the message says why), or faster than
        MAX_SPEED or MAX_TURN (a jump of a pose).
        """
        newest = self.frames.newest_stamp(frame_id, self.fixed_frame)
        end = newest if newest is not None and 0 < stamp_ns - newest <= MAX_GAP_S * 1e9 \
            else stamp_ns
        rotation0, translation0 = self.frames.pose(frame_id, self.fixed_frame,
                                                   end - self._window_ns)
        rotation1, translation1 = self.frames.pose(frame_id, self.fixed_frame, end)
        # The move in the axes of the window's middle: along the path there, on a turn
        # too (in the axes at its end it would be off by half the window's turn).
        middle, _ = self.frames.pose(frame_id, self.fixed_frame,
                                     end - self._window_ns // 2)
        window_s = self._window_ns * 1e-9
        linear = middle.T @ (translation1 - translation0) / window_s
        angular = Rotation.from_matrix(rotation0.T @ rotation1).as_rotvec() / window_s
        if np.linalg.norm(linear) > MAX_SPEED or np.linalg.norm(angular) > MAX_TURN:
            raise CameraMotionUnavailable(
                f'{self.source}: the camera would move at {np.linalg.norm(linear):.3g} m/s '
                f'and turn at {np.linalg.norm(angular):.3g} rad/s, faster than a camera '
                f'({MAX_SPEED:g} m/s, {MAX_TURN:g} rad/s): a jump of a transform')
        return CameraMotion(tuple(linear.tolist()), tuple(angular.tolist()))


class CameraMotionHistory:
    """Twists of the camera by stamp, thread-safe: `add` from a callback, `at` per image.

    `source` names where they come from (a topic) in messages; `keep_s` bounds how far
    back they are kept (None: all, for a recorded bag).
    """

    def __init__(self, source: str, keep_s: Optional[float] = HISTORY_S,
                 frames: Optional[StaticFrames] = None):
        self.source = source
        self.frames = frames
        self._keep_ns = None if keep_s is None else int(keep_s * 1e9)
        self._stamps: List[int] = []
        self._rows: List[tuple] = []  # (twist 6 floats, frame id), in stamp order
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._stamps)

    def newest_stamp(self, frame_id: str = '') -> Optional[int]:
        """Return the stamp (ns) of the newest twist kept, of any frame, or None.

        `frame_id` (the image's) is CameraMotionSource's: twists are looked up by stamp
        alone.
        """
        with self._lock:
            return self._stamps[-1] if self._stamps else None

    def refused_transforms(self) -> List[str]:
        """Say why each fixed transform is left out (none without `frames`)."""
        return self.frames.refused if self.frames is not None else []

    def add(self, stamp_ns: int, twist: Sequence[float], frame_id: str) -> None:
        """Keep the twist (linear m/s, angular rad/s) of frame `frame_id` at stamp_ns.

        One stamped more than TIME_BACK_S before the newest starts it afresh (live,
        `keep_s` set: a bag read whole keeps all).
        """
        with self._lock:
            if self._keep_ns is not None and self._stamps \
                    and stamp_ns < self._stamps[-1] - _TIME_BACK_NS:
                self._stamps.clear()
                self._rows.clear()
            k = bisect.bisect_right(self._stamps, stamp_ns)
            self._stamps.insert(k, stamp_ns)
            self._rows.insert(k, (tuple(float(v) for v in twist), frame_id))
            if self._keep_ns is not None:
                old = bisect.bisect_left(self._stamps, self._stamps[-1] - self._keep_ns)
                del self._stamps[:old], self._rows[:old]

    def at(self, stamp_ns: int, frame_id: str) -> CameraMotion:
        """Return the camera's motion at an image; CameraMotionUnavailable if none fits.

        The nearest usable twist within MAX_GAP_S of the stamp (of the two either side):
        of the image's `frame_id`, or of a frame that `frames` links to it, 6 finite
        numbers, no faster than MAX_SPEED and MAX_TURN, and not off the one before it by
        more than the MAX_*ACCELERATION (with JUMP_FLOOR) allow, unless that one was a
        glitch itself (all in the message's frame). The message says why the nearest was
        not usable.
        """
        with self._lock:
            k = bisect.bisect_left(self._stamps, stamp_ns)
            near = sorted((i for i in (k - 1, k) if 0 <= i < len(self._stamps)),
                          key=lambda i: abs(self._stamps[i] - stamp_ns))
            if not near:
                raise CameraMotionUnavailable(f'no message on {self.source} yet')
            # Each with the two twists before it (stamp ns, row): one right after a
            # glitch is checked against the one before the glitch.
            candidates = [(self._stamps[i], self._rows[i],
                           [(self._stamps[j], self._rows[j]) for j in (i - 1, i - 2)
                            if j >= 0]) for i in near]
        reason = None
        for this_ns, (twist, child), before in candidates:
            problem = self._problem(stamp_ns, this_ns, twist, child, before)
            if problem is None and frame_name(child) != frame_name(frame_id):
                mounting = self.frames.pose(frame_id, child) \
                    if self.frames is not None else None
                if mounting is None:
                    links = (f'no transform on {self.frames.source} links the two: publish '
                             'the camera\'s mounting there (robot_state_publisher does; the '
                             'images\' frame_id must be a frame of it)'
                             if self.frames is not None else
                             'no fixed transforms between frames are given')
                    problem = (
                        f'{self.source} gives the motion of {child!r}, not of the camera\'s '
                        f'optical frame {frame_id!r}, and {links}; or give the camera\'s own '
                        'odometry (child_frame_id = the images\' frame_id, twist in that '
                        'frame)')
                else:
                    twist = twist_of_mounted(twist, *mounting)
            if problem is None:
                return CameraMotion(twist[:3], twist[3:])
            reason = reason or problem
        raise CameraMotionUnavailable(reason)

    def _problem(self, stamp_ns, this_ns, twist, child, before):
        """Why this twist (stamped this_ns) cannot give its frame's motion; None if it can.

        `before`: the (stamp ns, row) of the twists before it, nearest first. A twist
        far off the one before is a glitch, unless that one was: far off the one before
        it, while this twist is near that.
        """
        gap_ns = abs(this_ns - stamp_ns)
        if gap_ns > MAX_GAP_S * 1e9:
            return (f'{self.source} has no message within {MAX_GAP_S:g} s of the image stamped '
                    f'{stamp_ns * 1e-9:.3f} s (nearest {gap_ns * 1e-9:.3f} s away)')
        if not all(map(math.isfinite, twist)):
            return f'{self.source}: a twist that is not finite: {twist}'
        if math.hypot(*twist[:3]) > MAX_SPEED or math.hypot(*twist[3:]) > MAX_TURN:
            return (f'{self.source}: a twist faster than a camera moves ({MAX_SPEED:g} m/s, '
                    f'{MAX_TURN:g} rad/s): {twist}')
        if not before or before[0][1][1] != child:
            return None
        last_ns, (last, _) = before[0]
        problem = _jump(twist, last, (this_ns - last_ns) * 1e-9)
        if problem is None:
            return None
        if len(before) == 2 and before[1][1][1] == child:
            first_ns, (first, _) = before[1]
            if _jump(last, first, (last_ns - first_ns) * 1e-9) \
                    and not _jump(twist, first, (this_ns - first_ns) * 1e-9):
                return None  # the one before was the glitch
        return f'{self.source}: {problem}'


def _jump(twist, previous, step_s) -> Optional[str]:
    """Say how `twist` is too far off `previous`, step_s seconds before it; None if not."""
    if step_s <= 0:
        return None
    jump = math.hypot(*(a - b for a, b in zip(twist[:3], previous[:3])))
    turn = math.hypot(*(a - b for a, b in zip(twist[3:], previous[3:])))
    if jump > max(MAX_ACCELERATION * step_s, JUMP_FLOOR) \
            or turn > max(MAX_ANGULAR_ACCELERATION * step_s, JUMP_FLOOR):
        return (f'a twist {jump:.2f} m/s, {turn:.2f} rad/s off the one {step_s:.3f} s before '
                'it: a glitch')
    return None
