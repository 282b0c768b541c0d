"""Objects through time: stable track IDs, smoothed 3D, velocity, time to contact, alerts.

A stage after fusion: `Tracker.update(objects, stamp)` takes one frame's
ObjectEstimates (FrameResult.objects) and its stamp in seconds, and returns a
TrackedObject per input object but duplicates (below), in the same order.

Association: every track's box and 3D position are predicted to its stamp; a
detection may join a track of the same class whose predicted box overlaps it by at
least `min_iou` and, when both have a 3D position, whose predicted position is
within the `gate_probability` ellipsoid of the innovation covariance (Mahalanobis
gate). Outside the gate, a detection whose box overlaps the track's by at least
OUTLIER_MIN_IOU still joins it as a depth outlier (monocular depth often jumps to
another surface in the box for a frame): the 3D state ignores it, unless
MAX_DEPTH_OUTLIERS come in a row, which restart it. Among the allowed pairs, scipy's
linear_sum_assignment minimises (1 - IoU) + Mahalanobis^2 / gate (+ 1 outside the
gate), so a detection at the track's depth wins over one at another depth. A pair
outside the 3D gate only across the viewing ray (its depth inside the gate's depth
bounds: the prediction drifted sideways, as when the camera stops turning) is no depth
outlier: it updates the 3D state. Unmatched
detections start tentative tracks, confirmed after `min_hits` matched frames; a
track not matched for more than `max_age` seconds is deleted, so missed detections
and short occlusions keep the ID. A tentative track is deleted sooner, once it has
missed a frame and been unmatched for more than `tentative_max_age` seconds (0: after
its first miss, DeepSORT's rule), unless its last box was cut by the image border (as
the expansion rate takes it, below, with BORDER_RELEASE_PX; an object coming into view
is detected on and off at first): a one-off box around an object already tracked (a
person's torso box, a loose box around a few items) would otherwise live on for
max_age and take the object's next detections in turn with its track. Its alert, if
any, goes with it (a box seen once or twice is more often a false detection than a
near object missed for a frame). An unmatched track whose box overlaps a matched
track of the same class by DUPLICATE_IOU is folded into it, keeping the older ID.
Stamps going backwards by more than TIME_BACK_S (a bag looped, a camera restarted, a
simulation reset) start over; a frame stamped less far back came late (reordered in
transport or in a recording) and is taken at the newest stamp, with the camera motion
in hand (its own is older), so every track goes on (`late_frames` counts them): its
boxes and depths are compared with where each track was when the frame was taken
(constant velocity back over the lag, the camera's motion over it too, the unknown
acceleration over it added to the measurement noise), so an
object approaching is not pulled back by its older reading; what it returns is the
tracks' state at the newest stamp, the freshest there is. More than MAX_LATE_IN_A_ROW
such frames in a row are a new timeline (a bag of a second or less played in a loop),
which starts over too: the tracker's clock must not stop. A frame at the newest stamp
again is another image of the same moment (nothing ages; it counts as a hit). The node
and the bag tools leave copies of images (two publishers on a topic, core.copies) out,
and take the stamps through a FrameClock, which goes on by the images' arrival where a
camera stamps several images alike (or leaves the stamp 0).

Duplicates: before association, two detections of one class are the same object
detected twice when the smaller box lies at least `duplicate_overlap` inside the other
(intersection over the smaller box), their depths differ by at most
`duplicate_depth_tolerance` of the larger one and both or neither raise the per-frame
proximity alert; the lower-scoring one is dropped, whichever box is larger. The
detector keeps a person's torso box beside the whole person's (IoU about 0.4, under
its NMS threshold), a thin pole's fragments beside the whole pole, a loose box around
a few items beside the item's own; two tracks would take turns on that object.
Objects without a finite positive depth are never duplicates (a person behind another
is not one), nor is a pair of which only one is near enough to alert (the alert must
not go with the dropped box). Greedy in score order, as NMS: a dropped box drops
nothing else. Which twin is kept follows the scores, so a track may get the torso box
one frame and the whole box the next: a jump in box size, which the 'depth'
time-to-contact source ignores and 'expansion' reads as motion.

Re-identification: given the frame's image (`update(..., image=)`), each track keeps
an appearance (core.appearance, a colour histogram of its box: a running average
refreshed every APPEARANCE_REFRESH_S from boxes the image border does not cut). A
confirmed track deleted after max_age stays in a gallery for `reid_max_age` seconds;
a detection no track matched takes back the ID of the gallery track of its class it
looks most like (similarity at least `reid_min_similarity`; an assignment over all
pairs), as a new track that is tentative until min_hits matches like any other, with
its filters started again. A young track that took no ID looks again on each frame
until it is confirmed, from boxes the border does not cut (an object coming back into
view is cut at first), and may then take one: a tentative track's ID can change. So an
object that left the view, or that the detector missed for longer than max_age, keeps
its ID. There is no position gate: the camera may have moved meanwhile. Objects of one
class with the same colours (two identical cups) can take each other's IDs; grey
objects (and every object of a mono camera) have no descriptor and are never
re-identified.

Filters: a constant-velocity Kalman filter per track in the camera optical frame
(state: position and velocity, white-acceleration process noise) and another on the
box (centre in pixels, inverse width and height, and their rates). The depth
measurement's noise is the object's published covariance (its depth spread along the
viewing ray, pixel noise across it) plus a floor of `depth_sigma_floor` x depth
along the ray, so an uncertain depth moves the estimate less. Without camera
intrinsics the depth alone updates z; without a valid depth only the box is updated
and the 3D state coasts, but never closer than MIN_PREDICTED_DEPTH; a 3D state no depth
has updated for max_age is no longer published (depth, distance and time to contact
unknown) and ends its proximity alert, while its box may still match. No maintained
library fits these filters (filterpy is unmaintained and per-object; these are a few
lines of numpy, batched over tracks), so they are written here.

Velocity is d/dt of the optical-frame position, i.e. relative to the camera: a
moving camera's own motion shows up as the velocity of static objects. Given the
camera's motion on every frame (`update(..., camera_motion=)`: its velocity and
angular velocity in its optical frame, e.g. from a robot's odometry), the 3D filter's
velocity is the object's own instead, zero at a track's start (most things stand
still): the prediction moves each track by the camera's motion, and the published
velocity and closing speed are the object's less the camera's. A static object's
closing speed is then known from its first frame, and its time to contact is as good as
its depth. Tracks without x, y (no intrinsics) take the camera's motion along z only.
The 3D filter is then two, mixed as an interacting multiple model (IMM): a steady one
for objects that keep their own velocity (standing still, or walking straight), with
little process noise, so noisy depths hardly move a static object's closing speed, and
the usual one for objects that stop, turn or speed up; each frame weighs them by how
well each foresaw the measurement. The manoeuvring one gates association, as the steady
one is too sure of an object that starts to move. If frames without the camera's motion
come (odometry lost), the last motion serves for CAMERA_MOTION_HOLD_S; after that the
velocities turn relative to the camera until the motion comes back.

Time to contact is the distance to the object's surface point over its closing speed (the
rate at which that distance shrinks), infinite when it is not closing faster than
`min_closing_speed`. `ttc_source` picks where the closing rate comes from: 'depth'
(the 3D filter), 'expansion' (the box growing: an object twice as near looks twice
as big, so this needs no metric depth and works without a valid depth too) or
'fused' (both, weighted by their variances). A box cut by the image border
(`image_size` given to update) does not grow with nearness along the cut axis: a
person walking at a low camera loses the head above the top edge long before the
width stops growing. The expansion rate uses only the axes the track's last
detection left uncut, and is unknown when both are cut; a size that leaves the border
(both edges more than BORDER_RELEASE_PX from it) starts its rate again: while cut it grew
as the object came into view.

A track in alert that a frame's detections do not match (the detector missed it, or
called it another class, for a frame) keeps its alert for up to alert_hold seconds
after its last match (and never past its deletion after max_age): `held_alerts()`
returns them after each update, at their predicted state, for the safety topic, where
an object must not drop out and come back. Longer holds mostly kept alerts for false
detections and objects gone from view (docs/development_notes.md, session 10).

Alerts, each naming the rule that fired: 'proximity' once the (smoothed) depth is
below the class threshold, until it rises above threshold + alert_hysteresis;
'time_to_contact' once a track with at least min_hits updates (3D updates for the
'depth' source) closes faster than twice its closing rate's standard deviation and
has a time to contact below alert_time_to_contact, until it exceeds it +
ttc_hysteresis.
"""
import functools
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import chdtri

from depthdet_ros.core import appearance
from depthdet_ros.core.types import Box, iou_matrix, ObjectEstimate, Point3D

PROXIMITY = 'proximity'
TIME_TO_CONTACT = 'time_to_contact'
TTC_SOURCES = ('depth', 'expansion', 'fused')
# Variance of a coordinate nothing has measured yet (x, y from a depth-only update).
_UNKNOWN_VARIANCE = 1e6
# Cost of a pair the gates forbid; anything at or above it is dropped after assignment.
_FORBIDDEN = 1e6
# Least IoU with which a detection whose depth is outside a track's gate still joins
# it, as a depth outlier.
OUTLIER_MIN_IOU = 0.5
MAX_DEPTH_OUTLIERS = 3
# Box overlap at which an unmatched track is taken for a duplicate of a matched one.
DUPLICATE_IOU = 0.7
_RULES = {(False, False): (), (True, False): (PROXIMITY,), (False, True): (TIME_TO_CONTACT,),
          (True, True): (PROXIMITY, TIME_TO_CONTACT)}
