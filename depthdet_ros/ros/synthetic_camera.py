"""ROS 2 node `synthetic_camera`: a rendered camera moving through a synthetic scene.

Publishes (names relative, remappable), all with one header per frame:
- `image` sensor_msgs/Image rgb8
- `camera_info` sensor_msgs/CameraInfo
- `ground_truth/depth` sensor_msgs/Image 32FC1, metres (NaN = no surface)
- `ground_truth/detections` vision_msgs/Detection2DArray and
  `ground_truth/detections_3d` Detection3DArray (exact; see depthdet_ros.sim.messages)
- `odometry` nav_msgs/Odometry: the camera's own motion (pose in `world`, twist in its
  optical frame: depthdet_ros.sim.messages.camera_odometry), for depthdet_node's
  use_odometry, and the same pose on `/tf` (tf2_msgs/TFMessage, `world` -> the
  optical frame), for its use_odometry with odom_frame `world`
- with `moving`: `ground_truth/object_motion` and `ground_truth/object_motion_world`
  nav_msgs/Odometry, one per object per frame (centre and velocity in the optical
  frame, and in the `world` frame; see depthdet_ros.sim.messages.object_motion)

Parameters: seed, rate (Hz), width, height, scene ('room' | 'tabletop'), frame_id,
frames (frames in one pass; 0 = endless), loop (restart after `frames`, else stop
and exit), speed (m/s), moving (people walk, one toward the camera, and table
objects slide; see depthdet_ros.sim.motion), quality ('fast' | 'standard' | 'high'), publish_depth,
publish_detections, reliable_images (reliable QoS for image/depth, which also
matches best-effort subscribers; false = sensor-data QoS). Stamps come from the node
clock, so use_sim_time is honoured, and each frame shows the scene at its stamp (time
since the pass began), so the ground-truth motion agrees with the stamps even when a
tick comes late. One frame is rendered per timer tick; when rendering takes longer
than the period the rate drops instead of queueing.
"""
import math
import sys

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from nav_msgs.msg import Odometry
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray, Detection3DArray

from depthdet_ros.core.odometry import TF
from depthdet_ros.ros.entry import ctrl_c_received, ignore_further_ctrl_c, interrupt_once
from depthdet_ros.ros.entry import rcl_refusal
from depthdet_ros.ros.convert import camera_model_to_info, depth_to_image_msg, \
    rgb_to_image_msg
from depthdet_ros.sim.messages import camera_odometry, camera_transform, detections_2d, \
    detections_3d, object_motion, rclpy_factory

SCENES = ('room', 'tabletop')
QUALITIES = ('fast', 'standard', 'high')


