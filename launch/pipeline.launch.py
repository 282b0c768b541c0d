"""Launch depthdet_node: `ros2 launch depthdet_ros pipeline.launch.py image:=/cam/image_raw`."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from depthdet_ros.ros.launch_args import (LAUNCH_ARGUMENTS, NODE_EXECUTABLE,
                                          node_parameter_overrides, PARAMS_FILE_NAME)


def _node(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    params_file = arg('params_file') or os.path.join(
        get_package_share_directory('depthdet_ros'), 'config', PARAMS_FILE_NAME)
    return [Node(
        package='depthdet_ros',
        executable=NODE_EXECUTABLE,
        name='depthdet_node',
        namespace=arg('namespace'),
        parameters=[params_file, node_parameter_overrides(arg('max_depth'),
                                                          arg('use_sim_time'))],
        remappings=[('image', arg('image')), ('camera_info', arg('camera_info'))],
        output='screen',
    )]


def generate_launch_description():
    """Declare the shared launch arguments and start the node with them."""
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in LAUNCH_ARGUMENTS] + [OpaqueFunction(function=_node)])
