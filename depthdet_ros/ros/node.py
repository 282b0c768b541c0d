"""depthdet_node: detections with per-object metric depth, 3D position and alerts.

Subscribes `image` (with `use_compressed`, the resolved `image` topic + `/compressed`,
image_transport's name for it) and `camera_info`; publishes `proximity_alert`,
`detections`, `detections_3d`, `markers`, `label_info`, optional `depth` +
`depth/camera_info`, `debug_image` and (joint model) `instance_masks`, and
`/diagnostics`. With `tracking` (core.tracking) objects carry track IDs, smoothed
positions, velocity and time to contact, and alerts have hysteresis
(ros.message_layout says how each is encoded).

Images are processed newest-first on a worker thread: a frame that arrives while another
is being processed replaces any frame still waiting (unless stamped before it: then it
is the one dropped), and the replaced one counts as dropped. That thread publishes the
small safety topics first; the large outputs (depth, debug_image, instance_masks,
markers) are built and published by a second newest-first thread, so subscribers to them
never delay or drop the small ones.

`DepthDetRunner` is everything the node does, in the steps of a managed node: configure
(load and warm the models, advertise the outputs), activate (inputs, threads), deactivate,
cleanup.
`DepthDetNode` runs all of them at start-up; lifecycle_node.py exposes them as transitions.
"""
import collections
import logging
import math
import re
import sys
import threading
import time
import zlib
from typing import NamedTuple, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException, \
    ParameterNotDeclaredException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from nav_msgs.msg import Odometry
from tf2_msgs.msg import TFMessage
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from depthdet_ros.core.camera import CameraModel, CameraModelError
from depthdet_ros.core.copies import COPY, LATE_COPY, RecentImages, STAMP_REPEATED
from depthdet_ros.core.image import ImageDecodeError
from depthdet_ros.core.odometry import CameraMotionHistory, CameraMotionSource, \
    CameraMotionUnavailable, MAX_GAP_S, MovingFrames, StaticFrames, TF, TF_STATIC, TfCameraMotion
from depthdet_ros.core.pipeline import depth_measured_otherwise
from depthdet_ros.core.session import ModelLoadError
from depthdet_ros.core.tracking import CAMERA_MOTION_HOLD_S, FrameClock, Tracker
from depthdet_ros.core.types import instance_image
from depthdet_ros.ros import convert
from depthdet_ros.ros import message_layout as layout
from depthdet_ros.ros.entry import ctrl_c_received, ignore_further_ctrl_c, interrupt_once
from depthdet_ros.ros.entry import rcl_refusal
from depthdet_ros.ros.params import (BY_NAME, build_pipeline, check_class_names,
                                     check_command_line, check_value, ConfigError,
                                     detector_config, fusion_config, Param, PARAMS,
                                     params_files_not_applied, tracker_config)
from depthdet_ros.ros.qos import subscribe_input
from depthdet_ros.ros.visualize import draw_objects

# The networks' stages: detector and depth for a pair of models, joint for a joint model.
INFERENCE_STAGES = ('detector', 'depth', 'joint')
STAGES = ('conversion', *INFERENCE_STAGES, 'fusion', 'tracking', 'messages', 'publish', 'total')
LATENCY_WINDOW = 200
# Seconds after activation without an image before the log says so (once).
NO_IMAGE_WARNING_S = 5.0
# Image stamps this far (s) from the node's clock are from another clock: a bag played
# without --clock and use_sim_time, or an unsynchronised camera. Outputs keep the input
# stamps, so transform lookups on them fail downstream: say so.
STAMP_OFFSET_WARNING_S = 10.0
WARN_THROTTLE_S = 5.0
# Seconds deactivation waits for the frame in hand; a longer one finishes unpublished.
WORKER_STOP_TIMEOUT_S = 5.0
# CameraInfo messages kept for matching to images by stamp (1 s of a 30 Hz camera).
CAMERA_INFO_BUFFER = 30
# Drivers publish an image and then its CameraInfo. A frame whose own CameraInfo (its
# stamp; or within camera_info_tolerance for a camera stamping CameraInfo off its
# images) is not at hand waits up to this long for it while that pays: of the images
# whose CameraInfo was not there on their arrival, the last two, or two thirds of the
# last INFO_DELAYS, got it by this frame's age plus the wait. Judged on every image
# that arrives, not only the frames the worker takes, so that a CameraInfo for every
# other image (frames in turn waiting in vain) or one that comes again after a stretch
# of losses is seen (two reviews). A CameraInfo at a lower rate, latched, on another
# clock or held up longer makes no frame wait. Until two CameraInfos have come, frames
# wait as long while camera_info has a publisher, at most FIRST_INFO_WAITS of them in
# vain, so that the first frames of a camera get their 3D positions too.
CAMERA_INFO_WAIT_S = 0.1
INFO_DELAYS = 6
FIRST_INFO_WAITS = 3
# An image whose CameraInfo has not come after this long has none (as one of a later
# image coming first): its delay is infinite.
INFO_GIVE_UP_S = 1.0
# Longest a frame waits for an odometry message at or after its stamp, while odometry
# flows (its newest within MAX_GAP_S before the image): one published just after its
# image would otherwise miss it (outsider round 40).
ODOMETRY_WAIT_S = 0.05
# Large images keep only the newest sample per subscriber: an image behind a slow
# reader is worth less than memory and bandwidth.
LARGE_OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                              reliability=ReliabilityPolicy.RELIABLE)
WARMUP_SHAPE = (480, 640, 3)
# instance_masks is 16UC1: track IDs wrap into 1..65535 (0 is background).
MAX_INSTANCE_LABEL = 65535


def parameter_descriptor(spec: Param, managed: bool = False) -> ParameterDescriptor:
    """Describe one parameter for `ros2 param describe`: text, read-only, range, choices.

    A start-up parameter (not `runtime`) is read-only, except on the managed node: there
    it may be set while unconfigured (DepthDetRunner refuses it otherwise) and applies
    at the next configure.
    """
    description = spec.description
    if managed and not spec.runtime:
        description += ' Set while unconfigured; applies at configure.'
    descriptor = ParameterDescriptor(description=description,
                                     read_only=not (spec.runtime or managed))
    if spec.choices:
        descriptor.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if spec.minimum is None and spec.maximum is None:
        return descriptor
    if isinstance(spec.default, float):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum if spec.minimum is not None else -sys.float_info.max),
            to_value=float(spec.maximum if spec.maximum is not None else sys.float_info.max),
            step=0.0)]
    elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.minimum if spec.minimum is not None else -2**63),
            to_value=int(spec.maximum if spec.maximum is not None else 2**63 - 1), step=1)]
    return descriptor


def _as_double(parameter):
    """Return a DOUBLE parameter for an INTEGER given to a floating-point parameter.

    `ros2 param set /depthdet_node max_depth 1` and `-p max_depth:=1` type a bare 1 as
    an integer; the parameter is a double, and 1 metre is what the user means.
    """
    spec = BY_NAME.get(parameter.name)
    if (spec is not None and isinstance(spec.default, float)
            and parameter.type_ == Parameter.Type.INTEGER):
        return Parameter(parameter.name, Parameter.Type.DOUBLE, float(parameter.value))
    return parameter


def declare_parameters(node, managed: bool = False):
    """Declare the PARAMS table on `node`; bad overrides raise ConfigError (one line)."""
    overrides = node._parameter_overrides
    unknown = sorted(set(overrides) - {'use_sim_time'} - set(BY_NAME))
    if unknown:
        raise ConfigError(f'unknown parameter(s) {", ".join(unknown)}; known: '
                          f'{", ".join(sorted(BY_NAME))}')
    for spec in PARAMS:
        if spec.name in overrides:
            overrides[spec.name] = _as_double(overrides[spec.name])
            # Our check first, so a value gets the same message here as in the tools.
            check_value(spec.name, overrides[spec.name].value)
        try:
            node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec, managed))
        except Exception as exc:  # rclpy raises its own type and range exceptions
            raise ConfigError(f'parameter {spec.name}: {exc}'.splitlines()[0]) from None
    node.add_pre_set_parameters_callback(lambda params: [_as_double(p) for p in params])


