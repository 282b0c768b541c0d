"""Tracking scores of a bag: identities, depth jitter, time to contact, alert flicker.

`evaluate_bag` runs core.tracking.Tracker over the frames in bag order with their
header stamps; `TrackingEvaluation` scores each frame's tracked objects against the
ground truth (instance ids in the GT Detection ids) and, when the bag has them, the
motion truth topics of `depthdet synth bag --moving` (nav_msgs/Odometry per object:
optical-frame velocity, and world velocity to tell static objects from moving ones).

- Identity (py-motmetrics): confirmed tracks against GT instances, matched at IoU >=
  MOT_IOU with the same class; IDF1, MOTA, ID switches, and ID switches per 100
  frames per object present (switches / GT object-frames x 100).
- Samples: every tracked object (confirmed or not) matched to a GT object (greedy,
  same class, IoU >= match_iou) gives raw and tracked depth against the GT depth.
- Depth jitter of static objects (world speed 0 in every frame; all objects when
  the bag has no motion truth): per object, the RMS over consecutive frames of the
  change of its depth error (estimate - GT), which removes the true change as the
  camera moves; raw against tracked, median over objects with >= MIN_JITTER_STEPS.
- Time to contact of approaching objects (GT closing speed APPROACH_SPEED_M_S, range
  APPROACH_RANGE_M, confirmed tracks): relative error |TTC - GT| / GT, with the GT
  TTC = range to the GT surface (|centre| x GT depth / centre z) over the GT closing
  speed (-centre . velocity / |centre|). Errors are capped at 1 (100 %), the error
  of an estimate of no contact (infinite) or none (unknown): an estimate off by more
  than the truth itself is as useless as none, and the median stays defined.
- With `gt_depth_noise` (evaluate_bag), the tracker is fed each detection's matched GT
  depth times (1 + N(0, noise)) instead of the network's, its 3D point and
  covariance scaled along the ray to match (`with_ground_truth_depth`): the tracker
  measured apart from the depth network. The other scores of the report stay on the
  network's depth. Duplicates (core.tracking.duplicates) are dropped on the network's
  depths, before the GT depth replaces them, and not again after: the node finds them
  so, and a duplicate box that matches no GT object keeps the network's depth, beside
  which its twin's GT depth would no longer look like the same object (nor would two
  boxes that the GT puts at one depth where the network did not).
- Alert transitions per object over its matched frames: enters and leaves of the
  raw proximity alert, of the tracked 'proximity' rule, and of the GT (GT depth
  below the threshold); an object flickers when its alert enters or leaves more often
  than its GT does (at least once allowed: at most one enter and one leave per pass).
- The proximity_alert topic as a consumer sees it, over every frame of each GT object
  (matched or not): the entries the node publishes (message_layout.from_tracked of
  every track in alert and every held alert, at its predicted box) matched to GT
  objects (greedy, same class, IoU >= match_iou). A GT object alerts by the tracker's
  rules on the truth: GT depth below the threshold, or (where the bag has motion truth)
  GT time to contact below alert_time_to_contact. Recall: the share of GT-alert
  object-frames with an entry. Entries due: on a GT object that keeps the alert on
  (the same rules with alert_hysteresis and ttc_hysteresis); duplicates: left over by
  the one-to-one matching on a GT object that has an entry; on no GT object: false
  detections, or boxes off by more than the IoU allows. Enters and leaves per object of
  its being on the topic, against its GT alert's, and the objects that flicker so.
"""
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from depthdet_ros.bags import bag_messages
from depthdet_ros.core.odometry import CameraMotionHistory, CameraMotionUnavailable, \
    MovingFrames, StaticFrames, TF, TF_STATIC, TfCameraMotion
from depthdet_ros.core.pipeline import depth_measured_otherwise
from depthdet_ros.core.tracking import CameraMotion, duplicates, FrameClock, PROXIMITY, \
    TIME_TO_CONTACT, TrackerConfig
