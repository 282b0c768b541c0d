"""The camera's own motion at an image's stamp, from odometry messages (no ROS imports).

A robot's odometry (or a visual-inertial odometry of the camera) comes at its own rate;
the tracker wants the camera's motion at each image (core.tracking.CameraMotion). The
history keeps the recent twists by stamp and gives the nearest one within MAX_GAP_S of
the image. A twist is in its message's child frame: the camera's own optical frame is
taken as it is; another frame (a robot's base_link) is turned into the camera's through
the fixed transforms between them (StaticFrames, from /tf_static: the camera's mounting
as robot_state_publisher gives it). A camera on a moving joint (a pan-tilt head) is not
handled: its transform is on /tf, not /tf_static. The node and the bag evaluation share
it.
"""
import bisect
import math
import threading
from typing import List, Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from depthdet_ros.core.tracking import CameraMotion

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
# Where robot_state_publisher latches a robot's fixed transforms (an absolute name).
TF_STATIC = '/tf_static'


class CameraMotionUnavailable(ValueError):
    """No twist gives the camera's motion at an image (the message says why)."""


class StaticFrames:
    """Fixed transforms between frames (a tree, as /tf_static holds them), thread-safe.

    No pip-installable library fits: tf2_ros has no wheel, and its buffer is what this
    replaces for static transforms only (parents and poses, composed along the tree).
    Frame names are taken as tf2 takes them, without a leading '/'.
    """

    def __init__(self, source: str = TF_STATIC):
        self.source = source  # the topic they come from, for messages
        self._refused = {}  # child frame: why its last transform was left out
        self._unreadable: List[str] = []  # messages that could not be read, why
        self._parent = {}  # child frame: (parent frame, rotation 3x3, translation 3)
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

    def add_message(self, transforms) -> List[str]:
        """Keep a TFMessage's transforms (geometry_msgs/TransformStamped, rclpy's or rosbags').

        Returns why each one left out was (set's ValueErrors), also added to `refused`.
        """
        refused = []
        for transform in transforms:
            t, q = transform.transform.translation, transform.transform.rotation
            child = frame_name(transform.child_frame_id)
            try:
                self.set(transform.header.frame_id, child,
                         (t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
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
        name = f'{self.source}: transform {parent!r} -> {child!r}'
        if not parent or not child or parent == child:
            raise ValueError(f'{name} does not join two different frames')
        numbers = [float(v) for v in (*translation, *rotation_xyzw)]
        if len(numbers) != 7 or not all(map(math.isfinite, numbers)):
            raise ValueError(f'{name} is not 7 finite numbers: {numbers}')
        length2 = sum(q * q for q in numbers[3:])
        if abs(length2 - 1.0) > QUATERNION_TOLERANCE:
            raise ValueError(f'{name} has a rotation quaternion of squared length '
                             f'{length2:.4g}, not 1: normalise it (tf2 refuses it too)')
        rotation = Rotation.from_quat(numbers[3:]).as_matrix()
        with self._lock:
            if child in self._ancestors(parent):
                raise ValueError(f'{name} would close a loop ({child!r} is already above '
                                 f'{parent!r}): the frames must form a tree')
            self._parent[child] = (parent, rotation, np.array(numbers[:3]))
            self._refused.pop(child, None)

    def pose(self, frame: str, in_frame: str):
        """Return (R, t), the pose of `frame` in `in_frame` (p_in = R p + t), or None.

        None when no chain of transforms links them.
        """
        frame, in_frame = frame_name(frame), frame_name(in_frame)
        with self._lock:
            up, down = self._ancestors(frame), self._ancestors(in_frame)
        common = next((f for f in up if f in down), None)
        if common is None:
            return None
        (r_up, t_up), (r_down, t_down) = up[common], down[common]
        return r_down.T @ r_up, r_down.T @ (t_up - t_down)

    def _ancestors(self, frame):
        """{ancestor: pose of `frame` in it}, from `frame` itself up to the root."""
        rotation, translation = np.eye(3), np.zeros(3)
        chain = {frame: (rotation, translation)}
        while frame in self._parent:
            frame, r, t = self._parent[frame]
            if frame in chain:  # a loop: the transforms are not a tree
                break
            rotation, translation = r @ rotation, r @ translation + t
            chain[frame] = (rotation, translation)
        return chain


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

    def newest_stamp(self) -> Optional[int]:
        """Return the stamp (ns) of the newest twist kept, or None."""
        with self._lock:
            return self._stamps[-1] if self._stamps else None

    def add(self, stamp_ns: int, twist: Sequence[float], frame_id: str) -> None:
        """Keep the twist (linear m/s, angular rad/s) of frame `frame_id` at stamp_ns."""
        with self._lock:
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