# Box sizes are filtered as INVERSE_SIZE / pixels (about 1 for a 100 px box).
INVERSE_SIZE = 100.0
_MIN_INVERSE = 1e-3
# Least depth (m) a prediction reaches: see Tracker._predict.
MIN_PREDICTED_DEPTH = 0.05
# A box edge this near the image border (px) is taken as cut by it.
BORDER_MARGIN_PX = 1.0
# A track's cut axis counts as whole again only once its edges are this far from the
# border (px): a detector's edge wobbles by a few pixels, and an edge 1-3 px in was
# still cut (outsider round 29: a receding person coming into view read as approaching).
BORDER_RELEASE_PX = 4.0
# A track's appearance is refreshed from a detection at most this often (s), each time
# with this weight in its running average.
APPEARANCE_REFRESH_S = 0.5
APPEARANCE_WEIGHT = 0.3
# Most deleted tracks kept for re-identification (the newest).
REID_GALLERY_SIZE = 100
# With the camera's motion given, each 3D track is two filters mixed (an interacting
# multiple model): one for objects that speed up, stop and turn (accel_noise) and one for
# objects that keep their own velocity, most of them standing still (STEADY_ACCEL_NOISE,
# m/s^2). An object keeps its kind for MODE_HOLD_S seconds on average; a new track is
# either at first (START_STEADY).
STEADY_ACCEL_NOISE = 0.1
MODE_HOLD_S = 2.0
START_STEADY = 0.5
# A stamp more than this (s) before the newest starts a new timeline; a nearer one is a
# message that came late (core.odometry treats its messages alike).
TIME_BACK_S = 1.0
# Late frames come one at a time (a frame swapped with the next); this many in a row are
# the start of a new timeline.
MAX_LATE_IN_A_ROW = 2
# Seconds the last camera motion stands in for frames given none (odometry late or lost).
CAMERA_MOTION_HOLD_S = 0.5
_POSITION = slice(0, 3)  # 3D filter: position measured
_DEPTH = slice(2, 3)  # 3D filter: depth (z) alone
_EYE3 = np.eye(3)
_Z_AXIS = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CameraMotion:
    """The camera's own motion at a frame, in its optical frame (x right, y down, z ahead).

    linear: velocity of the optical frame's origin (m/s); angular: angular velocity
    (rad/s). A robot's odometry twist turned into the camera's frame gives both.
    """

    linear: Tuple[float, float, float]
    angular: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    def vectors(self) -> Tuple[np.ndarray, np.ndarray]:
        """(linear, angular) as float arrays; ValueError unless both are 3 finite numbers."""
        out = []
        for name in ('linear', 'angular'):
            try:
                value = np.asarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                value = None
            if value is None or value.shape != (3,) or not np.isfinite(value).all():
                raise ValueError(f'camera_motion.{name} must be 3 finite numbers, got '
                                 f'{getattr(self, name)!r}')
            out.append(value)
        return out[0], out[1]


def _camera_part(motion, position, located):
    """Velocity each point gets in the camera's frame from the camera's own motion, negated.

    v + w x p for points with x, y (`located`); the camera's velocity along z alone for a
    depth alone (its x, y unknown). An object's velocity relative to the camera is its own
    less this.
    """
    linear, angular = motion
    part = linear + np.where(located[:, None], np.cross(angular, position), 0.0)
    part[~located, :2] = 0.0
    return part


def _rotation(rotation_vector: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis times angle, rad): Rodrigues' formula."""
    angle = float(np.linalg.norm(rotation_vector))
    if angle < 1e-12:
        return np.eye(3)
    k = rotation_vector / angle
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)


@dataclass
class TrackerConfig:
    """Association, birth/death, filter and alert settings (changeable between frames)."""

    min_hits: int = 3  # matched frames before a track is confirmed
    max_age: float = 1.0  # s without a match before a track is deleted
    min_iou: float = 0.1  # least IoU of a detection with a track's predicted box
    gate_probability: float = 0.999  # 3D gate: share of true matches kept (chi-square)
    accel_noise: float = 2.0  # m/s^2, 1-sigma white acceleration of objects (3D filter)
    init_velocity_sigma: float = 1.5  # m/s, prior 1-sigma velocity of a new track
    depth_sigma_floor: float = 0.1  # least 1-sigma depth noise, share of the depth
    box_noise: float = 0.05  # box measurement 1-sigma, share of the box size
    box_accel_noise: float = 0.5  # box sizes/s^2 (relative on sizes), box motion
    min_closing_speed: float = 0.1  # m/s; slower closing means no time to contact
    alert_hysteresis: float = 0.1  # m beyond the threshold before a proximity alert ends
    alert_time_to_contact: float = 2.0  # s; alert below this time to contact (0: off)
    ttc_hysteresis: float = 0.5  # s beyond alert_time_to_contact before that alert ends
    alert_hold: float = 0.5  # s an alert stays on for a track missing detections (0: off)
    ttc_source: str = 'depth'  # closing rate from 'depth', box 'expansion', or 'fused'
    reid_max_age: float = 20.0  # s a deleted track can be re-identified by appearance (0: off)
    reid_min_similarity: float = 0.8  # least appearance similarity (0-1) to re-identify
    duplicate_overlap: float = 0.8  # share of a box inside another for a duplicate (0: off)
    duplicate_depth_tolerance: float = 0.1  # depth difference of duplicates, share of depth
    tentative_max_age: float = 0.0  # s a young track lives unmatched (0: 1st miss; >= max_age off)

    def validate(self):
        """Raise ValueError naming the first invalid setting."""
        checks = (
            ('min_hits', self.min_hits >= 1 and int(self.min_hits) == self.min_hits, '>= 1'),
            ('max_age', self.max_age > 0, '> 0 s'),
            ('tentative_max_age', self.tentative_max_age >= 0, '>= 0 s'),
            ('min_iou', 0 <= self.min_iou < 1, 'in [0, 1)'),
            ('gate_probability', 0 < self.gate_probability < 1, 'in (0, 1)'),
            ('accel_noise', self.accel_noise >= 0, '>= 0 m/s^2'),
            ('init_velocity_sigma', self.init_velocity_sigma >= 0, '>= 0 m/s'),
            ('depth_sigma_floor', self.depth_sigma_floor >= 0, '>= 0'),
            ('box_noise', self.box_noise > 0, '> 0'),
            ('box_accel_noise', self.box_accel_noise >= 0, '>= 0'),
            ('min_closing_speed', self.min_closing_speed >= 0, '>= 0 m/s'),
            ('alert_hysteresis', self.alert_hysteresis >= 0, '>= 0 m'),
            ('alert_time_to_contact', self.alert_time_to_contact >= 0, '>= 0 s (0: off)'),
            ('ttc_hysteresis', self.ttc_hysteresis >= 0, '>= 0 s'),
            ('alert_hold', self.alert_hold >= 0, '>= 0 s (0: off)'),
            ('reid_max_age', self.reid_max_age >= 0, '>= 0 s (0: off)'),
            ('reid_min_similarity', 0 < self.reid_min_similarity <= 1, 'in (0, 1]'),
            ('duplicate_overlap', 0 <= self.duplicate_overlap <= 1, 'in [0, 1] (0: off)'),
            ('duplicate_depth_tolerance', 0 <= self.duplicate_depth_tolerance <= 1,
             'in [0, 1]'))
        if self.ttc_source not in TTC_SOURCES:
            raise ValueError(f'ttc_source must be one of {", ".join(TTC_SOURCES)}, '
                             f'got {self.ttc_source!r}')
        for name, ok, rule in checks:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
                raise ValueError(f'{name} must be {rule}, got {value!r}')


@dataclass(slots=True)
class TrackedObject:
    """One object of a frame with its track: smoothed values beside the raw estimate.

    A read-only record by convention: not frozen, as a frozen dataclass costs four
    times as much to build and the tracker builds one per object per frame.

    depth (smoothed z), position, velocity (optical frame, m and m/s) and their 3x3
    covariances are None / NaN until the track has a 3D measurement; position and
    velocity also need camera intrinsics. time_to_contact is NaN when unknown and
    inf when the object is not closing. alert_rules lists the rules that fired.
    """

    track_id: int
    confirmed: bool
    hits: int  # matched frames so far
    raw: ObjectEstimate  # this frame's estimate, unchanged
    box: Box  # filtered box
    depth: float
    position: Optional[Point3D]
    velocity: Optional[Point3D]
    covariance: Optional[np.ndarray]
    velocity_covariance: Optional[np.ndarray]
    distance: float  # m from the camera to the smoothed position, NaN unknown
    closing_speed: float  # m/s, positive when approaching, NaN unknown
    time_to_contact: float
    alert_rules: Tuple[str, ...]
    held: bool = False  # not matched this frame: an alert held (Tracker.held_alerts)
    depth_variance: float = math.nan  # of the smoothed depth (m^2), NaN without a 3D state

    @property
    def alert(self) -> bool:
        return bool(self.alert_rules)

    @property
    def detection(self):
        return self.raw.detection


@functools.lru_cache(maxsize=32)
def _constant_velocity(dt: float, dims: int):
    """Transition F and unit-variance white-acceleration noise Q for `dims` axes."""
    eye = np.eye(dims)
    F = np.block([[eye, dt * eye], [np.zeros((dims, dims)), eye]])
    Q = np.block([[dt ** 4 / 4 * eye, dt ** 3 / 2 * eye], [dt ** 3 / 2 * eye, dt ** 2 * eye]])
    return F, Q


