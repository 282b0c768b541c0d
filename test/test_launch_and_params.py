"""The launch file, `depthdet pipeline` and the parameters file agree with each other.

The real launch file under the real `ros2 launch` is tested in test_launch_real.py
(skipped where launch_ros is not installed); these tests run everywhere.
"""
import ast
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from depthdet_ros.cli import build_parser, CliError
from depthdet_ros.core.session import SessionOptions
from depthdet_ros.ros.launch_args import (LAUNCH_ARGUMENTS, launch_settings,
                                          LaunchArgumentError)
from depthdet_ros.ros.launcher import apply_assignments, node_command, settings_of
from depthdet_ros.ros.params import (BY_NAME, check_value, ConfigError, load_params_file,
                                     node_key_matches, params_files_not_applied,
                                     ros_arguments, session_options)
from ros_harness import ctrl_c_group

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
    assert ('launch_ros.actions', 'LifecycleNode') in imported
    assert ('launch.event_handlers', 'OnProcessExit') in imported
    assert ('depthdet_ros.ros.launch_args', 'launch_settings') in imported
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, 'id', '') == 'node_action']
    (node_call,) = calls
    keywords = {k.arg for k in node_call.keywords}
    assert {'package', 'executable', 'namespace', 'parameters', 'remappings'} <= keywords
    names = {a.name for a in LAUNCH_ARGUMENTS}
    assert names == {'image', 'camera_info', 'odometry', 'tf_static', 'tf', 'namespace',
                     'params_file', 'max_depth', 'use_sim_time', 'lifecycle'}


def _runs(cmd, executable):
    """Whether a node command line starts `executable` (or its entry point, when not on PATH)."""
    return os.path.basename(cmd[0]) == executable or \
        cmd[1:4] == ['-m', 'depthdet_ros.ros.entry', executable]


def _pipeline_settings(*argv):
    args, extra = build_parser().parse_known_args(['pipeline', *argv])
    args.assignments += extra
    apply_assignments(args)
    return settings_of(args)


def test_pipeline_command_accepts_the_same_arguments():
    settings = _pipeline_settings('image:=/cam/image_raw', '--namespace', 'front',
                                  'max_depth:=0.8', 'use_sim_time:=True',
                                  'odometry:=/cam/odom', 'tf_static:=/front/tf_static',
                                  'tf:=/front/tf')
    cmd = node_command(settings)
    assert _runs(cmd, 'depthdet_node')
    assert os.path.samefile(cmd[cmd.index('--params-file') + 1], PARAMS_FILE)
    joined = ' '.join(cmd)
    assert '-r __ns:=/front' in joined
    assert '-r image:=/cam/image_raw' in joined and '-r camera_info:=camera_info' in joined
    assert '-r odometry:=/cam/odom' in joined
    assert '-r /tf_static:=/front/tf_static' in joined  # absolute: not moved by __ns
    assert '-r /tf:=/front/tf' in joined
    assert '-p max_depth:=0.8' in joined and '-p use_sim_time:=true' in joined
    defaults = launch_settings({}, PARAMS_FILE)
    assert defaults.parameter_overrides() == {'use_sim_time': False}
    assert (defaults.lifecycle, defaults.executable) == (False, 'depthdet_node')


def test_lifecycle_argument_starts_the_managed_node():
    settings = _pipeline_settings('lifecycle:=true', 'image:=/cam/image_raw')
    assert settings.executable == 'depthdet_lifecycle_node'
    cmd = node_command(settings)
    assert _runs(cmd, 'depthdet_lifecycle_node')
    assert '-r image:=/cam/image_raw' in ' '.join(cmd)
    args = build_parser().parse_args(['pipeline', '--demo', '1', 'lifecycle:=true'])
    with pytest.raises(CliError, match='lifecycle:=true'):
        args.func(args)


