"""The evaluated bag with the pipeline's outputs added, for Foxglove / RViz.

Every input message is copied unchanged (same topics, types, definitions and QoS), and
per processed frame, at the image's bag time and with its header, as depthdet_node
publishes them (prefix 'depthdet' by default):

- PREFIX/detections        vision_msgs/Detection2DArray
- PREFIX/detections_3d     vision_msgs/Detection3DArray
- PREFIX/proximity_alert   vision_msgs/Detection3DArray (empty when clear)
- PREFIX/markers           visualization_msgs/MarkerArray (boxes and labels)
- PREFIX/depth             sensor_msgs/Image 32FC1 metres, NaN invalid
- PREFIX/depth/camera_info sensor_msgs/CameraInfo (frames with camera_info)

Messages are rosbags objects filled by the node's own builders (ros.message_layout,
which imports no ROS package) with rosbags types (a test compares their CDR bytes with
the node's), so no ROS install is needed to write them. With the evaluation's tracker
(the default), objects carry their track IDs and smoothed values and alerts follow the
tracked rules, with the node's publish_raw and publish_tentative; without it
(--no-tracking), each frame stands alone, as the node with tracking off.
"""
import re
import shutil
from pathlib import Path
from typing import Dict

from depthdet_ros.bags import BAG_VERSION, camera_info, depth_image
from depthdet_ros.ros import message_layout as layout
from depthdet_ros.sim.messages import rosbags_factory

OUTPUT_TOPICS = ('detections', 'detections_3d', 'proximity_alert', 'markers', 'depth',
                 'depth/camera_info')


def output_topics(prefix: str) -> Dict[str, str]:
    """Return {role: topic} of the added topics under `prefix`; ValueError if not a name.

    Each part of the prefix must be a ROS name token: letters, digits and underscores,
    not starting with a digit.
    """
    parts = prefix.strip('/').split('/') if prefix.strip('/') else []
    if not all(re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', part) for part in parts):
        raise ValueError(f'--output-prefix {prefix!r} is not a ROS topic namespace (letters, '
                         'digits and _ between slashes, not starting with a digit)')
    return {name: '/'.join(['', *parts, name]) for name in OUTPUT_TOPICS}


class OutputBag:
    """A new bag: a copy of the input plus the pipeline's outputs (see the module doc)."""

    def __init__(self, path, storage: str, prefix: str, typestore, input_topics,
                 default_frame_id: str = 'camera_optical_frame', publish_raw: bool = False,
                 publish_tentative: bool = True, marker_lifetime_s: float = 0.0):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'{self.path} exists; rosbag2 writes a new folder')
        self.topics = output_topics(prefix)
        clashes = sorted(set(self.topics.values()) & set(input_topics))
        if clashes:
            raise ValueError(f'the bag already has {", ".join(clashes)}; choose another '
                             '--output-prefix')
        self.store = typestore
        self._make = rosbags_factory(typestore)
        self.default_frame_id = default_frame_id
        self.publish_raw, self.publish_tentative = publish_raw, publish_tentative
        self.marker_lifetime_s = marker_lifetime_s  # as the node: its stale_input_timeout
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        self._writer.open()
        self._copies: Dict[int, object] = {}
        self._added: Dict[str, object] = {}
        self.count = 0

    def copy(self, connection, bag_time_ns: int, raw) -> None:
        """Copy one input message as it is."""
        out = self._copies.get(connection.id)
        if out is None:
            known = bool(connection.msgdef.data) and bool(connection.digest)
            ext = connection.ext
            out = self._writer.add_connection(
                connection.topic, connection.msgtype,
                typestore=None if known else self.store,
                msgdef=connection.msgdef.data if known else None,
                rihs01=connection.digest if known else None,
                serialization_format=getattr(ext, 'serialization_format', 'cdr'),
                offered_qos_profiles=getattr(ext, 'offered_qos_profiles', ()))
            self._copies[connection.id] = out
        self._writer.write(out, bag_time_ns, bytes(raw))
        self.count += 1

    def _write(self, role, message, bag_time_ns):
        connection = self._added.get(role)
        if connection is None:
            connection = self._writer.add_connection(self.topics[role], message.__msgtype__,
                                                     typestore=self.store)
            self._added[role] = connection
        self._writer.write(connection, bag_time_ns,
                           self.store.serialize_cdr(message, message.__msgtype__))
        self.count += 1

    def add_frame(self, frame, result, tracked=None, held=()) -> None:
        """Write one frame's outputs (TrackedObjects `tracked` and `held` with a tracker).

        `frame` is a bag_input.BagFrame, `result` its FrameResult.
        """
        make, time_ns = self._make, frame.bag_time_ns
        header = frame.header
        if not header.frame_id:
            header = make('std_msgs/msg/Header', stamp=header.stamp,
                          frame_id=self.default_frame_id)
        if tracked is None:
            outputs = [layout.from_estimate(o) for o in result.objects]
            shown = list(range(len(outputs)))
        else:
            outputs, shown = layout.tracked_outputs(tracked, self.publish_raw,
                                                    self.publish_tentative, held)
        messages = layout.frame_messages(make, header, outputs, shown)
        for role, message in zip(('detections', 'detections_3d', 'proximity_alert'), messages):
            self._write(role, message, time_ns)
        drawn = layout.drawn(outputs, shown, self.publish_tentative)
        self._write('markers', layout.markers(make, header, drawn, self.marker_lifetime_s),
                    time_ns)
        if result.depth_map is not None:
            self._write('depth', depth_image(self.store, header, result.depth_map), time_ns)
            if frame.camera is not None:
                self._write('depth/camera_info', camera_info(self.store, header, frame.camera),
                            time_ns)

    def close(self) -> None:
        """Finish the bag (writes its metadata)."""
        self._writer.close()

    def discard(self) -> None:
        """Close and delete the bag: a failed run leaves nothing that blocks its re-run."""
        try:
            self._writer.close()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
