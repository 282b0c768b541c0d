"""Reading an evaluation bag: topic selection, stamp matching and message decoding.

Any rosbag2 folder (MCAP or sqlite3) is read with rosbags, no ROS install needed.

Topics (`select_topics`): given ones must exist with a fitting type; missing ones are
found by message type: camera images are Image/CompressedImage topics without 'depth'
or 'debug' in their name, outside the ground-truth namespaces (raw preferred over
compressed), the depth topic is the Image topic with 'depth' in its name (else the
CompressedImage one: image_transport's compressedDepth, or a 16-bit PNG; of several, the
one named aligned or registered), camera_info the
CameraInfo topic (the one beside the image when there are several), ground truth the
Detection2DArray / Detection3DArray topics under a 'ground_truth' or 'gt' namespace, and
ground-truth instance masks the Image topic there with 'instance' in its name (16UC1 or
mono16, 0 = background, else the id of the object's GT Detection2D).

Frames (`read_frames`): two passes. The first deserialises every selected message to
index header stamps (array fields are views, so images cost little) and keeps the small
ones (camera_info, GT); the second decodes images and depth maps frame by frame, so
memory holds a few frames, not the bag. Each image is one frame, in bag order. Its GT
depth and GT detections are the messages whose header stamps are nearest to the
image's within the tolerance; its camera_info is the nearest within the tolerance, else
the latest one stamped before it (camera_info often comes at a lower rate). Instance
images are read in the first pass and kept as one COCO RLE per instance (a few hundred
bytes each), matched like the GT detections. Messages that fail to deserialise or decode
are reported as CorruptMessage and skipped.
"""
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np

from depthdet_ros.bags import bag_messages, listed_messages
from depthdet_ros.core.camera import CameraModel, CameraModelError, same_aspect
from depthdet_ros.core import image
from depthdet_ros.core.copies import COPY, LATE_COPY, RecentImages
from depthdet_ros.core.image import decode_compressed, decode_raw, DEFAULT_MAX_PIXELS
from depthdet_ros.eval.ground_truth import frame_ground_truth, GroundTruthObject
from depthdet_ros.eval.matching import latest_at_or_before, nearest_stamp

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
DETECTION_2D_ARRAY = 'vision_msgs/msg/Detection2DArray'
DETECTION_3D_ARRAY = 'vision_msgs/msg/Detection3DArray'
GROUND_TRUTH_NAMESPACES = ('ground_truth', 'groundtruth', 'gt')


class BagInputError(ValueError):
    """The bag cannot be evaluated as asked; the message says why and what exists."""


@dataclass(frozen=True)
class EvalTopics:
    """The topics an evaluation reads (None: not in the bag, that part is skipped)."""

    image: str
    camera_info: Optional[str] = None
    depth: Optional[str] = None
    gt_detections: Optional[str] = None
    gt_detections_3d: Optional[str] = None
    gt_instances: Optional[str] = None

    def as_dict(self) -> Dict[str, Optional[str]]:
        """Role -> topic, None where the bag has none (as the report schema says)."""
        return dict(self.__dict__)


def open_reader(path):
    """Open a rosbag2 folder with rosbags; BagInputError when it cannot be read."""
    from rosbags.rosbag2 import Reader
    bag = Path(path)
    if not bag.exists():
        raise BagInputError(f'no such bag: {bag}')
    if bag.is_dir() and not (bag / 'metadata.yaml').is_file():
        files = sorted(p.name for p in bag.glob('*') if p.suffix in ('.mcap', '.db3'))
        first = f', the first of {len(files)}' if len(files) > 1 else ''
        hint = f'give the file itself ({bag / files[0]}{first}), or' if files else \
            'a ROS install can'
        raise BagInputError(f'cannot read bag {bag}: the folder has no metadata.yaml (a '
                            f'recording cut short? {hint} write it again with '
                            '`ros2 bag reindex`)')
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated types for unreadable bags
        problem = ' '.join(str(exc).split())  # YAML errors come over several lines
        raise BagInputError(f'cannot read bag {bag}: {problem}') from None
    return reader


def _listing(topic_types: Dict[str, str]) -> str:
    if not topic_types:
        return 'the bag has no topics'
    return 'topics in the bag: ' + ', '.join(f'{t} [{m}]' for t, m in sorted(topic_types.items()))


