"""`depthdet pipeline`: start the nodes the launch file starts, without `ros2 launch`.

pip-only ROS installs have no launch/launch_ros, so this builds the same node
command line from the same arguments (ros/launch_args.py) and parameters file.
With --demo it also starts the synthetic camera and prints what the node sees.
"""
import math
import os
import shutil
import signal
import subprocess
import sys
import time

from depthdet_ros.assets import default_params_file
from depthdet_ros.cli import CliError
from depthdet_ros.ros.launch_args import (LAUNCH_ARGUMENTS, launch_settings,
                                          LaunchArgumentError, NODE_NAME)


def add_parser(subparsers):
    """Register `depthdet pipeline`."""
    parser = subparsers.add_parser(
        'pipeline', help='start depthdet_node as pipeline.launch.py does',
        description='Start depthdet_node with the launch file\'s arguments (NAME:=VALUE or '
                    '--NAME VALUE). With --demo, also run the synthetic camera and print a '
                    'table of detections.')
    for arg in LAUNCH_ARGUMENTS:
        parser.add_argument('--' + arg.name.replace('_', '-'), dest=arg.name,
                            default=arg.default, help=f'{arg.description} '
                            f'(default: {arg.default!r})')
    parser.add_argument('--demo', type=float, metavar='SECONDS', default=None,
                        help='also start synthetic_camera, print detections for this long, '
                             'then stop')
    parser.add_argument('--demo-out', default='out/demo',
                        help='where --demo saves annotated frames (default: out/demo)')
    parser.add_argument('--camera-rate', type=float, default=5.0,
                        help='synthetic camera rate in Hz for --demo (default: 5)')
    parser.add_argument('assignments', nargs='*', metavar='NAME:=VALUE',
                        help='launch-style arguments, e.g. image:=/camera/image_raw')
    parser.set_defaults(func=run)
    return parser


def apply_assignments(args):
    """Set launch-style NAME:=VALUE assignments on the parsed arguments."""
    from depthdet_ros.ros.params import BY_NAME
    names = {a.name for a in LAUNCH_ARGUMENTS}
    for item in args.assignments:
        name, sep, value = item.partition(':=')
        if sep and name in names:
            setattr(args, name, value)
            continue
        if sep and name in BY_NAME:
            raise CliError(f'{name} is a node parameter, not a launch argument: set it in a '
                           f'--params-file (or {name}:=VALUE when it is one of the launch '
                           f'arguments: {", ".join(sorted(names))})')
        raise CliError(f'unknown launch argument {item!r}; the launch arguments are '
                       f'{", ".join(sorted(names))}, each as NAME:=VALUE')


def _executable(name):
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, '-m', 'depthdet_ros.ros.entry', name]


def settings_of(args):
    """Check the parsed pipeline arguments as the launch file does (CliError if bad)."""
    try:
        return launch_settings({a.name: getattr(args, a.name) for a in LAUNCH_ARGUMENTS},
                               default_params_file())
    except LaunchArgumentError as exc:
        raise CliError(str(exc)) from None


def node_command(settings):
    """Build the node command line the launch file's Node action runs for `settings`."""
    cmd = _executable(settings.executable) + ['--ros-args', '-r', f'__node:={NODE_NAME}',
                                              '--params-file', settings.params_file]
    if settings.namespace:
        cmd += ['-r', '__ns:=/' + settings.namespace.strip('/')]
    for name, value in settings.parameter_overrides().items():
        cmd += ['-p', f'{name}:={str(value).lower() if isinstance(value, bool) else value}']
    for source, target in settings.remappings():
        cmd += ['-r', f'{source}:={target}']
    return cmd


def ros_environment():
    """Return the environment for started nodes.

    DDS discovery stays on this machine, and Fast DDS gets the large-data profile unless
    the user names a profile file of their own (README, Large images and QoS).
    """
    from depthdet_ros.ros.qos import large_data_environment

    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.update(large_data_environment(env))
    return env


def _stop(processes):
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10.0
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def run(args):
    """Start the node (and, with --demo, the synthetic camera and the monitor)."""
    apply_assignments(args)
    settings = settings_of(args)
    demo = args.demo is not None
    if demo and not (math.isfinite(args.demo) and args.demo > 0):
        raise CliError(f'--demo is {args.demo:g}; give the seconds to run, > 0 (e.g. --demo '
                       '20), or leave it out to run the node alone')
    if demo and not (math.isfinite(args.camera_rate) and 0 < args.camera_rate <= 1000):
        raise CliError(f'--camera-rate is {args.camera_rate:g}; give frames per second in '
                       '(0, 1000], e.g. --camera-rate 5')
    if settings.lifecycle and demo:
        raise CliError('--demo needs the node active at once; drop lifecycle:=true (a '
                       'managed node waits to be configured and activated)')
    env = ros_environment()
    os.environ.update({k: env[k] for k in ('ROS_AUTOMATIC_DISCOVERY_RANGE',)})
    processes = []
    try:
        if demo:
            ns = '/' + args.namespace.strip('/') if args.namespace else ''
            # The camera gets the node's environment, large-data profile included.
            camera = _executable('synthetic_camera') + [
                '--ros-args', '-p', f'rate:={args.camera_rate}', '-p', 'reliable_images:=true',
                '-r', f'image:={args.image}', '-r', f'camera_info:={args.camera_info}']
            if ns:
                camera += ['-r', f'__ns:={ns}']
            processes.append(subprocess.Popen(camera, env=env))
        node = node_command(settings)
        if demo:
            node += ['-p', 'publish_debug_image:=true']
        processes.append(subprocess.Popen(node, env=env))
        if demo:
            from depthdet_ros.ros.monitor import run_monitor
            return run_monitor(args.namespace, args.demo, args.demo_out, processes)
        while all(p.poll() is None for p in processes):
            time.sleep(0.2)
        return max(p.returncode or 0 for p in processes)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(processes)
