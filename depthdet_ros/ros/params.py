"""Node parameters: one table of names, types, defaults, ranges and docs.

The table drives declaration, start-up validation and run-time updates, and
config/depthdet.yaml documents the same names (a test keeps them in step).
"""
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Optional

from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, STRATEGIES
from depthdet_ros.core.session import PROVIDER_CHOICES
from depthdet_ros.core.odometry import MAX_GAP_S, TF_MOTION_WINDOW_S
from depthdet_ros.core.tracking import CAMERA_MOTION_HOLD_S, TrackerConfig, TTC_SOURCES


# Alert distances (metres): max_depth and class_max_depth entries share the range.
MIN_ALERT_DISTANCE = 0.01
MAX_ALERT_DISTANCE = 1000.0


class ConfigError(ValueError):
    """A parameter value that cannot work; the message says what and how to fix it."""


@dataclass(frozen=True)
class Param:
    """One node parameter."""

    name: str
    default: Any
    description: str
    runtime: bool = False                  # may change while running
    choices: Optional[tuple] = None
    minimum: Optional[float] = None        # inclusive, as ROS parameter ranges are
    maximum: Optional[float] = None        # inclusive


PARAMS = (
    Param('detector_model', '', 'Detector ONNX file; empty: the bundled default.'),
    Param('depth_model', '', 'Depth ONNX file; empty: the bundled default.'),
    Param('joint_model', '', 'Joint ONNX file (detections, instance masks and depth in one '
          'network) used instead of detector_model and depth_model; empty: the pair.'),
    Param('class_names_file', '', 'Class names, one per line; empty: from the model.'),
    Param('providers', 'auto', 'Execution provider: auto tries TensorRT, CUDA, then CPU.',
          choices=PROVIDER_CHOICES),
    Param('threads', 0, 'onnxruntime intra-op threads per model; 0: automatic.',
          minimum=0, maximum=256),
    Param('trt_fp16', False, 'Let TensorRT run in FP16.'),
    Param('trt_int8', False, 'Let TensorRT run INT8 models (depthdet quantize) in INT8, '
          'with their own scales.'),
    Param('trt_cache_dir', '', 'TensorRT engine cache folder; empty: no cache.'),
    Param('gpu_device_id', 0, 'CUDA device the GPU providers run on.', minimum=0, maximum=63),
    Param('gpu_mem_limit_mb', 0, 'Upper bound of the CUDA memory arena per model, MB; '
          '0: no limit.', minimum=0, maximum=1048576),
    Param('detector_input_size', [0, 0], 'Detector input [height, width] for models with '
          'dynamic size; [0, 0]: from the model.'),
    Param('score_threshold', 0.25, 'Minimum detection score.', runtime=True,
          minimum=0.0, maximum=1.0),
    Param('iou_threshold', 0.45, 'NMS IoU threshold.', runtime=True, minimum=0.0, maximum=1.0),
    Param('max_detections', 100, 'Most detections kept per frame.', runtime=True,
          minimum=1, maximum=1000),
    Param('class_filter', [''], 'Class names (the model\'s) to keep; [""]: all.',
          runtime=True),
    Param('depth_strategy', DEFAULT_STRATEGY, 'Per-object depth statistic.', runtime=True,
          choices=STRATEGIES),
    Param('max_depth', 1.0, 'Objects nearer than this (metres) are published on '
          'proximity_alert.', runtime=True, minimum=MIN_ALERT_DISTANCE,
          maximum=MAX_ALERT_DISTANCE),
    Param('depth_coverage', 'full', 'full: the depth net sees the whole image (padded to its '
          'aspect ratio), every pixel gets depth; crop: the model\'s own centre crop, NaN '
          'outside it.', choices=('full', 'crop')),
    Param('assumed_hfov_deg', 0.0, 'Horizontal field of view (degrees) assumed to scale depth '
          'while no camera_info has arrived; 0: the depth model\'s own camera.', runtime=True,
          minimum=0.0, maximum=179.0),
    Param('class_max_depth', [''], 'Per-class alert distances, "name:metres" entries; '
          '[""]: none.', runtime=True),
    Param('tracking', True, 'Track objects through frames: track IDs, smoothed positions, '
          'velocity, time to contact, alerts with hysteresis; false: each frame alone.',
          runtime=True),
    Param('track_min_hits', 3, 'Matched frames before a track is confirmed (and may alert '
          'by time to contact).', runtime=True, minimum=1, maximum=1000),
    Param('track_max_age', 1.0, 'Seconds a track lives on without a match (missed '
          'detections, short occlusions).', runtime=True, minimum=0.01, maximum=3600.0),
    Param('track_tentative_max_age', 0.0, 'Seconds a tentative track (fewer than '
          'track_min_hits matches) lives on unmatched once it has missed a frame; 0: it '
          'ends at its first miss. A track whose box the image border cuts (an edge within '
          '1 px of it, 4 px while it was cut) waits for track_max_age.', runtime=True,
          minimum=0.0, maximum=3600.0),
    Param('track_min_iou', 0.1, 'Least overlap of a detection with a track\'s predicted box.',
          runtime=True, minimum=0.0, maximum=0.99),
    Param('track_gate_probability', 0.999, 'Share of true matches the 3D gate keeps '
          '(chi-square on the predicted position).', runtime=True, minimum=0.5,
          maximum=0.999999),
    Param('track_reid_max_age', 20.0, 'Seconds a deleted track is remembered, to give its ID '
          'back to its object when it returns (out of view or missed for longer than '
          'track_max_age), recognised by its colours; 0: off.', runtime=True, minimum=0.0,
          maximum=3600.0),
    Param('track_reid_min_similarity', 0.8, 'Least colour-histogram similarity (Bhattacharyya '
          'coefficient, 0.01-1) for a new detection to take a deleted track\'s ID.',
          runtime=True, minimum=0.01, maximum=1.0),
    Param('track_duplicate_overlap', 0.8, 'Two detections of one class at the same depth, '
          'the smaller box lying this much (share of its area) inside the other, are one '
          'object detected twice: the lower-scoring one is dropped before tracking (with '
          'tracking on; not when only one of them alerts). 0: off; below 0.5 it can merge '
          'objects side by side.', runtime=True, minimum=0.0, maximum=1.0),
    Param('track_duplicate_depth_tolerance', 0.1, 'Most depth difference of such '
          'duplicates, as a share of the larger depth.', runtime=True, minimum=0.0,
          maximum=1.0),
    Param('publish_tentative', True, 'Publish tracks before track_min_hits on detections, '
          'detections_3d and markers; proximity_alert always carries every alert.',
          runtime=True),
    Param('publish_raw', False, 'Publish this frame\'s raw positions and depths instead of '
          'the tracks\' smoothed ones.', runtime=True),
    Param('alert_hysteresis', 0.1, 'Metres beyond max_depth (or its class threshold) before '
          'a proximity alert ends (tracking on).', runtime=True, minimum=0.0, maximum=100.0),
    Param('alert_time_to_contact', 2.0, 'Alert when the time to contact is below this many '
          'seconds (tracking on); 0: off.', runtime=True, minimum=0.0, maximum=3600.0),
    Param('alert_hold', 0.5, 'Seconds an alert stays on proximity_alert, marked '
          'track/coasting, for a track missing detections (tracking on; never past '
          'track_max_age); 0: not held.', runtime=True, minimum=0.0, maximum=3600.0),
    Param('ttc_source', 'depth', 'Closing rate for time to contact: depth (3D track), '
          'expansion (box growth, needs no metric depth) or fused.', runtime=True,
          choices=TTC_SOURCES),
    Param('use_odometry', False, 'Subscribe to odometry (nav_msgs/Odometry of the camera '
          'itself: child_frame_id the images\' frame_id, twist in that frame; or of another '
          'frame, e.g. base_link, that /tf_static links to the camera\'s) and give the '
          'tracker the camera\'s own motion: 3D velocities become the objects\' own, so a '
          'static object the camera closes on has its time to contact from its first frame '
          f'(tracking on). A frame with no usable message within {MAX_GAP_S:g} s of its '
          f'stamp takes the last motion for {CAMERA_MOTION_HOLD_S:g} s, then velocities are '
          'relative to the camera until messages come back (diagnostics count such '
          'frames).'),
    Param('odom_frame', '', 'With use_odometry: empty to take the camera\'s motion from '
          'the odometry topic; a frame fixed in the world (e.g. odom; a fixed arm\'s '
          'base_link) to take it from the camera\'s pose in that frame on /tf and '
          f'/tf_static instead, its change over the last {TF_MOTION_WINDOW_S:g} s (a camera '
          'on a pan-tilt head or an arm moves with its joints too); no odometry topic is '
          'read then.'),
    Param('use_compressed', False, 'Subscribe to the image topic + "/compressed" '
          '(image_transport convention) instead of image.'),
    Param('input_reliability', 'auto', 'QoS reliability of image and camera_info '
          'subscriptions; auto: the publishers\' (README, Large images and QoS).',
          choices=('auto', 'reliable', 'best_effort')),
    Param('publish_depth', True, 'Publish depth (32FC1, metres) and depth/camera_info.'),
    Param('publish_debug_image', False, 'Publish debug_image with labelled boxes.',
          runtime=True),
    Param('camera_info_tolerance', 0.1, 'Seconds between an image stamp and the nearest '
          'camera_info stamp still used when none has the exact stamp; 0: exact only.',
          runtime=True, minimum=0.0, maximum=10.0),
    Param('default_frame_id', 'camera_optical_frame', 'frame_id used when an image has '
          'none.'),
    Param('stale_input_timeout', 2.0, 'Seconds without images before diagnostics warn; '
          'also the lifetime of markers.',
          runtime=True, minimum=0.1, maximum=3600.0),
    Param('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
          minimum=0.1, maximum=60.0),
    Param('max_image_pixels', 64_000_000, 'Larger images are refused.', minimum=1,
          maximum=2**31 - 1),
)
BY_NAME = {p.name: p for p in PARAMS}