def _is_current(worker) -> bool:
    """Return whether the calling thread is `worker`'s and not abandoned (None: no)."""
    return worker is not None and worker.is_current()


class NewestOnlyWorker:
    """A thread handling the newest item given to it; a newer item replaces one waiting."""

    def __init__(self, name, handle):
        self.replaced = 0
        self._handle = handle
        self._cond = threading.Condition()
        self._item = None
        self._stop = False
        self._abandoned = False  # stop() gave up waiting for the item in hand
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item, supersedes=None):
        """Hand over an item; one still waiting is replaced, or the new one dropped (counted).

        `supersedes(item, waiting)`: whether the new item replaces the one waiting (default
        always); if not, the new item is dropped.
        """
        with self._cond:
            if self._item is not None:
                self.replaced += 1
                if supersedes is not None and not supersedes(item, self._item):
                    return
            self._item = item
            self._cond.notify()

    def stop(self, timeout=WORKER_STOP_TIMEOUT_S) -> bool:
        """Drop any waiting item, finish the one in hand and end the thread.

        Returns False when the item in hand outlasts `timeout`: the thread is then
        abandoned and finishes that item on its own, and is_current() turns False
        for the handler to drop its results.
        """
        with self._cond:
            self._stop = True
            self._item = None
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandoned = True
            return False
        return True

    def is_current(self) -> bool:
        """Return whether the calling thread is this worker's and stop() has not given up."""
        return threading.current_thread() is self._thread and not self._abandoned

    @property
    def name(self):
        return self._thread.name

    def _run(self):
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._item is not None or self._stop)
                if self._stop:
                    return
                item, self._item = self._item, None
            self._handle(item)


class LargeOutputs(NamedTuple):
    """What the large-output thread needs for one frame's depth, images and markers."""

    header: object
    depth_map: np.ndarray
    camera: Optional[CameraModel]
    rgb: np.ndarray
    shown: list             # OutputObjects on detections (instance_masks)
    shown_estimates: list   # their ObjectEstimates
    drawn: list             # on markers and debug_image: the shown, then held alerts


# Tracking starting over this many times in RESTARTS_WINDOW_S s is a WARN.
RESTARTS_SAID, RESTARTS_WINDOW_S = 3, 10.0
# Safety first: the alert, then the small topics; large outputs go to their thread.
SMALL_OUTPUTS = ('proximity_alert', 'detections', 'detections_3d')