def _parts(topic: str) -> List[str]:
    return [p for p in topic.split('/') if p]


def is_depth_topic(topic: str) -> bool:
    """Whether an image topic's name says it carries depth."""
    return any('depth' in part.lower() for part in _parts(topic))


def is_ground_truth_topic(topic: str) -> bool:
    """Whether a topic lies under a ground-truth namespace."""
    return any(part.lower() in GROUND_TRUTH_NAMESPACES for part in _parts(topic)[:-1]) or \
        any(part.lower().startswith(('ground_truth', 'gt_')) for part in _parts(topic))


def camera_image_topics(topic_types: Dict[str, str]) -> List[str]:
    """Colour/mono camera topics: images not named depth or debug, nor ground truth."""
    return sorted(t for t, m in topic_types.items() if m in (IMAGE, COMPRESSED_IMAGE)
                  and not is_depth_topic(t) and 'debug' not in t.lower()
                  and not is_ground_truth_topic(t))


def _pick_one(role, option, candidates, topic_types, required):
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        if required:
            raise BagInputError(f'no {role} topic found; {_listing(topic_types)}')
        return None
    raise BagInputError(f'several {role} topics ({", ".join(candidates)}); choose one with '
                        f'{option}')


def _given(role, option, topic, types, topic_types):
    if topic not in topic_types:
        raise BagInputError(f'{role} topic {topic} ({option}) is not in the bag; '
                            f'{_listing(topic_types)}')
    if topic_types[topic] not in types:
        raise BagInputError(f'{role} topic {topic} carries {topic_types[topic]}, not '
                            f'{" or ".join(types)}')
    return topic


def select_topics(topic_types: Dict[str, str], image: str = '', camera_info: str = '',
                  depth: str = '', gt_detections: str = '', gt_detections_3d: str = '',
                  gt_instances: str = '') -> EvalTopics:
    """Choose the evaluation topics (see the module doc); raises BagInputError."""
    if image:
        image = _given('image', '--image-topic', image, (IMAGE, COMPRESSED_IMAGE), topic_types)
    else:
        candidates = camera_image_topics(topic_types)
        raw = [t for t in candidates if topic_types[t] == IMAGE]
        image = _pick_one('camera image', '--image-topic', raw if len(raw) == 1 else candidates,
                          topic_types, required=True)
    if camera_info:
        camera_info = _given('camera_info', '--camera-info-topic', camera_info, (CAMERA_INFO,),
                             topic_types)
    else:
        infos = sorted(t for t, m in topic_types.items() if m == CAMERA_INFO)
        stream = image[:-len('/compressed')] if image.endswith('/compressed') else image
        beside = stream.rsplit('/', 1)[0] + '/camera_info'
        camera_info = _pick_one('camera_info', '--camera-info-topic',
                                [beside] if beside in infos else infos, topic_types, False)
    if depth:
        depth = _given('depth', '--depth-topic', depth, (IMAGE, COMPRESSED_IMAGE), topic_types)
    else:
        named = sorted(t for t, m in topic_types.items()
                       if m in (IMAGE, COMPRESSED_IMAGE) and is_depth_topic(t))
        candidates = [t for t in named if topic_types[t] == IMAGE] or named
        # Of several, the one registered to the colour image (a RealSense's
        # aligned_depth_to_color, OpenNI's depth_registered) has the image's pixels.
        registered = [t for t in candidates
                      if 'aligned' in t.lower() or 'registered' in t.lower()]
        depth = _pick_one('depth', '--depth-topic',
                          registered if len(registered) == 1 else candidates, topic_types,
                          False)
    found = {}
    for role, option, given, msgtype in (
            ('ground-truth detections', '--gt-detections-topic', gt_detections,
             DETECTION_2D_ARRAY),
            ('ground-truth 3D detections', '--gt-detections-3d-topic', gt_detections_3d,
             DETECTION_3D_ARRAY)):
        if given:
            found[msgtype] = _given(role, option, given, (msgtype,), topic_types)
        else:
            found[msgtype] = _pick_one(role, option, sorted(
                t for t, m in topic_types.items() if m == msgtype and is_ground_truth_topic(t)),
                topic_types, False)
    if gt_instances:
        gt_instances = _given('ground-truth instance masks', '--gt-instances-topic',
                              gt_instances, (IMAGE,), topic_types)
    else:
        gt_instances = _pick_one('ground-truth instance masks', '--gt-instances-topic', sorted(
            t for t, m in topic_types.items() if m == IMAGE and is_ground_truth_topic(t)
            and 'instance' in t.lower()), topic_types, False)
    return EvalTopics(image=image, camera_info=camera_info, depth=depth,
                      gt_detections=found[DETECTION_2D_ARRAY],
                      gt_detections_3d=found[DETECTION_3D_ARRAY], gt_instances=gt_instances)