def _observed(x, P, axes: slice, lag: float = 0.0):
    """H x, P H^T and H P H^T of a measurement of 3D states' x[:, axes] taken lag s ago.

    x (K,6), P (K,6,6): positions then velocities. H picks the axes (lag 0), less lag
    times their velocities (where constant velocity puts them lag s earlier).
    """
    if not lag:
        PHt = P[:, :, axes]
        return x[:, axes], PHt, PHt[:, axes]
    rates = slice(axes.start + 3, axes.stop + 3)
    PHt = P[:, :, axes] - lag * P[:, :, rates]
    return x[:, axes] - lag * x[:, rates], PHt, PHt[:, axes] - lag * PHt[:, rates]


def _kf_update(x, P, z, R, axes: slice, lag: float = 0.0, observed=None, S_inverse=None):
    """Batched Kalman update of 3D states with a measurement of x[:, axes] (_observed).

    x (K,6), P (K,6,6), z (K,m), R (K,m,m), with m the length of `axes`; `observed`
    and S_inverse, _observed's values and the inverse innovation covariances, if the
    caller has them.
    """
    predicted, PHt, HPHt = observed or _observed(x, P, axes, lag)
    innovation = z - predicted
    # inv + matmul: cheaper than solve on a few dozen small matrices.
    if S_inverse is None:
        S_inverse = np.linalg.inv(HPHt + R)
    gain = PHt @ S_inverse
    x = x + (gain @ innovation[..., None])[..., 0]
    P = P - gain @ np.swapaxes(PHt, 1, 2)
    return x, 0.5 * (P + np.swapaxes(P, 1, 2))


def _lag_noise(accel_noise: float, lag: float) -> np.ndarray:
    """Position covariance (3x3) that the unknown acceleration adds over lag seconds."""
    return accel_noise ** 2 * _constant_velocity(lag, 3)[1][:3, :3]


def _mixture(p, x, P):
    """Mean and covariance of Gaussian mixtures: p (k, m), x (k, m, n), P (k, m, n, n)."""
    mean = np.einsum('km,kma->ka', p, x)
    spread = x - mean[:, None]
    covariance = np.einsum('km,kmab->kab', p, P)
    return mean, covariance + np.einsum('kma,kmb->kab', p[..., None] * spread, spread)


@functools.lru_cache(maxsize=8)
def _gates(probability: float) -> Tuple[float, float]:
    """Chi-square thresholds holding `probability` of true matches, 3 and 1 dof."""
    return float(chdtri(3, 1.0 - probability)), float(chdtri(1, 1.0 - probability))


def _box_vectors(xyxy):
    """Box filter measurements of Nx4 boxes: centre (px), inverse width and height.

    Inverse sizes are INVERSE_SIZE / px. An object's image size is inversely
    proportional to its depth, so the inverse size changes at a constant rate when
    the object approaches at a constant speed: what a constant-velocity filter
    models without lag.
    """
    size = np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1.0)
    return np.concatenate([0.5 * (xyxy[:, :2] + xyxy[:, 2:]), INVERSE_SIZE / size], axis=1)


def _xyxy(state):
    """Nx4 boxes from Nx(>=4) [cx, cy, inverse w, inverse h, ...] states."""
    half = (0.5 * INVERSE_SIZE) / np.maximum(state[:, 2:4], _MIN_INVERSE)
    return np.concatenate([state[:, :2] - half, state[:, :2] + half], axis=1)


def _box_at(state, lag: float):
    """Nx4 box measurements lag s before Nx8 box states (constant rates back over lag)."""
    return state[:, :4] - lag * state[:, 4:]


def _box_units(state):
    """Nx4 units of the box filter's axes: box size (px) for the centre, the values else."""
    units = np.empty((len(state), 4))
    units[:, 2:] = np.maximum(state[:, 2:4], _MIN_INVERSE)
    units[:, 0] = INVERSE_SIZE / np.sqrt(units[:, 2] * units[:, 3])
    units[:, 1] = units[:, 0]
    return units


class _Measurements:
    """One frame's detections as arrays: boxes, 3D or depth-only measurements."""

    def __init__(self, objects: Sequence[ObjectEstimate], config: TrackerConfig,
                 class_codes: Dict[str, int], image_size: Optional[Tuple[int, int]]):
        n = len(objects)
        # One pass over the objects (classes as integer codes: cheaper to compare).
        rows, covariances = [], []
        for o in objects:
            box, position, size = o.detection.box, o.position, o.size
            located = position is not None and o.covariance is not None
            if located:
                covariances.append(o.covariance)
            rows.append((class_codes.setdefault(o.detection.class_name, len(class_codes)),
                         box.x1, box.y1, box.x2, box.y2, o.depth.depth, o.depth.spread,
                         located, *((position.x, position.y, position.z) if located
                                    else (0.0, 0.0, 1.0)),
                         *((size.x, size.y) if size else (0.0, 0.0)), o.detection.score,
                         o.alert))
        numbers = np.array(rows, dtype=np.float64).reshape(n, 15)
        self.score = numbers[:, 13]
        self.alert = numbers[:, 14] > 0
        self.classes = numbers[:, 0].astype(np.int64)
        self.xyxy = numbers[:, 1:5]
        self.boxes = _box_vectors(self.xyxy)
        # Axes (width, height) along which the box touches the image border, and those
        # with an edge within BORDER_RELEASE_PX of it.
        self.cut = np.zeros((n, 2), dtype=bool)
        self.near_border = np.zeros((n, 2), dtype=bool)
        if image_size is not None:
            corners = numbers[:, 1:5]
            far = np.asarray(image_size, np.float64)
            self.cut |= corners[:, :2] <= BORDER_MARGIN_PX
            self.cut |= corners[:, 2:] >= far - BORDER_MARGIN_PX
            self.near_border |= corners[:, :2] <= BORDER_RELEASE_PX
            self.near_border |= corners[:, 2:] >= far - BORDER_RELEASE_PX
        self.depth = depth = numbers[:, 5]
        ranged = np.isfinite(depth) & (depth > 0)
        # 3D position with covariance; one that is not finite, or not in front of the
        # camera, is not used (fusion never gives one; other callers might).
        located = numbers[:, 7] > 0
        covariance = np.zeros((n, 3, 3))
        if covariances:
            covariance[located] = covariances
        self.full = ranged & located & np.isfinite(numbers[:, 8:11]).all(axis=1) \
            & (numbers[:, 10] > 0) & np.isfinite(covariance).all(axis=(1, 2))
        self.depth_only = ranged & ~self.full  # depth without intrinsics
        self.z = np.zeros((n, 3))
        self.R = np.zeros((n, 3, 3))
        floor = config.depth_sigma_floor * depth
        full = self.full.nonzero()[0]
        if len(full):
            p, size = numbers[full, 8:11], numbers[full, 11:13]
            ray = p / p[:, 2:3]
            self.z[full] = p
            # Published covariance, the depth-noise floor along the ray, and the box's
            # noise across it (box_noise of the object's metric width and height).
            R = covariance[full] \
                + (floor[full] ** 2)[:, None, None] * ray[:, :, None] * ray[:, None, :]
            R[:, 0, 0] += (config.box_noise * size[:, 0]) ** 2
            R[:, 1, 1] += (config.box_noise * size[:, 1]) ** 2
            # A zero variance would make the filter trust one frame completely.
            self.R[full] = R + _EYE3 * 1e-8
        only = self.depth_only.nonzero()[0]
        if len(only):
            self.z[only, 2] = depth[only]
            # Only the z variance of a depth alone is ever read.
            self.R[only, 2, 2] = np.nan_to_num(numbers[only, 6]) ** 2 + floor[only] ** 2 + 1e-8


class FrameClock:
    """The stamps a Tracker takes for a camera's images: theirs, unless repeated.

    A camera that stamps several images alike (or leaves the stamp 0) would stop the
    tracker's clock: nothing would age, a lost object's track would never end nor its
    held alert drop. An image with the stamp of the one before is taken as long after
    it as it arrived after it (the node's receipt, a bag's record time); published
    outputs keep the image's own stamp.
    """

    def __init__(self):
        self._last = None  # (image stamp ns, stamp given s, arrival s)

    def __call__(self, stamp_ns: int, arrival_s: float) -> float:
        """Return the stamp (s) to track the image stamped stamp_ns, arrived at arrival_s.

        When stamps go on after a repeat, a stamp between the last one and where arrivals
        took the clock is given that clock: not a late frame of the few ms in between.
        """
        last, own = self._last, stamp_ns * 1e-9
        if last is None:
            at = own
        elif stamp_ns == last[0]:
            at = last[1] + max(arrival_s - last[2], 0.0)
        else:
            at = last[1] if last[0] * 1e-9 < own < last[1] else own
        self._last = (stamp_ns, at, arrival_s)
        return at