from depthdet_ros.core.types import ObjectDepth, Point3D
from depthdet_ros.eval.matching import boxes_xyxy, iou_matrix, match_boxes
from depthdet_ros.eval.proximity import alert_limit
from depthdet_ros.ros.message_layout import from_tracked

ODOMETRY = 'nav_msgs/msg/Odometry'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
MOT_IOU = 0.5
MIN_JITTER_STEPS = 5
APPROACH_SPEED_M_S = (0.3, 2.0)
APPROACH_RANGE_M = (1.0, 5.0)
STATIC_SPEED_M_S = 1e-6


@dataclass(frozen=True)
class MotionTruth:
    """Velocities of one object at one stamp (optical frame; world speed if known)."""

    velocity: np.ndarray
    world_speed: Optional[float]


def motion_topics(topic_types: Dict[str, str]) -> Tuple[Optional[str], Optional[str]]:
    """(optical, world) Odometry topics of a bag, by name ('world' in it: the world one)."""
    odometry = sorted(t for t, m in topic_types.items() if m == ODOMETRY and 'motion' in t)
    world = [t for t in odometry if 'world' in t]
    optical = [t for t in odometry if 'world' not in t]
    return (optical[0] if optical else None), (world[0] if world else None)


def read_camera_odometry(path, typestore, topic: str,
                         tf_static: str = TF_STATIC) -> CameraMotionHistory:
    """Read a bag's camera odometry topic (core.odometry); CameraMotionUnavailable if none.

    Odometry of another frame than the camera's (a robot's base) is turned into the
    camera's through the bag's fixed transforms on `tf_static`, as the node does; a
    message there that cannot be read is one of `frames.refused`.
    """
    from depthdet_ros.eval.bag_input import open_reader, stamp_ns
    frames = StaticFrames(tf_static)
    history = CameraMotionHistory(topic, keep_s=None, frames=frames)
    reader = open_reader(path)
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        if types.get(topic) != ODOMETRY:
            odometry = sorted(t for t, m in types.items() if m == ODOMETRY)
            raise CameraMotionUnavailable(
                f'--camera-odometry {topic}: the bag has no {ODOMETRY} topic of that name'
                + (f' (it has {", ".join(odometry)})' if odometry else ''))
        _read_transforms(reader, typestore, tf_static, frames)
        connections = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in bag_messages(reader, connections):
            try:
                msg = typestore.deserialize_cdr(raw, ODOMETRY)
            except Exception:  # a corrupt message: the nearest other one serves
                continue
            v, w = msg.twist.twist.linear, msg.twist.twist.angular
            history.add(stamp_ns(msg), (v.x, v.y, v.z, w.x, w.y, w.z), msg.child_frame_id)
    finally:
        reader.close()
    if not len(history):
        raise CameraMotionUnavailable(f'--camera-odometry {topic}: no readable message')
    return history


def read_camera_tf(path, typestore, odom_frame: str, tf: str = TF,
                   tf_static: str = TF_STATIC) -> TfCameraMotion:
    """Read a bag's transforms: the camera's motion from its pose in `odom_frame`.

    As the node's `odom_frame` does (core.odometry.TfCameraMotion); CameraMotionUnavailable
    if the bag has no `tf` topic. Messages that cannot be read are in `frames.refused`.
    """
    from depthdet_ros.eval.bag_input import open_reader
    frames = MovingFrames(StaticFrames(tf_static), tf, keep_s=None)
    reader = open_reader(path)
    try:
        if not any(c.topic == tf and c.msgtype == TF_MESSAGE for c in reader.connections):
            raise CameraMotionUnavailable(
                f'--odom-frame {odom_frame}: the bag has no {TF_MESSAGE} topic {tf} (give '
                'its name with --tf)')
        _read_transforms(reader, typestore, tf_static, frames.static)
        _read_transforms(reader, typestore, tf, frames)
    finally:
        reader.close()
    motion = TfCameraMotion(frames, odom_frame)
    named = frames.frames()
    if motion.fixed_frame not in named:
        listed = ', '.join(named[:10]) + (f' and {len(named) - 10} more'
                                          if len(named) > 10 else '')
        raise CameraMotionUnavailable(
            f'--odom-frame {odom_frame}: no transform on {tf} or {tf_static} names that '
            f'frame; they name {listed or "none"}')
    return motion