def first_messages(path, topics, typestore) -> Dict[str, object]:
    """Return the first message that deserialises on each of `topics` (one reading)."""
    wanted, first = set(topics), {}
    reader = open_reader(path)
    try:
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, _, raw in bag_messages(reader, connections):
            if connection.topic in first:
                continue
            try:
                first[connection.topic] = typestore.deserialize_cdr(raw, connection.msgtype)
            except Exception:  # a corrupt message (rosbags raises assorted errors): try the next
                continue
            if len(first) == len(wanted):
                break
    finally:
        reader.close()
    return first


def check_topic_contents(path, topics: EvalTopics, typestore) -> None:
    """Refuse an image topic that carries depth, or a depth topic that carries colour.

    By their first readable message; otherwise every frame would be skipped or compared
    against the wrong thing, and the run end with nothing to show.
    """
    first = first_messages(path, [t for t in (topics.image, topics.depth) if t], typestore)
    message = first.get(topics.image)
    if message is not None and message.__msgtype__ == IMAGE \
            and message.encoding not in image.SUPPORTED_ENCODINGS:
        raise BagInputError(f'image topic {topics.image} carries {message.encoding} images, '
                            'not camera images (rgb8, bgr8, mono8, ...): choose the camera '
                            'topic with --image-topic')
    if topics.depth is None:
        return
    message = first.get(topics.depth)
    encoding = None if message is None else image.depth_encoding(message)
    if message is not None and encoding not in image.DEPTH_ENCODINGS:
        raise BagInputError(f'depth topic {topics.depth} carries {encoding} images, not '
                            'depth (32FC1 metres or 16UC1 millimetres): choose the depth topic '
                            'with --depth-topic')
    if topics.image == topics.depth:
        raise BagInputError(f'{topics.image} is both the image and the depth topic: choose '
                            'them with --image-topic and --depth-topic')


# ---- decoding rosbags messages -------------------------------------------------------

