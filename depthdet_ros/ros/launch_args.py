"""Arguments shared by launch/pipeline.launch.py and `depthdet pipeline`.

Both read this table and check the values with `launch_settings`, so the launch file on
a ROS install and the launcher on a pip-only install accept the same arguments with the
same defaults, and refuse the same bad values with the same one-line message. Only the
name checks import rclpy (its validators: rcl's own rules).
"""
from collections import namedtuple
from dataclasses import dataclass
import math
import os
from typing import Mapping, Optional

LaunchArgument = namedtuple('LaunchArgument', 'name default description')

LAUNCH_ARGUMENTS = (
    LaunchArgument('image', 'image', 'Camera image topic to subscribe to.'),
    LaunchArgument('camera_info', 'camera_info', 'CameraInfo topic matching the image.'),
    LaunchArgument('odometry', 'odometry', 'Odometry read when use_odometry is true '
                   '(nav_msgs/Odometry): of the camera itself (twist in its optical frame), '
                   'or of the robot (e.g. /odom, base_link) with the camera\'s mounting on '
                   'tf_static.'),
    LaunchArgument('tf_static', '/tf_static', 'Fixed transforms (tf2_msgs/TFMessage) giving '
                   'the camera\'s mounting, read when use_odometry is true.'),
    LaunchArgument('tf', '/tf', 'Moving transforms (tf2_msgs/TFMessage) giving the '
                   'camera\'s pose in odom_frame, read when use_odometry is true and '
                   'odom_frame is set.'),
    LaunchArgument('namespace', '', 'Namespace of the node and its topics.'),
    LaunchArgument('params_file', '', 'Parameters YAML; empty: share/depthdet_ros/config/'
                   'depthdet.yaml.'),
    LaunchArgument('max_depth', '', 'Proximity alert distance in metres; empty: from '
                   'params_file.'),
    LaunchArgument('use_sim_time', 'false', 'Use /clock (bag replay, simulation): true or '
                   'false.'),
    LaunchArgument('lifecycle', 'false', 'Start the managed (lifecycle) node, to be '
                   'configured and activated by a lifecycle manager: true or false.'),
)
NODE_NAME = 'depthdet_node'
NODE_EXECUTABLE = 'depthdet_node'
LIFECYCLE_NODE_EXECUTABLE = 'depthdet_lifecycle_node'
PARAMS_FILE_NAME = 'depthdet.yaml'
_BOOLEANS = {'true': True, 'false': False}


class LaunchArgumentError(ValueError):
    """A launch-argument value that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class LaunchSettings:
    """Checked launch-argument values: what the launch file and `depthdet pipeline` start."""

    image: str
    camera_info: str
    odometry: str
    tf_static: str
    tf: str
    namespace: str
    params_file: str
    max_depth: Optional[float]
    use_sim_time: bool
    lifecycle: bool

    @property
    def executable(self):
        """The node executable: the managed node when `lifecycle` is true."""
        return LIFECYCLE_NODE_EXECUTABLE if self.lifecycle else NODE_EXECUTABLE

    def parameter_overrides(self):
        """Parameters the arguments set on top of params_file."""
        overrides = {'use_sim_time': self.use_sim_time}
        if self.max_depth is not None:
            overrides['max_depth'] = self.max_depth
        return overrides

    def remappings(self):
        """Topic remappings, as (from, to) pairs."""
        return [('image', self.image), ('camera_info', self.camera_info),
                ('odometry', self.odometry), ('/tf_static', self.tf_static), ('/tf', self.tf)]


def parse_bool(name, text):
    """Read a true/false launch argument (any letter case)."""
    try:
        return _BOOLEANS[str(text).strip().lower()]
    except KeyError:
        raise LaunchArgumentError(
            f'{name}:={text} is not a boolean; use {name}:=true or {name}:=false') from None


def parse_max_depth(text):
    """Read max_depth: a distance in metres, or None (empty) to keep params_file's value."""
    if not str(text).strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise LaunchArgumentError(
            f'max_depth:={text} is not a number; give the proximity alert distance in '
            f'metres (e.g. max_depth:=1.5), or leave it empty for params_file\'s value')
    return value


def check_name(argument, text, kind):
    """Return `text` if rcl can use it as a topic name or namespace, else refuse it.

    rcl would stop the node with its lexer's multi-line error (and an empty name with
    "error not set").
    """
    from rclpy.exceptions import NameValidationException
    from rclpy.validate_namespace import validate_namespace
    from rclpy.validate_topic_name import validate_topic_name
    try:
        if kind == 'namespace':
            validate_namespace('/' + text.strip('/'))
        else:
            validate_topic_name(text)
            # rclpy's check lets '//' through; rcl's remapping lexer refuses it with two
            # lines (outsider round 40).
            if '//' in text:
                raise LaunchArgumentError(f"{argument}:={text} is not a ROS {kind}: it has a "
                                          "repeated '/'")
    except NameValidationException as exc:
        reason = str(exc).splitlines()[0].partition(': ')[2].rstrip(':')
        raise LaunchArgumentError(f'{argument}:={text} is not a ROS {kind}: {reason}') \
            from None
    return text


def resolve_params_file(text, default):
    """Return the parameters file to load: `text`, or `default` when empty; it must exist."""
    path = os.path.expanduser(str(text).strip()) or default
    if not os.path.isfile(path):
        raise LaunchArgumentError(
            f'params_file:={path}: no such file; give an existing parameters YAML, or leave '
            f'params_file empty for the bundled {PARAMS_FILE_NAME}')
    return path


def launch_settings(values: Mapping[str, str], default_params_file: str) -> LaunchSettings:
    """Check launch-argument values given by name as strings; missing ones take defaults.

    Raises LaunchArgumentError, one line naming the argument and what it accepts.
    """
    unknown = set(values) - {a.name for a in LAUNCH_ARGUMENTS}
    if unknown:
        raise LaunchArgumentError(
            f'unknown launch argument(s) {", ".join(sorted(unknown))}; known: '
            f'{", ".join(a.name for a in LAUNCH_ARGUMENTS)}')
    text = {a.name: str(values.get(a.name, a.default)) for a in LAUNCH_ARGUMENTS}
    return LaunchSettings(
        image=check_name('image', text['image'], 'topic name'),
        camera_info=check_name('camera_info', text['camera_info'], 'topic name'),
        odometry=check_name('odometry', text['odometry'], 'topic name'),
        tf_static=check_name('tf_static', text['tf_static'], 'topic name'),
        tf=check_name('tf', text['tf'], 'topic name'),
        namespace=check_name('namespace', text['namespace'], 'namespace'),
        params_file=resolve_params_file(text['params_file'], default_params_file),
        max_depth=parse_max_depth(text['max_depth']),
        use_sim_time=parse_bool('use_sim_time', text['use_sim_time']),
        lifecycle=parse_bool('lifecycle', text['lifecycle']),
    )
