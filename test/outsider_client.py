"""A camera and a consumer that know depthdet_node only by its documented topics.

Imports nothing from depthdet_ros, as a user's own code would not. Publishes JPEG frames
the way an image_transport camera does (`<image topic>/compressed`) with a CameraInfo of
the same stamp, and prints one JSON line per output topic: for each message received, the
class and x, y, z of each detection (NaN printed as null).

    python outsider_client.py --image /cam/image_raw --camera-info /cam/camera_info \
        --frame frame.png --seconds 20
"""
import argparse
import json
import math
import sys
import time

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage
from vision_msgs.msg import Detection2DArray, Detection3DArray

OUTPUTS = {'/detections': Detection2DArray, '/detections_3d': Detection3DArray,
           '/proximity_alert': Detection3DArray}


def _number(value):
    return None if math.isnan(value) else value


def _summary(msg):
    rows = []
    for det in msg.detections:
        hyp = det.results[0]
        p = hyp.pose.pose.position
        rows.append([hyp.hypothesis.class_id, _number(p.x), _number(p.y), _number(p.z)])
    return rows


class Client(Node):
    """Publishes the frame as a compressed camera stream and records the outputs."""

    def __init__(self, image_topic, info_topic, jpeg, width, height, focal):
        super().__init__('outsider_client')
        self.image_pub = self.create_publisher(CompressedImage, image_topic + '/compressed',
                                               qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, info_topic, qos_profile_sensor_data)
        self.jpeg, self.width, self.height, self.focal = jpeg, width, height, focal
        self.received = {topic: [] for topic in OUTPUTS}
        for topic, msg_type in OUTPUTS.items():
            self.create_subscription(msg_type, topic,
                                     lambda m, t=topic: self.received[t].append(m), 10)

    def send(self):
        """Publish one frame stamped now, then its CameraInfo (a driver's order)."""
        stamp = self.get_clock().now().to_msg()
        image = CompressedImage(format='jpeg', data=self.jpeg)
        image.header.stamp, image.header.frame_id = stamp, 'outsider_optical'
        info = CameraInfo(width=self.width, height=self.height, distortion_model='plumb_bob')
        info.header = image.header
        f = self.focal
        info.k = [f, 0.0, self.width / 2, 0.0, f, self.height / 2, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, self.width / 2, 0.0, 0.0, f, self.height / 2, 0.0, 0.0, 0.0, 1.0,
                  0.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.d = [0.0] * 5
        self.image_pub.publish(image)
        self.info_pub.publish(info)


def main():
    """Run the client; exit 1 when no output arrived on every topic in time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--image', required=True, help='the camera image topic (raw name)')
    parser.add_argument('--camera-info', required=True)
    parser.add_argument('--frame', required=True, help='an image file to stream')
    parser.add_argument('--focal', type=float, default=500.0)
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--messages', type=int, default=3,
                        help='stop once this many messages arrived on every output')
    args = parser.parse_args()
    bgr = cv2.imread(args.frame)
    ok, jpeg = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    rclpy.init()
    client = Client(args.image, args.camera_info, jpeg.tobytes(), bgr.shape[1], bgr.shape[0],
                    args.focal)
    deadline = time.monotonic() + args.seconds
    next_send = 0.0
    try:
        while time.monotonic() < deadline:
            if time.monotonic() >= next_send:
                client.send()
                next_send = time.monotonic() + 0.3
            rclpy.spin_once(client, timeout_sec=0.05)
            if all(len(v) >= args.messages for v in client.received.values()):
                break
        for topic, messages in client.received.items():
            print(json.dumps({'topic': topic, 'messages': [_summary(m) for m in messages]}))
        return 0 if all(client.received.values()) else 1
    finally:
        client.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
