"""The camera's own motion at an image's stamp, from odometry messages (no ROS imports).

A robot's odometry (or a visual-inertial odometry of the camera) comes at its own rate;
the tracker wants the camera's motion at each image (core.tracking.CameraMotion). The
history keeps the recent twists by stamp and gives the nearest one within MAX_GAP_S of
the image, if its frame is the image's: a twist is in its message's child frame, and
turning one from a robot's base into the camera's optical frame would need the camera's
mounting, which is not handled here (the node and `depthdet eval` take the camera's own
odometry). The node and the bag evaluation share it.
"""
import bisect
import math
import threading
from typing import List, Optional, Sequence

import numpy as np

from depthdet_ros.core.tracking import CameraMotion

# Farthest a twist's stamp may be from an image's for it to give the camera's motion (s).
MAX_GAP_S = 0.2
# Fastest a camera is taken to move (m/s) and turn (rad/s): a twist beyond is a glitch
# (outsider round 40: 1e200 m/s made every frame fail), refused as a missing one.
MAX_SPEED = 100.0
MAX_TURN = 20.0
# Fastest change of the camera's velocity from the message before (m/s^2; angular rad/s^2):
# a robot braking hard changes it by 1 m/s in 0.1 s; a lone sample 5 m/s off its
# neighbour is a glitch, which would carry every track off its depths (outsider round 40).
MAX_ACCELERATION = 30.0
MAX_ANGULAR_ACCELERATION = 30.0


class CameraMotionUnavailable(ValueError):
    """No twist gives the camera's motion at an image (the message says why)."""


class CameraMotionHistory:
    """Twists of the camera by stamp, thread-safe: `add` from a callback, `at` per image.

    `source` names where they come from (a topic) in messages; `size` bounds how many
    are kept (the oldest go first; None: all, for a recorded bag).
    """

    def __init__(self, source: str, size: Optional[int] = 1000):
        self.source = source
        self._size = size
        self._stamps: List[int] = []
        self._rows: List[tuple] = []  # (twist 6 floats, frame id), in stamp order
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._stamps)

    def add(self, stamp_ns: int, twist: Sequence[float], frame_id: str) -> None:
        """Keep the twist (linear m/s, angular rad/s) of frame `frame_id` at stamp_ns."""
        with self._lock:
            k = bisect.bisect_right(self._stamps, stamp_ns)
            self._stamps.insert(k, stamp_ns)
            self._rows.insert(k, (tuple(float(v) for v in twist), frame_id))
            if self._size is not None and len(self._stamps) > self._size:
                del self._stamps[0], self._rows[0]

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._rows.clear()

    def at(self, stamp_ns: int, frame_id: str) -> CameraMotion:
        """Return the camera's motion at an image; CameraMotionUnavailable if none fits.

        The nearest twist in time, within MAX_GAP_S, whose frame is the image's
        `frame_id`; a twist that is not 6 finite numbers, faster than MAX_SPEED or
        MAX_TURN, or off the one before it by more than the MAX_*ACCELERATION allow, is
        refused too.
        """
        with self._lock:
            k = bisect.bisect_left(self._stamps, stamp_ns)
            near = [i for i in (k - 1, k) if 0 <= i < len(self._stamps)]
            if not near:
                raise CameraMotionUnavailable(f'no message on {self.source} yet')
            best = min(near, key=lambda i: abs(self._stamps[i] - stamp_ns))
            gap_ns = abs(self._stamps[best] - stamp_ns)
            twist, child = self._rows[best]
            step_s = (self._stamps[best] - self._stamps[best - 1]) * 1e-9 if best else 0.0
            before, before_child = self._rows[best - 1] if best else (None, None)
        if gap_ns > MAX_GAP_S * 1e9:
            raise CameraMotionUnavailable(
                f'{self.source} has no message within {MAX_GAP_S:g} s of the image stamped '
                f'{stamp_ns * 1e-9:.3f} s (nearest {gap_ns * 1e-9:.3f} s away)')
        if child != frame_id:
            raise CameraMotionUnavailable(
                f'{self.source} gives the motion of {child!r}, not of the camera\'s optical '
                f'frame {frame_id!r}: it needs the camera\'s own odometry (child_frame_id = '
                'the images\' frame_id, twist in that frame)')
        linear, angular = np.asarray(twist[:3]), np.asarray(twist[3:])
        if not (np.isfinite(linear).all() and np.isfinite(angular).all()):
            raise CameraMotionUnavailable(f'{self.source}: a twist that is not finite: {twist}')
        if math.hypot(*linear) > MAX_SPEED or math.hypot(*angular) > MAX_TURN:
            raise CameraMotionUnavailable(
                f'{self.source}: a twist faster than a camera moves ({MAX_SPEED:g} m/s, '
                f'{MAX_TURN:g} rad/s): {twist}')
        if before_child == child and step_s > 0:
            jump = math.hypot(*(a - b for a, b in zip(twist[:3], before[:3])))
            turn = math.hypot(*(a - b for a, b in zip(twist[3:], before[3:])))
            if jump > MAX_ACCELERATION * step_s or turn > MAX_ANGULAR_ACCELERATION * step_s:
                raise CameraMotionUnavailable(
                    f'{self.source}: a twist {jump:.2f} m/s, {turn:.2f} rad/s off the one '
                    f'{step_s:.3f} s before it: a glitch')
        return CameraMotion(twist[:3], twist[3:])