def _read_transforms(reader, typestore, topic, frames):
    """Give `frames` (StaticFrames or MovingFrames) every TFMessage of `topic` in the bag."""
    connections = [c for c in reader.connections
                   if c.topic == topic and c.msgtype == TF_MESSAGE]
    # (No connections means every connection to rosbags.)
    for _, _, raw in bag_messages(reader, connections) if connections else ():
        try:
            transforms = typestore.deserialize_cdr(raw, TF_MESSAGE).transforms
        except Exception as exc:  # rosbags raises several kinds on a corrupt message
            frames.note_unreadable(f'{topic}: a message that cannot be read ({exc})')
            continue
        frames.add_message(transforms)


def read_motion(path, typestore) -> Dict[int, Dict[str, MotionTruth]]:
    """Motion truth of a bag: {header stamp ns: {instance id: MotionTruth}} ({} if none)."""
    from depthdet_ros.eval.bag_input import open_reader, stamp_ns
    reader = open_reader(path)
    try:
        optical, world = motion_topics({c.topic: c.msgtype for c in reader.connections})
        if optical is None:
            return {}
        velocities: Dict[int, Dict[str, np.ndarray]] = {}
        speeds: Dict[int, Dict[str, float]] = {}
        connections = [c for c in reader.connections if c.topic in (optical, world)]
        for connection, _, raw in bag_messages(reader, connections):
            try:
                msg = typestore.deserialize_cdr(raw, ODOMETRY)
            except Exception:  # corrupt motion truth: that object-frame goes unscored
                continue
            v = msg.twist.twist.linear
            if connection.topic == optical:
                velocities.setdefault(stamp_ns(msg), {})[msg.child_frame_id] = \
                    np.array([v.x, v.y, v.z], dtype=np.float64)
            else:
                speeds.setdefault(stamp_ns(msg), {})[msg.child_frame_id] = \
                    float(np.linalg.norm([v.x, v.y, v.z]))
    finally:
        reader.close()
    return {stamp: {key: MotionTruth(v, speeds.get(stamp, {}).get(key))
                    for key, v in objects.items()}
            for stamp, objects in velocities.items()}


def with_ground_truth_depth(objects, gt_objects, noise: float, rng, match_iou: float,
                            max_depth: float, class_max_depth: Dict[str, float]):
    """Return `objects` with matched ones ranged at their GT depth x (1 + N(0, noise)).

    The 3D point and covariance move along the viewing ray with the depth; the spread
    becomes noise x depth and the proximity alert follows the new depth. Unmatched
    objects and GT without a depth are left as they are.
    """
    objects = list(objects)
    pairs = match_boxes(boxes_xyxy([o.detection.box for o in objects]),
                        [o.detection.class_name for o in objects],
                        [o.detection.score for o in objects],
                        boxes_xyxy([g.box for g in gt_objects]),
                        [g.class_name for g in gt_objects], match_iou)
    for p, g in pairs:
        obj, depth = objects[p], gt_objects[g].depth
        if not math.isfinite(depth):
            continue
        z = depth * (1.0 + noise * rng.standard_normal())
        position = covariance = None
        if obj.position is not None and obj.position.z > 0:
            k = z / obj.position.z
            position = Point3D(obj.position.x * k, obj.position.y * k, z)
            if obj.covariance is not None:
                ray = np.array([position.x, position.y, z]) / z
                covariance = np.asarray(obj.covariance) * k * k \
                    - (obj.depth.spread * k) ** 2 * np.outer(ray, ray) \
                    + (noise * z) ** 2 * np.outer(ray, ray)
        limit = alert_limit(obj.detection.class_name, max_depth, class_max_depth)
        objects[p] = dataclasses.replace(obj, depth=ObjectDepth(z, noise * z, 1.0),
                                         position=position, covariance=covariance,
                                         alert=bool(z < limit))
    return objects


