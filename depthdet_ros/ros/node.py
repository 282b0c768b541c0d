"""depthdet_node: detections with per-object metric depth, 3D position and alerts.

Subscribes `image` (or `image/compressed`) and `camera_info`; publishes
`detections`, `detections_3d`, `proximity_alert`, `label_info`, optional `depth` +
`depth/camera_info` and `debug_image`, and `/diagnostics`. Images are processed
newest-first on a worker thread: a frame that arrives while another is being
processed replaces any frame still waiting, and the replaced one counts as dropped.
"""
import collections
import logging
import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, qos_profile_sensor_data,
                       ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from vision_msgs.msg import Detection3DArray, LabelInfo
from vision_msgs.msg import Detection2DArray

from depthdet_ros.core.camera import CameraModel, CameraModelError
from depthdet_ros.core.image import ImageDecodeError
from depthdet_ros.core.session import ModelLoadError
from depthdet_ros.ros import convert
from depthdet_ros.ros.params import (BY_NAME, build_pipeline, check_value, ConfigError,
                                     detector_config, fusion_config, PARAMS)
from depthdet_ros.ros.visualize import draw_objects

STAGES = ('conversion', 'detector', 'depth', 'fusion', 'messages', 'publish', 'total')
LATENCY_WINDOW = 200
WARN_THROTTLE_S = 5.0


