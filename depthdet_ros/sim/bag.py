"""Synthetic camera sequences as rosbag2 files, with ground truth.

Per frame, all with the same header stamp (also the bag timestamp) and frame_id:

- /camera/image (sensor_msgs/Image rgb8) or /camera/image/compressed (CompressedImage
  jpeg) with `compressed`
- /camera/camera_info (sensor_msgs/CameraInfo)
- /camera/depth (sensor_msgs/Image 32FC1, metres, NaN = no surface), as an RGB-D
  camera records it
- /ground_truth/detections (vision_msgs/Detection2DArray) and
  /ground_truth/detections_3d (Detection3DArray), see depthdet_ros.sim.messages;
  ids are instance ids, stable through the sequence.
- /ground_truth/instances (sensor_msgs/Image 16UC1): each pixel the id of the
  detection it shows, 0 for none (what `depthdet eval` scores mask mAP against).
- with moving objects (frames whose objects carry velocities):
  /ground_truth/object_motion (nav_msgs/Odometry, one per object per frame, optical
  frame: centre and d/dt of it) and /ground_truth/object_motion_world (the same in
  the `world` frame: the object's own velocity, zero when it stands still); see
  depthdet_ros.sim.messages.object_motion.
- /camera/odometry (nav_msgs/Odometry): the camera's pose in the `world` frame and its
  velocity and angular velocity in its optical frame, as a robot's odometry gives them
  (sim.messages.camera_odometry; `depthdet eval --camera-odometry` feeds it to the
  tracker), and /tf (tf2_msgs/TFMessage): the same pose as the transform `world` ->
  the optical frame, as a robot's transforms give it (`depthdet eval --odom-frame
  world` takes the camera's motion from it).

Stamps are start + i / rate, so they increase monotonically with the frame index.
"""
from typing import Callable, Iterable, Optional

from depthdet_ros.bags import BagWriter, camera_info, depth_image, header, jpeg_image, \
    mono16_image, rgb_image
from depthdet_ros.sim.messages import camera_odometry, camera_transform, detections_2d, \
    detections_3d, object_motion, rosbags_factory

TOPIC_IMAGE = '/camera/image'
TOPIC_IMAGE_COMPRESSED = '/camera/image/compressed'
TOPIC_CAMERA_INFO = '/camera/camera_info'
TOPIC_DEPTH = '/camera/depth'
TOPIC_DETECTIONS = '/ground_truth/detections'
TOPIC_DETECTIONS_3D = '/ground_truth/detections_3d'
TOPIC_INSTANCES = '/ground_truth/instances'
TOPIC_MOTION = '/ground_truth/object_motion'
TOPIC_MOTION_WORLD = '/ground_truth/object_motion_world'
TOPIC_CAMERA_ODOMETRY = '/camera/odometry'
TOPIC_TF = '/tf'
WORLD_FRAME_ID = 'world'
# Default first stamp (2023-11-14T22:13:20Z): fixed so the same seed gives the same bag.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


def frame_stamp_ns(index: int, rate_hz: float, start_ns: int = DEFAULT_START_NS) -> int:
    """Return the stamp of frame `index` at `rate_hz` (ns since epoch)."""
    return int(start_ns) + int(round(index * 1e9 / rate_hz))


def write_bag(path, frames: Iterable, storage: str = 'mcap', compressed: bool = False,
              rate_hz: float = 10.0, start_ns: int = DEFAULT_START_NS,
              progress: Optional[Callable[[int], None]] = None) -> int:
    """Write rendered SimFrames to a new rosbag2 folder; return the frame count."""
    if rate_hz <= 0:
        raise ValueError('rate must be positive')
    count = 0
    with BagWriter(path, storage) as bag:
        store = bag.typestore
        make = rosbags_factory(store)
        for frame in frames:
            stamp = frame_stamp_ns(frame.index, rate_hz, start_ns)
            msg_header = header(store, stamp, frame.camera.frame_id)
            bag.write(TOPIC_CAMERA_INFO, camera_info(store, msg_header, frame.camera), stamp)
            if compressed:
                bag.write(TOPIC_IMAGE_COMPRESSED, jpeg_image(store, msg_header, frame.rgb), stamp)
            else:
                bag.write(TOPIC_IMAGE, rgb_image(store, msg_header, frame.rgb), stamp)
            bag.write(TOPIC_DEPTH, depth_image(store, msg_header, frame.depth), stamp)
            bag.write(TOPIC_DETECTIONS, detections_2d(make, msg_header, frame.objects), stamp)
            bag.write(TOPIC_DETECTIONS_3D, detections_3d(make, msg_header, frame.objects), stamp)
            bag.write(TOPIC_INSTANCES, mono16_image(store, msg_header, frame.instance_mask),
                      stamp)
            world_header = header(store, stamp, WORLD_FRAME_ID)
            if frame.camera_twist is not None:
                bag.write(TOPIC_CAMERA_ODOMETRY,
                          camera_odometry(make, world_header, frame.camera.frame_id,
                                          frame.camera_pose, frame.camera_twist), stamp)
                bag.write(TOPIC_TF, camera_transform(make, world_header, frame.camera.frame_id,
                                                     frame.camera_pose), stamp)
            for message in object_motion(make, msg_header, frame.objects):
                bag.write(TOPIC_MOTION, message, stamp)
            for message in object_motion(make, world_header, frame.objects, frame.camera_pose):
                bag.write(TOPIC_MOTION_WORLD, message, stamp)
            count += 1
            if progress:
                progress(1)
    return count