class Tracker:
    """Multi-object tracker over frames of one camera (see the module doc).

    Tracks are stored as arrays (one row per track) so that prediction, gating and
    updates run batched over all tracks.
    """

    def __init__(self, config: Optional[TrackerConfig] = None):
        self.config = config or TrackerConfig()
        self.config.validate()
        self.reset()

    def reset(self):
        """Forget every track (IDs continue from where they were)."""
        self._stamp: Optional[float] = None
        # The camera's (linear, angular) velocity at the last stamp (None: not given, the
        # 3D velocities are relative) and the stamp it was given for.
        self._motion: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._motion_stamp = -math.inf
        self._interval_motion = None  # its mean over the last interval (prediction)
        self._next_id = getattr(self, '_next_id', 1)
        # Frames stamped before the newest, by less than TIME_BACK_S, since the start; and
        # how many of the last frames in a row were.
        self.late_frames = getattr(self, 'late_frames', 0)
        # Starts over on stamps going back (TIME_BACK_S, MAX_LATE_IN_A_ROW), since the start.
        self.restarts = getattr(self, 'restarts', 0)
        self._late_in_a_row = 0
        self._lag = 0.0  # s the frame being tracked was taken before the newest stamp
        self._class_codes: Dict[str, int] = getattr(self, '_class_codes', {})
        self.ids = np.zeros(0, dtype=np.int64)
        self.classes = np.zeros(0, dtype=np.int64)  # class codes (_class_codes)
        self.hits = np.zeros(0, dtype=np.int64)
        # Reached min_hits once: raising min_hits at run time does not make a track
        # young again (to be deleted at its first miss, and not remembered).
        self.was_confirmed = np.zeros(0, dtype=bool)
        self.hits_3d = np.zeros(0, dtype=np.int64)
        self.outliers = np.zeros(0, dtype=np.int64)  # consecutive depth outliers
        self.last_seen = np.zeros(0)
        self.last_3d = np.zeros(0)
        self.has_3d = np.zeros(0, dtype=bool)  # z (and velocity along it) initialised
        self.has_xy = np.zeros(0, dtype=bool)  # x, y measured too
        # When the track whose ID a track took back was deleted (NaN: an ID of its own):
        # a holder deleted again before confirmation returns the ID to the gallery with
        # that time, so reid_max_age runs from the last confirmed sighting.
        self.deleted_at = np.zeros(0)
        self.in_proximity = np.zeros(0, dtype=bool)
        self.in_ttc = np.zeros(0, dtype=bool)
        self.box_cut = np.zeros((0, 2), dtype=bool)  # last detection cut by the border
        # Box filter: [cx, cy, inverse w, inverse h] and their rates; the four axes are
        # independent (diagonal noises), so each covariance is the 2x2 of one axis,
        # stored as box_P[:, 0] position variance, [:, 1] covariance, [:, 2] rate variance.
        self.box_x = np.zeros((0, 8))
        self.box_P = np.zeros((3, 0, 4))
        self.x = np.zeros((0, 6))
        self.P = np.zeros((0, 6, 6))
        # With the camera's motion: the manoeuvring and steady filters of each 3D track,
        # their probabilities, and whether they hold (False: start them from x, P).
        self.mode_x = np.zeros((0, 2, 6))
        self.mode_P = np.zeros((0, 2, 6, 6))
        self.mode_p = np.zeros((0, 2))
        self.mode_ready = np.zeros(0, dtype=bool)
        # Appearance descriptors (core.appearance; zeros: none yet) and when each was
        # last looked at (-inf: never).
        self.appearance = np.zeros((0, appearance.SIZE))
        self.appearance_stamp = np.zeros(0)
        # Deleted confirmed tracks that can still be re-identified: ID, class code,
        # stamp of deletion and appearance of each.
        self.lost_ids = np.zeros(0, dtype=np.int64)
        self.lost_classes = np.zeros(0, dtype=np.int64)
        self.lost_stamps = np.zeros(0)
        self.lost_appearance = np.zeros((0, appearance.SIZE))
        # Per row: the ObjectEstimate of the track's last matched detection; and the
        # rows the last frame's objects went to (held_alerts holds the others' alerts).
        self._last_raw: List[ObjectEstimate] = []
        self._frame_rows = np.zeros(0, dtype=np.int64)
        # IDs of deleted tracks given back by the last update, and the indices of its
        # objects dropped as duplicates (for diagnostics).
        self.taken_back: List[int] = []
        self.dropped: List[int] = []

    def __len__(self):
        return len(self.ids)

    # ---- the stage ---------------------------------------------------------------

    def update(self, objects: Sequence[ObjectEstimate], stamp: float, max_depth: float,
               class_max_depth: Optional[Dict[str, float]] = None,
               image_size: Optional[Tuple[int, int]] = None,
               image: Optional[np.ndarray] = None,
               drop_duplicates: bool = True,
               camera_motion: Optional[CameraMotion] = None) -> List[TrackedObject]:
        """Track one frame's objects (stamp in seconds); a TrackedObject per object kept.

        Every object is kept but duplicates (duplicate_overlap, see the module doc), in
        input order; `dropped` lists the input indices of those dropped as duplicates.
        drop_duplicates False: the caller has dropped them (duplicates()); none is.

        max_depth and class_max_depth are the proximity thresholds (as in
        FusionConfig), passed per frame so run-time changes apply at once.
        image_size (width, height in pixels) lets the box expansion leave out sizes
        cut by the image border; without it no box is taken as cut. `image`, the
        frame's RGB uint8 pixels, gives the objects' appearance, by which a deleted
        track is re-identified (reid_max_age); without it none is; it also gives the
        image size when image_size is None. ValueError if it is not HxWx3 uint8.
        After the update, `taken_back` lists the IDs it gave back.
        `camera_motion`, the camera's own motion at this stamp, makes the 3D velocities
        the objects' own (see the module doc); a frame without it takes the last one for
        CAMERA_MOTION_HOLD_S, then the velocities turn relative until it comes back.
        ValueError if it is not finite.
        """
        if not math.isfinite(stamp):
            raise ValueError(f'stamp must be a finite number of seconds, got {stamp!r}')
        motion = camera_motion.vectors() if camera_motion is not None else None
        if image is not None:
            if not (isinstance(image, np.ndarray) and image.ndim == 3
                    and image.shape[2] == 3 and image.dtype == np.uint8):
                raise ValueError('image must be an HxWx3 uint8 RGB array, got '
                                 f'{getattr(image, "shape", None)} '
                                 f'{getattr(image, "dtype", type(image).__name__)}')
            if image_size is None:
                image_size = image.shape[1::-1]
        # NaN stands for unknown values throughout: comparisons with it are False.
        with np.errstate(invalid='ignore', divide='ignore'):
            return self._update(objects, float(stamp), max_depth, class_max_depth or {},
                                image_size, image, drop_duplicates, motion)

    def _update(self, objects, stamp, max_depth, class_max_depth, image_size, image,
                drop_duplicates, motion):
        self._lag = 0.0
        if self._stamp is not None and stamp < self._stamp:
            if self._stamp - stamp > TIME_BACK_S or self._late_in_a_row >= MAX_LATE_IN_A_ROW:
                self.restarts += 1
                self.reset()
            else:
                # A frame that came late: tracked at the newest stamp, its objects
                # compared with where the tracks were lag s ago; its camera motion is
                # older than the one in hand.
                self.late_frames += 1
                self._late_in_a_row += 1
                self._lag = self._stamp - stamp
                stamp, motion = self._stamp, None
        else:
            self._late_in_a_row = 0
        previous, self._stamp = self._stamp, stamp
        dt = 0.0 if previous is None else stamp - previous
        self.taken_back = []
        # min_hits lowered at run time confirms the tracks that now have enough hits.
        self.was_confirmed |= self.hits >= self.config.min_hits
        # Tracks unmatched for more than max_age by this stamp are gone before matching:
        # after a gap in the input (a stalled camera) nothing resumes an old track.
        self._remove_old(stamp, previous)
        confirmed_before = self.was_confirmed.copy()
        before, self._motion = self._motion, self._camera_motion(motion, stamp)
        # Over the interval the camera moved at about the mean of its motions at both ends.
        self._interval_motion = self._motion if before is None or self._motion is None else \
            tuple(0.5 * (a + b) for a, b in zip(before, self._motion))
        if dt > 0 and len(self):
            self._predict(dt)
        meas = _Measurements(objects, self.config, self._class_codes, image_size)
        self.dropped = _nested(meas.classes, meas.xyxy, meas.depth, meas.score, meas.alert,
                               self.config.duplicate_overlap,
                               self.config.duplicate_depth_tolerance) \
            if drop_duplicates else []
        if self.dropped:
            drop = set(self.dropped)
            objects = [o for i, o in enumerate(objects) if i not in drop]
            meas = _Measurements(objects, self.config, self._class_codes, image_size)
        track_of, outlier = self._associate(meas, stamp)
        matched = track_of >= 0
        rows = track_of[matched]
        det = matched.nonzero()[0]
        self._update_matched(rows, det, outlier[matched], meas, stamp)
        reid = image is not None and self.config.reid_max_age > 0
        if reid:
            self._refresh_appearance(rows, det, meas, stamp, image, ~confirmed_before[rows])
        new = (~matched).nonzero()[0]
        new_rows = self._birth(new, meas, stamp, image if reid else None)
        track_of[new] = new_rows
        for row, obj in zip(track_of.tolist(), objects):
            self._last_raw[row] = obj
        self._merge_duplicates(track_of)
        new_row = self._remove_old(stamp)  # the tracks folded into others
        if new_row is not None:
            track_of = new_row[track_of]
        self._frame_rows = track_of
        return self._outputs(objects, meas.depth, track_of, max_depth, class_max_depth)

    def _camera_motion(self, given, stamp):
        """Return the camera's motion this frame; turn the 3D velocities when it comes or goes.

        A frame without it (odometry late) takes the last one for CAMERA_MOTION_HOLD_S;
        after that the velocities become relative to the camera (the object's own less
        the camera's last motion), and the object's own again when the motion comes back,
        so that what is published goes on without a jump.
        """
        if given is not None:
            if self._motion is None:
                self._shift_velocities(given, 1.0)
            self._motion_stamp = stamp
            return given
        if self._motion is not None and stamp - self._motion_stamp > CAMERA_MOTION_HOLD_S + 1e-6:
            self._shift_velocities(self._motion, -1.0)
            return None
        return self._motion

    def _shift_velocities(self, motion, sign):
        """Add (sign 1: relative to own) or take off (-1) the camera's motion from velocities."""
        if not len(self):
            return
        self.x[:, 3:] += sign * _camera_part(motion, self.x[:, :3], self.has_xy)
        self.mode_ready[:] = False

    def held_alerts(self) -> List[TrackedObject]:
        """Return the tracks in alert that the last update's objects did not match.

        A detector misses an object for a frame, or calls it another class for one: its
        track lives on (until max_age) and its alert with it for up to alert_hold s
        after the last match, which a safety consumer must not see drop and return.
        Each is a TrackedObject at the track's predicted state for the last stamp, with
        `raw` its last matched estimate and `held` set; its alert rules stay as they
        were (no measurement to end them).
        """
        alerted = self.in_proximity | self.in_ttc
        alerted[self._frame_rows] = False
        if len(alerted):
            # 1 us of slack: stamps a whole number of frame periods apart are not exact.
            alerted &= self._stamp - self.last_seen <= self.config.alert_hold + 1e-6
        rows = alerted.nonzero()[0]
        if not len(rows):
            return []
        raw = [self._last_raw[r] for r in rows.tolist()]
        raw_depth = np.array([o.depth.depth for o in raw], dtype=np.float64)
        with np.errstate(invalid='ignore', divide='ignore'):
            values = self._values(rows, raw_depth)
        return self._records(rows, raw, values, held=True)

    # ---- steps -------------------------------------------------------------------

    def _predict(self, dt):
        config = self.config
        F, Q = _constant_velocity(dt, 3)
        if self._motion is None:
            self.mode_ready[:] = False  # the camera's motion is needed to mix them
            # A track closing so fast that it would pass MIN_PREDICTED_DEPTH by this
            # stamp stops closing (SORT's rule for a box area predicted through zero):
            # whatever the camera still sees is in front of it, and a coasting track (no
            # depth for a few frames) must not be published at a depth of zero or
            # behind the camera.
            through = self.x[:, 2] + dt * self.x[:, 5] < MIN_PREDICTED_DEPTH
            self.x[through, 5] = 0.0
            self.x = self.x @ F.T
            self.P = F @ self.P @ F.T
            self.P += config.accel_noise ** 2 * Q
        else:
            self._predict_moving_camera(dt, F, Q)
        q = config.box_accel_noise ** 2 * _box_units(self.box_x) ** 2
        self.box_x[:, :4] += dt * self.box_x[:, 4:]
        pp, pr, rr = self.box_P  # views, updated in place (each from the old values)
        pp += 2.0 * dt * pr + dt * dt * rr + 0.25 * dt ** 4 * q
        pr += dt * rr + 0.5 * dt ** 3 * q
        rr += dt * dt * q

    def _predict_moving_camera(self, dt, F, Q):
        """Predict the manoeuvring and steady filters of each track with the camera's motion.

        IMM: the two filters are mixed by how likely each kind is to have turned into
        the other over dt, each is predicted with its own process noise, and x, P are
        their mixture (for association and outputs).
        """
        self._start_modes(~self.mode_ready)
        p, x, P = self.mode_p, self.mode_x, self.mode_P
        switch = 1.0 - math.exp(-dt / MODE_HOLD_S)
        transition = np.array([[1.0 - switch, switch], [switch, 1.0 - switch]])
        predicted = p @ transition  # (n, 2): each kind's probability now
        # weights[k, i, j]: the share of kind i in what kind j starts from.
        weights = p[:, :, None] * transition[None] / np.maximum(predicted[:, None, :], 1e-300)
        mixed_x = np.einsum('kij,kia->kja', weights, x)
        spread = x[:, :, None, :] - mixed_x[:, None, :, :]  # (k, i, j, 6)
        mixed_P = np.einsum('kij,kiab->kjab', weights, P) + np.einsum(
            'kija,kijb->kjab', weights[..., None] * spread, spread)
        # Both kinds of every track at once: rows (track, kind).
        n = len(self)
        moved_x, moved_P = self._moved(mixed_x.reshape(2 * n, 6), mixed_P.reshape(2 * n, 6, 6),
                                       dt, F, np.repeat(self.has_xy, 2))
        x, P = moved_x.reshape(n, 2, 6), moved_P.reshape(n, 2, 6, 6)
        P += np.array([self.config.accel_noise ** 2, STEADY_ACCEL_NOISE ** 2])[
            None, :, None, None] * Q
        self.mode_x, self.mode_P, self.mode_p = x, P, predicted
        self.x, self.P = _mixture(predicted, x, P)

    def _moved(self, x, P, dt, F, located):
        """Predict 3D states over dt with the camera's motion (velocities: objects' own).

        In the camera's frame a point moves by the object's own velocity less the
        camera's, and the frame turns by its angular velocity: p' = A (p + dt (u - v)),
        u' = A u, with A = exp(-dt [w]x). Tracks without x, y (a depth alone) are not
        turned: their unknown x, y would swamp z. One whose depth would pass
        MIN_PREDICTED_DEPTH keeps its place relative to the camera (see _predict).
        `located`: the rows with x, y. Returns x, P without process noise.
        """
        linear, angular = self._interval_motion
        turn = _rotation(-dt * angular)
        moved = x @ F.T
        moved[:, :3] -= dt * linear
        P = F @ P @ F.T
        if located.any():
            both = np.zeros((6, 6))
            both[:3, :3] = both[3:, 3:] = turn
            moved[located] = moved[located] @ both.T
            P[located] = both @ P[located] @ both.T
        through = moved[:, 2] < MIN_PREDICTED_DEPTH
        if through.any():
            moved[through, :3] = np.where(located[through, None], x[through, :3] @ turn.T,
                                          x[through, :3])
        return moved, P

    def _start_modes(self, rows):
        """Start the manoeuvring and steady filters of tracks `rows` (bool) from x, P."""
        if rows.any():
            self.mode_x[rows] = self.x[rows, None]
            self.mode_P[rows] = self.P[rows, None]
            self.mode_p[rows] = (1.0 - START_STEADY, START_STEADY)
            self.mode_ready[rows] = True

    def _mode_update(self, rows, z, R, axes):
        """Update both filters of tracks `rows` with a measurement; mix them into x, P.

        Each kind's probability is weighed by how well its prediction foresaw the
        measurement (the innovation's likelihood).
        """
        k = len(rows)
        unready = np.zeros(len(self), dtype=bool)
        unready[rows] = ~self.mode_ready[rows]  # no prediction since the start: same stamp
        self._start_modes(unready)
        x = self.mode_x[rows].reshape(2 * k, 6)
        P = self.mode_P[rows].reshape(2 * k, 6, 6)
        z2, R2 = np.repeat(z, 2, axis=0), np.repeat(R, 2, axis=0)
        if self._lag:  # each kind's own acceleration over the lag, as in its prediction
            R2 = R2 + np.tile([_lag_noise(a, self._lag)[axes, axes]
                               for a in (self.config.accel_noise, STEADY_ACCEL_NOISE)],
                              (k, 1, 1))
        observed = _observed(x, P, axes, self._lag)
        innovation = z2 - observed[0]
        S_inverse = np.linalg.inv(observed[2] + R2)
        # log N(innovation; 0, S), but for the constant: -log det S = log det S^-1.
        log_likelihood = 0.5 * (np.log(np.linalg.det(S_inverse)) - np.einsum(
            'ka,kab,kb->k', innovation, S_inverse, innovation)).reshape(k, 2)
        x, P = _kf_update(x, P, z2, R2, axes, observed=observed, S_inverse=S_inverse)
        self.mode_x[rows], self.mode_P[rows] = x.reshape(k, 2, 6), P.reshape(k, 2, 6, 6)
        weights = self.mode_p[rows] * np.exp(
            log_likelihood - log_likelihood.max(axis=1, keepdims=True))
        self.mode_p[rows] = weights / weights.sum(axis=1, keepdims=True)
        self.x[rows], self.P[rows] = _mixture(self.mode_p[rows], self.mode_x[rows],
                                              self.mode_P[rows])

    def _associate(self, meas: _Measurements, stamp: float):
        """Track row of each detection (-1: none), and whether its depth is an outlier."""
        n_det = len(meas.classes)
        track_of = np.full(n_det, -1, dtype=np.int64)
        outlier = np.zeros(n_det, dtype=bool)
        if not n_det or not len(self):
            return track_of, outlier
        config, lag = self.config, self._lag
        boxes = _box_at(self.box_x, lag) if lag else self.box_x
        iou = iou_matrix(_xyxy(boxes), _xyxy(meas.boxes))
        allowed = (self.classes[:, None] == meas.classes[None, :]) & (iou >= config.min_iou)
        cost = 1.0 - iou
        # 3D gate on the candidate pairs (same class, overlapping) where both sides
        # have a depth: full 3D, or z alone when either lacks x, y.
        t, d = np.nonzero(allowed)
        fresh = self.has_3d[t] & (stamp - self.last_3d[t] <= config.max_age)
        ranged = fresh & (meas.full[d] | meas.depth_only[d])
        t, d = t[ranged], d[ranged]
        if len(t):
            gate3, gate1 = _gates(config.gate_probability)
            both_xy = self.has_xy[t] & meas.full[d]
            predicted, _, spread = _observed(self.x[t], self.P[t], _POSITION, lag)
            if self._motion is not None:
                # The manoeuvring filter's prediction gates: the steady one's is too sure
                # of an object that stops or turns.
                ready = self.mode_ready[t]
                predicted[ready], _, spread[ready] = _observed(
                    self.mode_x[t[ready], 0], self.mode_P[t[ready], 0], _POSITION, lag)
                if lag:  # velocities are the objects' own: the camera moved and turned too
                    predicted += lag * _camera_part(self._motion, predicted, self.has_xy[t])
            y = meas.z[d] - predicted
            S = spread + meas.R[d]
            if lag:
                S += _lag_noise(config.accel_noise, lag)
            d2 = y[:, 2] ** 2 / S[:, 2, 2] / gate1
            if both_xy.any():
                y3 = y[both_xy]
                d2[both_xy] = np.einsum('ki,kij,kj->k', y3, np.linalg.inv(S[both_xy]),
                                        y3) / gate3
            # Outside the gate: another object at another depth, unless the box
            # overlaps well (then a depth outlier, a common monocular failure:
            # the box holds two surfaces and the estimate jumps between them).
            # Pairs inside the gate win when there is a choice.
            outside = d2 > 1.0
            if outside.any():
                allowed[t, d] &= ~outside | (iou[t, d] >= OUTLIER_MIN_IOU)
                cost[t, d] += np.minimum(d2, 1.0) + outside
                # A well-overlapping pair whose depth is inside its own gate missed
                # across the ray, where the box itself is the measurement: the
                # prediction drifted (the camera stopped turning, the object its
                # sideways walk). It updates the 3D state; ignoring it would keep the
                # drift until the track is lost (seed 7, frames 77-78).
                depth_outside = y[:, 2] ** 2 / S[:, 2, 2] > gate1
                gated = np.zeros_like(allowed)
                gated[t[outside & depth_outside], d[outside & depth_outside]] = True
            else:  # the usual frame: every candidate pair is inside its gate
                cost[t, d] += d2
                gated = None
        else:
            gated = None
        cost = np.where(allowed, cost, _FORBIDDEN)
        rows, cols = linear_sum_assignment(cost)
        keep = cost[rows, cols] < _FORBIDDEN
        rows, cols = rows[keep], cols[keep]
        track_of[cols] = rows
        if gated is not None:
            outlier[cols] = gated[rows, cols]
        return track_of, outlier

    def _update_matched(self, rows, det, outlier, meas: _Measurements, stamp):
        if not len(rows):
            return
        config = self.config
        boxes = meas.boxes[det]
        # Scalar Kalman update of each box axis (position measured).
        units = _box_units(boxes)
        r = (config.box_noise * units) ** 2
        x, P = self.box_x[rows], self.box_P[:, rows]
        # A size that leaves the image border: while cut it grew (or shrank) with how
        # much of the object was in view, not with its nearness, so its rate starts
        # again, unknown as at birth, and is learnt from whole sizes only. A cut axis
        # stays cut while an edge is near the border.
        was_cut = self.box_cut[rows]
        cut = meas.cut[det] | (was_cut & meas.near_border[det])
        uncut = was_cut & ~cut
        if uncut.any():
            k, axis = np.nonzero(uncut)
            size = axis + 2
            x[k, size + 4] = 0.0
            P[1, k, size] = 0.0
            P[2, k, size] = units[k, size] ** 2
        pp, pr, rr = P  # views: updated in place
        lag = self._lag
        if lag:
            # Measured lag s ago: h = [1, -lag] on (position, rate), the unknown
            # acceleration over lag added to the noise. hp, hr: P h^T.
            hp, hr = pp - lag * pr, pr - lag * rr
            s = hp - lag * hr + r + 0.25 * lag ** 4 * config.box_accel_noise ** 2 * units ** 2
            innovation = boxes - _box_at(x, lag)
        else:
            hp, hr, s = pp, pr, pp + r
            innovation = boxes - x[:, :4]
        gain_p, gain_r = hp / s, hr / s
        x[:, :4] += gain_p * innovation
        x[:, 4:] += gain_r * innovation
        rr -= gain_r * hr
        if lag:
            pr -= gain_p * hr
            pp -= gain_p * hp
        else:
            P[:2] *= r / s
        self.box_x[rows] = x
        self.box_P[:, rows] = P
        self.hits[rows] += 1
        self.was_confirmed[rows] |= self.hits[rows] >= config.min_hits
        self.last_seen[rows] = stamp
        self.box_cut[rows] = cut
        fresh = self.has_3d[rows] & (stamp - self.last_3d[rows] <= config.max_age)
        # A depth outlier leaves the 3D state alone; MAX_DEPTH_OUTLIERS in a row mean
        # the depth has really moved (or the state was wrong): start it again.
        self.outliers[rows] = np.where(outlier, self.outliers[rows] + 1, 0)
        restart = self.outliers[rows] >= MAX_DEPTH_OUTLIERS
        self.outliers[rows[restart]] = 0
        fresh &= ~restart
        skip = outlier & ~restart
        for kind, axes in ((meas.full, _POSITION), (meas.depth_only, _DEPTH)):
            if not kind.any():
                continue
            has = kind[det] & ~skip
            update = has & fresh
            if update.any():
                r, d = rows[update], det[update]
                z, R = meas.z[d, axes], meas.R[d, axes, axes]
                if self._motion is not None:
                    if lag:  # where the camera's own motion puts the object now
                        at = np.zeros((len(d), 3))
                        at[:, axes] = z
                        z = z - lag * _camera_part(self._motion, at,
                                                   np.full(len(d), kind is meas.full))[:, axes]
                    self._mode_update(r, z, R, axes)
                else:
                    if lag:
                        R = R + _lag_noise(config.accel_noise, lag)[axes, axes]
                    self.x[r], self.P[r] = _kf_update(self.x[r], self.P[r], z, R, axes, lag)
                self.hits_3d[r] += 1
                self.last_3d[r] = stamp
                if kind is meas.full:
                    self.has_xy[r] = True
            start = has & ~fresh
            if start.any():
                self._start_3d(rows[start], det[start], meas, stamp)

    def _start_3d(self, rows, det, meas: _Measurements, stamp):
        """(Re)start the 3D filter of tracks from their first (or first fresh) 3D fix."""
        v2 = self.config.init_velocity_sigma ** 2
        for r, d in zip(rows, det):
            P = np.zeros((6, 6))
            P[:3, :3] = meas.R[d]
            P[3:, 3:] = _EYE3 * v2
            if meas.depth_only[d]:
                P[0, 0] = P[1, 1] = _UNKNOWN_VARIANCE
            self.x[r] = np.concatenate([meas.z[d], np.zeros(3)])
            self.P[r] = P
            self.has_xy[r] = bool(meas.full[d])
        self.mode_ready[rows] = False  # started from x, P at the next prediction
        self.has_3d[rows] = True
        self.hits_3d[rows] = 1
        self.last_3d[rows] = stamp

    def _refresh_appearance(self, rows, det, meas: _Measurements, stamp, image, young):
        """Fold matched detections into their tracks' appearance; re-identify young tracks.

        Every APPEARANCE_REFRESH_S, from boxes whole in the image (a cut box shows part
        of the object; the border test of the box filter, with its release margin),
        unless the track has never been looked at. A box without a descriptor (grey,
        too small) is looked at again after the same interval, not every frame, but
        on every whole box while the track is young (tentative, or confirmed this
        frame) and has no appearance yet. A young track that took no ID at birth,
        while the gallery holds its class, also looks on every whole box and may take
        a deleted track's ID (its first box, coming into view, was often cut).
        `young` (bool per row): the track was tentative before this frame's match.
        """
        last = self.appearance_stamp[rows]
        whole = ~self.box_cut[rows].any(axis=1)
        young &= whole  # tentative before this frame's match
        due = (stamp - last >= APPEARANCE_REFRESH_S) & (whole | ~np.isfinite(last))
        due |= young & ~self.appearance[rows].any(axis=1)
        looking = None
        if len(self.lost_ids):  # np.isin costs more than the rest: only with a gallery
            looking = young & np.isnan(self.deleted_at[rows]) \
                & np.isin(self.classes[rows], self.lost_classes)
            due |= looking
        described = np.zeros(len(rows), dtype=bool)
        for i, r, d in zip(due.nonzero()[0].tolist(), rows[due].tolist(), det[due].tolist()):
            self.appearance_stamp[r] = stamp
            seen = appearance.descriptor(image, meas.xyxy[d])
            if seen is not None:
                # blend() of a track without appearance yet (zeros) is the new one.
                self.appearance[r] = appearance.blend(self.appearance[r], seen,
                                                      APPEARANCE_WEIGHT)
                described[i] = True
        if looking is None:
            return
        looked = rows[looking & described]
        if len(looked):
            found, lost = self._match_gallery(self.classes[looked], self.appearance[looked])
            taken = looked[found]
            self.ids[taken] = self.lost_ids[lost]
            self._take_from_gallery(taken, lost)

    def _match_gallery(self, classes, seen):
        """Pair descriptors (rows of `seen`, zeros: none) with the gallery's deleted tracks.

        A pair needs the same class and an appearance similarity of at least
        reid_min_similarity; the most similar pairs win (assignment). Returns the
        indices of the paired rows and of their gallery entries.
        """
        similarity = seen @ self.lost_appearance.T
        allowed = (classes[:, None] == self.lost_classes[None, :]) \
            & (similarity >= self.config.reid_min_similarity)
        if not allowed.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        rows, lost = linear_sum_assignment(np.where(allowed, 1.0 - similarity, _FORBIDDEN))
        keep = allowed[rows, lost]
        return rows[keep], lost[keep]

    def _take_from_gallery(self, rows, lost):
        """Blend the gallery's appearance into the tracks that took its IDs; drop those."""
        self.taken_back.extend(self.lost_ids[lost].tolist())
        self.deleted_at[rows] = self.lost_stamps[lost]
        self.appearance[rows] = appearance.blend(self.lost_appearance[lost],
                                                 self.appearance[rows], APPEARANCE_WEIGHT)
        keep = np.ones(len(self.lost_ids), dtype=bool)
        keep[lost] = False
        self._keep_lost(keep)

    def _birth(self, det, meas: _Measurements, stamp, image=None) -> np.ndarray:
        """Start a track per unmatched detection; return their rows.

        With `image`, a detection that looks like a deleted track of its class takes
        its ID back (_match_gallery); like any new track it is tentative until min_hits
        matches (a false detection that looks like an old object is not published as
        confirmed), and its filters start again.
        """
        n, start = len(det), len(self)
        if not n:
            return np.zeros(0, dtype=np.int64)
        config = self.config
        boxes = meas.boxes[det]
        units = _box_units(boxes)
        # A box's rates are unknown at birth: about its own size per second.
        box_P = np.stack([(config.box_noise * units) ** 2, np.zeros((n, 4)), units ** 2])
        ids = np.zeros(n, dtype=np.int64)
        seen = np.zeros((n, appearance.SIZE))
        seen_stamp = np.full(n, -np.inf)
        found = lost = np.zeros(0, dtype=np.int64)
        if image is not None and len(self.lost_ids):
            for i in np.isin(meas.classes[det], self.lost_classes).nonzero()[0].tolist():
                made = appearance.descriptor(image, meas.xyxy[det[i]])
                if made is not None:
                    seen[i], seen_stamp[i] = made, stamp
            found, lost = self._match_gallery(meas.classes[det], seen)
            ids[found] = self.lost_ids[lost]
        fresh_ids = ids == 0
        ids[fresh_ids] = np.arange(self._next_id, self._next_id + int(fresh_ids.sum()))
        self._next_id += int(fresh_ids.sum())
        self.ids = np.concatenate([self.ids, ids])
        self.classes = np.concatenate([self.classes, meas.classes[det]])
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.int64)])
        self.was_confirmed = np.concatenate([self.was_confirmed,
                                             np.full(n, config.min_hits <= 1)])
        self.appearance = np.concatenate([self.appearance, seen])
        self.appearance_stamp = np.concatenate([self.appearance_stamp, seen_stamp])
        self.hits_3d = np.concatenate([self.hits_3d, np.zeros(n, dtype=np.int64)])
        self.outliers = np.concatenate([self.outliers, np.zeros(n, dtype=np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, stamp)])
        self.last_3d = np.concatenate([self.last_3d, np.full(n, -np.inf)])
        # Set for the IDs taken back by _take_from_gallery, below.
        self.deleted_at = np.concatenate([self.deleted_at, np.full(n, np.nan)])
        for name in ('has_3d', 'has_xy', 'in_proximity', 'in_ttc'):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(n, bool)]))
        self.box_cut = np.concatenate([self.box_cut, meas.cut[det]])
        self.box_x = np.concatenate([self.box_x, np.concatenate([boxes, np.zeros((n, 4))], 1)])
        self.box_P = np.concatenate([self.box_P, box_P], axis=1)
        self.x = np.concatenate([self.x, np.zeros((n, 6))])
        self.P = np.concatenate([self.P, np.zeros((n, 6, 6))])
        self.mode_x = np.concatenate([self.mode_x, np.zeros((n, 2, 6))])
        self.mode_P = np.concatenate([self.mode_P, np.zeros((n, 2, 6, 6))])
        self.mode_p = np.concatenate([self.mode_p, np.zeros((n, 2))])
        self.mode_ready = np.concatenate([self.mode_ready, np.zeros(n, dtype=bool)])
        self._last_raw.extend([None] * n)  # set by _update
        rows = np.arange(start, start + n)
        if len(found):
            self._take_from_gallery(rows[found], lost)
        ranged = meas.full[det] | meas.depth_only[det]
        if ranged.any():
            self._start_3d(rows[ranged], det[ranged], meas, stamp)
        return rows

    def _merge_duplicates(self, frame_rows):
        """Fold unmatched tracks into this frame's tracks that hold the same object.

        A track left unmatched whose box overlaps a matched track of the same class
        by DUPLICATE_IOU is the same object followed twice (a depth outlier that
        started a track of its own): it is deleted, and its ID (the older one)
        passes to the matched track.
        """
        matched = np.zeros(len(self), dtype=bool)
        matched[frame_rows] = True
        idle = (~matched).nonzero()[0]
        if not len(idle) or not len(frame_rows):
            return
        iou = iou_matrix(_xyxy(self.box_x[idle]), _xyxy(self.box_x[frame_rows]))
        same = self.classes[idle][:, None] == self.classes[frame_rows][None, :]
        for i, j in zip(*np.nonzero(same & (iou >= DUPLICATE_IOU))):
            old, new = idle[i], frame_rows[j]
            if not np.isfinite(self.last_seen[old]):
                continue  # already folded into another
            if self.ids[old] < self.ids[new]:
                self.ids[new] = self.ids[old]
                self.hits[new] = max(self.hits[new], self.hits[old])
                self.was_confirmed[new] |= self.was_confirmed[old]
                # The ID goes on as what it was: a fresh one, or one taken back.
                self.deleted_at[new] = self.deleted_at[old]
            self.last_seen[old] = -np.inf

    def _remove_old(self, stamp, previous=None) -> Optional[np.ndarray]:
        """Delete tracks unmatched for more than max_age; each old row's new row, or None.

        With the `previous` frame's stamp, tentative tracks that missed a frame and are
        unmatched for more than tentative_max_age go too (not those whose last box was
        cut by the image border), with their alerts. None when no track was
        deleted (every row stays where it was). Confirmed tracks with an appearance
        go to the re-identification gallery (not those folded into another track:
        their ID lives on there), which keeps each for reid_max_age seconds; a
        tentative holder of a taken-back ID returns it there.
        """
        config = self.config
        if len(self.lost_ids):
            self._keep_lost(stamp - self.lost_stamps <= config.reid_max_age)
        unmatched_for = stamp - self.last_seen
        keep = unmatched_for <= config.max_age
        if previous is not None:
            # 1 us of slack, as in held_alerts: stamps a frame period apart are not exact.
            keep &= (self.last_seen >= previous) \
                | (unmatched_for <= config.tentative_max_age + 1e-6) \
                | self.was_confirmed | self.box_cut.any(axis=1)
        if keep.all():
            return None
        if config.reid_max_age > 0:
            # A taken-back ID not confirmed again keeps its first deletion time.
            since = np.where(self.was_confirmed, stamp, self.deleted_at)
            lost = ~keep & np.isfinite(self.last_seen) & (stamp - since <= config.reid_max_age) \
                & self.appearance.any(axis=1)
            if lost.any():
                self.lost_ids = np.concatenate([self.lost_ids, self.ids[lost]])
                self.lost_classes = np.concatenate([self.lost_classes, self.classes[lost]])
                self.lost_stamps = np.concatenate([self.lost_stamps, since[lost]])
                self.lost_appearance = np.concatenate([self.lost_appearance,
                                                       self.appearance[lost]])
                newest = np.zeros(len(self.lost_ids), dtype=bool)
                newest[-REID_GALLERY_SIZE:] = True
                self._keep_lost(newest)
        for name in ('ids', 'classes', 'hits', 'was_confirmed', 'hits_3d', 'outliers',
                     'last_seen', 'last_3d', 'has_3d', 'has_xy', 'in_proximity', 'in_ttc',
                     'box_cut', 'box_x', 'x', 'P', 'mode_x', 'mode_P', 'mode_p', 'mode_ready',
                     'appearance', 'appearance_stamp', 'deleted_at'):
            setattr(self, name, getattr(self, name)[keep])
        self.box_P = self.box_P[:, keep]
        self._last_raw = [obj for obj, kept in zip(self._last_raw, keep.tolist()) if kept]
        return np.cumsum(keep) - 1

    def _keep_lost(self, keep):
        """Keep the re-identification gallery's entries where `keep` (bool) is set."""
        for name in ('lost_ids', 'lost_classes', 'lost_stamps', 'lost_appearance'):
            setattr(self, name, getattr(self, name)[keep])

    def _outputs(self, objects, raw_depth, rows, max_depth,
                 class_max_depth) -> List[TrackedObject]:
        values = self._values(rows, raw_depth)
        depth, ttc, significant = values[3], values[6], values[7]
        self._update_alerts(rows, objects, depth, ttc, significant, max_depth,
                            class_max_depth)
        return self._records(rows, objects, values)

    def _values(self, rows, raw_depth):
        """Return the published values of tracks `rows`, from their state at the last stamp.

        (x, P, has_xy, depth, distance, closing speed, time to contact, whether the
        closing stands out of its noise, whether the 3D state counts); depth is
        `raw_depth` where a track has no 3D state updated within max_age.
        """
        config = self.config
        x = self.x[rows]
        P = self.P[rows]  # a copy: the covariances handed out are views of it
        # A 3D state no depth has updated for max_age is no longer published (its box
        # may still match): depth, distance and time to contact are unknown, and the
        # proximity rule does not see it (review finding: one coasted to 0.08 m).
        fresh = self._stamp - self.last_3d[rows] <= config.max_age
        has_3d, has_xy = self.has_3d[rows] & fresh, self.has_xy[rows] & fresh
        if self._motion is not None:
            # Published velocities are relative to the camera, as without its motion.
            x[:, 3:] -= _camera_part(self._motion, x[:, :3], has_xy)
        depth = np.where(has_3d, x[:, 2], raw_depth)
        distance, rate, rate_var = self._closing_rates(rows, x, P, has_3d, has_xy)
        closing = rate * distance
        # Closing (faster than min_closing_speed when the range is known).
        approaching = (rate > 0) & ~(closing <= config.min_closing_speed)
        ttc = np.where(approaching, 1.0 / rate, np.inf)
        # An alert also needs the closing to stand out of its noise (2 sigma).
        significant = rate > 2.0 * np.sqrt(rate_var)
        ttc[np.isnan(rate)] = np.nan
        return x, P, has_xy, depth, distance, closing, ttc, significant, has_3d

    def _records(self, rows, objects, values, held=False) -> List[TrackedObject]:
        """One TrackedObject per row, with `objects` its raw estimates."""
        x, P, has_xy, depth, distance, closing, ttc, _, has_3d = values
        rules = [_RULES[pair] for pair in zip(self.in_proximity[rows].tolist(),
                                              self.in_ttc[rows].tolist())]
        hits = self.hits[rows].tolist()
        confirmed_flags = self.was_confirmed[rows].tolist()
        columns = zip(self.ids[rows].tolist(), confirmed_flags, hits, objects,
                      _xyxy(self.box_x[rows]).tolist(), depth.tolist(), has_xy.tolist(),
                      x.tolist(), list(P[:, :3, :3]), list(P[:, 3:, 3:]), distance.tolist(),
                      closing.tolist(), ttc.tolist(), rules,
                      np.where(has_3d, P[:, 2, 2], np.nan).tolist())
        out = []
        # Unpacked in the loop header and passed positionally: star-args of slices
        # cost twice as much per record.
        for (track_id, is_confirmed, n_hits, obj, (x1, y1, x2, y2), z, located,
             (px, py, pz, vx, vy, vz), covariance, velocity_cov, dist, closing_speed,
             time_to_contact, alert_rules, depth_variance) in columns:
            if located:
                position, velocity = Point3D(px, py, pz), Point3D(vx, vy, vz)
            else:
                position = velocity = covariance = velocity_cov = None
            out.append(TrackedObject(
                track_id, is_confirmed, n_hits, obj, Box(x1, y1, x2, y2), z, position,
                velocity, covariance, velocity_cov, dist, closing_speed, time_to_contact,
                alert_rules, held, depth_variance))
        return out

    def _closing_rates(self, rows, x, P, has_3d, has_xy):
        """Distance, relative closing rate (1/s) and its variance of the frame's tracks.

        Two estimates of the rate at which the range shrinks relative to itself
        (-d/dt r / r), combined by inverse variance as `ttc_source` says: 'depth',
        the 3D filter's closing speed over its distance; 'expansion', the box's
        relative growth (w'/w + h'/h) / 2, which needs no metric depth (an object
        twice as near looks twice as big), from the axes not cut by the image border;
        'fused', both.
        """
        source = self.config.ttc_source
        # Range along the ray to the position (along the optical axis for a depth alone).
        p = np.where(has_xy[:, None], x[:, :3], x[:, :3] * _Z_AXIS)
        norm = np.sqrt(np.einsum('ij,ij->i', p, p))
        distance = np.where(has_3d, norm, np.nan)
        rates, variances = [], []
        if source in ('depth', 'fused'):
            direction = p / norm[:, None]
            speed = -np.einsum('ij,ij->i', direction, x[:, 3:])
            speed_var = np.einsum('ij,ijk,ik->i', direction, P[:, 3:, 3:], direction)
            rates.append(speed / distance)  # NaN without 3D
            variances.append(np.where(has_3d, speed_var / distance ** 2, np.inf))
        if source in ('expansion', 'fused'):
            b, rate_var = self.box_x[rows], self.box_P[2][rows]
            inverse = np.maximum(b[:, 2:4], _MIN_INVERSE)
            uncut = ~self.box_cut[rows]
            axes = uncut.sum(axis=1)  # 0: both sizes cut, the rate is unknown
            rates.append(np.where(uncut, -b[:, 6:8] / inverse, 0.0).sum(axis=1) / axes)
            variances.append(np.where(uncut, rate_var[:, 2:4] / inverse ** 2, 0.0).sum(axis=1)
                             / np.where(axes > 0, axes ** 2, 0.0))
        if len(rates) == 1:
            return distance, rates[0], variances[0]
        weights = [np.where(np.isfinite(r), 1.0 / v, 0.0) for r, v in zip(rates, variances)]
        total = weights[0] + weights[1]
        # An unknown rate has no weight (and 0 x NaN would be NaN): a box cut on both axes
        # leaves the depth's rate alone.
        rate = (weights[0] * np.nan_to_num(rates[0]) + weights[1] * np.nan_to_num(rates[1])) \
            / total
        return distance, rate, 1.0 / total

    def _update_alerts(self, rows, objects, depth, ttc, significant, max_depth,
                       class_max_depth):
        """Advance each track's alert states (hysteresis) with this frame's values."""
        config = self.config
        limit = max_depth
        if class_max_depth:
            limit = np.array([class_max_depth.get(o.detection.class_name, max_depth)
                              for o in objects], dtype=np.float64).reshape(len(rows))
        known = np.isfinite(depth)
        proximity = self.in_proximity[rows]
        proximity[known & (depth < limit)] = True
        proximity[known & (depth > limit + config.alert_hysteresis)] = False
        # A depth no longer known (its 3D state stale): nothing holds the alert up.
        proximity[~known] = False
        self.in_proximity[rows] = proximity
        threshold = config.alert_time_to_contact
        contact = self.in_ttc[rows]
        contact[(ttc < threshold) & significant] = True
        contact[ttc > threshold + config.ttc_hysteresis] = False
        updates = self.hits_3d[rows] if config.ttc_source == 'depth' else self.hits[rows]
        contact[(threshold <= 0) | np.isnan(ttc) | (updates < config.min_hits)] = False
        self.in_ttc[rows] = contact