class DepthDetRunner:
    """The node's work for any rclpy node (plain or managed): see the module docstring.

    `managed`: a lifecycle node, whose start-up parameters may be set while unconfigured.
    """

    def __init__(self, node, managed: bool = False):
        self.node = node
        self.log = node.get_logger()
        forward_package_logging(self.log)
        declare_parameters(node, managed)
        self.params = {p.name: node.get_parameter(p.name).value for p in PARAMS}
        self.pipeline = None
        self.active = False
        self._lock = threading.Lock()            # params and the pipeline's configs
        self._outputs_lock = threading.Lock()    # debug_image publisher: create/use/destroy
        self._info_cond = threading.Condition()  # CameraInfo buffer
        self._infos = collections.deque(maxlen=CAMERA_INFO_BUFFER)  # (stamp ns, camera)
        self._image_stamps = collections.deque(maxlen=CAMERA_INFO_BUFFER)
        # Images whose own CameraInfo had not come on their arrival: stamp ns -> arrival
        # (time.perf_counter()); and how long after it theirs came (s, inf: never).
        self._awaiting_info = collections.OrderedDict()
        self._info_delays = collections.deque(maxlen=INFO_DELAYS)
        # Frames processed without a camera: stamp ns -> the image's arrival. Their
        # CameraInfo coming more than CAMERA_INFO_WAIT_S later was held up in transport.
        self._frames_without_info = collections.OrderedDict()
        self._subscriptions = []
        self._tf_subscriptions = []  # /tf_static (and /tf) while use_odometry
        self._publishers = {}
        self._timer = None
        self._frame_worker = self._output_worker = None
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        self._sim_time_seen = None
        self._tracker_config = tracker_config(self.params)
        # One tracker for the node's life: its IDs keep counting up through tracking
        # switched off and on and through re-activation, so an ID never names two objects.
        self._tracker_instance = Tracker(self._tracker_config)
        self._tracker = None
        self._reset_run_state()
        node.add_on_set_parameters_callback(self._on_set_parameters)

    def _reset_run_state(self):
        """Start statistics and what is known about the camera afresh (at each activation)."""
        self._infos.clear()
        self._image_stamps.clear()
        self._frames_without_info.clear()
        self._awaiting_info.clear()
        self._info_delays.clear()
        self._stamps_paired = False
        self._first_waits_in_vain = 0
        self._camera_problem = ''                 # why the last frame had no camera
        self._warned_size_mismatch = None
        self.stats = collections.Counter()
        self._latency = {s: collections.deque(maxlen=LATENCY_WINDOW) for s in STAGES}
        self._arrivals = collections.deque(maxlen=100)
        self._last_error = ''
        self._warnings_logged = {}                # problem kind -> when last logged
        self._last_image_time = None
        self._waiting_since = None  # monotonic: the oldest image no frame has answered since
        self._last_processed = None  # monotonic
        self._last_refused = None  # (monotonic time, why)
        # The last images taken, to know a copy (core.copies; the subscription's thread
        # only); the newest processed image's key and answer (SMALL_OUTPUTS' messages),
        # given to its copies; when a copy or a repeated stamp last came (monotonic).
        self._recent_images = RecentImages()
        self._answer = (None, ())
        self._last_repeat = {'image': None, 'stamp': None}
        self._tracker_clock = FrameClock()  # the tracker's stamps (received: arrival)
        self._restarts = collections.deque(maxlen=100)  # when tracking started over
        self._depth_measured = None  # the last frame's (depth strategy, focal scale)
        self._started = time.monotonic()
        self._said_no_image = False
        self._stamp_offset_s = None  # node clock - the last image's stamp
        self._said_stamp_offset = False
        self._said_namesake = False
        # The camera's motion while subscribed (use_odometry): CameraMotionHistory, or
        # TfCameraMotion with odom_frame.
        self._odometry: Optional[CameraMotionSource] = None
        self._odometry_cond = threading.Condition()
        self._odometry_problem = ''  # why the last frame had no camera motion
        with self._lock:
            self._tracker = self._start_tracker() if self.params['tracking'] else None

    def _start_tracker(self):
        """Return the node's tracker with no tracks (IDs go on from the last one given)."""
        self._tracker_instance.reset()
        self._tracker_instance.config = self._tracker_config
        return self._tracker_instance

    # Transitions ----------------------------------------------------------------------

    def configure(self):
        """Load the models and run one blank frame through them (ConfigError, ModelLoadError)."""
        pipeline = build_pipeline(self.params)
        try:
            pipeline.process(np.zeros(WARMUP_SHAPE, np.uint8), None)
        except Exception as exc:  # onnxruntime raises several unrelated types
            pipeline.close()
            raise ModelLoadError(f'the models fail on a blank frame: {exc}'.splitlines()[0]) \
                from None
        with self._lock:
            self.pipeline = pipeline
        self._create_publishers()
        self._warn_of_settings_without_effect()
        detector, depth = pipeline.detector, pipeline.depth
        if pipeline.joint is not None:
            self.log.info(f'joint model {detector.path} ({len(detector.class_names)} classes, '
                          f'instance masks) on {detector.provider}')
            unused = [name for name in ('detector_model', 'depth_model') if self.params[name]]
            if unused:
                self.log.warning(f'joint_model is set: {" and ".join(unused)} not used')
            if self.params['depth_coverage'] == 'crop':
                self.log.warning('depth_coverage crop does not apply to a joint model: it sees '
                                 'the whole image, letterboxed as it was trained, and every '
                                 'pixel gets a depth')
            return
        self.log.info(
            f'detector {detector.path} ({detector.layout}, {len(detector.class_names)} '
            f'classes) on {detector.provider}; depth {depth.path} on {depth.provider}')
        self._warn_of_mask_without_masks()

    def _warn_of_mask_without_masks(self):
        # Unconfigured (a lifecycle node), configure says it once the models are known.
        if self.params['depth_strategy'] == 'mask' and self.pipeline is not None \
                and self.pipeline.joint is None:
            self.log.warning('depth_strategy mask reads a joint model\'s instance masks; '
                             'without joint_model every object falls back to near_median')

    def _warn_of_settings_without_effect(self):
        """Say which start-up settings do nothing with the others as they are."""
        params = self.params
        trt = [name for name in ('trt_fp16', 'trt_int8') if params[name]]
        trt += ['trt_cache_dir'] if params['trt_cache_dir'] else []
        if trt and params['providers'] in ('cpu', 'cuda'):
            self.log.warning(f'{" and ".join(trt)} set with providers {params["providers"]}: '
                             'TensorRT settings, used by the TensorRT provider only '
                             '(providers: auto or tensorrt)')
        if params['use_odometry'] and not params['tracking']:
            self.log.warning('use_odometry is true but tracking is false: the camera\'s '
                             'motion is read for the tracker, unused until tracking is on')

    def _create_publishers(self):
        """Advertise the outputs, from configure to cleanup (ROS lifecycle convention).

        Publishers that outlive deactivate/activate keep their subscribers matched: the
        first messages after re-activation do not wait for discovery.
        """
        node = self.node
        self._publishers = {
            'proximity_alert': node.create_publisher(Detection3DArray, 'proximity_alert', 10),
            'detections': node.create_publisher(Detection2DArray, 'detections', 10),
            'detections_3d': node.create_publisher(Detection3DArray, 'detections_3d', 10),
            'markers': node.create_publisher(MarkerArray, 'markers', 10),
            'label_info': node.create_publisher(LabelInfo, 'label_info', QoSProfile(
                depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)),
            '/diagnostics': node.create_publisher(DiagnosticArray, '/diagnostics', 10),
        }
        if self.params['publish_depth']:
            self._publishers['depth'] = node.create_publisher(Image, 'depth', LARGE_OUTPUT_QOS)
            self._publishers['depth/camera_info'] = node.create_publisher(
                CameraInfo, 'depth/camera_info', LARGE_OUTPUT_QOS)
        if self.pipeline.joint is not None:
            self._publishers['instance_masks'] = node.create_publisher(
                Image, 'instance_masks', LARGE_OUTPUT_QOS)
        self._set_debug_publisher(self.params['publish_debug_image'])

    def activate(self):
        """Start the threads, then subscribe and start diagnostics."""
        node = self.node
        self._reset_run_state()
        self._publish_label_info()
        self._output_worker = NewestOnlyWorker('depthdet_outputs', self._publish_large)
        self._frame_worker = NewestOnlyWorker('depthdet_worker', self._process_safely)
        self._create_subscriptions()
        self._sim_time_seen = None
        # A steady clock: with use_sim_time and no /clock, a node-clock timer never fires.
        self._timer = node.create_timer(self.params['diagnostics_period'],
                                        self._publish_diagnostics, clock=self._steady_clock)
        self.active = True

    def deactivate(self):
        """Unsubscribe, finish the frame in hand, stop the threads; publishers stay."""
        node = self.node
        self.active = False
        for subscription in self._subscriptions:
            subscription.destroy()
        self._subscriptions = []
        for subscription in self._tf_subscriptions:
            node.destroy_subscription(subscription)
        self._tf_subscriptions = []
        if self._timer is not None:
            node.destroy_timer(self._timer)
            self._timer = None
        self._stop_workers()

    def _stop_workers(self):
        for worker in (self._frame_worker, self._output_worker):
            if worker is not None and not worker.stop(WORKER_STOP_TIMEOUT_S):
                self.log.warning(f'{worker.name}: a frame is still in flight after '
                                 f'{WORKER_STOP_TIMEOUT_S:g} s; its outputs will be dropped')
        self._frame_worker = self._output_worker = None

    def cleanup(self):
        """Remove the publishers and free the models."""
        with self._outputs_lock:
            for publisher in self._publishers.values():
                self.node.destroy_publisher(publisher)
            self._publishers = {}
        with self._lock:
            pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()

    def shutdown(self):
        """Stop the threads and free the models (the node destroys its own entities)."""
        self.active = False
        self._stop_workers()
        self.cleanup()

    def _create_subscriptions(self):
        """Subscribe the image (raw or compressed transport) and camera_info."""
        node = self.node
        reliability = self.params['input_reliability']
        if self.params['use_compressed']:
            # image_transport's name: remapping `image` moves the compressed topic with it.
            topic = node.resolve_topic_name('image') + '/compressed'
            image_sub = subscribe_input(node, CompressedImage, topic, self._on_image,
                                        reliability)
        else:
            image_sub = subscribe_input(node, Image, 'image', self._on_image, reliability)
        info_sub = subscribe_input(node, CameraInfo, 'camera_info', self._on_camera_info,
                                   reliability)
        self._subscriptions = [image_sub, info_sub]
        self._info_topic, self._image_topic = info_sub.topic_name, image_sub.topic_name
        self.log.info(f'subscribed to {image_sub.topic_name} and {info_sub.topic_name}')
        if self.params['use_odometry']:
            self._subscribe_camera_motion()
        elif self.params['odom_frame']:
            self.log.warning(f'odom_frame is {self.params["odom_frame"]!r} but use_odometry is '
                             'false: the tracker gets no camera motion; set use_odometry: '
                             'true to take it from /tf')

    def _subscribe_camera_motion(self):
        """Subscribe the camera's motion: odometry, or its pose on /tf (odom_frame)."""
        node = self.node
        # Odometry of a robot's base is turned into the camera's frame through the
        # camera's mounting, as robot_state_publisher latches it; a pose on /tf goes up
        # the tree through it.
        self._static_frames = StaticFrames(node.resolve_topic_name(TF_STATIC))
        tf_static_sub = node.create_subscription(
            TFMessage, TF_STATIC, self._on_tf_static,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._tf_subscriptions = [tf_static_sub]
        odom_frame = self.params['odom_frame']
        if odom_frame:
            # As tf2's listener subscribes /tf: reliable, volatile, a deep queue.
            tf_sub = node.create_subscription(
                TFMessage, TF, self._on_tf,
                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE))
            self._tf_subscriptions.append(tf_sub)
            self._odometry = TfCameraMotion(
                MovingFrames(self._static_frames, tf_sub.topic_name), odom_frame)
            self.log.info(f'subscribed to {tf_sub.topic_name} and {tf_static_sub.topic_name}: '
                          f'the camera\'s motion for the tracker from its pose in '
                          f'{odom_frame!r}')
            return
        odometry_sub = subscribe_input(node, Odometry, 'odometry', self._on_odometry,
                                       self.params['input_reliability'])
        self._subscriptions.append(odometry_sub)
        self._odometry = CameraMotionHistory(odometry_sub.topic_name,
                                             frames=self._static_frames)
        self.log.info(f'subscribed to {odometry_sub.topic_name}: the camera\'s own motion '
                      f'for the tracker (another frame\'s through '
                      f'{tf_static_sub.topic_name})')

    def _set_debug_publisher(self, enabled):
        """Advertise debug_image only while publish_debug_image is true."""
        with self._outputs_lock:
            publisher = self._publishers.get('debug_image')
            if enabled and publisher is None:
                self._publishers['debug_image'] = self.node.create_publisher(
                    Image, 'debug_image', LARGE_OUTPUT_QOS)
            elif not enabled and publisher is not None:
                self.node.destroy_publisher(self._publishers.pop('debug_image'))

    # Parameters -----------------------------------------------------------------------

    def _on_set_parameters(self, parameters):
        updated = dict(self.params)
        try:
            start_up = [p.name for p in parameters
                        if p.name in BY_NAME and not BY_NAME[p.name].runtime]
            if start_up and self.pipeline is not None:  # only a managed node gets here
                raise ConfigError(
                    f'{", ".join(start_up)} can be set only while the node is unconfigured '
                    '(it applies at configure): deactivate and clean up the node, set it, '
                    'then configure again')
            for param in parameters:
                if param.name == 'use_sim_time':
                    continue
                updated[param.name] = check_value(param.name, param.value)
            if self.pipeline is not None:
                check_class_names(updated, self.pipeline.detector.class_names)
            new_detector_config = detector_config(updated)
            new_fusion_config = fusion_config(updated)
            new_tracker_config = tracker_config(updated)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self.params = updated
            if self.pipeline is not None:
                self.pipeline.detector.config = new_detector_config
                self.pipeline.fusion = new_fusion_config
            # The tracker takes its new settings between frames (see _track).
            self._tracker_config = new_tracker_config
            if not updated['tracking']:
                self._tracker = None
            elif self._tracker is None:
                self._tracker = self._start_tracker()
        if self._publishers:  # configured: the outputs are advertised
            self._set_debug_publisher(updated['publish_debug_image'])
        self.log.info('parameters updated: ' + ', '.join(
            f'{p.name}={p.value}' for p in parameters))
        if any(p.name == 'depth_strategy' for p in parameters):
            self._warn_of_mask_without_masks()
        return SetParametersResult(successful=True)

    # Input ----------------------------------------------------------------------------

    def _on_camera_info(self, msg):
        self.stats['camera_infos'] += 1
        camera = CameraModel.from_camera_info(msg)
        try:
            camera.validate()
        except CameraModelError as exc:
            self.stats['bad_camera_info'] += 1
            self.log.warning(f'camera_info ignored: {exc}', throttle_duration_sec=WARN_THROTTLE_S)
            camera = None
        stamp = _stamp_ns(msg.header)
        with self._info_cond:
            self._infos.append((stamp, camera))
            if stamp in self._image_stamps:
                self._stamps_paired = True   # this camera stamps CameraInfo like its images
            now = time.perf_counter()
            image = self._image_of_info(stamp, self._awaiting_info)
            if image is not None:
                # CameraInfos come in order: images before this one have none.
                self._without_info([s for s in self._awaiting_info if s < image])
                self._info_delays.append(now - self._awaiting_info.pop(image))
            missed_at = self._frames_without_info.pop(
                self._image_of_info(stamp, self._frames_without_info), None)
            self._info_cond.notify_all()
        # Later than a frame would wait for it: held up.
        if missed_at is not None and now - missed_at >= CAMERA_INFO_WAIT_S:
            self._camera_info_late(now - missed_at)

    def _image_of_info(self, stamp, images):
        """Return the key of `images` (stamps) whose CameraInfo this is, or None.

        Its own stamp; for a camera that stamps CameraInfo off its images, the nearest
        within camera_info_tolerance. Called holding self._info_cond.
        """
        if stamp in images:
            return stamp
        if self._stamps_paired:
            return None
        tolerance = self.params['camera_info_tolerance'] * 1e9
        near = [s for s in images if abs(s - stamp) <= tolerance]
        return min(near, key=lambda s: abs(s - stamp), default=None)

    def _own_info(self, stamp):
        """Return this image's own (stamp, camera) entry if it has come, else None.

        Same stamp for a camera seen to pair stamps, else the newest within
        camera_info_tolerance. Called holding self._info_cond.
        """
        same = next((e for e in reversed(self._infos) if e[0] == stamp), None)
        if same is not None or self._stamps_paired:
            return same
        return self._near_info(stamp)

    def _near_info(self, stamp):
        """Return the newest (stamp, camera) entry within camera_info_tolerance, or None."""
        tolerance = self.params['camera_info_tolerance'] * 1e9
        return next((e for e in reversed(self._infos) if abs(e[0] - stamp) <= tolerance),
                    None)

    def _image_arrived(self, stamp, received):
        """Note an image's arrival: its CameraInfo's delay is measured from it."""
        self._image_stamps.append(stamp)
        with self._info_cond:
            if self._own_info(stamp) is None:
                self._awaiting_info[stamp] = received
                self._without_info(list(self._awaiting_info)[:-CAMERA_INFO_BUFFER])

    def _without_info(self, stamps):
        """Give up on these images' CameraInfos: their delays are infinite.

        Called holding self._info_cond.
        """
        for stamp in stamps:
            del self._awaiting_info[stamp]
            self._info_delays.append(math.inf)

    def _waiting_pays(self, received):
        """Return whether a frame that arrived at `received` should wait for its CameraInfo.

        Called holding self._info_cond.
        """
        now = time.perf_counter()
        horizon = now - received + CAMERA_INFO_WAIT_S  # the frame's age plus the wait
        self._without_info([s for s, at in self._awaiting_info.items()
                            if now - at > INFO_GIVE_UP_S])
        # Images still without theirs past the horizon count as late already.
        outcomes = [d <= horizon for d in self._info_delays] + [
            False for at in self._awaiting_info.values() if now - at > horizon]
        recent = outcomes[-INFO_DELAYS:]
        # The last two in time (the CameraInfos came again after losses), or two thirds
        # of the last INFO_DELAYS (a loss now and then); not one image in two.
        return (len(recent) >= 2 and all(recent[-2:])) or (
            bool(recent) and 3 * sum(recent) >= 2 * len(recent))

    def _camera_info_late(self, late_s):
        """Count (and explain, once a minute) a CameraInfo that came after its frame."""
        self.stats['camera_info_late'] += 1
        self.log.warning(
            f'a camera_info came {late_s:.2f} s after its image, which was processed '
            'without it: the camera\'s CameraInfo is held up in transport. With Fast DDS, '
            'give the camera driver the large-data profile (README: Large images and QoS), '
            'or publish each image before its camera_info; or raise camera_info_tolerance '
            'to use an earlier camera_info (or one stamped further off its image)',
            throttle_duration_sec=60.0)

    def _on_odometry(self, msg):
        self.stats['odometry_received'] += 1
        twist = msg.twist.twist
        with self._odometry_cond:
            self._odometry.add(_stamp_ns(msg.header), (twist.linear.x, twist.linear.y,
                                                       twist.linear.z, twist.angular.x,
                                                       twist.angular.y, twist.angular.z),
                               msg.child_frame_id)
            self._odometry_cond.notify_all()

    def _on_tf_static(self, msg):
        refused = self._static_frames.add_message(msg.transforms)
        if refused:  # one line per message, naming every transform left out
            self.log.warning(f'{len(refused)} transform(s) left out: {"; ".join(refused)}')

    def _on_tf(self, msg):
        self.stats['tf_received'] += 1
        with self._odometry_cond:
            refused = self._odometry.frames.add_message(msg.transforms)
            self._odometry_cond.notify_all()
        self.stats['tf_transforms_refused'] += len(refused)
        if refused:  # /tf comes at tens of Hz: throttled
            self.log.warning(f'{len(refused)} transform(s) left out: {"; ".join(refused)}',
                             throttle_duration_sec=WARN_THROTTLE_S)

    def _camera_motion(self, header):
        """Return the camera's motion at the image (use_odometry), or None without it."""
        if self._odometry is None:
            return None
        stamp = _stamp_ns(header)
        newest = self._odometry.newest_stamp(header.frame_id)
        # Wait only while odometry flows (its newest message close before the image):
        # lost odometry must not delay every frame.
        if newest is not None and 0 < stamp - newest <= MAX_GAP_S * 1e9:
            with self._odometry_cond:
                self._odometry_cond.wait_for(
                    lambda: (self._odometry.newest_stamp(header.frame_id) or 0) >= stamp,
                    timeout=ODOMETRY_WAIT_S)
        try:
            motion = self._odometry.at(stamp, header.frame_id)
        except CameraMotionUnavailable as exc:
            self.stats['frames_without_odometry'] += 1
            self._odometry_problem = str(exc)
            self.log.warning(f'no camera motion for this frame: {exc} (one from the last '
                             f'{CAMERA_MOTION_HOLD_S:g} s stands in, if any)',
                             throttle_duration_sec=WARN_THROTTLE_S)
            return None
        self._odometry_problem = ''
        return motion

    def _on_image(self, msg):
        self._take_image(msg, time.perf_counter())

    def _take_image(self, msg, received):
        """Hand an image that arrived at `received` (time.perf_counter()) to the worker.

        A copy of the newest image (two publishers on the topic) gets its answer again,
        a late copy nothing (its answer went out before newer ones): neither reaches the
        worker, where it would take the place of another image waiting (core.copies).
        """
        key = (_stamp_ns(msg.header), msg.header.frame_id, _identity(msg))
        kind = self._recent_images.classify(*key, received)
        if kind in (COPY, LATE_COPY):
            self._copy_came(key, kind)
            return
        if kind == STAMP_REPEATED:
            self.stats['stamps_repeated'] += 1
            self._last_repeat['stamp'] = time.monotonic()
            self._warn_throttled('stamp repeated', lambda: (
                f'an image has the stamp of the one before ({_stamp_text(key[0])}): '
                f'tracked by its arrival time; {self._stamps_why()}'))
        now = time.monotonic()
        self._arrivals.append(now)
        self._last_image_time = now
        if self._waiting_since is None:
            self._waiting_since = now
        self._image_arrived(key[0], received)
        now_ns = self.node.get_clock().now().nanoseconds
        if now_ns:  # 0: sim time before the first /clock, nothing to compare with
            self._stamp_offset_s = (now_ns - key[0]) * 1e-9
        worker = self._frame_worker
        if worker is not None:
            worker.put((msg, received, key), supersedes=_stamped_no_earlier)

    def _copy_came(self, key, kind):
        """Count a copy of an image; give a copy of the newest processed one its answer."""
        self.stats['images_repeated'] += 1
        self._last_repeat['image'] = time.monotonic()
        self._warn_throttled('image repeated', lambda: (
            f'an image came twice (same stamp, frame_id and data): {self._copies_why()}'))
        answered, messages = self._answer
        # A copy of the newest image not answered yet: its answer is on its way.
        if kind == COPY and answered == key:
            # Under the lock cleanup takes: a copy arriving as the node shuts down found
            # its publishers gone (a KeyError on the executor's thread, seen in make test).
            with self._outputs_lock:
                for name, message in zip(SMALL_OUTPUTS, messages):
                    publisher = self._publishers.get(name)
                    if publisher is not None:
                        publisher.publish(message)

    def _process_safely(self, item):
        try:
            self._process(*item)
        except ImageDecodeError as exc:
            self.stats['bad_images'] += 1
            self._last_refused = (time.monotonic(), str(exc))
            self._last_error = f'image refused: {exc}'
            self._warn_refusal(self._last_error)
        except Exception as exc:  # keep serving: one bad frame must not stop the node
            if _is_current(self._frame_worker):
                self._frame_failed(exc)
        finally:
            if _is_current(self._frame_worker):  # not a frame abandoned by deactivation
                self._waiting_since = None

    def _warn_refusal(self, text):
        """Log a refused image once per WARN_THROTTLE_S for each kind of problem.

        One throttle for all would hide a second problem behind the first; the kind is
        the message without its numbers.
        """
        self._warn_throttled(re.sub(r'\d+', '#', text), lambda: text)

    def _warn_throttled(self, kind, make_text):
        """Log make_text() at most once per WARN_THROTTLE_S for each kind.

        The text is made only when it is logged: some ask the ROS graph who publishes,
        which would cost every copy of an image that the throttle then drops.
        """
        now = time.monotonic()
        if now - self._warnings_logged.get(kind, -math.inf) >= WARN_THROTTLE_S:
            if len(self._warnings_logged) > 100:
                self._warnings_logged.clear()
            self._warnings_logged[kind] = now
            self.log.warning(make_text())

    def _frame_failed(self, exc):
        if not self.node.context.ok():
            return  # shut down while this frame was in flight: nothing to report
        self.stats['errors'] += 1
        self._last_error = f'{type(exc).__name__}: {exc}'
        self.log.error(f'frame failed: {self._last_error}', throttle_duration_sec=WARN_THROTTLE_S)

    def _camera_info_for(self, stamp, received):
        """Return the camera for an image stamp: same stamp, else newest within tolerance.

        Sets self._camera_problem to '' or to why no camera is used for this frame.
        `received` is the image's arrival (time.perf_counter()).
        """
        first = (len(self._infos) < 2 and self._first_waits_in_vain < FIRST_INFO_WAITS
                 and self.node.count_publishers(self._info_topic) > 0)
        with self._info_cond:
            own = self._own_info(stamp)
            if own is None and (first or self._waiting_pays(received)):
                own = self._info_cond.wait_for(lambda: self._own_info(stamp),
                                               timeout=CAMERA_INFO_WAIT_S)
                self._first_waits_in_vain += first and own is None
            if own is not None and own[0] == stamp:
                self._stamps_paired = True
            entry = own or self._near_info(stamp)
            if entry is None:
                # Its CameraInfo coming later than a frame waits: held up in transport.
                self._frames_without_info.setdefault(stamp, received)
                while len(self._frames_without_info) > CAMERA_INFO_BUFFER:
                    self._frames_without_info.popitem(last=False)
            nearest = min((abs(e[0] - stamp) for e in self._infos), default=None)
        if entry is None:
            self._camera_problem = (
                f'no camera_info received yet on {self._info_topic}: 3D positions not '
                'published' if nearest is None else
                f'no camera_info within camera_info_tolerance '
                f'({self.params["camera_info_tolerance"]} s) of the image stamp; nearest '
                f'{nearest / 1e9:.3f} s away: 3D positions not published')
        elif entry[1] is None:
            self._camera_problem = 'the camera_info for this image was refused (see log)'
        else:
            self._camera_problem = ''
        if self._camera_problem:
            self.log.warning(self._camera_problem, throttle_duration_sec=30.0)
            return None
        return entry[1]

    def _latest_camera(self, shape):
        """Return the newest accepted camera_info that fits an image size, fitted, or None.

        One of another aspect ratio (a stray camera_info) is passed over: it does not
        describe this camera's images, whose depth keeps the scale of the last one that
        does (outsider round 39).
        """
        with self._info_cond:
            cameras = [e[1] for e in reversed(self._infos) if e[1] is not None]
        return next((fitted for fitted in (c.for_image(shape[1], shape[0]) for c in cameras)
                     if fitted is not None), None)

    def _camera_for(self, stamp, shape, received):
        camera = self._camera_info_for(stamp, received)
        if camera is None:
            return None
        h, w = shape
        fitted = camera.for_image(w, h)
        if fitted is None:
            self._camera_problem = (
                f'camera_info is {camera.width}x{camera.height} but the image is {w}x{h}, '
                'another aspect ratio: its intrinsics do not describe the image, 3D '
                'positions not published (publish the camera_info of this image size)')
            self.log.warning(self._camera_problem, throttle_duration_sec=30.0)
            return None
        mismatch = (camera.width, camera.height, w, h)
        if fitted is not camera and self._warned_size_mismatch != mismatch:
            self._warned_size_mismatch = mismatch
            self.log.warning(
                f'camera_info is {camera.width}x{camera.height} but images are {w}x{h}: '
                'scaling the intrinsics to the image size')
        return fitted

    # Processing -----------------------------------------------------------------------

    def _stamps_why(self) -> str:
        """Say where images with the stamp of the one before come from."""
        publishers = self.node.count_publishers(self._image_topic)
        return (f'{publishers} publishers on {self._image_topic}: one sending other data under '
                'the same stamps?' if publishers > 1 else 'the camera driver should stamp '
                'each image with its capture time')

    def _copies_why(self) -> str:
        """Say where copies of images come from, by how many publish the image topic."""
        publishers = self.node.count_publishers(self._image_topic)
        return (f'{publishers} publishers on {self._image_topic}' if publishers > 1 else
                f'the publisher of {self._image_topic} sends images more than once')

    def _process(self, msg, received, key):
        params = self.params
        t0 = time.perf_counter()
        rgb = convert.image_msg_to_rgb(msg, params['max_image_pixels'])
        header = msg.header
        if not header.frame_id:
            # A new header: the message itself stays as it came.
            header = Header(stamp=header.stamp, frame_id=params['default_frame_id'])
            self.log.warning(f'image has an empty frame_id; using {header.frame_id!r}',
                             throttle_duration_sec=60.0)
        t1 = time.perf_counter()
        camera = self._camera_for(_stamp_ns(header), rgb.shape[:2], received)
        depth_camera = camera
        if camera is None:
            self.stats['no_camera'] += 1
            # A late or lost camera_info: no 3D, but the depth keeps this camera's scale.
            depth_camera = self._latest_camera(rgb.shape[:2])
        result = self.pipeline.process(rgb, camera, depth_camera)
        self._depth_camera = self._describe_depth_camera(camera, depth_camera,
                                                         result.depth_scale)
        t2 = time.perf_counter()
        if not _is_current(self._frame_worker):
            return  # deactivation gave up waiting for this frame: nothing more is published
        outputs, shown, objects = self._track(result, header, rgb, received)
        t_track = time.perf_counter()
        detections, detections_3d, alerts = layout.frame_messages(convert.make, header,
                                                                  outputs, shown)
        t3 = time.perf_counter()
        publishers = self._publishers
        messages = (alerts, detections, detections_3d)
        for name, message in zip(SMALL_OUTPUTS, messages):
            publishers[name].publish(message)
        large = LargeOutputs(header, result.depth_map, camera, rgb, [outputs[i] for i in shown],
                             [objects[i] for i in shown],
                             layout.drawn(outputs, shown, self.params['publish_tentative']))
        self._output_worker.put(large)
        self._answer = (key, messages)  # one assignment: the subscription's thread reads it
        t4 = time.perf_counter()
        self.stats['frames'] += 1
        self._last_processed = time.monotonic()
        timings = result.timings_ms
        for stage, value in (('conversion', (t1 - t0) * 1e3),
                             *((s, timings[s]) for s in INFERENCE_STAGES if s in timings),
                             ('fusion', timings.get('fusion', 0.0)),
                             ('tracking', (t_track - t2) * 1e3),
                             ('messages', (t3 - t_track) * 1e3), ('publish', (t4 - t3) * 1e3),
                             ('total', (t4 - received) * 1e3)):
            self._latency[stage].append(value)

    def _track(self, result, header, rgb, received):
        """Return the frame's OutputObjects, the indices on detections, and their objects.

        The objects are those the outputs come from: the tracker drops duplicates. With
        tracking, the tracker (with any new settings) advances to the image stamp
        (the image gives the objects' appearance, for re-identification); without,
        every object is published raw under the per-frame alert rule.
        """
        objects = result.objects
        measured, self._depth_measured = self._depth_measured, result.depth_measured
        with self._lock:
            tracker, params, fusion = self._tracker, self.params, self.pipeline.fusion
            if tracker is not None:
                tracker.config = self._tracker_config
                changed = depth_measured_otherwise(measured, self._depth_measured)
                if changed:
                    tracker.reset()
        if tracker is None:
            return ([layout.from_estimate(o) for o in objects], list(range(len(objects))),
                    objects)
        if changed:
            # Tracks would take the step in every depth for motion: a false closing speed
            # and time to contact (outsider round 53: a static chair closing at 0.64 m/s
            # for a second after depth_strategy changed).
            # Throttled: a zooming camera changes the scale at every frame.
            self.log.info(f'depth is measured otherwise from this frame on ({changed}): '
                          'tracking starts over', throttle_duration_sec=WARN_THROTTLE_S)
        restarts = tracker.restarts
        tracked = tracker.update(objects, self._tracker_clock(_stamp_ns(header), received),
                                 fusion.max_depth,
                                 fusion.class_max_depth, image=rgb,
                                 camera_motion=self._camera_motion(header))
        if tracker.restarts > restarts:
            self._restarts.append(time.monotonic())
            self.log.info('image stamps went back (by more than 1 s, or late several frames '
                          'in a row): tracking starts over (a bag looped, a camera restarted)',
                          throttle_duration_sec=WARN_THROTTLE_S)
        self.stats['ids_taken_back'] += len(tracker.taken_back)
        self.stats['duplicates_dropped'] += len(tracker.dropped)
        # Tracks in alert that missed this frame keep their alert on proximity_alert.
        outputs, shown = layout.tracked_outputs(tracked, params['publish_raw'],
                                                params['publish_tentative'],
                                                tracker.held_alerts())
        return outputs, shown, [t.raw for t in tracked]

    def _describe_depth_camera(self, camera, depth_camera, scale):
        """Say which camera depth was scaled for; logs once when it is not camera_info."""
        if camera is not None:
            return f'camera_info (focal scale {scale:.3f})'
        if depth_camera is not None:
            return (f'the last camera_info received (focal scale {scale:.3f}); none matched '
                    'this image')
        depth = self.pipeline.depth
        hfov = self.params['assumed_hfov_deg']
        if depth.canonical_focal is None:
            description = 'as predicted (the depth model names no canonical focal length)'
        elif hfov:
            description = (f'an assumed {hfov:g} deg horizontal field of view (focal scale '
                           f'{scale:.3f}); set camera_info for true metres')
        else:
            description = (f"the depth model's own camera ({depth.canonical_hfov_deg:.0f} deg "
                           'over its input); set camera_info or assumed_hfov_deg')
        if description != getattr(self, '_depth_camera_logged', None):
            self._depth_camera_logged = description
            how = 'depth is used ' if depth.canonical_focal is None else \
                'depth is scaled for '
            self.log.warning(f'no camera_info for this frame: {how}{description}')
        return description

    def _publish_large(self, outputs: LargeOutputs):
        """Build and publish depth, depth/camera_info, debug_image, instance_masks, markers."""
        worker = self._output_worker

        def publish(name, build):
            # Each message takes a while to build: deactivation may give up on this frame
            # meanwhile, and then nothing more of it is published.
            publisher = self._publishers.get(name)
            if publisher is None:
                return
            message = build()
            with self._outputs_lock:  # debug_image's publisher comes and goes at run time
                if _is_current(worker) and self._publishers.get(name) is publisher:
                    publisher.publish(message)

        try:
            markers = self._publishers.get('markers')
            if markers is not None and markers.get_subscription_count():
                publish('markers', lambda: layout.markers(
                    convert.make, outputs.header, outputs.drawn,
                    self.params['stale_input_timeout']))
            h, w = outputs.rgb.shape[:2]
            labels = None
            if outputs.shown and outputs.shown[0].track_id is not None:
                labels = [(o.track_id - 1) % MAX_INSTANCE_LABEL + 1 for o in outputs.shown]
            publish('instance_masks', lambda: convert.instance_image_msg(
                instance_image(outputs.shown_estimates, h, w, labels=labels), outputs.header))
            publish('depth', lambda: convert.depth_to_image_msg(outputs.depth_map,
                                                                outputs.header))
            if outputs.camera is not None:
                publish('depth/camera_info', lambda: convert.camera_model_to_info(
                    outputs.camera, outputs.header))
            publish('debug_image', lambda: convert.rgb_to_image_msg(
                draw_objects(outputs.rgb, outputs.drawn), outputs.header))
        except Exception as exc:  # keep serving the next frame
            if _is_current(worker):
                self._frame_failed(exc)

    # Output helpers -------------------------------------------------------------------

    def _publish_label_info(self):
        header = Image().header
        header.stamp = self.node.get_clock().now().to_msg()
        self._publishers['label_info'].publish(convert.label_info_msg(
            self.pipeline.detector.class_names, self.params['score_threshold'], header))

    def _sim_time_problem(self):
        """Say so when use_sim_time is on and the node's clock has stopped."""
        if not self.node.get_parameter('use_sim_time').value:
            return ''
        sim_now, steady_now = self.node.get_clock().now().nanoseconds, time.monotonic()
        if self._sim_time_seen is None or self._sim_time_seen[0] != sim_now:
            self._sim_time_seen = (sim_now, steady_now)
            return ''
        still = steady_now - self._sim_time_seen[1]
        if still < self.params['stale_input_timeout']:
            return ''
        return (f'sim time has not advanced for {still:.1f} s (use_sim_time is true: '
                'is /clock published?)')

    def diagnostics(self):
        """Build the current DiagnosticStatus: rates, staleness, drops, latency, providers."""
        # diagnostic_updater's '<node name>: <task>', with the namespace in front (as in
        # 'front/depthdet_node: pipeline'): two cameras' nodes must not share a name.
        full_name = self.node.get_fully_qualified_name().lstrip('/')
        # The camera this node serves, by its image topic (the raw one, with the compressed
        # transport too): known from the start and the same for every node on that camera.
        status = DiagnosticStatus(name=f'{full_name}: pipeline',
                                  hardware_id=self.node.resolve_topic_name('image'))
        now = time.monotonic()
        level, messages = DiagnosticStatus.OK, []
        if self._last_image_time is None:
            level, age = DiagnosticStatus.WARN, float('inf')
            publishers = self.node.count_publishers(self._image_topic)
            messages.append(f'no image received yet on {self._image_topic} ({publishers} '
                            'publishers)')
            waited = now - self._started
            if waited >= NO_IMAGE_WARNING_S and not self._said_no_image:
                # Otherwise a wrong image:= remapping is silent in the console.
                self._said_no_image = True
                self.log.warning(
                    f'no image received on {self._image_topic} in {waited:.0f} s '
                    f'({publishers} publishers on it): is the camera publishing there? '
                    'Remap it with image:=YOUR_TOPIC')
        else:
            age = now - self._last_image_time
            if age > self.params['stale_input_timeout']:
                level = DiagnosticStatus.WARN
                messages.append(f'input stale for {age:.1f} s')
        camera_problem = self._camera_problem or (
            '' if self._infos else f'no camera_info received yet on {self._info_topic}')
        if camera_problem:
            level = max(level, DiagnosticStatus.WARN)
            late = self.stats['camera_info_late']
            messages.append(camera_problem if not late else
                            f'{camera_problem} ({late} camera_info came after their image: '
                            'held up in transport, see the log)')
        sim_time_problem = self._sim_time_problem()
        if sim_time_problem:
            level = max(level, DiagnosticStatus.WARN)
            messages.append(sim_time_problem)
        offset = self._stamp_offset_s
        if offset is not None and abs(offset) > STAMP_OFFSET_WARNING_S:
            level = max(level, DiagnosticStatus.WARN)
            where = 'behind' if offset > 0 else 'ahead of'
            why = ('the camera driver leaves header.stamp 0?' if not self._image_stamps[-1]
                   else 'is /clock from the same source as the images?'
                   if self.node.get_parameter('use_sim_time').value else
                   'a bag played without --clock and use_sim_time:=true, or a camera clock '
                   'not synchronised?')
            problem = (f'image stamps are {abs(offset):.0f} s {where} this node\'s clock: '
                       f'{why} Outputs keep the input stamps')
            messages.append(problem)
            if not self._said_stamp_offset:
                self._said_stamp_offset = True
                self.log.warning(problem)
        if 'cpu' in self.pipeline.providers.values() and self.params['providers'] not in (
                'cpu', 'auto'):
            level = max(level, DiagnosticStatus.WARN)
            messages.append('requested GPU provider unavailable, running on CPU')
        recent = now - self.params['stale_input_timeout']
        arrivals = list(self._arrivals)
        # The tracker ages tracks on the image stamps (a bag may play faster or slower).
        steps = np.diff(np.array(list(self._image_stamps), np.int64)) * 1e-9
        steps = steps[steps > 0]
        interval = float(np.median(steps)) if len(steps) > 1 else 0.0
        refusing = self._last_refused is not None and self._last_refused[0] >= recent
        waiting = self._waiting_since
        if waiting is not None and waiting < recent:
            # Images arrive but no frame finishes: settings that make each frame very
            # slow (e.g. max_detections with score_threshold 0) stall the outputs.
            level = max(level, DiagnosticStatus.WARN)
            messages.append(f'no frame finished for {now - waiting:.1f} s while images '
                            'arrive')
        # A copy: the worker thread appends to the deque.
        restarts = sum(t >= now - RESTARTS_WINDOW_S for t in tuple(self._restarts))
        if self._tracker is not None and restarts >= RESTARTS_SAID:
            # Stamps going back again and again; the interval below is then meaningless.
            level = max(level, DiagnosticStatus.WARN)
            messages.append(f'tracking started over {restarts} times in {RESTARTS_WINDOW_S:g} s '
                            'as image stamps went back (by more than 1 s, or late several '
                            'frames in a row): a bag playing in a short loop, or a second '
                            'publisher\'s copies of the images more than 1 s late?')
        elif self._tracker is not None and interval > self.params['track_max_age']:
            level = max(level, DiagnosticStatus.WARN)
            messages.append(f'track_max_age {self.params["track_max_age"]:g} s is shorter than '
                            f'the {interval:.2f} s between images: every track ends before '
                            'the next frame (an ID may come back by re-identification, but '
                            'its smoothing and velocity start over)')
        if refusing:
            # Images keep coming but are refused: a node with no output is not OK.
            if self._last_processed is not None and self._last_processed >= recent:
                level = max(level, DiagnosticStatus.WARN)
                messages.append(f'some images refused: {self._last_refused[1]}')
            else:
                level = DiagnosticStatus.ERROR
                messages.insert(0, f'every image refused: {self._last_refused[1]}')
        for kind, problem in (
                ('image', lambda: f'{self.stats["images_repeated"]} image(s) came twice '
                 '(same stamp, frame_id and data), given no new answer: '
                 f'{self._copies_why()}'),
                ('stamp', lambda: f'{self.stats["stamps_repeated"]} image(s) had the stamp of '
                 'the one before: tracked by their arrival times, as the tracker\'s clock '
                 f'must go on; {self._stamps_why()}')):
            if (self._last_repeat[kind] or -math.inf) >= recent:
                level = max(level, DiagnosticStatus.WARN)
                messages.append(problem())
        if self._odometry_problem and self._tracker is not None:
            level = max(level, DiagnosticStatus.WARN)
            messages.append(f'no camera motion for the last frame: {self._odometry_problem}')
        namesakes = self._namesakes()
        if namesakes:
            # ROS does not refuse a second node of one name; both would publish on the
            # same topics and a parameter set would reach only one (outsider round 47).
            level = max(level, DiagnosticStatus.WARN)
            problem = (f'{namesakes} other node(s) named /{full_name} in this ROS domain: '
                       'their outputs mix with these and a parameter set reaches only one; '
                       'give each camera its own namespace (namespace:=...)')
            messages.append(problem)
            if not self._said_namesake:
                # A node that was killed stays in the graph until DDS's lease on it
                # ends (10-20 s): a respawned node can see its own predecessor.
                self._said_namesake = True
                self.log.warning(f'{problem} (or one that stopped in the last 20 s)')
        if self.stats['errors']:
            level = DiagnosticStatus.ERROR
            messages.append(f'{self.stats["errors"]} frames failed: {self._last_error}')
        status.level = level
        status.message = '; '.join(messages) or 'ok'
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) \
            if len(arrivals) > 1 and arrivals[-1] > arrivals[0] else 0.0
        from_tf = isinstance(self._odometry, TfCameraMotion)
        not_from_tf = 'not read (odom_frame unset or use_odometry off)'
        values = {
            'detector_provider': self.pipeline.detector.provider,
            'depth_provider': self.pipeline.depth.provider,
            'depth_scaled_for': getattr(self, '_depth_camera', 'no frame yet'),
            'tracks': str(len(self._tracker)) if self._tracker is not None else 'tracking off',
            'track_ids_taken_back': str(self.stats['ids_taken_back']),
            'track_duplicates_dropped': str(self.stats['duplicates_dropped']),
            'track_late_frames': str(self._tracker_instance.late_frames),
            'track_restarts': str(self._tracker_instance.restarts),
            'odometry_received': 'use_odometry off' if not self.params['use_odometry']
            else 'not read (odom_frame set)' if self.params['odom_frame']
            else str(self.stats['odometry_received']),
            'tf_received': str(self.stats['tf_received']) if from_tf else not_from_tf,
            'tf_transforms_refused': str(self.stats['tf_transforms_refused'])
            if from_tf else not_from_tf,
            'frames_without_odometry': str(self.stats['frames_without_odometry'])
            if self.params['use_odometry'] else 'use_odometry off',
            'static_transforms': str(len(self._static_frames))
            if self._odometry is not None else 'use_odometry off',
            'static_transforms_refused': str(len(self._static_frames.refused))
            if self._odometry is not None else 'use_odometry off',
            'models_loaded': 'true',
            'input_rate_hz': f'{rate:.2f}',
            'input_age_s': f'{age:.3f}',
            'input_stamp_offset_s': 'no image yet' if offset is None else f'{offset:.3f}',
            'frames_processed': str(self.stats['frames']),
            'frames_dropped': str(self._frame_worker.replaced if self._frame_worker else 0),
            'large_outputs_replaced': str(
                self._output_worker.replaced if self._output_worker else 0),
            'images_refused': str(self.stats['bad_images']),
            'images_repeated': str(self.stats['images_repeated']),
            'image_stamps_repeated': str(self.stats['stamps_repeated']),
            # Why, as the log says it only once per kind and throttled.
            'last_image_refused': self._last_refused[1] if self._last_refused else 'none',
            'images_without_camera_info': str(self.stats['no_camera']),
            'camera_info_received': str(self.stats['camera_infos']),
            'camera_info_refused': str(self.stats['bad_camera_info']),
            'camera_info_late': str(self.stats['camera_info_late']),
            'frames_failed': str(self.stats['errors']),
        }
        for stage, samples in self._latency.items():
            if samples:
                p50, p95 = np.percentile(np.fromiter(samples, float), [50, 95])
                values[f'latency_{stage}_p50_ms'] = f'{p50:.2f}'
                values[f'latency_{stage}_p95_ms'] = f'{p95:.2f}'
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _namesakes(self) -> int:
        """Other nodes in the graph with this node's name and namespace."""
        own = (self.node.get_name(), self.node.get_namespace())
        return max(0, sum(pair == own for pair in self.node.get_node_names_and_namespaces()) - 1)

    def _publish_diagnostics(self):
        msg = DiagnosticArray()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        publisher = self._publishers.get('/diagnostics')
        if publisher is not None:
            publisher.publish(msg)


