"""Launch depthdet_node: `ros2 launch depthdet_ros pipeline.launch.py image:=/cam/image_raw`.

Bad argument values stop the launch with one line naming the argument (checked by
depthdet_ros/ros/launch_args.py, as `depthdet pipeline` does), and the launch exits
non-zero when the node exits with an error, so scripts and CI see the failure.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from depthdet_ros.ros.launch_args import (LAUNCH_ARGUMENTS, launch_settings, NODE_NAME,
                                          PARAMS_FILE_NAME)
from depthdet_ros.ros.qos import large_data_environment


class NodeFailed(RuntimeError):
    """The node exited with an error while the launch was running."""


def _fail_launch(event, context):
    # launch's exit code is non-zero only when an exception reaches its event loop; it then
    # logs this message once and shuts down with it as the reason.
    if event.returncode != 0 and not context.is_shutdown:
        raise NodeFailed(f'{event.action.name} exited with code {event.returncode} (its error '
                         f'is above); stopping the launch')


def _node(context):
    settings = launch_settings(
        {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS},
        os.path.join(get_package_share_directory('depthdet_ros'), 'config', PARAMS_FILE_NAME))
    node_action = LifecycleNode if settings.lifecycle else Node
    node = node_action(
        package='depthdet_ros',
        executable=settings.executable,
        name=NODE_NAME,
        namespace=settings.namespace,
        parameters=[settings.params_file, settings.parameter_overrides()],
        remappings=settings.remappings(),
        output='screen',
        additional_env=large_data_environment(),
    )
    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_fail_launch))]


def generate_launch_description():
    """Declare the shared launch arguments and start the node with them."""
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in LAUNCH_ARGUMENTS] + [OpaqueFunction(function=_node)])