def duplicates(objects: Sequence[ObjectEstimate], min_overlap: float,
               depth_tolerance: float) -> List[int]:
    """Return the indices of the objects that duplicate another (see the module doc).

    In descending score order, an object is a duplicate when at least `min_overlap`
    of the smaller of its box and a kept object's box lies in the other, both are of
    one class, their finite positive depths differ by at most `depth_tolerance` x the
    larger, and both or neither raise the per-frame alert. min_overlap 0: none is.
    """
    if not objects:
        return []
    numbers = np.array([(o.detection.box.x1, o.detection.box.y1, o.detection.box.x2,
                         o.detection.box.y2, o.depth.depth, o.detection.score, o.alert)
                        for o in objects], dtype=np.float64)
    classes = np.unique([o.detection.class_name for o in objects], return_inverse=True)[1]
    return _nested(classes, numbers[:, :4], numbers[:, 4], numbers[:, 5], numbers[:, 6] > 0,
                   min_overlap, depth_tolerance)


def _nested(classes, xyxy, depth, score, alert, min_overlap, depth_tolerance) -> List[int]:
    """duplicates() on arrays: class codes, Nx4 boxes, depths, scores, alert flags."""
    n = len(classes)
    if min_overlap <= 0 or n < 2 or len(np.unique(classes)) == n:
        return []
    x1, y1, x2, y2 = xyxy.T
    width = np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1)
    height = np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1)
    area = (x2 - x1) * (y2 - y1)
    ranged = np.isfinite(depth) & (depth > 0)
    with np.errstate(invalid='ignore'):
        pairs = (classes[:, None] == classes) & (width > 0) & (height > 0) \
            & (width * height >= min_overlap * np.minimum(area[:, None], area)) \
            & (np.abs(depth[:, None] - depth)
               <= depth_tolerance * np.maximum(depth[:, None], depth)) \
            & ranged[:, None] & ranged & (alert[:, None] == alert)
    np.fill_diagonal(pairs, False)
    if not pairs.any():
        return []
    dropped = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    for i in np.argsort(-score, kind='stable'):
        done[i] = True
        if not dropped[i]:
            dropped |= pairs[i] & ~done  # a kept object drops its lower-scoring duplicates
    return dropped.nonzero()[0].tolist()


def confirmed(tracked: Sequence[TrackedObject]) -> List[TrackedObject]:
    """Return the objects whose tracks have passed the birth rule (what consumers want)."""
    return [t for t in tracked if t.confirmed]
