"""Small evaluation bags written message by message with rosbags, for the eval tests.

Topics as `depthdet synth bag` writes them: /camera/image (rgb8) or
/camera/image/compressed (PNG), /camera/camera_info, /camera/depth (32FC1 or 16UC1; or
/camera/depth/compressedDepth),
/ground_truth/detections and /ground_truth/detections_3d. Any message can be replaced
by garbage bytes to test corrupt-message handling.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from depthdet_ros.bags import BAG_VERSION, camera_info, depth_image, header, make_typestore
from depthdet_ros.bags import rgb_image
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.sim.messages import camera_odometry, rosbags_factory

IMAGE, COMPRESSED = '/camera/image', '/camera/image/compressed'
CAMERA_INFO, DEPTH = '/camera/camera_info', '/camera/depth'
DEPTH_COMPRESSED = DEPTH + '/compressedDepth'
GT_2D, GT_3D = '/ground_truth/detections', '/ground_truth/detections_3d'
ODOMETRY = '/camera/odometry'
START_NS = 1_700_000_000_000_000_000
GARBAGE = b'\x00\x01\x00\x00' + b'\xff' * 13


def pinhole(width=320, height=256, f=200.0) -> CameraModel:
    """Distortion-free camera, principal point at the image centre (pixel-centre coords)."""
    K = np.array([[f, 0, (width - 1) / 2.0], [0, f, (height - 1) / 2.0], [0, 0, 1]])
    return CameraModel(K=K, width=width, height=height, frame_id='cam')


@dataclass(frozen=True)
class GtObject:
    """A ground-truth object: 2D box (pixel edges) and an axis-aligned 3D box."""

    class_name: str
    box: Tuple[float, float, float, float]
    center: Tuple[float, float, float]
    size: Tuple[float, float, float]
    instance_id: str = '1'


def object_behind_box(class_name, box, front_depth, thickness, camera, instance_id='1'):
    """Return a GtObject whose 3D front face, at `front_depth`, projects onto `box`."""
    x1, y1, x2, y2 = box

    def metric(edge, c, f):  # pixel-edge coordinate -> metres at the front face
        return (edge - 0.5 - c) / f * front_depth
    left, right = metric(x1, camera.cx, camera.fx), metric(x2, camera.cx, camera.fx)
    top, bottom = metric(y1, camera.cy, camera.fy), metric(y2, camera.cy, camera.fy)
    return GtObject(class_name, box,
                    (0.5 * (left + right), 0.5 * (top + bottom), front_depth + thickness / 2),
                    (right - left, bottom - top, thickness), instance_id)


@dataclass
class FrameSpec:
    """One frame: image, GT depth map (metres, NaN invalid) and objects.

    depth_offset_ns / gt_offset_ns shift the depth and GT header stamps from the image's.
    """

    rgb: np.ndarray
    gt_depth: Optional[np.ndarray]
    objects: List[GtObject] = field(default_factory=list)
    depth_offset_ns: int = 0
    gt_offset_ns: int = 0


def _detections(store, msg_header, objects, three_d):
    types = store.types
    out = []
    for obj in objects:
        point = types['geometry_msgs/msg/Point'](x=obj.center[0], y=obj.center[1],
                                                 z=obj.center[2])
        quat = types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)
        pose = types['geometry_msgs/msg/Pose'](position=point, orientation=quat)
        hyp = types['vision_msgs/msg/ObjectHypothesisWithPose'](
            hypothesis=types['vision_msgs/msg/ObjectHypothesis'](class_id=obj.class_name,
                                                                 score=1.0),
            pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose,
                                                               covariance=np.zeros(36)))
        if three_d:
            bbox = types['vision_msgs/msg/BoundingBox3D'](
                center=pose, size=types['geometry_msgs/msg/Vector3'](
                    x=obj.size[0], y=obj.size[1], z=obj.size[2]))
            out.append(types['vision_msgs/msg/Detection3D'](header=msg_header, results=[hyp],
                                                            bbox=bbox, id=obj.instance_id))
        else:
            x1, y1, x2, y2 = obj.box
            bbox = types['vision_msgs/msg/BoundingBox2D'](
                center=types['vision_msgs/msg/Pose2D'](
                    position=types['vision_msgs/msg/Point2D'](x=(x1 + x2) / 2, y=(y1 + y2) / 2),
                    theta=0.0),
                size_x=float(x2 - x1), size_y=float(y2 - y1))
            out.append(types['vision_msgs/msg/Detection2D'](header=msg_header, results=[hyp],
                                                            bbox=bbox, id=obj.instance_id))
    name = 'Detection3DArray' if three_d else 'Detection2DArray'
    return types[f'vision_msgs/msg/{name}'](header=msg_header, detections=out)


def depth_16uc1(store, msg_header, depth):
    """16UC1 millimetre depth image (0 = invalid)."""
    mm = np.where(np.isfinite(depth), np.round(depth * 1000.0), 0).astype('<u2')
    h, w = depth.shape
    return store.types['sensor_msgs/msg/Image'](
        header=msg_header, height=h, width=w, encoding='16UC1', is_bigendian=0, step=w * 2,
        data=mm.view(np.uint8).reshape(-1))


def compressed_depth(store, msg_header, depth, depth_max=10.0, quantization=100.0,
                     image_format='32FC1; compressedDepth png'):
    """32FC1 depth as image_transport's compressedDepth writes it (its default settings).

    Inverse depth quantised to uint16 q = a / d + b (truncated; 0 for NaN or d >=
    depth_max), a = quantization (quantization + 1), b = 1 - a / depth_max, after a
    ConfigHeader (int32 kind, float32 a, b) and as a 16-bit PNG.
    """
    a = np.float32(quantization * (quantization + 1.0))
    b = np.float32(1.0) - a / np.float32(depth_max)
    with np.errstate(invalid='ignore', divide='ignore'):
        q = np.where(depth < depth_max, a / depth.astype(np.float32) + b, 0).astype(np.uint16)
    ok, png = cv2.imencode('.png', q)
    assert ok
    data = np.array([0], '<i4').tobytes() + np.array([a, b], '<f4').tobytes() + png.tobytes()
    return store.types['sensor_msgs/msg/CompressedImage'](
        header=msg_header, format=image_format,
        data=np.frombuffer(data, np.uint8))


def png_image(store, msg_header, rgb):
    """PNG CompressedImage (lossless, so results equal the raw image's)."""
    ok, data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return store.types['sensor_msgs/msg/CompressedImage'](header=msg_header, format='png',
                                                          data=data.reshape(-1))


def stamp_of(index, period_ns=100_000_000):
    """Header stamp of frame `index` (10 Hz from START_NS)."""
    return START_NS + index * period_ns


def write_eval_bag(path, frames: List[FrameSpec], camera: CameraModel, storage='mcap',
                   compressed=False, depth_encoding='32FC1', corrupt=(), with_3d=True,
                   camera_twist=None, odometry_child=None, mounting=(),
                   tf_static='/tf_static', tf_velocity=None, depth_frame_id=None,
                   info_camera=None, info_frame_id=None, repeated_images=None,
                   restamped_images=None, info_cameras=None):
    """Write the frames; `corrupt` holds (topic, frame index) pairs written as garbage.

    depth_frame_id: the depth maps' frame_id (default the camera's); info_camera: the
    CameraModel written as camera_info (default `camera`), with frame_id `info_frame_id`
    (default the camera's); `info_cameras` {frame: CameraModel}: that frame's instead.
    `repeated_images` {frame: frames late}: that frame's image
    written again after the image of the frame so many later (0: at once), as a topic
    with two publishers is recorded. `restamped_images` {frame: other frame}: that
    frame's image carries the other's header stamp (a camera that stamps images alike).

    camera_twist (6 floats, linear and angular): /camera/odometry, one per frame, as
    `depthdet synth bag` writes it, with child_frame_id `odometry_child` (default the
    camera's frame). `mounting`: (parent, child, translation, quaternion xyzw) transforms
    latched on `tf_static` first (frame index -1; -2 an empty message before them).
    tf_velocity (3 floats, m/s): /tf holds the camera frame's pose in `world`, moving at
    that velocity without turning, at 50 Hz from 0.2 s before the first frame.
    """
    store = make_typestore()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    writer = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
    writer.open()
    connections = {}

    def write(topic, msg, stamp, index):
        if topic not in connections:
            connections[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=store)
        raw = GARBAGE if (topic, index) in corrupt else \
            store.serialize_cdr(msg, msg.__msgtype__)
        writer.write(connections[topic], stamp, raw)

    if mounting:
        tf2 = store.types
        transforms = [tf2['geometry_msgs/msg/TransformStamped'](
            header(store, START_NS, parent), child, tf2['geometry_msgs/msg/Transform'](
                tf2['geometry_msgs/msg/Vector3'](*translation),
                tf2['geometry_msgs/msg/Quaternion'](*rotation)))
            for parent, child, translation, rotation in mounting]
        write(tf_static, tf2['tf2_msgs/msg/TFMessage']([]), START_NS, -2)
        write(tf_static, tf2['tf2_msgs/msg/TFMessage'](transforms), START_NS, -1)
    if tf_velocity is not None:
        tf2 = store.types
        for k in range(-10, 5 * len(frames)):
            at = START_NS + k * 20_000_000
            position = [v * k * 0.02 for v in tf_velocity]
            write('/tf', tf2['tf2_msgs/msg/TFMessage']([tf2['geometry_msgs/msg/TransformStamped'](
                header(store, at, 'world'), camera.frame_id, tf2['geometry_msgs/msg/Transform'](
                    tf2['geometry_msgs/msg/Vector3'](*position),
                    tf2['geometry_msgs/msg/Quaternion'](0.0, 0.0, 0.0, 1.0)))]), at, -3)
    for i, frame in enumerate(frames):
        stamp = stamp_of(i)
        write(CAMERA_INFO, camera_info(store, header(store, stamp + frame.depth_offset_ns,
                                                     info_frame_id or camera.frame_id),
                                       (info_cameras or {}).get(i, info_camera or camera)),
              stamp, i)
        copies = [(j, stamp_of(j)) for j, late in (repeated_images or {}).items()
                  if j + late == i]
        own = stamp_of((restamped_images or {}).get(i, i))
        for j, stamped in [(i, own)] + copies:
            image_header = header(store, stamped, camera.frame_id)
            if compressed:
                write(COMPRESSED, png_image(store, image_header, frames[j].rgb), stamp, i)
            else:
                write(IMAGE, rgb_image(store, image_header, frames[j].rgb), stamp, i)
        if frame.gt_depth is not None:
            dh = header(store, stamp + frame.depth_offset_ns, depth_frame_id or camera.frame_id)
            topic = DEPTH
            if depth_encoding == '32FC1':
                msg = depth_image(store, dh, frame.gt_depth)
            elif depth_encoding == '16UC1':
                msg = depth_16uc1(store, dh, frame.gt_depth)
            else:  # image_transport's compressedDepth ('compressedDepth [png|rvl]'), on its topic
                msg = compressed_depth(store, dh, frame.gt_depth,
                                       image_format=f'32FC1; {depth_encoding}')
                topic = DEPTH_COMPRESSED
            write(topic, msg, stamp + frame.depth_offset_ns, i)
        gh = header(store, stamp + frame.gt_offset_ns, camera.frame_id)
        write(GT_2D, _detections(store, gh, frame.objects, False), stamp + frame.gt_offset_ns, i)
        if with_3d:
            write(GT_3D, _detections(store, gh, frame.objects, True), stamp + frame.gt_offset_ns,
                  i)
        if camera_twist is not None:
            write(ODOMETRY, camera_odometry(rosbags_factory(store), header(store, stamp, 'world'),
                                            odometry_child or camera.frame_id, np.eye(4),
                                            camera_twist), stamp, i)
    writer.close()
    return str(path)