class SyntheticCamera(Node):
    """Renders one frame per timer tick and publishes it with its ground truth."""

    def __init__(self):
        super().__init__('synthetic_camera')

        def param(name, default, description):
            # Numbers accept ints or floats alike (`-p rate:=5` must not be a type error).
            descriptor = ParameterDescriptor(description=description, read_only=True,
                                             dynamic_typing=isinstance(default, float))
            kind = type(default).__name__
            try:
                value = self.declare_parameter(name, default, descriptor).value
            except InvalidParameterTypeException:
                raise ValueError(f'{name} must be of type {kind} (default {default!r})') \
                    from None
            if isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value):
                    raise ValueError(f'{name} must be a finite number, got {value!r}')
                return float(value)
            return value

        seed = param('seed', 0, 'random seed of the scene (>= 0)')
        rate = param('rate', 10.0, 'frames per second')
        width = param('width', 640, 'image width, pixels')
        height = param('height', 480, 'image height, pixels')
        scene = param('scene', 'room', 'room | tabletop')
        frame_id = param('frame_id', 'camera_optical_frame', 'optical frame of the camera')
        self.frames = param('frames', 0, 'frames per pass through the scene; 0 = endless')
        self.loop = param('loop', True, 'restart after `frames` frames (else stop and exit)')
        speed = param('speed', 0.4, 'camera speed, m/s')
        moving = param('moving', False, 'objects move too: people walk, table objects slide')
        quality = param('quality', 'fast', 'render quality: fast | standard | high')
        self.publish_depth = param('publish_depth', True, 'publish ground_truth/depth')
        self.publish_detections = param('publish_detections', True,
                                        'publish ground_truth/detections(_3d)')
        reliable = param('reliable_images', True,
                         'reliable QoS for image and depth (false: sensor-data QoS)')
        problems = [text for bad, text in (
            (seed < 0, 'seed must be >= 0'), (not rate > 0, 'rate must be positive'),
            (not (16 <= width <= 4096 and 16 <= height <= 4096),
             'width and height must be within 16..4096'),
            (scene not in SCENES, f'scene must be one of {SCENES}'),
            (quality not in QUALITIES, f'quality must be one of {QUALITIES}'),
            (self.frames < 0, 'frames must be >= 0'), (not speed > 0, 'speed must be > 0'))
            if bad]
        if problems:
            raise ValueError('; '.join(problems))

        from depthdet_ros.sim.world import CameraSequence, SimWorld
        self._world = SimWorld(width, height, frame_id=frame_id, quality=quality)
        self._sequence = CameraSequence(seed, scene, (width, height), rate, speed,
                                        world=self._world, moving=moving)
        self._make = rclpy_factory()

        image_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE) if reliable \
            else qos_profile_sensor_data
        self._image_pub = self.create_publisher(Image, 'image', image_qos)
        self._info_pub = self.create_publisher(CameraInfo, 'camera_info', 10)
        self._odometry_pub = self.create_publisher(Odometry, 'odometry', 10)
        # tf2's name and QoS: absolute, reliable, a deep queue.
        self._tf_pub = self.create_publisher(TFMessage, TF, 100)
        self._depth_pub = self.create_publisher(Image, 'ground_truth/depth', image_qos) \
            if self.publish_depth else None
        self._det_pub = self._det3d_pub = self._motion_pub = self._world_motion_pub = None
        if self.publish_detections:
            self._det_pub = self.create_publisher(Detection2DArray, 'ground_truth/detections', 10)
            self._det3d_pub = self.create_publisher(Detection3DArray,
                                                    'ground_truth/detections_3d', 10)
            if moving:
                # Depth 50: a frame holds one message per object.
                self._motion_pub = self.create_publisher(Odometry, 'ground_truth/object_motion',
                                                         50)
                self._world_motion_pub = self.create_publisher(
                    Odometry, 'ground_truth/object_motion_world', 50)
        self.finished = Future()
        self._index = 0
        self._pass_start = None  # node-clock time of the current pass's first frame
        self._timer = self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(
            f'{scene} scene (seed {seed}), {width}x{height} at {rate:g} Hz, quality {quality}, '
            + (f'{self.frames} frames' + (' looped' if self.loop else '') if self.frames
               else 'endless') + (', moving objects' if moving else '')
            + f'; the camera path repeats every {self._sequence.period_s:.0f} s')

    def _tick(self):
        if self.frames and self._index >= self.frames:
            if not self.loop:
                self._timer.cancel()
                self.get_logger().info(f'published all {self.frames} frames')
                self.finished.set_result(True)
                return
            self._index = 0
        now = self.get_clock().now()
        if self._index == 0:
            self._pass_start = now
        frame = self._sequence.frame(self._index, (now - self._pass_start).nanoseconds * 1e-9)
        self._index += 1
        header = Header(stamp=now.to_msg(), frame_id=frame.camera.frame_id)
        # The camera's motion ahead of the image, so that a node tracking with it has it
        # at the image's stamp; then the image and its CameraInfo, as camera drivers
        # publish them (a CameraInfo sent ahead of a large image waits behind it; README,
        # Large images and QoS).
        world_header = Header(stamp=header.stamp, frame_id='world')
        odometry = camera_odometry(self._make, world_header, header.frame_id,
                                   frame.camera_pose, frame.camera_twist)
        transform = camera_transform(self._make, world_header, header.frame_id,
                                     frame.camera_pose)
        messages = [(self._odometry_pub, odometry), (self._tf_pub, transform),
                    (self._image_pub, rgb_to_image_msg(frame.rgb, header)),
                    (self._info_pub, camera_model_to_info(frame.camera, header))]
        if self._depth_pub is not None:
            messages.append((self._depth_pub, depth_to_image_msg(frame.depth, header)))
        if self._det_pub is not None:
            messages += [(self._det_pub, detections_2d(self._make, header, frame.objects)),
                         (self._det3d_pub, detections_3d(self._make, header, frame.objects))]
        if self._motion_pub is not None:
            messages += [(self._motion_pub, m)
                         for m in object_motion(self._make, header, frame.objects)]
            messages += [(self._world_motion_pub, m) for m in object_motion(
                self._make, world_header, frame.objects, frame.camera_pose)]
        try:
            for publisher, message in messages:
                publisher.publish(message)
        except Exception:
            # A signal may shut the context down while the frame renders; then the
            # publishers are gone and the executor is about to stop: not an error.
            if self.context.ok():
                raise

    def close(self):
        """Free the renderer."""
        self._world.close()


def main(args=None):
    """Run the node until Ctrl-C (or until a non-looping sequence ends)."""
    node = None
    status = 0
    interrupt_once()
    try:
        rclpy.init(args=args)
    except Exception as exc:  # rcl refused the arguments: its message, not a traceback
        print(f'synthetic_camera: ROS 2 could not start with these arguments: '
              f'{rcl_refusal(exc)}', file=sys.stderr)
        return 2
    try:
        node = SyntheticCamera()
        rclpy.spin_until_future_complete(node, node.finished)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:
        print(f'synthetic_camera: {exc}', file=sys.stderr)
        status = 2
    except Exception:
        # A signal that shuts ROS down while the node is being built makes rclpy
        # calls fail, or one raised while a message is taken leaves pybind11 as
        # another error (entry.ctrl_c_received): a requested exit, not an error.
        if rclpy.ok() and not ctrl_c_received():
            raise
    finally:
        ignore_further_ctrl_c()
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    sys.exit(main())