# (argument, value, words the one-line message must hold)
BAD_VALUES = [
    ('max_depth', 'abc', ['max_depth:=abc', 'metres']),
    ('max_depth', 'nan', ['max_depth:=nan', 'metres']),
    ('max_depth', 'inf', ['max_depth:=inf', 'metres']),
    ('use_sim_time', 'maybe', ['use_sim_time:=maybe', 'true', 'false']),
    ('use_sim_time', 'yes', ['use_sim_time:=yes', 'true', 'false']),
    ('lifecycle', 'maybe', ['lifecycle:=maybe', 'true', 'false']),
    ('params_file', '/nonexistent/depthdet.yaml', ['params_file:=/nonexistent/depthdet.yaml',
                                                   'no such file']),
    # rcl's lexer refused these with several lines (and "error not set" for the empty one).
    ('namespace', '1cam', ['namespace:=1cam', 'not a ROS namespace', 'number']),
    ('namespace', 'bad-ns', ['namespace:=bad-ns', 'alphanumerics']),
    ('image', 'bad topic', ['image:=bad topic', 'not a ROS topic name']),
    ('camera_info', '', ['camera_info:=', 'empty']),
    ('odometry', 'odom/', ['odometry:=odom/', 'not a ROS topic name']),
    # rclpy's validator passed these; rcl then stopped the node with two lines.
    ('odometry', '/robot//odom', ['odometry:=/robot//odom', 'not a ROS topic name',
                                  "repeated '/'"]),
    ('image', 'a//b', ['image:=a//b', "repeated '/'"]),
]


@pytest.mark.parametrize('name,value,words', BAD_VALUES)
def test_bad_launch_argument_values_are_refused_naming_the_argument(name, value, words):
    with pytest.raises(LaunchArgumentError) as info:
        launch_settings({name: value}, PARAMS_FILE)
    message = str(info.value)
    assert '\n' not in message
    for word in words:
        assert word in message, message


def test_good_launch_argument_values_are_read():
    settings = launch_settings({'max_depth': ' 2 ', 'use_sim_time': 'TRUE', 'lifecycle': 'False',
                                'params_file': PARAMS_FILE}, '/unused/default.yaml')
    assert (settings.max_depth, settings.use_sim_time, settings.lifecycle) == (2.0, True, False)
    assert settings.params_file == PARAMS_FILE
    assert launch_settings({'max_depth': ''}, PARAMS_FILE).max_depth is None
    with pytest.raises(LaunchArgumentError, match='unknown launch argument'):
        launch_settings({'max_dept': '1'}, PARAMS_FILE)


