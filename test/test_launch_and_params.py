"""The launch file, `depthdet pipeline` and the parameters file agree with each other."""
import ast
import os

import yaml

from depthdet_ros.cli import build_parser
from depthdet_ros.ros.launch_args import LAUNCH_ARGUMENTS, node_parameter_overrides
from depthdet_ros.ros.launcher import apply_assignments, node_command
from depthdet_ros.ros.params import BY_NAME, check_value, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_FILE = os.path.join(ROOT, 'launch', 'pipeline.launch.py')
PARAMS_FILE = os.path.join(ROOT, 'config', 'depthdet.yaml')


def test_launch_file_uses_the_shared_argument_table_and_launch_ros_api():
    tree = ast.parse(open(LAUNCH_FILE).read())
    imported = {(node.module, alias.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ('launch_ros.actions', 'Node') in imported
    assert ('launch.actions', 'DeclareLaunchArgument') in imported
    assert ('depthdet_ros.ros.launch_args', 'LAUNCH_ARGUMENTS') in imported
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, 'id', '') == 'Node']
    (node_call,) = calls
    keywords = {k.arg for k in node_call.keywords}
    assert {'package', 'executable', 'namespace', 'parameters', 'remappings'} <= keywords
    names = {a.name for a in LAUNCH_ARGUMENTS}
    assert names == {'image', 'camera_info', 'namespace', 'params_file', 'max_depth',
                     'use_sim_time'}


def test_pipeline_command_accepts_the_same_arguments():
    args, extra = build_parser().parse_known_args(
        ['pipeline', 'image:=/cam/image_raw', '--namespace', 'front', 'max_depth:=0.8',
         'use_sim_time:=true'])
    args.assignments += extra
    apply_assignments(args)
    cmd = node_command(args)
    assert cmd[cmd.index('--params-file') + 1] == PARAMS_FILE or \
        cmd[cmd.index('--params-file') + 1].endswith('config/depthdet.yaml')
    joined = ' '.join(cmd)
    assert '-r __ns:=/front' in joined
    assert '-r image:=/cam/image_raw' in joined and '-r camera_info:=camera_info' in joined
    assert '-p max_depth:=0.8' in joined and '-p use_sim_time:=true' in joined
    assert node_parameter_overrides('', 'false') == {'use_sim_time': False}


def test_params_file_documents_every_parameter_with_valid_defaults():
    with open(PARAMS_FILE) as f:
        data = yaml.safe_load(f)
    values = data['/**']['ros__parameters']
    assert set(values) == set(BY_NAME)
    for name, value in values.items():
        assert check_value(name, value) == BY_NAME[name].default, name


def test_parameter_validation_messages():
    cases = [('max_depth', -1.0, 'must be >= 0.0'), ('depth_strategy', 'avg', 'choose one of'),
             ('threads', 1.5, 'must be of the type'), ('class_max_depth', ['chair'], 'person:1.5'),
             ('detector_input_size', [100, 640], 'multiples of 32'),
             ('nonsense', 1, 'unknown parameter')]
    for name, value, message in cases:
        try:
            check_value(name, value)
        except ConfigError as exc:
            assert message in str(exc), (name, str(exc))
        else:
            raise AssertionError(f'{name}={value!r} was accepted')