def _same_type(param, value):
    default = param.default
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, (list, tuple)) and all(
            isinstance(v, type(default[0])) for v in value)
    return isinstance(value, type(default))


def check_value(name, value):
    """Validate one parameter value; returns it normalised or raises ConfigError."""
    param = BY_NAME.get(name)
    if param is None:
        raise ConfigError(f'unknown parameter {name!r}')
    if value is None and isinstance(param.default, list):
        # rcl reads an empty YAML list as a parameter with no type.
        raise ConfigError(f'{name} is empty or null, which ROS 2 cannot type as a list; '
                          f'write {param.default!r} for none')
    if not _same_type(param, value):
        raise ConfigError(f'parameter {name} must be of the type of its default '
                          f'{param.default!r}, got {value!r}')
    if isinstance(param.default, float):
        value = float(value)
        if math.isnan(value):  # passes every range comparison
            raise ConfigError(f'{name} is nan; give a number')
    if param.choices and value not in param.choices:
        raise ConfigError(f'{name} is {value!r}; choose one of {", ".join(param.choices)}')
    if param.minimum is not None and value < param.minimum:
        raise ConfigError(f'{name} is {value}; it must be >= {param.minimum}')
    if param.maximum is not None and value > param.maximum:
        raise ConfigError(f'{name} is {value}; it must be <= {param.maximum}')
    if name == 'detector_input_size':
        if len(value) != 2 or any(v < 0 or v % 32 for v in value) \
                or (0 in value and any(value)):
            raise ConfigError(f'detector_input_size is {list(value)}; it must be [height, '
                              'width], both multiples of 32 and > 0, or [0, 0] (the model\'s)')
    if name == 'class_max_depth':
        parse_class_max_depth(value)
    if name in ('default_frame_id', 'odom_frame'):
        _check_frame(name, value)
    for path_param in ('detector_model', 'depth_model', 'joint_model', 'class_names_file'):
        if name == path_param and value and not os.path.isfile(os.path.expanduser(value)):
            what = 'a folder, not a file' if os.path.isdir(os.path.expanduser(value)) \
                else 'file not found'
            raise ConfigError(f'{name}: {what}: {value!r}')
    return value