class DepthDetNode(Node):
    """The detection + depth node (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('depthdet_node', **kwargs)
        self._declare_parameters()
        values = {p.name: self.get_parameter(p.name).value for p in PARAMS}
        self.params = values
        self.pipeline = build_pipeline(values)
        detector, depth = self.pipeline.detector, self.pipeline.depth
        self.get_logger().info(
            f'detector {detector.path} ({detector.layout}, {len(detector.class_names)} '
            f'classes) on {detector.provider}; depth {depth.path} on {depth.provider}')

        input_qos = qos_profile_sensor_data
        if values['input_reliability'] == 'reliable':
            input_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                   reliability=ReliabilityPolicy.RELIABLE)
        if values['use_compressed']:
            self.create_subscription(CompressedImage, 'image/compressed', self._on_image,
                                     input_qos)
        else:
            self.create_subscription(Image, 'image', self._on_image, input_qos)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, input_qos)
        self.pub_detections = self.create_publisher(Detection2DArray, 'detections', 10)
        self.pub_detections_3d = self.create_publisher(Detection3DArray, 'detections_3d', 10)
        self.pub_alert = self.create_publisher(Detection3DArray, 'proximity_alert', 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_labels = self.create_publisher(LabelInfo, 'label_info', latched)
        self.pub_depth = self.pub_depth_info = self.pub_debug = None
        if values['publish_depth']:
            self.pub_depth = self.create_publisher(Image, 'depth', 10)
            self.pub_depth_info = self.create_publisher(CameraInfo, 'depth/camera_info', 10)
        self.pub_debug = self.create_publisher(Image, 'debug_image', 10)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._publish_label_info()

        self._camera = None
        self._warned_size_mismatch = None
        self._lock = threading.Condition()
        self._pending = None
        self._stop = False
        self.stats = collections.Counter()
        self._latency = {s: collections.deque(maxlen=LATENCY_WINDOW) for s in STAGES}
        self._arrivals = collections.deque(maxlen=100)
        self._last_error = ''
        self._last_image_time = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(values['diagnostics_period'], self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='depthdet_worker', daemon=True)
        self._worker.start()

    # Parameters -------------------------------------------------------------------

    def _declare_parameters(self):
        overrides = set(self._parameter_overrides) - {'use_sim_time'}
        unknown = sorted(overrides - set(BY_NAME))
        if unknown:
            raise ConfigError(f'unknown parameter(s) {", ".join(unknown)}; known: '
                              f'{", ".join(sorted(BY_NAME))}')
        for p in PARAMS:
            descriptor = ParameterDescriptor(description=p.description, read_only=not p.runtime)
            try:
                self.declare_parameter(p.name, p.default, descriptor)
            except Exception as exc:  # rclpy raises its own type-mismatch exceptions
                raise ConfigError(f'parameter {p.name}: {exc}'.splitlines()[0]) from None
            check_value(p.name, self.get_parameter(p.name).value)

    def _on_set_parameters(self, parameters):
        updated = dict(self.params)
        try:
            for param in parameters:
                if param.name == 'use_sim_time':
                    continue
                updated[param.name] = check_value(param.name, param.value)
            new_detector_config = detector_config(updated)
            new_fusion_config = fusion_config(updated)
            new_fusion_config.validate()
        except (ConfigError, ValueError) as exc:
            self.get_logger().warning(f'parameter update refused: {exc}')
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self.params = updated
            self.pipeline.detector.config = new_detector_config
            self.pipeline.fusion = new_fusion_config
        self.get_logger().info('parameters updated: ' + ', '.join(
            f'{p.name}={p.value}' for p in parameters))
        return SetParametersResult(successful=True)

    # Input --------------------------------------------------------------------------

    def _on_camera_info(self, msg):
        camera = CameraModel.from_camera_info(msg)
        try:
            camera.validate()
        except CameraModelError as exc:
            self.stats['bad_camera_info'] += 1
            self.get_logger().warning(f'camera_info ignored: {exc}',
                                      throttle_duration_sec=WARN_THROTTLE_S)
            camera = None
        self._camera = camera

    def _on_image(self, msg):
        now = time.monotonic()
        self._arrivals.append(now)
        self._last_image_time = now
        with self._lock:
            if self._pending is not None:
                self.stats['dropped'] += 1
            self._pending = (msg, time.perf_counter())
            self._lock.notify()

    def _work(self):
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
                msg, received = self._pending
                self._pending = None
            try:
                self._process(msg, received)
            except ImageDecodeError as exc:
                self.stats['bad_images'] += 1
                self._last_error = f'image refused: {exc}'
                self.get_logger().warning(self._last_error,
                                          throttle_duration_sec=WARN_THROTTLE_S)
            except Exception as exc:  # keep serving: one bad frame must not stop the node
                if not self.context.ok():
                    return  # shut down while this frame was in flight: nothing to report
                self.stats['errors'] += 1
                self._last_error = f'{type(exc).__name__}: {exc}'
                self.get_logger().error(f'frame failed: {self._last_error}',
                                        throttle_duration_sec=WARN_THROTTLE_S)

    def _camera_for(self, shape):
        camera = self._camera
        if camera is None:
            self.get_logger().warning(
                'no valid camera_info yet: publishing depth without 3D positions',
                throttle_duration_sec=30.0)
            return None
        h, w = shape
        if (camera.height, camera.width) == (h, w):
            return camera
        mismatch = (camera.width, camera.height, w, h)
        if self._warned_size_mismatch != mismatch:
            self._warned_size_mismatch = mismatch
            self.get_logger().warning(
                f'camera_info is {camera.width}x{camera.height} but images are {w}x{h}: '
                'scaling the intrinsics to the image size')
        return camera.scaled(w / camera.width, h / camera.height)

    def _process(self, msg, received):
        params = self.params
        t0 = time.perf_counter()
        rgb = convert.image_msg_to_rgb(msg, params['max_image_pixels'])
        header = msg.header
        if not header.frame_id:
            header.frame_id = params['default_frame_id']
            self.get_logger().warning(
                f'image has an empty frame_id; using {header.frame_id!r}',
                throttle_duration_sec=60.0)
        t1 = time.perf_counter()
        camera = self._camera_for(rgb.shape[:2])
        result = self.pipeline.process(rgb, camera)
        t2 = time.perf_counter()
        objects = result.objects
        detections, detections_3d, alerts = convert.frame_messages(objects, header)
        depth_msg = convert.depth_to_image_msg(result.depth_map, header) \
            if self.pub_depth is not None else None
        t3 = time.perf_counter()
        self.pub_detections.publish(detections)
        self.pub_detections_3d.publish(detections_3d)
        self.pub_alert.publish(alerts)
        if depth_msg is not None:
            self.pub_depth.publish(depth_msg)
            if camera is not None:
                self.pub_depth_info.publish(convert.camera_model_to_info(camera, header))
        if params['publish_debug_image']:
            self.pub_debug.publish(convert.rgb_to_image_msg(draw_objects(rgb, objects), header))
        t4 = time.perf_counter()
        self.stats['frames'] += 1
        timings = result.timings_ms
        for stage, value in (('conversion', (t1 - t0) * 1e3),
                             ('detector', timings.get('detector', 0.0)),
                             ('depth', timings.get('depth', 0.0)),
                             ('fusion', timings.get('fusion', 0.0)),
                             ('messages', (t3 - t2) * 1e3), ('publish', (t4 - t3) * 1e3),
                             ('total', (t4 - received) * 1e3)):
            self._latency[stage].append(value)

    # Output helpers -----------------------------------------------------------------

    def _publish_label_info(self):
        header = Image().header
        header.stamp = self.get_clock().now().to_msg()
        self.pub_labels.publish(convert.label_info_msg(
            self.pipeline.detector.class_names, self.params['score_threshold'], header))

    def diagnostics(self):
        """Build the current DiagnosticStatus: rates, staleness, drops, latency, providers."""
        status = DiagnosticStatus(name='depthdet_node: pipeline', hardware_id='depthdet_ros')
        now = time.monotonic()
        level, messages = DiagnosticStatus.OK, []
        if self._last_image_time is None:
            level, age = DiagnosticStatus.WARN, float('inf')
            messages.append('no image received yet')
        else:
            age = now - self._last_image_time
            if age > self.params['stale_input_timeout']:
                level = DiagnosticStatus.WARN
                messages.append(f'input stale for {age:.1f} s')
        if self._camera is None:
            level = max(level, DiagnosticStatus.WARN)
            messages.append('no valid camera_info')
        if 'cpu' in self.pipeline.providers.values() and self.params['providers'] not in (
                'cpu', 'auto'):
            level = max(level, DiagnosticStatus.WARN)
            messages.append('requested GPU provider unavailable, running on CPU')
        if self.stats['errors']:
            level = DiagnosticStatus.ERROR
            messages.append(f'{self.stats["errors"]} frames failed: {self._last_error}')
        status.level = level
        status.message = '; '.join(messages) or 'ok'
        arrivals = list(self._arrivals)
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) \
            if len(arrivals) > 1 and arrivals[-1] > arrivals[0] else 0.0
        values = {
            'detector_provider': self.pipeline.detector.provider,
            'depth_provider': self.pipeline.depth.provider,
            'models_loaded': 'true',
            'input_rate_hz': f'{rate:.2f}',
            'input_age_s': f'{age:.3f}',
            'frames_processed': str(self.stats['frames']),
            'frames_dropped': str(self.stats['dropped']),
            'images_refused': str(self.stats['bad_images']),
            'camera_info_refused': str(self.stats['bad_camera_info']),
            'frames_failed': str(self.stats['errors']),
        }
        for stage, samples in self._latency.items():
            if samples:
                p50, p95 = np.percentile(np.fromiter(samples, float), [50, 95])
                values[f'latency_{stage}_p50_ms'] = f'{p50:.2f}'
                values[f'latency_{stage}_p95_ms'] = f'{p95:.2f}'
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _publish_diagnostics(self):
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        self.pub_diagnostics.publish(msg)

    def destroy_node(self):
        """Stop the worker after the frame in progress, then destroy the node."""
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._worker.join(timeout=5.0)
        self.pipeline.close()
        super().destroy_node()


def main(args=None):
    """Entry point: run the node until shutdown; configuration errors exit with one line."""
    logging.basicConfig(format='[%(levelname)s] [depthdet_node]: %(message)s')
    rclpy.init(args=args)
    node = None
    try:
        node = DepthDetNode()
        rclpy.spin(node)
    except (ConfigError, ModelLoadError) as exc:
        print(f'[depthdet_node] configuration error: {exc}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
