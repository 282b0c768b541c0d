"""rosbag2 reading and writing without a ROS install (rosbags), vision_msgs included.

- make_typestore(): the ROS 2 Jazzy message store plus the vision_msgs 4.1.1 types,
  read from the installed share/vision_msgs/msg (or the repo's interfaces copy).
- BagWriter: `with BagWriter(path, 'mcap') as bag: bag.write(topic, msg, stamp_ns)`;
  connections are made on first use of a topic.
- read_messages(path, topics): (topic, msgtype, timestamp_ns, message) in bag order.
- bag_messages(reader, connections): a reader's messages; a file damaged part way
  through is a DamagedBagError (one line), not the storage library's own exception.
- header/image/depth/camera_info builders for the rosbags message classes.

Bags are written as rosbag2 metadata version 8, which ROS 2 Jazzy and later read.
Messages are rosbags dataclasses (not rclpy messages): fields are the same, arrays are
numpy arrays.
"""
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional

import cv2
import numpy as np

STORAGE_FORMATS = ('mcap', 'sqlite3')
BAG_VERSION = 8
_REPO_VISION_MSGS = Path(__file__).resolve().parent.parent / 'interfaces' / 'vision_msgs' / 'msg'


def vision_msgs_dir() -> Path:
    """Return the folder of vision_msgs .msg files: installed share dir, else the repo copy."""
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates = [Path(get_package_share_directory('vision_msgs')) / 'msg']
    except (ImportError, LookupError, OSError, ValueError):
        # Not on an ament prefix path: try the interpreter's prefix (pip-only ROS).
        candidates = [Path(sys.prefix) / 'share' / 'vision_msgs' / 'msg']
    candidates.append(_REPO_VISION_MSGS)
    for folder in candidates:
        if any(folder.glob('*.msg')):
            return folder
    raise FileNotFoundError('no vision_msgs message definitions found in '
                            + ', '.join(str(c) for c in candidates))


def make_typestore():
    """Return a rosbags Typestore: ROS 2 Jazzy types plus vision_msgs."""
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg
    store = get_typestore(Stores.ROS2_JAZZY)
    types: Dict[str, Any] = {}
    for msg_file in sorted(vision_msgs_dir().glob('*.msg')):
        types.update(get_types_from_msg(msg_file.read_text(), f'vision_msgs/msg/{msg_file.stem}'))
    store.register(types)
    return store


def _storage_plugin(storage: str):
    from rosbags.rosbag2 import StoragePlugin
    if storage not in STORAGE_FORMATS:
        raise ValueError(f'unknown bag storage {storage!r}; choose from {STORAGE_FORMATS}')
    return StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3


class BagWriter:
    """Writes messages of a rosbags typestore to a new rosbag2 folder."""

    def __init__(self, path, storage: str = 'mcap', typestore=None):
        from rosbags.rosbag2 import Writer
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'{self.path} exists; rosbag2 writes a new folder')
        self.typestore = typestore or make_typestore()
        self._writer = Writer(self.path, version=BAG_VERSION,
                              storage_plugin=_storage_plugin(storage))
        self._connections: Dict[str, Any] = {}
        self.count = 0

    def __enter__(self):
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._writer.close()

    def write(self, topic: str, message, stamp_ns: int):
        """Append `message` on `topic` with bag timestamp `stamp_ns` (ns since epoch)."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, message.__msgtype__,
                                                     typestore=self.typestore)
            self._connections[topic] = connection
        elif connection.msgtype != message.__msgtype__:
            raise TypeError(f'{topic} carries {connection.msgtype}, not {message.__msgtype__}')
        self._writer.write(connection, int(stamp_ns),
                           self.typestore.serialize_cdr(message, message.__msgtype__))
        self.count += 1


class DamagedBagError(ValueError):
    """A bag whose file cannot be read to its end; the message says where it stopped."""


def bag_messages(reader, connections):
    """Yield (connection, timestamp, raw) of an open rosbags Reader, as reader.messages.

    A damaged file breaks the storage plugins part way with assorted exceptions (mcap:
    OverflowError, struct errors; sqlite3: DatabaseError): a DamagedBagError instead,
    naming how many messages came before it.
    """
    count = 0
    try:
        for item in reader.messages(connections=connections):
            yield item
            count += 1
    except Exception as exc:
        problem = ' '.join(str(exc).split()) or type(exc).__name__
        raise DamagedBagError(f'cannot read bag {reader.path}: it breaks off after {count} '
                              f'messages ({problem}): is the file damaged?') from exc


def listed_messages(reader) -> Dict[str, int]:
    """Messages per topic as the bag's index lists them (a damaged file may read fewer)."""
    listed: Dict[str, int] = {}
    for connection in reader.connections:
        listed[connection.topic] = listed.get(connection.topic, 0) + connection.msgcount
    return listed


