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
# Seconds of twists kept before the newest (a frame looks up its stamp after inference).
HISTORY_S = 5.0


class CameraMotionUnavailable(ValueError):
    """No twist gives the camera's motion at an image (the message says why)."""


class CameraMotionHistory:
    """Twists of the camera by stamp, thread-safe: `add` from a callback, `at` per image.

    `source` names where they come from (a topic) in messages; `keep_s` bounds how far
    back they are kept (None: all, for a recorded bag).
    """

    def __init__(self, source: str, keep_s: Optional[float] = HISTORY_S):
        self.source = source
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
        of the image's `frame_id`, 6 finite numbers, no faster than MAX_SPEED and
        MAX_TURN, and not off the one before it by more than the MAX_*ACCELERATION (with
        JUMP_FLOOR) allow. The message says why the nearest was not usable.
        """
        with self._lock:
            k = bisect.bisect_left(self._stamps, stamp_ns)
            near = sorted((i for i in (k - 1, k) if 0 <= i < len(self._stamps)),
                          key=lambda i: abs(self._stamps[i] - stamp_ns))
            if not near:
                raise CameraMotionUnavailable(f'no message on {self.source} yet')
            candidates = [(abs(self._stamps[i] - stamp_ns), self._rows[i],
                           (self._stamps[i] - self._stamps[i - 1]) * 1e-9 if i else 0.0,
                           self._rows[i - 1] if i else None) for i in near]
        reason = None
        for gap_ns, (twist, child), step_s, before in candidates:
            problem = self._problem(stamp_ns, frame_id, gap_ns, twist, child, step_s, before)
            if problem is None:
                return CameraMotion(twist[:3], twist[3:])
            reason = reason or problem
        raise CameraMotionUnavailable(reason)

    def _problem(self, stamp_ns, frame_id, gap_ns, twist, child, step_s, before):
        """Why this twist cannot give the camera's motion at the image; None if it can."""
        if gap_ns > MAX_GAP_S * 1e9:
            return (f'{self.source} has no message within {MAX_GAP_S:g} s of the image stamped '
                    f'{stamp_ns * 1e-9:.3f} s (nearest {gap_ns * 1e-9:.3f} s away)')
        if child != frame_id:
            return (f'{self.source} gives the motion of {child!r}, not of the camera\'s optical '
                    f'frame {frame_id!r}: it needs the camera\'s own odometry (child_frame_id = '
                    'the images\' frame_id, twist in that frame)')
        if not all(map(math.isfinite, twist)):
            return f'{self.source}: a twist that is not finite: {twist}'
        if math.hypot(*twist[:3]) > MAX_SPEED or math.hypot(*twist[3:]) > MAX_TURN:
            return (f'{self.source}: a twist faster than a camera moves ({MAX_SPEED:g} m/s, '
                    f'{MAX_TURN:g} rad/s): {twist}')
        if before is not None and before[1] == child and step_s > 0:
            jump = math.hypot(*(a - b for a, b in zip(twist[:3], before[0][:3])))
            turn = math.hypot(*(a - b for a, b in zip(twist[3:], before[0][3:])))
            if jump > max(MAX_ACCELERATION * step_s, JUMP_FLOOR) \
                    or turn > max(MAX_ANGULAR_ACCELERATION * step_s, JUMP_FLOOR):
                return (f'{self.source}: a twist {jump:.2f} m/s, {turn:.2f} rad/s off the one '
                        f'{step_s:.3f} s before it: a glitch')
        return None