def _check_frame(name, value):
    """Refuse a frame name tf2 would not find: blank, with spaces, or (outputs) a leading /.

    odom_frame may be empty (odometry from its topic), and may start with / (tf2 drops
    it when looking frames up); default_frame_id goes into every output's header as it is.
    """
    if name == 'odom_frame' and not value:
        return
    if not value.strip() or any(c.isspace() for c in value) or not value.isprintable():
        raise ConfigError(f'{name} is {value!r}; give a frame name, not blank and without '
                          f'spaces (e.g. {BY_NAME[name].default or "odom"!r})')
    if name == 'default_frame_id' and value.startswith('/'):
        raise ConfigError(f'{name} is {value!r}; frame names have no leading / in ROS 2 '
                          f'(tf2 refuses them): {value.lstrip("/")!r}')


def parse_class_max_depth(entries):
    """Turn ["person:2.0", ...] into {"person": 2.0}; raises ConfigError."""
    limits = {}
    for entry in entries:
        if not entry:
            continue
        name, sep, metres = (part.strip() for part in entry.rpartition(':'))
        try:
            # Python's float() takes '1_0' as 10: not a distance anyone writes so.
            value = float(metres) if '_' not in metres else float('nan')
        except ValueError:
            value = float('nan')
        if not sep or not name or not MIN_ALERT_DISTANCE <= value <= MAX_ALERT_DISTANCE:
            raise ConfigError(f'class_max_depth entry {entry!r} must look like "person:1.5" '
                              f'with metres in [{MIN_ALERT_DISTANCE}, {MAX_ALERT_DISTANCE}]')
        if name in limits:
            raise ConfigError(f'class_max_depth names {name!r} twice; give each class one '
                              'distance')
        limits[name] = value
    return limits