class BagTracking:
    """The tracker over a bag's frames as `depthdet eval` runs it, one frame at a time.

    Per frame: with `gt_depth_noise`, the GT depth in place of the network's
    (with_ground_truth_depth, from a fixed seed: the same bag gives the same figures);
    the tracker's update on the frame's header stamp, through a FrameClock as the node
    (an image with the stamp before is taken at its record time's distance from that
    one's); and, with an `evaluation` and GT
    objects, the frame's scores. evaluate_bag and tools/tracker_sweep.py both step
    through frames with it, so their figures agree.
    """

    def __init__(self, tracker, evaluation: Optional['TrackingEvaluation'],
                 gt_depth_noise: Optional[float], max_depth: float,
                 class_max_depth: Dict[str, float], match_iou: float):
        self.tracker = tracker
        self.evaluation = evaluation
        self._noise = gt_depth_noise
        self._noise_rng = np.random.default_rng(0)
        self._max_depth = max_depth
        self._class_max_depth = dict(class_max_depth)
        self._match_iou = match_iou
        self._clock = FrameClock()
        # Frames tracked so far: the jitter's neighbours step over what was not tracked
        # (copies of images read_frames left out, corrupt images evaluate_bag skipped).
        self._steps = 0
        self._depth_measured = None  # the last frame's FrameResult.depth_measured

    def step(self, frame_index: int, stamp_ns: int, objects, gt_objects,
             rgb: np.ndarray, camera_motion: Optional[CameraMotion] = None,
             recorded_ns: Optional[int] = None,
             depth_measured: Optional[Tuple[str, float]] = None) -> Tuple[list, list, float]:
        """Track one frame's objects, seen in the RGB image `rgb` (camera moving so).

        `recorded_ns`: the bag's record time of the image (default its stamp).
        `depth_measured`: the frame's FrameResult.depth_measured; tracking starts over
        where it changes, as in the node (core.pipeline.depth_measured_otherwise).

        Returns the tracker's output, the alerts it holds for tracks the frame missed
        (Tracker.held_alerts: on proximity_alert too), and the time both took (ms).
        """
        ground_truth = self._noise is not None and gt_objects is not None
        if ground_truth:
            config = self.tracker.config
            dropped = set(duplicates(objects, config.duplicate_overlap,
                                     config.duplicate_depth_tolerance))
            objects = [o for i, o in enumerate(objects) if i not in dropped]
            objects = with_ground_truth_depth(objects, gt_objects, self._noise,
                                              self._noise_rng, self._match_iou,
                                              self._max_depth, self._class_max_depth)
        start = time.perf_counter()
        if depth_measured is not None:
            if depth_measured_otherwise(self._depth_measured, depth_measured):
                self.tracker.reset()
            self._depth_measured = depth_measured
        # Duplicates found on the network's depths only, as the node finds them.
        arrival = stamp_ns if recorded_ns is None else recorded_ns
        tracked = self.tracker.update(objects, self._clock(stamp_ns, arrival * 1e-9),
                                      self._max_depth,
                                      self._class_max_depth, image=rgb,
                                      drop_duplicates=not ground_truth,
                                      camera_motion=camera_motion)
        held = self.tracker.held_alerts()
        update_ms = (time.perf_counter() - start) * 1e3
        if self.evaluation is not None and gt_objects is not None:
            self.evaluation.add(frame_index, stamp_ns, gt_objects, tracked, held, self._steps)
        self._steps += 1
        return tracked, held, update_ms


@dataclass
class TrackSample:
    """A tracked object matched to a GT object in one frame."""

    frame: int  # its place among the frames tracked (TrackingEvaluation.add's sequence)
    instance: str
    gt_depth: float
    raw_depth: float
    tracked_depth: float
    raw_alert: bool
    tracked_proximity: bool
    tracked_ttc_alert: bool
    gt_alert: bool
    confirmed: bool
    time_to_contact: float
    gt_time_to_contact: Optional[float]  # None: not an approaching object
    static: Optional[bool]  # None: no motion truth