def decode_image(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a rosbags Image or CompressedImage to RGB uint8 (core.image decoders)."""
    if msg.__msgtype__ == COMPRESSED_IMAGE:
        return decode_compressed(msg.data, max_pixels, msg.format)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                      bool(msg.is_bigendian), max_pixels)


def decode_depth(msg) -> np.ndarray:
    """Decode a rosbags depth Image or CompressedImage to float32 metres, NaN where invalid.

    (core.image's decode_depth and decode_compressed_depth.)
    """
    if msg.__msgtype__ == COMPRESSED_IMAGE:
        return image.decode_compressed_depth(msg.data, msg.format)
    return image.decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                              bool(msg.is_bigendian))


def instance_masks(msg) -> Dict[str, Dict]:
    """Decode a 16UC1 / mono16 instance image to {instance id: COCO RLE of its pixels}."""
    from depthdet_ros.eval.metrics import mask_rle
    if msg.encoding not in ('16UC1', 'mono16'):
        raise ValueError(f'instance image encoding {msg.encoding!r} is not 16UC1 or mono16')
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(memoryview(msg.data), np.uint8)
    if step < 2 * w or data.size < step * h:
        raise ValueError(f'instance image {w}x{h} with step {step} holds {data.size} bytes')
    dtype = '>u2' if msg.is_bigendian else '<u2'
    ids = data[:step * h].reshape(h, step)[:, :2 * w].copy().view(dtype)
    return {str(int(i)): mask_rle(ids == i) for i in np.unique(ids) if i}


def camera_from_info(msg) -> Optional[CameraModel]:
    """Return the CameraModel of a rosbags CameraInfo, or None when unusable (zero K)."""
    camera = CameraModel.from_camera_info(msg)
    try:
        camera.validate()
    except CameraModelError:
        return None
    return camera


def camera_for_shape(camera: Optional[CameraModel], shape) -> Optional[CameraModel]:
    """Return the camera for an image of `shape` (h, w) by the node's rule, or None.

    CameraModel.for_image: scaled for the same camera resized, None for a CameraInfo
    of another aspect ratio (the node publishes no 3D then).
    """
    return None if camera is None else camera.for_image(shape[1], shape[0])


def stamp_ns(msg) -> int:
    """Header stamp of a message, ns."""
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


# ---- frames ------------------------------------------------------------------------

@dataclass(frozen=True)
class CorruptMessage:
    """A message that could not be used (skipped)."""

    topic: str
    bag_time_ns: int
    error: str


@dataclass
class BagFrame:
    """One camera image with everything matched to it.

    gt_objects is None when no GT detections match the frame (not evaluated for
    objects); rgb is None when the image itself was corrupt (then `error` says why).
    """

    index: int
    bag_time_ns: int
    stamp_ns: int
    header: object
    rgb: Optional[np.ndarray]
    camera: Optional[CameraModel]
    gt_depth: Optional[np.ndarray]
    gt_objects: Optional[List[GroundTruthObject]]
    decode_ms: float
    error: str = ''
    # A CameraInfo was matched but has another aspect ratio than the image: camera None.
    camera_info_refused: bool = False
    # Whose focal length scales the depth: `camera`, else (none matched, or refused) the
    # last frame's that fits this image, as the node keeps a lost CameraInfo's frame at
    # the scale of the newest one that fits (a frame at the assumed scale would restart
    # tracking twice, core.pipeline.depth_measured_otherwise).
    depth_camera: Optional[CameraModel] = None
    # The matched CameraInfo is for another resolution: `camera` is it scaled.
    camera_info_scaled: bool = False
    # The matched CameraInfo's frame_id is not the image's: another camera's intrinsics?
    camera_info_other_frame: bool = False
    # Why the matched depth message could not be read ('' if it could, or none matched).
    depth_error: str = ''
    # The depth map matched has another aspect ratio than the image: not compared (None).
    depth_refused: bool = False
    # The depth map's frame_id is not the image's: another viewpoint, not registered.
    depth_other_frame: bool = False
    # GT instance masks {instance id: COCO RLE}, with the GT detections; None: none.
    gt_masks: Optional[Dict[str, Dict]] = None


@dataclass
class BagIndex:
    """What the first pass learnt about the bag."""

    topics: EvalTopics
    topic_types: Dict[str, str]
    storage: str
    duration_s: float
    message_count: int
    images: List[tuple] = field(default_factory=list)   # (bag time, stamp, header)
    depth_stamps: List[int] = field(default_factory=list)
    cameras: List[tuple] = field(default_factory=list)  # (stamp, CameraModel or None)
    gt_2d: List[tuple] = field(default_factory=list)    # (stamp, message)
    gt_3d: List[tuple] = field(default_factory=list)
    gt_instances: List[tuple] = field(default_factory=list)  # (stamp, {id: RLE})
    corrupt: List[CorruptMessage] = field(default_factory=list)
    invalid_camera_info: int = 0
    # Copies of image messages (core.copies: two publishers on the topic while it was
    # recorded), skipped by read_frames as the node gives them no new answer.
    repeated_images: int = 0
    depth_unpaired: Optional[str] = None  # why no image got a depth message (evaluate_bag)
    listed: Dict[str, int] = field(default_factory=dict)  # messages per topic, as indexed


def storage_name(path) -> str:
    """Storage plugin of a rosbag2 folder ('mcap', 'sqlite3'), from its metadata.yaml."""
    import yaml
    try:
        with open(Path(path) / 'metadata.yaml', encoding='utf-8') as f:
            info = yaml.safe_load(f)['rosbag2_bagfile_information']
        return str(info['storage_identifier'])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return 'unknown'


def index_bag(path, topics: EvalTopics, typestore) -> BagIndex:
    """First pass: header stamps of images and depth, all camera_info and GT messages."""
    reader = open_reader(path)
    try:
        topic_types = {c.topic: c.msgtype for c in reader.connections}
        index = BagIndex(topics=topics, topic_types=topic_types, storage=storage_name(path),
                         duration_s=reader.duration / 1e9 if reader.message_count else 0.0,
                         message_count=reader.message_count)
        index.listed = listed_messages(reader)
        wanted = {t for t in topics.as_dict().values() if t}
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, bag_time, raw in bag_messages(reader, connections):
            topic = connection.topic
            try:
                msg = typestore.deserialize_cdr(raw, connection.msgtype)
                stamp = stamp_ns(msg)
                if topic == topics.gt_instances:
                    masks = instance_masks(msg)
            except Exception as exc:  # any garbage: rosbags raises assorted errors
                index.corrupt.append(CorruptMessage(topic, bag_time, _describe(exc)))
                # Keep the per-topic ordinals in step with the second pass.
                if topic == topics.image:
                    index.images.append((bag_time, None, None))
                elif topic == topics.depth:
                    index.depth_stamps.append(None)
                continue
            if topic == topics.image:
                index.images.append((bag_time, stamp, msg.header))
            elif topic == topics.depth:
                index.depth_stamps.append(stamp)
            elif topic == topics.camera_info:
                camera = camera_from_info(msg)
                index.invalid_camera_info += camera is None
                index.cameras.append((stamp, camera))
            elif topic == topics.gt_detections:
                index.gt_2d.append((stamp, msg))
            elif topic == topics.gt_detections_3d:
                index.gt_3d.append((stamp, msg))
            elif topic == topics.gt_instances:
                index.gt_instances.append((stamp, masks))
    finally:
        reader.close()
    return index


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0] if text else ""}'.rstrip(': ')


class _StampTable:
    """Sorted stamps of (stamp, payload) records for nearest-stamp lookups."""

    def __init__(self, records):
        records = sorted((r for r in records if r[0] is not None), key=lambda r: r[0])
        self.stamps = np.array([r[0] for r in records], dtype=np.int64)
        self.payloads = [r[1] for r in records]

    def nearest(self, stamp, tolerance_ns):
        i = nearest_stamp(self.stamps, stamp, tolerance_ns)
        return None if i is None else self.payloads[i]

    def latest(self, stamp):
        i = latest_at_or_before(self.stamps, stamp)
        return None if i is None else self.payloads[i]


@dataclass(frozen=True)
class FramePlan:
    """Which depth message (ordinal on its topic) and small messages go with an image."""

    image_ordinal: int
    depth_ordinal: Optional[int]
    camera: Optional[CameraModel]
    gt_2d: Optional[object]
    gt_3d: Optional[object]
    gt_masks: Optional[Dict[str, Dict]] = None


def plan_frames(index: BagIndex, tolerance_ns: int,
                latest_camera: bool = True) -> List[FramePlan]:
    """Match every image to its depth, camera_info and GT messages by header stamp.

    With `latest_camera`, an image without a CameraInfo of its stamp gets the latest one
    before it (a camera that publishes CameraInfo less often); else none.
    """
    depth = _StampTable([(s, i) for i, s in enumerate(index.depth_stamps)])
    cameras = _StampTable(index.cameras)
    gt_2d, gt_3d = _StampTable(index.gt_2d), _StampTable(index.gt_3d)
    gt_masks = _StampTable(index.gt_instances)
    plans = []
    for ordinal, (_, stamp, _) in enumerate(index.images):
        if stamp is None:
            plans.append(FramePlan(ordinal, None, None, None, None))
            continue
        camera = cameras.nearest(stamp, tolerance_ns)
        if camera is None and latest_camera:
            camera = cameras.latest(stamp)
        detections = gt_2d.nearest(stamp, tolerance_ns)
        plans.append(FramePlan(ordinal, depth.nearest(stamp, tolerance_ns), camera, detections,
                               gt_3d.nearest(stamp, tolerance_ns) if detections else None,
                               gt_masks.nearest(stamp, tolerance_ns) if detections else None))
    return plans


def depth_unpaired(index: BagIndex, plans: List[Optional[FramePlan]],
                   tolerance_ns: int) -> Optional[str]:
    """Why no image evaluated got a message of the bag's depth topic; None if one did.

    A depth camera's frames are often stamped apart from the colour camera's (a few ms to
    tens of ms): say how far off the nearest are, so that --stamp-tolerance can be set.
    """
    topic = index.topics.depth
    if topic is None or any(p is not None and p.depth_ordinal is not None for p in plans):
        return None
    depth = np.array(sorted(s for s in index.depth_stamps if s is not None), dtype=np.int64)
    images = [index.images[p.image_ordinal][1] for p in plans if p is not None]
    images = np.array([s for s in images if s is not None], dtype=np.int64)
    if not len(depth) or not len(images):
        return f'{topic} has no depth message with a readable stamp'
    k = np.searchsorted(depth, images)
    nearest = np.minimum(np.abs(depth[np.clip(k - 1, 0, len(depth) - 1)] - images),
                         np.abs(depth[np.clip(k, 0, len(depth) - 1)] - images))
    return (f'none of the {len(depth)} messages of {topic} is stamped within '
            f'{tolerance_ns * 1e-6:g} ms of an image evaluated (the nearest are '
            f'{np.median(nearest) * 1e-6:.1f} ms off, median over the images): give a '
            'larger --stamp-tolerance if they belong together')


def read_frames(path, index: BagIndex, plans: List[Optional[FramePlan]], typestore,
                max_pixels: int = DEFAULT_MAX_PIXELS,
                on_message: Optional[Callable] = None) -> Iterator[BagFrame]:
    """Second pass: yield a BagFrame per image, in bag order (see the module doc).

    An image whose plan is None is skipped unread (outside the window evaluated); one
    that is a copy (core.copies: by stamp, frame_id, the message's length and CRC-32,
    and the record time) is skipped and counted in index.repeated_images, as the node
    gives a copy no new answer.
    `on_message(connection, bag_time, raw)` sees every message of the bag, in order,
    before the frames it completes are yielded (used to copy a bag). Corrupt depth maps
    and images are appended to index.corrupt.
    """
    topics = index.topics
    needed_depth: Dict[int, int] = {}
    for plan in plans:
        if plan is not None and plan.depth_ordinal is not None:
            needed_depth[plan.depth_ordinal] = needed_depth.get(plan.depth_ordinal, 0) + 1
    depth_raw: Dict[int, bytes] = {}
    pending: List[tuple] = []  # (plan, raw image), in bag order
    next_plan = 0
    recent = RecentImages()
    last_camera = _LastCamera()
    ordinals = {topics.image: 0, topics.depth: 0}
    reader = open_reader(path)
    try:
        wanted = {topics.image, topics.depth}
        connections = reader.connections if on_message else \
            [c for c in reader.connections if c.topic in wanted]
        for connection, bag_time, raw in bag_messages(reader, connections):
            if on_message:
                on_message(connection, bag_time, raw)
            topic = connection.topic
            if topic not in wanted:
                continue
            ordinal = ordinals[topic]
            ordinals[topic] += 1
            if topic == topics.image:
                data = bytes(raw)
                _, stamp, header = index.images[next_plan]
                kind = None if stamp is None else recent.classify(
                    stamp, header.frame_id, (len(data), zlib.crc32(data)), bag_time * 1e-9)
                if kind in (COPY, LATE_COPY):
                    index.repeated_images += plans[next_plan] is not None
                    # Its depth map is not kept for it (review: every map a copy shared
                    # stayed in memory to the end of the bag).
                    _release_depth(plans[next_plan], depth_raw, needed_depth)
                elif plans[next_plan] is not None:
                    pending.append((plans[next_plan], data))
                next_plan += 1
            elif needed_depth.get(ordinal):
                depth_raw[ordinal] = bytes(raw)
            # Frames leave in bag order, each as soon as its depth map has been read.
            while pending and (pending[0][0].depth_ordinal is None
                               or pending[0][0].depth_ordinal in depth_raw):
                plan, image_raw = pending.pop(0)
                yield last_camera.fill(_build_frame(index, plan, image_raw, depth_raw,
                                                    needed_depth, typestore, max_pixels))
        while pending:  # depth never arrived (corrupt or cut off): frames without it
            plan, image_raw = pending.pop(0)
            yield last_camera.fill(_build_frame(index, plan, image_raw, depth_raw,
                                                needed_depth, typestore, max_pixels))
    finally:
        reader.close()


class _LastCamera:
    """The last camera matched to a frame, for the depth of frames without one."""

    def __init__(self):
        self.camera = None

    def fill(self, frame: BagFrame) -> BagFrame:
        """Set frame.depth_camera; return the frame."""
        if frame.camera is not None:
            self.camera = frame.depth_camera = frame.camera
        elif frame.rgb is not None:
            frame.depth_camera = camera_for_shape(self.camera, frame.rgb.shape)
        return frame


def _release_depth(plan, depth_raw, needed_depth):
    """One image of a plan (or None) no longer needs its depth map: drop it if none does."""
    if plan is not None and plan.depth_ordinal is not None:
        needed_depth[plan.depth_ordinal] -= 1
        if not needed_depth[plan.depth_ordinal]:
            depth_raw.pop(plan.depth_ordinal, None)


def _build_frame(index, plan, image_raw, depth_raw, needed_depth, typestore, max_pixels):
    topics = index.topics
    bag_time, stamp, header = index.images[plan.image_ordinal]
    gt_depth, depth_frame_id, depth_error = None, '', ''
    if plan.depth_ordinal is not None:
        raw = depth_raw.get(plan.depth_ordinal)
        _release_depth(plan, depth_raw, needed_depth)
        if raw is not None:
            try:
                depth_msg = typestore.deserialize_cdr(raw, index.topic_types[topics.depth])
                gt_depth = decode_depth(depth_msg)
                depth_frame_id = depth_msg.header.frame_id
            except Exception as exc:
                depth_error = _describe(exc)
                index.corrupt.append(CorruptMessage(topics.depth, bag_time, depth_error))
    frame = BagFrame(index=plan.image_ordinal, bag_time_ns=bag_time, stamp_ns=stamp,
                     header=header, rgb=None, camera=None, gt_depth=gt_depth, gt_objects=None,
                     decode_ms=0.0, depth_error=depth_error)
    if stamp is None:
        frame.error = 'corrupt image message'
        return frame
    t0 = time.perf_counter()
    try:
        msg = typestore.deserialize_cdr(image_raw, index.topic_types[topics.image])
        frame.rgb = decode_image(msg, max_pixels)
    except Exception as exc:
        frame.error = _describe(exc)
        index.corrupt.append(CorruptMessage(topics.image, bag_time, frame.error))
        return frame
    frame.decode_ms = (time.perf_counter() - t0) * 1e3
    frame.camera = camera_for_shape(plan.camera, frame.rgb.shape)
    frame.camera_info_refused = plan.camera is not None and frame.camera is None
    frame.camera_info_scaled = frame.camera is not None and frame.camera is not plan.camera
    frame.camera_info_other_frame = plan.camera is not None and _other_frame(
        plan.camera.frame_id, header.frame_id)
    image_size = frame.rgb.shape[1::-1]
    if gt_depth is not None and not same_aspect(image_size, gt_depth.shape[1::-1]):
        frame.depth_refused, gt_depth = True, None
    if gt_depth is not None:
        # Both frame_ids given and different: a depth camera's own view (an unaligned
        # RealSense depth topic), compared pixel by pixel as if it were the image's.
        frame.depth_other_frame = _other_frame(depth_frame_id, header.frame_id)
    frame.gt_depth = gt_depth
    if plan.gt_2d is not None:
        depth_camera = camera_for_shape(plan.camera, gt_depth.shape) \
            if gt_depth is not None else None
        frame.gt_objects = frame_ground_truth(plan.gt_2d, plan.gt_3d, gt_depth, depth_camera,
                                              image_size)
        frame.gt_masks = plan.gt_masks
    return frame


def _other_frame(frame_id: str, image_frame_id: str) -> bool:
    """Whether both frame_ids are given and differ (an empty one says nothing)."""
    return bool(frame_id and image_frame_id and frame_id != image_frame_id)


def stamp_tolerance_ns(milliseconds: float) -> int:
    """Tolerance in ns from milliseconds (validated >= 0)."""
    if not milliseconds >= 0 or math.isinf(milliseconds):
        raise ValueError(f'stamp tolerance must be a finite number >= 0 ms, got {milliseconds}')
    return int(round(milliseconds * 1e6))
