"""Field layout of depthdet_node's detection and marker messages, for any message types.

Every builder takes `make(type_name, **fields)`, which returns a message of that ROS
type ('vision_msgs/msg/Detection3D'), so the node (rclpy classes: ros.convert's
`make`) and the bag tools (rosbags types: sim.messages.rosbags_factory) fill the same
fields from one place. rosbags types need every field, so every field is given. This
module imports no ROS package.

What the fields carry (README, "Tracking in the node"):

- `Detection2D.id`, `Detection3D.id`: the track ID as a decimal string ('' without
  tracking).
- `results[0]`: class name and score; its pose is the object's position (smoothed
  unless publish_raw) with its covariance, NaN for unknown coordinates (REP 117).
- After results[0], hypotheses with reserved class ids and score 0 (so a consumer
  taking the best-scoring hypothesis still reads the class). With tracking only:
  Detection3D `velocity` (pose.position = velocity in m/s in the camera optical frame,
  relative to the camera; covariance[0:3, 0:3] its covariance); Detection2D and
  Detection3D `time_to_contact` (pose.position.x = seconds, inf when not closing, NaN
  unknown; .y = closing speed in m/s, positive approaching; .z = distance in m: on
  Detection2D too, as an object of unknown depth has none of the others, and its time
  to contact from box expansion reaches a consumer only there). On proximity_alert,
  with tracking or without, `alert/proximity` and/or `alert/time_to_contact`: the
  rules that put the object there.
- Detection2D and Detection3D, after those: `track/tentative` (score 0) on a track that has not
  yet passed track_min_hits (published with publish_tentative, and on proximity_alert
  always), so that a reader of a topic or a bag can tell it from a confirmed one; and,
  last, on proximity_alert `track/coasting` (score 0) on an alert held for a track no
  detection of this frame matched (missed for a frame or more; at its predicted position).
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from depthdet_ros.core.types import Detection2D, Point3D

# Orientation is not estimated: its variance is reported as this (rad^2), which
# consumers of PoseWithCovariance read as "unknown".
UNKNOWN_VARIANCE = 1.0e6
VELOCITY = 'velocity'
TIME_TO_CONTACT = 'time_to_contact'
ALERT_PREFIX = 'alert/'
TENTATIVE = 'track/tentative'
COASTING = 'track/coasting'
# The per-frame rule without tracking (core.tracking names the same rule so).
PROXIMITY = 'proximity'
# visualization_msgs/Marker constants.
MARKER_ARROW, MARKER_CUBE, MARKER_TEXT = 0, 1, 9
MARKER_ADD, MARKER_DELETEALL = 0, 3
# Marker looks: metres (text height, arrow shaft and head) and seconds of motion drawn.
LABEL_HEIGHT = 0.12
ARROW_SHAFT, ARROW_HEAD, ARROW_HEAD_LENGTH = 0.03, 0.07, 0.1
ARROW_SECONDS = 1.0
MIN_BOX_SIZE = 0.05
CLEAR_COLOR = (0.1, 0.9, 0.2)
ALERT_COLOR = (1.0, 0.15, 0.1)


@dataclass(frozen=True)
class OutputObject:
    """One object as the node publishes it: the values chosen for the messages."""

    detection: Detection2D
    depth: float                  # metres along the optical axis, NaN unknown
    depth_variance: float         # m^2
    position: Optional[Point3D]   # optical frame, None without camera intrinsics
    covariance: Optional[np.ndarray]
    size: Optional[Point3D]
    track_id: Optional[int] = None
    velocity: Optional[Point3D] = None
    velocity_covariance: Optional[np.ndarray] = None
    time_to_contact: float = math.nan
    closing_speed: float = math.nan
    distance: float = math.nan
    alert_rules: Tuple[str, ...] = ()
    confirmed: bool = True  # False: a tentative track (before track_min_hits)
    held: bool = False  # an alert held for a track this frame did not detect

    @property
    def alert(self) -> bool:
        return bool(self.alert_rules)


def from_estimate(obj) -> OutputObject:
    """Publish an untracked ObjectEstimate: raw values, the per-frame proximity rule."""
    return OutputObject(
        detection=obj.detection, depth=obj.depth.depth, depth_variance=obj.depth.spread ** 2,
        position=obj.position, covariance=obj.covariance, size=obj.size,
        alert_rules=(PROXIMITY,) if obj.alert else ())


def from_tracked(tracked, raw: bool = False) -> OutputObject:
    """Publish a core.tracking TrackedObject: smoothed position and depth unless `raw`.

    A 3D position only where the track's raw estimate has one (a valid depth and usable
    camera_info), as without tracking: a frame without them publishes no x, y and no
    detections_3d entry, however well the track knows the object (its coasted position
    would come with no size). For a held alert (Tracker.held_alerts) the raw estimate is
    the track's last matched one: its predicted position and box, with that estimate's
    size.
    """
    estimate = tracked.raw
    position, covariance, size = estimate.position, estimate.covariance, estimate.size
    depth, depth_variance = estimate.depth.depth, estimate.depth.spread ** 2
    if not raw:
        if position is not None and tracked.position is not None:
            position, covariance = tracked.position, tracked.covariance
            if size is not None and estimate.position.z > 0:
                # The box's metric width and height are proportional to the depth they
                # are taken at: at the smoothed depth, as the centre is.
                k = position.z / estimate.position.z
                size = Point3D(size.x * k, size.y * k, size.z)
        if math.isfinite(tracked.depth):
            # The track's depth with its own variance (this frame's may have none).
            depth, depth_variance = tracked.depth, tracked.depth_variance
    detection = estimate.detection
    if tracked.held:  # drawn where the track predicts it, not where it was last seen
        detection = dataclasses.replace(detection, box=tracked.box)
    return OutputObject(
        detection=detection, depth=depth,
        depth_variance=(float(covariance[2, 2]) if covariance is not None
                        else float(depth_variance)),
        position=position, covariance=covariance, size=size,
        track_id=int(tracked.track_id), velocity=tracked.velocity,
        velocity_covariance=tracked.velocity_covariance,
        time_to_contact=float(tracked.time_to_contact),
        # + 0.0: a track with no velocity yet closes at 0, not -0.0, in the messages.
        closing_speed=float(tracked.closing_speed) + 0.0, distance=float(tracked.distance),
        alert_rules=tuple(tracked.alert_rules), confirmed=bool(tracked.confirmed),
        held=bool(tracked.held))


def tracked_outputs(tracked, raw: bool = False, tentative: bool = True, held=()):
    """Return a frame's OutputObjects from its TrackedObjects, and those on `detections`.

    All of the frame's with `tentative` (publish_tentative), else the confirmed tracks'
    only; the `held` alerts (Tracker.held_alerts) follow them, for proximity_alert only,
    which carries every alert whichever (frame_messages).
    """
    outputs = [from_tracked(t, raw) for t in tracked]
    shown = list(range(len(outputs))) if tentative else \
        [i for i, t in enumerate(tracked) if t.confirmed]
    return outputs + [from_tracked(t, raw) for t in held], shown


def drawn(outputs, shown, tentative: bool = True) -> list:
    """Return what markers and debug_image draw: the objects on detections, held alerts.

    A held alert is on proximity_alert without a detection this frame: drawn too (a
    tentative track's only with `tentative`, as on detections), so that what RViz
    shows agrees with the safety topic.
    """
    return [outputs[i] for i in shown] + [obj for obj in outputs
                                          if obj.held and (tentative or obj.confirmed)]


def _finite(point) -> bool:
    return point is not None and all(math.isfinite(v) for v in (point.x, point.y, point.z))


def _point(make, x, y, z):
    return make('geometry_msgs/msg/Point', x=float(x), y=float(y), z=float(z))


def _identity(make):
    return make('geometry_msgs/msg/Quaternion', x=0.0, y=0.0, z=0.0, w=1.0)


def _pose(make, position, covariance):
    return make('geometry_msgs/msg/PoseWithCovariance',
                pose=make('geometry_msgs/msg/Pose', position=position,
                          orientation=_identity(make)),
                covariance=np.ascontiguousarray(covariance, np.float64).reshape(-1))


def _hypothesis(make, class_id, score, pose):
    return make('vision_msgs/msg/ObjectHypothesisWithPose',
                hypothesis=make('vision_msgs/msg/ObjectHypothesis', class_id=class_id,
                                score=float(score)), pose=pose)


def class_hypothesis(make, obj: OutputObject):
    """Build results[0]: class, score, the position with its covariance (NaN unknown)."""
    cov = np.zeros((6, 6))
    cov[3:, 3:] = np.eye(3) * UNKNOWN_VARIANCE
    if obj.position is not None:
        position = _point(make, obj.position.x, obj.position.y, obj.position.z)
        cov[:3, :3] = obj.covariance
    elif math.isfinite(obj.depth):
        # Depth known, direction unknown (no camera_info): z only.
        position = _point(make, math.nan, math.nan, obj.depth)
        cov[0, 0] = cov[1, 1] = UNKNOWN_VARIANCE
        cov[2, 2] = obj.depth_variance if math.isfinite(obj.depth_variance) \
            else UNKNOWN_VARIANCE
    else:
        position = _point(make, math.nan, math.nan, math.nan)
        cov[:3, :3] = np.eye(3) * UNKNOWN_VARIANCE
    return _hypothesis(make, obj.detection.class_name, obj.detection.score,
                       _pose(make, position, cov))


def contact_hypotheses(make, obj: OutputObject):
    """Build the `time_to_contact` hypothesis of a tracked object, in a list (else [])."""
    if obj.track_id is None:
        return []
    return [_hypothesis(make, TIME_TO_CONTACT, 0.0, _pose(
        make, _point(make, obj.time_to_contact, obj.closing_speed, obj.distance),
        np.zeros(36)))]


def motion_hypotheses(make, obj: OutputObject, contact=None):
    """Build the `velocity` and `time_to_contact` hypotheses of a tracked object (else []).

    `contact`: its contact_hypotheses when already built.
    """
    if obj.track_id is None:
        return []
    out = []
    if obj.velocity is not None:
        cov = np.eye(6) * UNKNOWN_VARIANCE
        cov[:3, :3] = obj.velocity_covariance
        out.append(_hypothesis(make, VELOCITY, 0.0, _pose(
            make, _point(make, obj.velocity.x, obj.velocity.y, obj.velocity.z), cov)))
    return out + (contact if contact is not None else contact_hypotheses(make, obj))


def _alert_hypotheses(make, obj: OutputObject, pose):
    return [_hypothesis(make, ALERT_PREFIX + rule, 0.0, pose) for rule in obj.alert_rules]


def _status_hypotheses(make, obj: OutputObject, pose):
    return [_hypothesis(make, kind, 0.0, pose) for kind, flagged in (
        (TENTATIVE, not obj.confirmed), (COASTING, obj.held)) if flagged]


def _track_id(obj: OutputObject) -> str:
    return '' if obj.track_id is None else str(obj.track_id)


def _bbox2d(make, box):
    cx, cy = box.center
    return make('vision_msgs/msg/BoundingBox2D',
                center=make('vision_msgs/msg/Pose2D',
                            position=make('vision_msgs/msg/Point2D', x=float(cx), y=float(cy)),
                            theta=0.0),
                size_x=float(box.width), size_y=float(box.height))


def detections_2d(make, header, objects, hypotheses=None, contact=None):
    """Detection2DArray: box in input pixels, class and score, 3D point in the pose.

    `hypotheses` and `contact` (each object's class and time-to-contact hypotheses, as
    frame_messages shares them) save rebuilding them.
    """
    detections = []
    for index, obj in enumerate(objects):
        hypothesis = hypotheses[index] if hypotheses else class_hypothesis(make, obj)
        results = [hypothesis] + (contact[index] if contact else contact_hypotheses(make, obj))
        results += _status_hypotheses(make, obj, hypothesis.pose)
        detections.append(make('vision_msgs/msg/Detection2D', header=header,
                               results=results, bbox=_bbox2d(make, obj.detection.box),
                               id=_track_id(obj)))
    return make('vision_msgs/msg/Detection2DArray', header=header, detections=detections)


def detections_3d(make, header, objects, keep_unlocated=False, hypotheses=None, motion=None,
                  alerts=False):
    """Detection3DArray of the objects that have a 3D position (camera_info known).

    With `keep_unlocated` (proximity_alert: every alert must reach the safety topic),
    objects without one are kept too, at (NaN, NaN, depth) with zero size and the
    unknown variances flagged: the depth is NaN as well when unknown (a time-to-contact
    alert from box expansion needs none). `hypotheses` / `motion` are the objects' class
    and motion hypotheses when already built; with `alerts` the fired rules are added.
    """
    detections = []
    for index, obj in enumerate(objects):
        if _finite(obj.position):
            size = obj.size
        elif keep_unlocated:
            size = None
        else:
            continue
        hypothesis = hypotheses[index] if hypotheses else class_hypothesis(make, obj)
        results = [hypothesis]
        results += motion[index] if motion else motion_hypotheses(make, obj)
        if alerts:
            results += _alert_hypotheses(make, obj, hypothesis.pose)
        results += _status_hypotheses(make, obj, hypothesis.pose)
        center = make('geometry_msgs/msg/Pose', position=hypothesis.pose.pose.position,
                      orientation=_identity(make))
        extent = make('geometry_msgs/msg/Vector3', x=float(size.x) if size else 0.0,
                      y=float(size.y) if size else 0.0, z=float(size.z) if size else 0.0)
        detections.append(make('vision_msgs/msg/Detection3D', header=header, results=results,
                               bbox=make('vision_msgs/msg/BoundingBox3D', center=center,
                                         size=extent), id=_track_id(obj)))
    return make('vision_msgs/msg/Detection3DArray', header=header, detections=detections)


def frame_messages(make, header, objects, published=None):
    """Build (detections, detections_3d, proximity_alert) for one frame.

    `objects` are OutputObjects; proximity_alert carries every alerted one, the other two
    the indices in `published` (all when None: tracking can hold back tentative
    tracks). Each object's hypotheses are built once and shared by the messages.
    """
    hypotheses = [class_hypothesis(make, obj) for obj in objects]
    contact = [contact_hypotheses(make, obj) for obj in objects]
    motion = [motion_hypotheses(make, obj, ttc) for obj, ttc in zip(objects, contact)]
    shown = range(len(objects)) if published is None else published
    alerted = [i for i, obj in enumerate(objects) if obj.alert]

    def pick(indices, items):
        return [items[i] for i in indices]

    return (detections_2d(make, header, pick(shown, objects), pick(shown, hypotheses),
                          pick(shown, contact)),
            detections_3d(make, header, pick(shown, objects), hypotheses=pick(shown, hypotheses),
                          motion=pick(shown, motion)),
            detections_3d(make, header, pick(alerted, objects), keep_unlocated=True,
                          hypotheses=pick(alerted, hypotheses), motion=pick(alerted, motion),
                          alerts=True))


def label_text(obj: OutputObject) -> str:
    """Return 'chair 1.23 m #7' (+ ' 1.4 s' while closing; the '#' part with tracking).

    An unknown depth reads '? m'; an alert held through a missed detection ends in
    ' (held)'.
    """
    depth = f'{obj.depth:.2f}' if math.isfinite(obj.depth) else '?'
    text = f'{obj.detection.class_name} {depth} m'
    if obj.track_id is not None:
        text += f' #{obj.track_id}'
    if math.isfinite(obj.time_to_contact):
        text += f' {obj.time_to_contact:.1f} s'
    if obj.held:
        text += ' (held)'
    return text


def _marker(make, header, ns, marker_id, kind, action=MARKER_ADD, position=None,
            scale=(0.0, 0.0, 0.0), color=(0.0, 0.0, 0.0, 0.0), points=(), text='',
            lifetime=(0, 0)):
    position = position if position is not None else _point(make, 0.0, 0.0, 0.0)
    empty = np.zeros(0, np.uint8)
    return make(
        'visualization_msgs/msg/Marker', header=header, ns=ns, id=int(marker_id), type=kind,
        action=action,
        pose=make('geometry_msgs/msg/Pose', position=position, orientation=_identity(make)),
        scale=make('geometry_msgs/msg/Vector3', x=float(scale[0]), y=float(scale[1]),
                   z=float(scale[2])),
        color=make('std_msgs/msg/ColorRGBA', r=float(color[0]), g=float(color[1]),
                   b=float(color[2]), a=float(color[3])),
        lifetime=make('builtin_interfaces/msg/Duration', sec=lifetime[0], nanosec=lifetime[1]),
        frame_locked=False, points=list(points), colors=[], texture_resource='',
        texture=make('sensor_msgs/msg/CompressedImage', header=header, format='', data=empty),
        uv_coordinates=[], text=text, mesh_resource='',
        mesh_file=make('visualization_msgs/msg/MeshFile', filename='', data=empty),
        mesh_use_embedded_materials=False)


def markers(make, header, objects, lifetime_s: float = 0.0):
    """Build the MarkerArray for RViz / Foxglove of one frame's objects.

    A DELETEALL, then per located object a box, a label and (tracked, velocity known)
    an arrow of the motion over ARROW_SECONDS.

    Marker ids are the track IDs (index + 1 without tracking) in the namespaces
    `boxes`, `labels` and `velocity`; the leading DELETEALL clears the previous frame's
    markers, so objects that left do not linger. With lifetime_s > 0 the viewer also
    drops them on its own that long after they arrive: the last frame's boxes do not
    stay on screen when the camera or the node stops.
    """
    nanoseconds = int(round(max(lifetime_s, 0.0) * 1e9))
    life = (nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)
    out = [_marker(make, header, '', 0, MARKER_CUBE, action=MARKER_DELETEALL)]
    for index, obj in enumerate(objects):
        if not _finite(obj.position):
            continue
        marker_id = obj.track_id if obj.track_id is not None else index + 1
        p = obj.position
        rgb = ALERT_COLOR if obj.alert else CLEAR_COLOR
        size = obj.size if _finite(obj.size) else Point3D(0.0, 0.0, 0.0)
        scale = tuple(max(v, MIN_BOX_SIZE) for v in (size.x, size.y, size.z))
        out.append(_marker(make, header, 'boxes', marker_id, MARKER_CUBE,
                           position=_point(make, p.x, p.y, p.z), scale=scale,
                           color=(*rgb, 0.35), lifetime=life))
        # Optical frame: y points down, so the label sits above the box at smaller y.
        out.append(_marker(make, header, 'labels', marker_id, MARKER_TEXT,
                           position=_point(make, p.x, p.y - scale[1] / 2 - LABEL_HEIGHT, p.z),
                           scale=(0.0, 0.0, LABEL_HEIGHT), color=(*rgb, 1.0),
                           text=label_text(obj), lifetime=life))
        v = obj.velocity
        if obj.track_id is not None and _finite(v):
            end = (p.x + v.x * ARROW_SECONDS, p.y + v.y * ARROW_SECONDS,
                   p.z + v.z * ARROW_SECONDS)
            out.append(_marker(make, header, 'velocity', marker_id, MARKER_ARROW,
                               scale=(ARROW_SHAFT, ARROW_HEAD, ARROW_HEAD_LENGTH),
                               color=(*rgb, 1.0),
                               points=[_point(make, p.x, p.y, p.z), _point(make, *end)],
                               lifetime=life))
    return make('visualization_msgs/msg/MarkerArray', markers=out)