@dataclass(frozen=True)
class BagMessage:
    """One message read back from a bag."""

    topic: str
    msgtype: str
    timestamp_ns: int
    message: Any


def read_messages(path, topics: Optional[Iterable[str]] = None,
                  typestore=None) -> Iterator[BagMessage]:
    """Yield the messages of a rosbag2 folder (either storage) in timestamp order."""
    from rosbags.rosbag2 import Reader
    store = typestore or make_typestore()
    wanted = None if topics is None else set(topics)
    with Reader(Path(path)) as reader:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for connection, timestamp, raw in bag_messages(reader, connections):
            yield BagMessage(connection.topic, connection.msgtype, timestamp,
                             store.deserialize_cdr(raw, connection.msgtype))


def bag_topics(path) -> Dict[str, str]:
    """Return {topic: msgtype} of a bag."""
    from rosbags.rosbag2 import Reader
    with Reader(Path(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


# ---- message builders (rosbags classes) --------------------------------------------

def header(store, stamp_ns: int, frame_id: str):
    """Return a std_msgs/Header stamped `stamp_ns` (ns since epoch)."""
    types = store.types
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    stamp = types['builtin_interfaces/msg/Time'](sec=seconds, nanosec=nanoseconds)
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)


def stamp_to_ns(msg_header) -> int:
    """Return a Header's stamp as ns since epoch."""
    return int(msg_header.stamp.sec) * 1_000_000_000 + int(msg_header.stamp.nanosec)


def rgb_image(store, msg_header, rgb: np.ndarray):
    """Return an rgb8 sensor_msgs/Image of an HxWx3 uint8 array."""
    height, width = rgb.shape[:2]
    return store.types['sensor_msgs/msg/Image'](
        header=msg_header, height=height, width=width, encoding='rgb8', is_bigendian=0,
        step=width * 3, data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1))


def jpeg_image(store, msg_header, rgb: np.ndarray, quality: int = 90):
    """Return a JPEG sensor_msgs/CompressedImage of an HxWx3 RGB uint8 array."""
    ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    return store.types['sensor_msgs/msg/CompressedImage'](header=msg_header, format='jpeg',
                                                          data=encoded.reshape(-1))


def _one_channel_image(store, msg_header, values: np.ndarray, encoding: str, dtype: str):
    height, width = values.shape
    data = np.ascontiguousarray(values, dtype=dtype).view(np.uint8).reshape(-1)
    return store.types['sensor_msgs/msg/Image'](
        header=msg_header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * np.dtype(dtype).itemsize, data=data)


def depth_image(store, msg_header, depth: np.ndarray):
    """Return a 32FC1 sensor_msgs/Image (metres, little-endian) of an HxW array."""
    return _one_channel_image(store, msg_header, depth, '32FC1', '<f4')


def mono16_image(store, msg_header, values: np.ndarray):
    """Return a 16UC1 sensor_msgs/Image (little-endian) of an HxW integer array."""
    return _one_channel_image(store, msg_header, values, '16UC1', '<u2')


def image_to_array(msg) -> np.ndarray:
    """Decode a rosbags rgb8/32FC1/16UC1 Image or JPEG/PNG CompressedImage to an array."""
    if msg.__msgtype__ == 'sensor_msgs/msg/CompressedImage':
        return cv2.cvtColor(cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)
    rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    if msg.encoding == 'rgb8':
        return rows[:, :msg.width * 3].reshape(msg.height, msg.width, 3)
    if msg.encoding == '32FC1':
        dtype = '>f4' if msg.is_bigendian else '<f4'
        return np.ascontiguousarray(rows[:, :msg.width * 4]).view(dtype).reshape(
            msg.height, msg.width).astype(np.float32)
    if msg.encoding == '16UC1':
        dtype = '>u2' if msg.is_bigendian else '<u2'
        return np.ascontiguousarray(rows[:, :msg.width * 2]).view(dtype).reshape(
            msg.height, msg.width).astype(np.uint16)
    raise ValueError(f'image encoding {msg.encoding!r} is not rgb8, 32FC1 or 16UC1')


def camera_info(store, msg_header, camera):
    """Return sensor_msgs/CameraInfo for a CameraModel (its distortion, R = I, P = [K|0])."""
    types = store.types
    projection = np.zeros((3, 4))
    projection[:, :3] = camera.K
    roi = types['sensor_msgs/msg/RegionOfInterest'](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types['sensor_msgs/msg/CameraInfo'](
        header=msg_header, height=int(camera.height), width=int(camera.width),
        distortion_model=camera.distortion_model, d=camera.info_coefficients(),
        k=np.asarray(camera.K, dtype=np.float64).reshape(-1), r=np.eye(3).reshape(-1),
        p=projection.reshape(-1), binning_x=0, binning_y=0, roi=roi)