def gt_time_to_contact(center, gt_depth, velocity) -> Tuple[float, float, float]:
    """(range to the GT surface, closing speed, TTC) from the GT centre and velocity."""
    c = np.array([center.x, center.y, center.z], dtype=np.float64)
    distance = float(np.linalg.norm(c))
    closing = float(-(c @ velocity) / distance)
    surface = distance * gt_depth / c[2] if math.isfinite(gt_depth) and c[2] > 0 else distance
    return surface, closing, (surface / closing if closing > 0 else math.inf)


@dataclass
class TrackingEvaluation:
    """Accumulates tracking scores frame by frame (see the module doc)."""

    max_depth: float
    class_max_depth: Dict[str, float] = field(default_factory=dict)
    match_iou: float = 0.5
    motion: Dict[int, Dict[str, MotionTruth]] = field(default_factory=dict)
    samples: List[TrackSample] = field(default_factory=list)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # its alert rules

    def __post_init__(self):
        import motmetrics
        self._mot = motmetrics.MOTAccumulator(auto_id=True)
        self._gt_object_frames = 0
        self._frames = 0
        self._frame_indices: List[int] = []  # bag frame index of each accumulator frame
        self._world_speed: Dict[str, float] = {}
        # proximity_alert as published: per GT object, (GT alert, on the topic) per frame.
        self._on_topic: Dict[str, List[Tuple[bool, bool]]] = {}
        self._entries = {'all': 0, 'due': 0, 'duplicate': 0, 'no_gt_object': 0}

    def add(self, frame_index: int, stamp_ns: int, gt_objects, tracked, held=(),
            sequence: Optional[int] = None) -> None:
        """Score one frame: its GT objects (eval.ground_truth) and Tracker output.

        `held` are the alerts Tracker.held_alerts returned after that update: they are on
        proximity_alert too. `sequence`: the frame's place among the frames tracked
        (default frame_index, the bag's image ordinal, which counts skipped copies of
        images too): the depth jitter steps between neighbours in it.
        """
        motion = self.motion.get(stamp_ns, {})
        # As the node builds proximity_alert (every alert; held ones at their prediction).
        entries = [from_tracked(t) for t in tracked if t.alert] + \
            [from_tracked(t) for t in held]
        self._add_topic(gt_objects, entries, motion)
        self._frames += 1
        self._frame_indices.append(frame_index)
        self._gt_object_frames += len(gt_objects)
        confirmed = [t for t in tracked if t.confirmed]
        gt_boxes = boxes_xyxy([g.box for g in gt_objects])
        iou = iou_matrix(boxes_xyxy([t.detection.box for t in confirmed]), gt_boxes)
        same = np.array([[t.detection.class_name == g.class_name for g in gt_objects]
                         for t in confirmed], dtype=bool).reshape(iou.shape)
        distance = np.where(same & (iou >= MOT_IOU), 1.0 - iou, np.nan)
        self._mot.update([g.instance_id for g in gt_objects], [t.track_id for t in confirmed],
                         distance.T)
        pairs = match_boxes(boxes_xyxy([t.detection.box for t in tracked]),
                            [t.detection.class_name for t in tracked],
                            [t.detection.score for t in tracked], gt_boxes,
                            [g.class_name for g in gt_objects], self.match_iou)
        for p, g in pairs:
            self.samples.append(self._sample(
                frame_index if sequence is None else sequence, tracked[p], gt_objects[g],
                motion))

    def _add_topic(self, gt_objects, entries, motion) -> None:
        entry_boxes = boxes_xyxy([e.detection.box for e in entries])
        gt_boxes = boxes_xyxy([g.box for g in gt_objects])
        pairs = match_boxes(entry_boxes, [e.detection.class_name for e in entries],
                            [e.detection.score for e in entries], gt_boxes,
                            [g.class_name for g in gt_objects], self.match_iou)
        covered = {g for _, g in pairs}
        limits = [alert_limit(g.class_name, self.max_depth, self.class_max_depth)
                  for g in gt_objects]
        for g, obj in enumerate(gt_objects):
            self._on_topic.setdefault(obj.instance_id, []).append(
                (self._gt_alert(obj, limits[g], motion, False), g in covered))
        # An entry left over by the one-to-one matching on a GT object an entry already
        # has (a held alert beside its object's new track) is a duplicate, not a false one.
        matched = {e for e, _ in pairs}
        iou = iou_matrix(entry_boxes, gt_boxes)
        duplicates = sum(
            1 for e, entry in enumerate(entries) if e not in matched and any(
                iou[e, g] >= self.match_iou and gt.class_name == entry.detection.class_name
                for g, gt in enumerate(gt_objects)))
        self._entries['all'] += len(entries)
        self._entries['duplicate'] += duplicates
        self._entries['no_gt_object'] += len(entries) - len(pairs) - duplicates
        self._entries['due'] += sum(self._gt_alert(gt_objects[g], limits[g], motion, True)
                                    for _, g in pairs)

    def _gt_alert(self, gt, limit, motion, held_on: bool) -> bool:
        """Whether the GT alerts by the tracker's rules: depth, or time to contact.

        With `held_on`, whether it keeps an alert on: with the rules' hysteresis.
        """
        config = self.tracker
        if float(gt.depth) < limit + (config.alert_hysteresis if held_on else 0.0):
            return True
        truth = motion.get(gt.instance_id)
        if config.alert_time_to_contact <= 0 or truth is None or gt.center is None:
            return False
        ttc = gt_time_to_contact(gt.center, gt.depth, truth.velocity)[2]
        return bool(ttc < config.alert_time_to_contact
                    + (config.ttc_hysteresis if held_on else 0.0))

    def _sample(self, frame_index, tracked, gt, motion) -> TrackSample:
        truth = motion.get(gt.instance_id)
        ttc_truth = static = None
        if truth is not None:
            if truth.world_speed is not None:
                static = truth.world_speed <= STATIC_SPEED_M_S
            if gt.center is not None:
                distance, closing, ttc = gt_time_to_contact(gt.center, gt.depth, truth.velocity)
                if APPROACH_SPEED_M_S[0] <= closing <= APPROACH_SPEED_M_S[1] and \
                        APPROACH_RANGE_M[0] <= distance <= APPROACH_RANGE_M[1]:
                    ttc_truth = ttc
        limit = alert_limit(gt.class_name, self.max_depth, self.class_max_depth)
        return TrackSample(
            frame=frame_index, instance=gt.instance_id, gt_depth=gt.depth,
            raw_depth=tracked.raw.depth.depth, tracked_depth=tracked.depth,
            raw_alert=bool(tracked.raw.alert), tracked_proximity=PROXIMITY in tracked.alert_rules,
            tracked_ttc_alert=TIME_TO_CONTACT in tracked.alert_rules,
            gt_alert=bool(gt.depth < limit), confirmed=tracked.confirmed,
            time_to_contact=tracked.time_to_contact, gt_time_to_contact=ttc_truth, static=static)

    # ---- summary -------------------------------------------------------------------

    def summary(self) -> Dict:
        """Return the tracking section of the report (schema in eval.report)."""
        by_object: Dict[str, List[TrackSample]] = {}
        for s in self.samples:
            by_object.setdefault(s.instance, []).append(s)
        return {'frames': self._frames, 'gt_object_frames': self._gt_object_frames,
                'matched_samples': len(self.samples), 'identity': self._identity(),
                'depth': self._depth(), 'jitter': self._jitter(by_object),
                'time_to_contact': self._ttc(), 'alerts': self._alerts(by_object),
                'alert_topic': self._alert_topic()}

    def _identity(self) -> Dict:
        import motmetrics
        names = ['idf1', 'idp', 'idr', 'mota', 'motp', 'num_switches', 'num_false_positives',
                 'num_misses', 'num_objects', 'num_unique_objects', 'mostly_tracked']
        computed = motmetrics.metrics.create().compute(self._mot, metrics=names, name='bag')
        row = {k: computed[k].iloc[0] for k in names}
        switches = int(row['num_switches'])
        objects = int(row['num_objects'])
        return {'idf1': float(row['idf1']), 'idp': float(row['idp']), 'idr': float(row['idr']),
                'mota': float(row['mota']), 'motp_iou': 1.0 - float(row['motp'])
                if objects else None, 'id_switches': switches,
                'false_positives': int(row['num_false_positives']),
                'misses': int(row['num_misses']), 'gt_object_frames': objects,
                'gt_objects': int(row['num_unique_objects']),
                'mostly_tracked': int(row['mostly_tracked']),
                'id_switches_per_100_object_frames':
                    100.0 * switches / objects if objects else None}

    def id_switches(self) -> List[Tuple[int, str, int, int, int]]:
        """Each ID switch py-motmetrics counted, in order.

        (frame index, GT instance, previous track ID, new track ID, frames since that GT
        object was last matched): a long gap is an object back in view after the tracker
        deleted its track, a short one two tracks taking turns on it.
        """
        last: Dict[str, Tuple[int, int]] = {}
        switches = []
        for (frame, _), event in self._mot.events.iterrows():
            if event.Type not in ('MATCH', 'SWITCH'):
                continue
            index, track = self._frame_indices[frame], int(event.HId)
            # pandas reads numeric instance IDs ('7') back as floats (7.0).
            instance = event.OId
            if isinstance(instance, float) and instance.is_integer():
                instance = int(instance)
            instance = str(instance)
            if event.Type == 'SWITCH' and instance in last:
                before, previous = last[instance]
                switches.append((index, instance, previous, track, index - before))
            last[instance] = (index, track)
        return switches

    def _depth(self) -> Dict:
        pairs = [(s.raw_depth, s.tracked_depth, s.gt_depth) for s in self.samples
                 if all(math.isfinite(v) for v in (s.raw_depth, s.tracked_depth, s.gt_depth))]
        if not pairs:
            return {'count': 0, 'raw_mae_m': None, 'tracked_mae_m': None}
        raw, tracked, gt = np.array(pairs).T
        return {'count': len(pairs), 'raw_mae_m': float(np.mean(np.abs(raw - gt))),
                'tracked_mae_m': float(np.mean(np.abs(tracked - gt))),
                'raw_abs_rel': float(np.mean(np.abs(raw - gt) / gt)),
                'tracked_abs_rel': float(np.mean(np.abs(tracked - gt) / gt))}

    def _jitter(self, by_object) -> Dict:
        per_object = {}
        for instance, samples in by_object.items():
            if any(s.static is False for s in samples):
                continue
            steps = []
            for a, b in zip(samples, samples[1:]):
                values = (a.raw_depth, a.tracked_depth, a.gt_depth, b.raw_depth,
                          b.tracked_depth, b.gt_depth)
                if b.frame == a.frame + 1 and all(math.isfinite(v) for v in values):
                    steps.append(((b.raw_depth - b.gt_depth) - (a.raw_depth - a.gt_depth),
                                  (b.tracked_depth - b.gt_depth)
                                  - (a.tracked_depth - a.gt_depth)))
            if len(steps) >= MIN_JITTER_STEPS:
                raw, tracked = np.sqrt(np.mean(np.square(steps), axis=0))
                per_object[instance] = (float(raw), float(tracked), len(steps))
        has_motion = any(s.static is not None for s in self.samples)
        if not per_object:
            return {'objects': 0, 'static_only': has_motion, 'raw_m': None, 'tracked_m': None,
                    'ratio': None, 'per_object': {}}
        raw = np.array([v[0] for v in per_object.values()])
        tracked = np.array([v[1] for v in per_object.values()])
        ratios = tracked[raw > 0] / raw[raw > 0]
        return {'objects': len(per_object), 'static_only': has_motion,
                'raw_m': float(np.median(raw)), 'tracked_m': float(np.median(tracked)),
                'ratio': float(np.median(ratios)) if ratios.size else None,
                'per_object': {k: {'raw_m': v[0], 'tracked_m': v[1], 'steps': v[2]}
                               for k, v in sorted(per_object.items())}}

    def _ttc(self) -> Dict:
        approaching = [s for s in self.samples if s.gt_time_to_contact is not None
                       and s.confirmed]
        result = self._ttc_errors(approaching)
        # Objects moving in the world (people walking at the camera), apart from static
        # ones the camera's own motion brings nearer.
        result['moving_objects'] = self._ttc_errors([s for s in approaching
                                                     if s.static is False])
        result.update(approach_speed_m_s=list(APPROACH_SPEED_M_S),
                      approach_range_m=list(APPROACH_RANGE_M))
        return result

    @staticmethod
    def _ttc_errors(samples) -> Dict:
        if not samples:
            return {'samples': 0, 'objects': 0, 'median_rel_error': None,
                    'mean_rel_error': None, 'no_estimate': 0}
        errors, missing = [], 0
        for s in samples:
            if math.isfinite(s.time_to_contact):
                errors.append(min(abs(s.time_to_contact - s.gt_time_to_contact)
                                  / s.gt_time_to_contact, 1.0))
            else:
                errors.append(1.0)
                missing += 1
        return {'samples': len(samples), 'objects': len({s.instance for s in samples}),
                'median_rel_error': float(np.median(errors)),
                'mean_rel_error': float(np.mean(errors)), 'no_estimate': missing}

    def _alerts(self, by_object) -> Dict:
        rows = {}
        for instance, samples in by_object.items():
            counts = {name: _transitions([getattr(s, attr) for s in samples])
                      for name, attr in (('raw', 'raw_alert'), ('tracked', 'tracked_proximity'),
                                         ('time_to_contact', 'tracked_ttc_alert'),
                                         ('ground_truth', 'gt_alert'))}
            if any(sum(c) for c in counts.values()):
                rows[instance] = counts

        def flickering(name):
            return sum(_flickers(v[name], v['ground_truth']) for v in rows.values())

        def total(name):
            return sum(sum(v[name]) for v in rows.values())

        return {'objects_with_alerts': len(rows),
                'transitions': {name: total(name) for name in
                                ('raw', 'tracked', 'time_to_contact', 'ground_truth')},
                'flickering_objects': {'raw': flickering('raw'),
                                       'tracked': flickering('tracked')},
                'per_object': {k: {name: {'enters': c[0], 'leaves': c[1]}
                                   for name, c in v.items()} for k, v in sorted(rows.items())}}

    def _alert_topic(self) -> Dict:
        gt_alert = sum(g for states in self._on_topic.values() for g, _ in states)
        covered = sum(g and on for states in self._on_topic.values() for g, on in states)
        rows = {}
        for instance, states in self._on_topic.items():
            counts = {'topic': _transitions([on for _, on in states]),
                      'ground_truth': _transitions([g for g, _ in states])}
            if any(sum(c) for c in counts.values()):
                rows[instance] = counts
        return {'gt_alert_object_frames': gt_alert, 'on_topic': covered,
                'recall': covered / gt_alert if gt_alert else None,
                'entries': self._entries['all'], 'entries_due': self._entries['due'],
                'entries_duplicate': self._entries['duplicate'],
                'entries_on_no_gt_object': self._entries['no_gt_object'],
                'objects_with_alerts': len(rows),
                'transitions': {name: sum(sum(v[name]) for v in rows.values())
                                for name in ('topic', 'ground_truth')},
                'flickering_objects': sum(_flickers(v['topic'], v['ground_truth'])
                                          for v in rows.values()),
                'per_object': {k: {name: {'enters': c[0], 'leaves': c[1]}
                                   for name, c in v.items()} for k, v in sorted(rows.items())}}


def _transitions(states) -> Tuple[int, int]:
    """(enters, leaves) of a per-frame on/off sequence that starts off."""
    pairs = list(zip([False] + list(states), states))
    return sum(not a and b for a, b in pairs), sum(a and not b for a, b in pairs)


def _flickers(counts, gt_counts) -> bool:
    """More enters or leaves than the GT's, one of each allowed (one pass)."""
    return counts[0] > max(gt_counts[0], 1) or counts[1] > max(gt_counts[1], 1)
