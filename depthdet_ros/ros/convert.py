"""Conversion between ROS messages and the core's arrays and records."""
import importlib

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from vision_msgs.msg import LabelInfo, VisionClass

from depthdet_ros.core.image import decode_compressed, decode_depth, decode_raw
from depthdet_ros.ros import message_layout as layout


def image_msg_to_rgb(msg, max_pixels=None):
    """Decode sensor_msgs/Image or CompressedImage to RGB uint8 (a view for rgb8)."""
    kwargs = {} if max_pixels is None else {'max_pixels': max_pixels}
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.data, image_format=msg.format, **kwargs)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                      bool(msg.is_bigendian), **kwargs)


def camera_model_to_info(camera, header):
    """Build sensor_msgs/CameraInfo for a CameraModel (no rectification: R = I)."""
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = camera.distortion_model
    msg.d = [float(v) for v in camera.info_coefficients()]
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


def instance_image_msg(labels, header):
    """Wrap an HxW uint16 instance image (0 background) as a 16UC1 sensor_msgs/Image."""
    return _image_msg(np.ascontiguousarray(labels, dtype='<u2'), '16UC1', header)


def depth_image_to_array(msg):
    """Read a 32FC1 (metres) or 16UC1 (millimetres) depth Image as metres, NaN invalid."""
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                        bool(msg.is_bigendian))


_MESSAGE_CLASSES = {}


def make(type_name, **fields):
    """Build the rclpy message 'package/msg/Name' (message_layout's factory for the node)."""
    cls = _MESSAGE_CLASSES.get(type_name)
    if cls is None:
        package, _, name = type_name.split('/')
        cls = _MESSAGE_CLASSES[type_name] = getattr(
            importlib.import_module(f'{package}.msg'), name)
    return cls(**fields)


def _outputs(objects):
    return [o if isinstance(o, layout.OutputObject) else layout.from_estimate(o)
            for o in objects]


def detections_2d_msg(objects, header):
    """Detection2DArray of ObjectEstimates or OutputObjects (see message_layout)."""
    return layout.detections_2d(make, header, _outputs(objects))


def detections_3d_msg(objects, header, keep_unlocated=False, alerts=False):
    """Detection3DArray of ObjectEstimates or OutputObjects (see message_layout)."""
    return layout.detections_3d(make, header, _outputs(objects), keep_unlocated,
                                alerts=alerts)


def frame_messages(objects, header, published=None):
    """Build (detections, detections_3d, proximity_alert) for one frame (message_layout)."""
    return layout.frame_messages(make, header, _outputs(objects), published)


def markers_msg(objects, header):
    """Build the MarkerArray of one frame's ObjectEstimates or OutputObjects."""
    return layout.markers(make, header, _outputs(objects))


def label_info_msg(class_names, threshold, header):
    """Build the LabelInfo mapping class ids to the names used in hypothesis.class_id."""
    msg = LabelInfo(header=header, threshold=float(threshold))
    msg.class_map = [VisionClass(class_id=i, class_name=name)
                     for i, name in enumerate(class_names)]
    return msg