def check_class_names(values, class_names):
    """Raise ConfigError when class_filter or class_max_depth names a class the model lacks.

    A misspelt name would otherwise keep nothing (class_filter) or never apply
    (class_max_depth), silently.
    """
    known = set(class_names)
    named = [('class_filter', n) for n in class_filter_set(values['class_filter'])]
    named += [('class_max_depth', n) for n in parse_class_max_depth(values['class_max_depth'])]
    unknown = [(param, n) for param, n in named if n not in known]
    if unknown:
        param, name = unknown[0]
        raise ConfigError(f'{param} names {name!r}, which the model does not detect; its '
                          f'classes: {", ".join(class_names)}')


def class_filter_set(entries):
    """Return the class filter as a frozenset of names (empty: keep all)."""
    return frozenset(e for e in entries if e)


def _read_params_yaml(path):
    """Return a params file's YAML content; ConfigError (one line) when it cannot be read."""
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f'cannot read params file {path!r}: {exc.strerror}') from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f'params file {path!r} is not a UTF-8 text (YAML) file: byte '
                          f'{exc.start} cannot be decoded') from None
    except yaml.YAMLError as exc:
        problem = ' '.join(str(exc).split())
        raise ConfigError(f'params file {path!r} is not valid YAML: {problem}') from None


def _read_params_mapping(path):
    """Return a params file's sections ({} for an empty file); ConfigError unless a mapping."""
    data = _read_params_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f'params file {path!r} is not a ROS parameters file: it must '
                          'hold NODE: ros__parameters: NAME: VALUE')
    return data


def load_params_file(path, node_name='depthdet_node'):
    """Read and validate depthdet_node's parameters from a ROS parameters YAML.

    Used by the offline tools so they run with the node's configuration. The sections
    that apply are those rcl would apply to a node of that name at the root (`/**`,
    `node_name`, wildcards), and a section for it in a namespace (`/front/depthdet_node`,
    the file of a namespaced node), in file order over the defaults. A file with no
    such section, or with sections for it in several namespaces, is refused: the tool
    would otherwise run on values the user did not mean.
    """
    data = _read_params_mapping(path)
    keys = [str(k) for k in data]
    at_root = {k for k in keys if node_key_matches(k, '/' + node_name)}
    namespaced = [k for k in keys if k not in at_root
                  and k.rstrip('/').rsplit('/', 1)[-1] == node_name]
    if len(namespaced) > 1:
        raise ConfigError(f'params file {path} has sections for {node_name} in several '
                          f'namespaces ({", ".join(namespaced)}): give a file with one')
    applying = [k for k in keys if k in at_root or k in namespaced]
    if not applying:
        raise ConfigError(f'params file {path} has no section for {node_name} (its sections: '
                          f'{", ".join(keys) or "none"}): none of its values would apply; '
                          f'key them under /** or {node_name}')
    values = {p.name: p.default for p in PARAMS}
    for key in applying:
        section = data[key] or {}
        parameters = section.get('ros__parameters') or {} if isinstance(section, dict) else None
        if not isinstance(parameters, dict):
            raise ConfigError(f'params file {path!r} is not a ROS parameters file: it must '
                              f'hold {key}: ros__parameters: NAME: VALUE')
        for name, value in parameters.items():
            if name != 'use_sim_time':
                # An empty list, as the node gets it from rcl (no type): refused alike.
                empty = value == [] and isinstance(getattr(BY_NAME.get(name), 'default', None),
                                                   list)
                values[name] = check_value(name, None if empty else value)
    return values


def ros_arguments(argv):
    """Return the --params-file paths and `-p NAME:=TEXT` pairs in argv's ROS arguments."""
    files, pairs, in_ros = [], [], False
    items = iter(argv)
    for arg in items:
        if arg == '--ros-args':
            in_ros = True
        elif arg == '--':
            in_ros = False
        elif in_ros and arg == '--params-file':
            files.append(next(items, ''))
        elif in_ros and arg in ('-p', '--param'):
            name, separator, text = next(items, '').partition(':=')
            if separator:
                pairs.append((name, text))
    return files, pairs


def node_key_matches(key, fully_qualified_name):
    """Whether a params-file section key applies to the node, by rcl's rules.

    A key without a leading slash is under the root namespace; `*` stands for one
    name token and `**` for any number of them.
    """
    key = key if key.startswith('/') else '/' + key
    pattern = re.escape(key).replace(r'/\*\*', '(/[^/]+)*').replace(r'\*', '[^/]+')
    return re.fullmatch(pattern, fully_qualified_name) is not None