@pytest.mark.parametrize('name,value,words', [BAD_VALUES[i] for i in (0, 3, 5, 6, 7, 9)])
def test_depthdet_pipeline_refuses_bad_values_with_one_line(name, value, words):
    # Before the fix max_depth:=abc was a traceback and use_sim_time:=maybe started the
    # node (the timeout catches that).
    result = subprocess.run(
        [sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', f'{name}:={value}'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('depthdet pipeline: error: ')
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ''


@pytest.mark.parametrize('args,words', [
    (['imge:=/cam/image'], ["unknown launch argument 'imge:=/cam/image'", 'camera_info']),
    (['score_threshold:=0.5'], ['score_threshold is a node parameter, not a launch argument',
                                '--params-file']),
    (['--bogus'], ['unrecognized arguments: --bogus (see depthdet pipeline --help)']),
])
def test_depthdet_pipeline_names_what_a_wrong_argument_is(args, words):
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', *args],
                            capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith('depthdet pipeline: error: ')
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize('args,words', [
    (['--demo', '0'], ['--demo is 0', '> 0']), (['--demo', '-5'], ['--demo is -5']),
    (['--demo', 'nan'], ['--demo is nan']),
    (['--demo', '3', '--camera-rate', '0'], ['--camera-rate is 0', '(0, 1000]'])])
def test_depthdet_pipeline_refuses_a_demo_that_cannot_run(args, words):
    # Before the fix --demo 0 ran the node alone, forever, and --camera-rate 0 ended in
    # the camera's error and the node's traceback.
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('depthdet pipeline: error: '), lines
    for word in words:
        assert word in lines[0], lines[0]


def _load_link_share():
    spec = importlib.util.spec_from_file_location(
        'link_share', os.path.join(ROOT, 'tools', 'link_share.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_link_share_links_files_that_ros2_launch_finds_with_os_walk(tmp_path):
    prefix = tmp_path / 'prefix'
    share = prefix / 'share' / 'depthdet_ros'
    share.mkdir(parents=True)
    # The layout older versions made: links to whole source folders, and a stale file link.
    for name in ('launch', 'config', 'models'):
        (share / name).symlink_to(os.path.join(ROOT, name))
    (share / 'old.launch.py').symlink_to(LAUNCH_FILE)
    (prefix / 'bin').mkdir()
    (prefix / 'bin' / 'depthdet_node').write_text('#!/bin/sh\n')
    sources = {name: os.listdir(os.path.join(ROOT, name))
               for name in ('launch', 'config', 'models')}

    _load_link_share().main(str(prefix))

    # ros2launch finds a package's launch file by walking its share folder (no followlinks).
    found = {name: os.path.join(root, name) for root, _, files in os.walk(share)
             for name in files}
    assert os.path.samefile(found['pipeline.launch.py'], LAUNCH_FILE)
    assert os.path.samefile(found['depthdet.yaml'], PARAMS_FILE)
    assert os.path.samefile(found['package.xml'], os.path.join(ROOT, 'package.xml'))
    for model in ('detector.onnx', 'depth.onnx'):
        assert os.path.samefile(found[model], os.path.join(ROOT, 'models', model))
    assert 'old.launch.py' not in found
    assert not any(os.path.islink(share / name) for name in ('launch', 'config', 'models'))
    # The source tree is untouched; the index names the package; console scripts are linked.
    assert sources == {name: os.listdir(os.path.join(ROOT, name)) for name in sources}
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'depthdet_ros').exists()
    assert os.readlink(prefix / 'lib' / 'depthdet_ros' / 'depthdet_node') == \
        str(prefix / 'bin' / 'depthdet_node')
    # A second run over its own layout changes nothing.
    _load_link_share().main(str(prefix))
    assert found == {name: os.path.join(root, name) for root, _, files in os.walk(share)
                     for name in files}


def test_link_share_links_every_console_script_setup_py_declares():
    data, scripts = _load_link_share().installed_files()
    assert {'depthdet_node', 'synthetic_camera'} <= set(scripts)
    assert data['share/depthdet_ros/launch/pipeline.launch.py'] == LAUNCH_FILE


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
             # Outsider round 53: Python's float() read '1_0' as 10 m.
             ('class_max_depth', ['person:1_0'], 'person:1.5'),
             ('class_max_depth', ['chair:1', ' chair : 2'], "names 'chair' twice"),
             ('detector_input_size', [100, 640], 'multiples of 32'),
             ('detector_input_size', [0, 320], 'both multiples of 32 and > 0, or [0, 0]'),
             ('nonsense', 1, 'unknown parameter'),
             # Outsider round 44: these started without a word.
             ('default_frame_id', '', 'give a frame name, not blank and without spaces'),
             ('default_frame_id', 'my camera', 'without spaces'),
             ('default_frame_id', '/camera', "no leading / in ROS 2 (tf2 refuses them): 'camera'"),
             ('odom_frame', ' ', 'without spaces'),
             # rcl gives an empty YAML list as a value with no type.
             ('class_filter', None, "empty or null, which ROS 2 cannot type as a list; write "
              "['']")]
    for name, value, message in cases:
        try:
            check_value(name, value)
        except ConfigError as exc:
            assert message in str(exc), (name, str(exc))
        else:
            raise AssertionError(f'{name}={value!r} was accepted')


def test_class_max_depth_takes_spaces_around_either_part():
    # Outsider round 53: 'person: 2.0' was kept as 'person' + ' 2.0' while ' person:2'
    # was refused.
    from depthdet_ros.ros.params import parse_class_max_depth

    assert parse_class_max_depth(['person: 2.0', ' chair :0.5 ', '']) == {'person': 2.0,
                                                                          'chair': 0.5}


@pytest.mark.ros
def test_depthdet_pipeline_exits_non_zero_when_the_node_refuses_its_configuration():
    result = subprocess.run(
        [sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', 'max_depth:=-1'],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert 'configuration error: max_depth' in result.stderr
    assert 'Traceback' not in result.stderr


def test_ros_arguments_are_read_as_rcl_reads_them():
    argv = ['node', '--ros-args', '--params-file', 'a.yaml', '-p', 'max_depth:=2.5',
            '--param', 'depthdet_node:tracking:=false', '-r', '__ns:=/x', '--', '-p',
            'not:=ros']
    assert ros_arguments(argv) == (['a.yaml'], [('max_depth', '2.5'),
                                                ('depthdet_node:tracking', 'false')])


@pytest.mark.parametrize('make_args, message', [
    (lambda d: ['--params-file', str(d / 'missing.yaml')],
     "cannot read params file '{d}/missing.yaml': No such file or directory"),
    (lambda d: ['--params-file', str(d / 'broken.yaml')],
     "params file '{d}/broken.yaml' is not valid YAML"),
    (lambda d: ['--params-file', str(d / 'binary.yaml')],
     "params file '{d}/binary.yaml' is not a UTF-8 text (YAML) file"),
    # rcl keeps the file's max_depth over a -p of another type, silently: refused here.
    (lambda d: ['--params-file', str(d / 'good.yaml'), '-p', 'max_depth:=far'],
     "parameter max_depth must be of the type of its default 1.0, got 'far' "
     '(from -p max_depth:=far)'),
    (lambda d: ['--params-file', str(d / 'good.yaml'), '-p', 'track_min_hits:=2.5'],
     'got 2.5 (from -p track_min_hits:=2.5)'),
    # rcl skipped a file holding a bare value (a warning), and refused a list in two lines.
    (lambda d: ['--params-file', str(d / 'scalar.yaml')],
     "params file '{d}/scalar.yaml' is not a ROS parameters file: it must hold NODE: "
     'ros__parameters: NAME: VALUE'),
    (lambda d: ['--params-file', str(d / 'list.yaml')], 'is not a ROS parameters file'),
    # rclpy's own parameter, declared before ours are read: was a traceback (outsider 44).
    (lambda d: ['-p', 'use_sim_time:=abc'],
     "Trying to set parameter 'use_sim_time' to 'abc' of type 'STRING', expecting type 'BOOL'"),
    (lambda d: ['--params-file', str(d / 'sim_time.yaml')], "expecting type 'BOOL'"),
    # A model file given as the names file: was a UnicodeDecodeError traceback.
    (lambda d: ['-p', f'class_names_file:={d / "binary.yaml"}'],
     "class names file '{d}/binary.yaml' is not UTF-8 text with one name per line"),
])
def test_unusable_command_line_stops_the_node_with_one_line(tmp_path, make_args, message):
    (tmp_path / 'broken.yaml').write_text('/**:\n  ros__parameters: [max_depth\n')
    (tmp_path / 'good.yaml').write_text('/**:\n  ros__parameters:\n    max_depth: 1.0\n')
    (tmp_path / 'binary.yaml').write_bytes(bytes([0x8e, 0xff, 0x00, 0x12]) * 64)
    (tmp_path / 'scalar.yaml').write_text('just a string\n')
    (tmp_path / 'list.yaml').write_text('- max_depth: 2.0\n')
    (tmp_path / 'sim_time.yaml').write_text('/**:\n  ros__parameters:\n    use_sim_time: 1\n')
    result = subprocess.run(
        [sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args', *make_args(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith('[depthdet_node] configuration error: ')
    assert message.format(d=tmp_path) in result.stderr
    assert result.stderr.count('\n') == 1  # one line, no traceback


def test_a_remap_rcl_refuses_is_its_reason_without_rcl_internals():
    result = subprocess.run(
        [sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args', '-r', 'image:='],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    # rcl logs a line of its own first; ours says which rule, without rcl's source position.
    assert result.stderr.splitlines()[-1] == (
        '[depthdet_node] configuration error: ROS 2 could not start with these arguments: '
        "failed to initialize rcl: Couldn't parse remap rule: '-r image:='")


def test_the_tools_refuse_an_empty_list_as_the_node_does(tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text('/**:\n  ros__parameters:\n    class_filter: []\n')
    with pytest.raises(ConfigError, match='class_filter is empty or null'):
        load_params_file(str(params))


def test_gpu_parameters_reach_the_session_options(tmp_path):
    params = tmp_path / 'gpu.yaml'
    params.write_text('/**:\n  ros__parameters:\n    providers: tensorrt\n    trt_fp16: true\n'
                      '    trt_int8: true\n    trt_cache_dir: /var/cache/engines\n'
                      '    gpu_device_id: 1\n    gpu_mem_limit_mb: 2048\n    threads: 2\n')
    assert session_options(load_params_file(str(params))) == SessionOptions(
        providers='tensorrt', intra_op_threads=2, device_id=1, trt_fp16=True, trt_int8=True,
        trt_cache_dir='/var/cache/engines', gpu_mem_limit_mb=2048)
    with pytest.raises(ConfigError, match='gpu_device_id'):
        check_value('gpu_device_id', -1)


def _running(pid):
    """Whether process `pid` exists and is not a zombie waiting to be reaped."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rpartition(')')[2].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.ros
def test_sigterm_to_depthdet_pipeline_stops_the_node_too():
    """A supervisor's SIGTERM (kill, systemd) used to leave the node running, orphaned."""
    parent = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.cli', 'pipeline'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    children_file = f'/proc/{parent.pid}/task/{parent.pid}/children'
    try:
        deadline = time.monotonic() + 60
        children = []
        while not children:
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            children = [int(pid) for pid in open(children_file).read().split()]
        time.sleep(3.0)  # the node is loading or running
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 15
        while any(_running(pid) for pid in children):
            assert time.monotonic() < deadline, 'the node outlived depthdet pipeline'
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)


@pytest.mark.ros
def test_ctrl_c_during_the_demo_exits_quietly(tmp_path):
    """Ctrl-C in a terminal running `make demo` used to end in a traceback and exit 1."""
    proc = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', '--demo',
                             '60', '--demo-out', str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(5.0)  # the monitor is spinning
    output = ctrl_c_group(proc)
    assert proc.returncode == 0, output
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('signum, status, said', [(signal.SIGINT, 0, 'Ctrl-C'),
                                                  (signal.SIGTERM, 143, 'SIGTERM')])
def test_the_demo_monitor_stops_quietly_while_messages_arrive(tmp_path, signum, status, said):
    """A signal while rclpy converted a received message ended in a pybind11 traceback.

    The exception a Python signal handler raised there left take_message as 'RuntimeError:
    Unable to convert call argument' (CI, once). Large messages arriving without pause
    keep the monitor converting most of the time: each stop hit it before the fix.
    """
    import threading

    import rclpy
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('truth_flood', context=context)
    publisher = node.create_publisher(Detection2DArray, 'ground_truth/detections', 10)
    big = Detection2DArray(detections=[Detection2D(results=[ObjectHypothesisWithPose()])] * 2000)
    flooding = threading.Event()
    flooding.set()

    def flood():
        while flooding.is_set():
            publisher.publish(big)
            time.sleep(0.001)

    thread = threading.Thread(target=flood)
    thread.start()
    proc = subprocess.Popen([sys.executable, '-c', 'import sys; from depthdet_ros.ros.monitor '
                             f'import run_monitor; sys.exit(run_monitor("", 60, "{tmp_path}", '
                             '[]))'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not publisher.get_subscription_count():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.5)  # messages arrive
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=30)
    finally:
        flooding.clear()
        thread.join()
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert proc.returncode == status, output
    assert 'Traceback' not in output, output
    assert output.rstrip().endswith(f'stopped by {said}'), output


@pytest.mark.parametrize('key, name, applies', [
    ('/**', '/front/depthdet_node', True),
    ('depthdet_node', '/depthdet_node', True),
    ('depthdet_node', '/front/depthdet_node', False),  # rcl: under the root namespace only
    ('/*/depthdet_node', '/front/depthdet_node', True),
    ('/*/depthdet_node', '/depthdet_node', False),
    ('/**/depthdet_node', '/a/b/depthdet_node', True),
    ('my_detector', '/depthdet_node', False),
])
def test_params_file_sections_apply_as_rcl_applies_them(key, name, applies):
    # Each case was checked against rclpy: a node given such a file gets its values or not.
    assert node_key_matches(key, name) is applies


def test_a_params_file_for_another_node_is_reported(tmp_path):
    ours = tmp_path / 'ours.yaml'
    ours.write_text('/**:\n  ros__parameters:\n    max_depth: 2.0\n')
    other = tmp_path / 'other.yaml'
    other.write_text('my_detector:\n  ros__parameters:\n    max_depth: 2.0\n')
    argv = ['node', '--ros-args', '--params-file', str(ours), '--params-file', str(other)]
    (warning,) = params_files_not_applied(argv, '/depthdet_node')
    assert warning.startswith(f'params file {other} has no section for /depthdet_node (its '
                              'sections: my_detector): none of its values apply')


@pytest.mark.parametrize('text, max_depth', [
    ('/**:\n  ros__parameters:\n    max_depth: 2.0\n', 2.0),
    # A namespaced node's file: the offline tools used to drop it without a word.
    ('/front/depthdet_node:\n  ros__parameters:\n    max_depth: 2.5\n', 2.5),
    ('/**:\n  ros__parameters:\n    max_depth: 2.0\n'
     'depthdet_node:\n  ros__parameters:\n    max_depth: 3.0\n', 3.0),
])
def test_offline_tools_read_the_sections_the_node_would(tmp_path, text, max_depth):
    params = tmp_path / 'params.yaml'
    params.write_text(text)
    assert load_params_file(str(params))['max_depth'] == max_depth


@pytest.mark.parametrize('text, words', [
    ('my_detector:\n  ros__parameters:\n    max_depth: 2.0\n',
     'has no section for depthdet_node (its sections: my_detector)'),
    ('/front/depthdet_node:\n  ros__parameters:\n    max_depth: 2.0\n'
     '/rear/depthdet_node:\n  ros__parameters:\n    max_depth: 3.0\n',
     'sections for depthdet_node in several namespaces'),
])
def test_offline_tools_refuse_a_params_file_that_applies_nothing(tmp_path, text, words):
    params = tmp_path / 'params.yaml'
    params.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_params_file(str(params))


@pytest.mark.ros
def test_ctrl_c_taken_inside_rclpy_is_a_clean_stop(tmp_path):
    # CI, session 21: a Ctrl-C raised while rclpy took a message left pybind11 as
    # "RuntimeError: Unable to convert call argument" before rclpy's own handler had shut
    # the context down, and the node exited 1 with a traceback. The spin here does what
    # that race does: the node's Ctrl-C handler runs, then the converted error comes.
    script = tmp_path / 'race.py'
    script.write_text(
        'import signal, sys\n'
        'import rclpy\n'
        'from rclpy.node import Node\n'
        'from depthdet_ros.ros import node as node_module\n'
        'def spin(node):\n'
        '    assert rclpy.ok()\n'
        '    try:\n'
        '        HANDLER(signal.SIGINT, None)\n'
        '    except KeyboardInterrupt:\n'
        '        raise RuntimeError("Unable to convert call argument \'0\' to Python object")\n'
        'real_init = rclpy.init\n'
        'def init(*args, **kwargs):  # the handler interrupt_once installed, before rclpy\'s\n'
        '    global HANDLER\n'
        '    HANDLER = signal.getsignal(signal.SIGINT)\n'
        '    real_init(*args, **kwargs)\n'
        'rclpy.init, rclpy.spin = init, spin\n'
        'sys.exit(node_module.run(lambda: Node("race_node"), []))\n')
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
