"""Conversion between ROS messages and the core's arrays and records."""
import math

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from vision_msgs.msg import (BoundingBox2D, BoundingBox3D, Detection2D, Detection2DArray,
                             Detection3D, Detection3DArray, LabelInfo, ObjectHypothesis,
                             ObjectHypothesisWithPose, VisionClass)

from depthdet_ros.core.image import decode_compressed, decode_depth, decode_raw

# Orientation is not estimated: its variance is reported as this (rad^2), which
# consumers of PoseWithCovariance read as "unknown".
UNKNOWN_ROTATION_VARIANCE = 1.0e6


def image_msg_to_rgb(msg, max_pixels=None):
    """Decode sensor_msgs/Image or CompressedImage to RGB uint8 (a view for rgb8)."""
    kwargs = {} if max_pixels is None else {'max_pixels': max_pixels}
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.data, **kwargs)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                      bool(msg.is_bigendian), **kwargs)


def camera_model_to_info(camera, header):
    """Build sensor_msgs/CameraInfo for a CameraModel (no rectification: R = I)."""
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = 'plumb_bob'
    d = np.zeros(5) if camera.D.size == 0 else camera.D
    msg.d = [float(v) for v in d]
    msg.k = [float(v) for v in np.asarray(camera.K).reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = camera.K
    msg.p = [float(v) for v in P.reshape(-1)]
    return msg


def _image_msg(pixels, encoding, header):
    msg = Image(header=header, encoding=encoding, is_bigendian=0)
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.step = msg.width * pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    msg.data = pixels.tobytes()
    return msg


def rgb_to_image_msg(rgb, header):
    """Wrap an HxWx3 RGB uint8 array as an rgb8 sensor_msgs/Image."""
    return _image_msg(np.ascontiguousarray(rgb, dtype=np.uint8), 'rgb8', header)


def depth_to_image_msg(depth, header):
    """Wrap an HxW float32 metre map as a 32FC1 sensor_msgs/Image (NaN = invalid)."""
    return _image_msg(np.ascontiguousarray(depth, dtype='<f4'), '32FC1', header)


def depth_image_to_array(msg):
    """Read a 32FC1 (metres) or 16UC1 (millimetres) depth Image as metres, NaN invalid."""
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                        bool(msg.is_bigendian))


def _hypothesis(obj):
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis = ObjectHypothesis(class_id=obj.detection.class_name,
                                      score=float(obj.detection.score))
    pose = PoseWithCovariance()
    pose.pose.orientation = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
    cov = np.zeros((6, 6))
    cov[3:, 3:] = np.eye(3) * UNKNOWN_ROTATION_VARIANCE
    # Unknown coordinates are NaN (REP 117): 0 would read as an object at the lens.
    if obj.position is not None:
        pose.pose.position = Point(x=obj.position.x, y=obj.position.y, z=obj.position.z)
        cov[:3, :3] = obj.covariance
    elif obj.depth.valid:
        # Depth known, direction unknown (no camera_info): z only.
        pose.pose.position = Point(x=math.nan, y=math.nan, z=float(obj.depth.depth))
        cov[0, 0] = cov[1, 1] = UNKNOWN_ROTATION_VARIANCE
        cov[2, 2] = obj.depth.spread ** 2
    else:
        pose.pose.position = Point(x=math.nan, y=math.nan, z=math.nan)
        cov[:3, :3] = np.eye(3) * UNKNOWN_ROTATION_VARIANCE
    pose.covariance = [float(v) for v in cov.reshape(-1)]
    hyp.pose = pose
    return hyp


def _bbox2d(box):
    bbox = BoundingBox2D()
    cx, cy = box.center
    bbox.center.position.x, bbox.center.position.y = float(cx), float(cy)
    bbox.center.theta = 0.0
    bbox.size_x, bbox.size_y = float(box.width), float(box.height)
    return bbox


def detections_2d_msg(objects, header, hypotheses=None):
    """Detection2DArray: box in input pixels, class name and score, 3D point in pose.

    `hypotheses` (one per object, as frame_messages shares them) saves rebuilding them.
    """
    msg = Detection2DArray(header=header)
    for index, obj in enumerate(objects):
        det = Detection2D(header=header)
        det.bbox = _bbox2d(obj.detection.box)
        det.results = [hypotheses[index] if hypotheses else _hypothesis(obj)]
        msg.detections.append(det)
    return msg


def detections_3d_msg(objects, header, depth_only_ok=False, hypotheses=None):
    """Detection3DArray of the objects that have a 3D position (camera_info known).

    With `depth_only_ok`, objects with a depth but no camera_info are kept too, at
    (NaN, NaN, depth) with zero size and x/y variances flagged unknown in the results.
    Objects without a valid depth are never kept.
    """
    msg = Detection3DArray(header=header)
    for index, obj in enumerate(objects):
        if obj.position is not None and _finite(obj.position):
            size = obj.size
        elif depth_only_ok and obj.depth.valid:
            size = None
        else:
            continue
        det = Detection3D(header=header)
        det.results = [hypotheses[index] if hypotheses else _hypothesis(obj)]
        det.bbox = BoundingBox3D()
        det.bbox.center = Pose(position=det.results[0].pose.pose.position,
                               orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
        if size is not None:
            det.bbox.size = Vector3(x=size.x, y=size.y, z=size.z)
        msg.detections.append(det)
    return msg


def frame_messages(objects, header):
    """Build (detections, detections_3d, proximity_alert) for one frame.

    Each object's hypothesis (class, score, pose with covariance) is built once and
    shared by the three messages, which are serialised separately on publish.
    """
    hypotheses = [_hypothesis(obj) for obj in objects]
    alerted = [i for i, obj in enumerate(objects) if obj.alert]
    return (detections_2d_msg(objects, header, hypotheses),
            detections_3d_msg(objects, header, hypotheses=hypotheses),
            detections_3d_msg([objects[i] for i in alerted], header, depth_only_ok=True,
                              hypotheses=[hypotheses[i] for i in alerted]))


def label_info_msg(class_names, threshold, header):
    """Build the LabelInfo mapping class ids to the names used in hypothesis.class_id."""
    msg = LabelInfo(header=header, threshold=float(threshold))
    msg.class_map = [VisionClass(class_id=i, class_name=name)
                     for i, name in enumerate(class_names)]
    return msg


def _finite(point):
    return all(math.isfinite(v) for v in (point.x, point.y, point.z))