def _stamp_ns(header):
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def _identity(msg) -> tuple:
    """Return an image message's fields but header and data, and its data's CRC-32.

    With the stamp and frame_id, what tells a copy from another image (core.copies), for
    0.25 ms a VGA image: the images themselves are not kept.
    """
    return tuple(getattr(msg, field) for field in msg.get_fields_and_field_types()
                 if field not in ('header', 'data')) + (zlib.crc32(msg.data),)


def _stamped_no_earlier(new, waiting) -> bool:
    """Whether a frame replaces the one waiting for the worker: not stamped before it.

    The worker keeps the newest frame by stamp: one stamped earlier came late (a second
    publisher's copies more than 1 s late, reordered in transport; outsider round 52: it
    took the place of the camera's current frame). When stamps go back for good (a bag
    looped, a camera restarted), the frame waiting then is processed and the next ones
    flow again.
    """
    return new[2][0] >= waiting[2][0]


def _stamp_text(stamp_ns):
    return 'stamp 0: not stamped' if not stamp_ns else f'stamp {stamp_ns * 1e-9:.9f} s'


class LogsParameterRefusals:
    """Log every refused parameter update in the node, whoever refused it.

    `ros2 param set` and other SetParameters callers get the reason, but rclpy's own
    checks (descriptor ranges, types, read-only, undeclared names) refuse before the
    node's callback runs: without this the node's log would not show them. Mixed in
    before rclpy's Node class; its parameter services call set_parameters_atomically.
    """

    def set_parameters_atomically(self, parameter_list):
        """Set the parameters as rclpy does; log a refusal with its reason."""
        names = ', '.join(p.name for p in parameter_list)
        try:
            result = super().set_parameters_atomically(parameter_list)
        except ParameterNotDeclaredException:
            # rclpy's message leaves the names out ("undeclared parameter(s): []", rclpy
            # 7.1): name them, here and for the caller, whose reason is the exception's.
            undeclared = [p.name for p in parameter_list if not self.has_parameter(p.name)]
            self.get_logger().warning(
                f'parameter update refused: {", ".join(undeclared)}: no such parameter '
                '(`ros2 param list` names them)')
            raise ParameterNotDeclaredException(undeclared) from None
        if not result.successful:
            self.get_logger().warning(f'parameter update refused ({names}): {result.reason}')
        return result

    def set_parameters(self, parameter_list):
        """Set the parameters one by one as rclpy does, each logged if refused."""
        return [self.set_parameters_atomically([p]) for p in parameter_list]


