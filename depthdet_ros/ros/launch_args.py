"""Arguments shared by launch/pipeline.launch.py and `depthdet pipeline` (no ROS imports).

Both read this table, so the launch file on a ROS install and the launcher on a
pip-only install accept the same arguments with the same defaults.
"""
from collections import namedtuple

LaunchArgument = namedtuple('LaunchArgument', 'name default description')

LAUNCH_ARGUMENTS = (
    LaunchArgument('image', 'image', 'Camera image topic to subscribe to.'),
    LaunchArgument('camera_info', 'camera_info', 'CameraInfo topic matching the image.'),
    LaunchArgument('namespace', '', 'Namespace of the node and its topics.'),
    LaunchArgument('params_file', '', 'Parameters YAML; empty: share/depthdet_ros/config/'
                   'depthdet.yaml.'),
    LaunchArgument('max_depth', '', 'Proximity alert distance in metres; empty: from '
                   'params_file.'),
    LaunchArgument('use_sim_time', 'false', 'Use /clock (bag replay, simulation).'),
)
NODE_EXECUTABLE = 'depthdet_node'
PARAMS_FILE_NAME = 'depthdet.yaml'


def node_parameter_overrides(max_depth, use_sim_time):
    """Parameter overrides the launch arguments add on top of the params file."""
    overrides = {'use_sim_time': str(use_sim_time).lower() in ('true', '1', 'yes')}
    if str(max_depth).strip():
        overrides['max_depth'] = float(max_depth)
    return overrides