def params_files_not_applied(argv, fully_qualified_name):
    """One warning per --params-file in argv that has no section for the node.

    rcl skips such a file without a word, so the node would run on its defaults.
    """
    warnings = []
    for path in ros_arguments(argv)[0]:
        keys = [str(k) for k in _read_params_mapping(path)]
        if not any(node_key_matches(k, fully_qualified_name) for k in keys):
            warnings.append(
                f'params file {path} has no section for {fully_qualified_name} (its '
                f'sections: {", ".join(keys) or "none"}): none of its values apply; key '
                f'them under /** or {fully_qualified_name}')
    return warnings


def check_command_line(argv, node_name='depthdet_node'):
    """Raise ConfigError for what rcl would refuse with a traceback, or silently drop.

    A --params-file that cannot be read or is not YAML (rcl's error escapes rclpy.init),
    and a `-p NAME:=VALUE` of this node whose value is wrong: rcl keeps a params file's
    value over a `-p` of another type without a word. `-p` values are YAML, as in rcl.
    """
    import yaml
    files, pairs = ros_arguments(argv)
    for path in files:
        _read_params_mapping(path)  # rcl skips a bare value without a word
    for key, text in pairs:
        node, _, name = key.rpartition(':')
        if node not in ('', node_name) or name not in BY_NAME:
            continue  # another node's, or an unknown name (the node reports those)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        try:
            check_value(name, value)
        except ConfigError as exc:
            raise ConfigError(f'{exc} (from -p {key}:={text})') from None


def session_options(values):
    """Return the core SessionOptions of these parameter values."""
    from depthdet_ros.core.session import SessionOptions

    return SessionOptions(providers=values['providers'], intra_op_threads=values['threads'],
                          device_id=values['gpu_device_id'], trt_fp16=values['trt_fp16'],
                          trt_int8=values['trt_int8'],
                          trt_cache_dir=os.path.expanduser(values['trt_cache_dir']),
                          gpu_mem_limit_mb=values['gpu_mem_limit_mb'])


def build_pipeline(values, concurrent=True):
    """Build the core Pipeline that depthdet_node runs for these parameter values."""
    from depthdet_ros.assets import default_model
    from depthdet_ros.core.pipeline import Pipeline, PipelineModels

    session = session_options(values)
    size = tuple(values['detector_input_size'])
    models = PipelineModels(values['detector_model'] or default_model('detector'),
                            values['depth_model'] or default_model('depth'), session,
                            values['class_names_file'], size if any(size) else None,
                            depth_coverage=values['depth_coverage'],
                            joint_path=values['joint_model'])
    pipeline = Pipeline(models, detector_config(values), fusion_config(values),
                        concurrent=concurrent)
    try:
        check_class_names(values, pipeline.detector.class_names)
    except ConfigError:
        pipeline.close()
        raise
    return pipeline


def detector_config(values):
    """Build the DetectorConfig for parameter values."""
    from depthdet_ros.core.detector import DetectorConfig
    return DetectorConfig(score_threshold=values['score_threshold'],
                          iou_threshold=values['iou_threshold'],
                          max_detections=values['max_detections'],
                          class_filter=class_filter_set(values['class_filter']))


def tracker_config(values):
    """Build the TrackerConfig for parameter values (ConfigError when it cannot work)."""
    config = TrackerConfig(min_hits=values['track_min_hits'], max_age=values['track_max_age'],
                           tentative_max_age=values['track_tentative_max_age'],
                           min_iou=values['track_min_iou'],
                           gate_probability=values['track_gate_probability'],
                           reid_max_age=values['track_reid_max_age'],
                           reid_min_similarity=values['track_reid_min_similarity'],
                           duplicate_overlap=values['track_duplicate_overlap'],
                           duplicate_depth_tolerance=values['track_duplicate_depth_tolerance'],
                           alert_hysteresis=values['alert_hysteresis'],
                           alert_time_to_contact=values['alert_time_to_contact'],
                           alert_hold=values['alert_hold'], ttc_source=values['ttc_source'])
    try:
        config.validate()
    except ValueError as exc:
        raise ConfigError(f'tracking: {exc}') from None
    return config


def fusion_config(values):
    """Build the FusionConfig for parameter values."""
    from depthdet_ros.core.pipeline import FusionConfig
    return FusionConfig(strategy=values['depth_strategy'], max_depth=values['max_depth'],
                        class_max_depth=parse_class_max_depth(values['class_max_depth']),
                        assumed_hfov_deg=values['assumed_hfov_deg'] or None)