class DepthDetNode(LogsParameterRefusals, Node):
    """The detection + depth node, configured and active from start-up."""

    def __init__(self, **kwargs):
        super().__init__('depthdet_node', **kwargs)
        self.runner = DepthDetRunner(self)
        self.runner.configure()
        self.runner.activate()

    def destroy_node(self):
        """Stop the worker after the frame in progress, then destroy the node."""
        self.runner.shutdown()
        super().destroy_node()


class _NodeLogHandler(logging.Handler):
    """Pass the package's Python log records (core, model loading) to the node's logger."""

    def __init__(self, node_logger):
        super().__init__()
        self.node_logger = node_logger

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            self.node_logger.error(record.getMessage())
        elif record.levelno >= logging.WARNING:
            self.node_logger.warning(record.getMessage())
        else:
            self.node_logger.info(record.getMessage())


def forward_package_logging(node_logger):
    """Route depthdet_ros's Python logging through the node's logger.

    The core logs with Python's logging (it imports no ROS); in the node those lines
    then carry the node's name (with its namespace), a time stamp and ROS's log
    routing like every other line of the node.
    """
    package = logging.getLogger('depthdet_ros')
    package.handlers[:] = [_NodeLogHandler(node_logger)]
    package.propagate = False


def run(node_class, args=None):
    """Spin `node_class` until shutdown; configuration errors exit 2 with one line."""
    logging.basicConfig(format='[%(levelname)s] [depthdet_node]: %(message)s')
    try:
        check_command_line(sys.argv if args is None else args)
        interrupt_once()
        rclpy.init(args=args)
    except ConfigError as exc:
        print(f'[depthdet_node] configuration error: {exc}', file=sys.stderr)
        return 2
    except Exception as exc:  # rcl refused the arguments: its message, not a traceback
        print(f'[depthdet_node] configuration error: ROS 2 could not start with these '
              f'arguments: {rcl_refusal(exc)}', file=sys.stderr)
        return 2
    node = None
    try:
        try:
            node = node_class()
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            # rclpy's own parameters (use_sim_time: abc), declared before ours are checked.
            raise ConfigError(str(exc).splitlines()[0]) from None
        for warning in params_files_not_applied(sys.argv if args is None else args,
                                                node.get_fully_qualified_name()):
            node.get_logger().warning(warning)
        rclpy.spin(node)
    except (ConfigError, ModelLoadError) as exc:
        print(f'[depthdet_node] configuration error: {exc}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # Ctrl-C shuts the context down wherever the node is: while it is being built
        # (creating a publisher then fails) or while the executor takes a message.
        # That is a requested stop; with the context still up and no Ctrl-C it is a
        # real error.
        if rclpy.ok() and not ctrl_c_received():
            raise
    finally:
        ignore_further_ctrl_c()
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


def main(args=None):
    """Entry point of depthdet_node."""
    return run(DepthDetNode, args)


if __name__ == '__main__':
    sys.exit(main())
