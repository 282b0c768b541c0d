"""launch/pipeline.launch.py under the real `ros2 launch` (launch, launch_ros, ros2launch).

Skipped where launch_ros is not installed: it has no PyPI wheels, so the pip-only CI
cannot install it (test_launch_and_params.py covers the shared pieces there). To run
these tests, install the Jazzy branches of ros2/launch, ros2/launch_ros and ros2/ros2cli
from source into .venv, as the README ("On a real ROS 2 install") describes, or run them
on a sourced ROS 2 Jazzy install after `colcon build --symlink-install`.

Every run goes through `ros2 launch depthdet_ros pipeline.launch.py`, so each test also
shows that ros2launch finds the launch file in the package's share folder.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip('launch_ros', reason='launch_ros is not installed (README: On a real ROS '
                    '2 install)')
ROS2 = shutil.which('ros2', path=os.path.dirname(sys.executable)) or shutil.which('ros2')
if ROS2 is None:
    pytest.skip('the ros2 command (ros2cli, ros2launch) is not installed',
                allow_module_level=True)

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import NodeNameNonExistentError  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS_FILE = os.path.join(ROOT, 'config', 'depthdet.yaml')
NAMESPACE = '/launch_test'


def _environment(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED='1', ROS_LOG_DIR=str(tmp_path / 'ros_log'))
    # The project's .venv is an install prefix of its own (tools/link_share.py).
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    return env


def _start(tmp_path, *arguments):
    log = open(tmp_path / 'launch.log', 'w+')
    # A session of its own: Ctrl-C reaches the launch and its node as in a terminal.
    proc = subprocess.Popen([ROS2, 'launch', 'depthdet_ros', 'pipeline.launch.py', *arguments],
                            stdout=log, stderr=subprocess.STDOUT, env=_environment(tmp_path),
                            start_new_session=True)
    return proc, log


def _output(log):
    log.flush()
    log.seek(0)
    return log.read()


def _run(tmp_path, *arguments, timeout=120):
    """Run a launch that is expected to end by itself: (exit code, everything it printed)."""
    proc, log = _start(tmp_path, *arguments)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        pytest.fail(f'launch still running after {timeout} s:\n{_output(log)}')
    return proc.returncode, _output(log)


def _stop(proc, log):
    """Ctrl-C the launch as a user would; its exit code.

    A terminal signals the whole process group; launch then forwards one more SIGINT to
    the node, which may be cleaning up by then.
    """
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f'launch ignored SIGINT:\n{_output(log)}')
    return proc.returncode


@pytest.fixture
def graph_node():
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('launch_test_probe', context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _wait_for_subscriptions(node, expected, proc, log, timeout=90.0):
    """Topics depthdet_node subscribes to, once they include `expected`."""
    deadline = time.monotonic() + timeout
    topics = set()
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            topics = {name for name, _ in node.get_subscriber_names_and_types_by_node(
                'depthdet_node', NAMESPACE)}
        except NodeNameNonExistentError:
            topics = set()
        if expected <= topics:
            return topics
        time.sleep(0.25)
    pytest.fail(f'depthdet_node subscribed to {sorted(topics)}, expected {sorted(expected)}:\n'
                f'{_output(log)}')


@pytest.mark.parametrize('argument,words', [
    ('max_depth:=abc', ['max_depth:=abc', 'metres']),
    ('use_sim_time:=maybe', ['use_sim_time:=maybe', 'true or']),
    ('lifecycle:=maybe', ['lifecycle:=maybe', 'true or']),
    ('params_file:=/nonexistent/depthdet.yaml', ['params_file:=/nonexistent/depthdet.yaml',
                                                 'no such file']),
])
def test_bad_argument_stops_the_launch_with_one_line(tmp_path, argument, words):
    code, output = _run(tmp_path, argument, timeout=60)
    errors = [line for line in output.splitlines() if '[ERROR]' in line]
    assert code != 0, output
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], output
    assert 'Traceback' not in output and 'process started' not in output, output


@pytest.mark.parametrize('case', ['negative max_depth', 'typo in params file'])
def test_node_configuration_error_fails_the_launch(tmp_path, case):
    if case == 'negative max_depth':
        arguments = ['max_depth:=-1']
    else:
        params = tmp_path / 'typo.yaml'
        params.write_text('/**:\n  ros__parameters:\n    max_dept: 1.0\n')
        arguments = [f'params_file:={params}']
    code, output = _run(tmp_path, *arguments)
    assert code != 0, output
    assert 'configuration error' in output and 'exited with code 2' in output, output
    assert 'Traceback' not in output, output


@pytest.mark.parametrize('use_compressed', [False, True])
def test_launch_arguments_reach_the_node_and_ctrl_c_exits_zero(tmp_path, graph_node,
                                                               use_compressed):
    with open(PARAMS_FILE) as f:
        params = yaml.safe_load(f)
    params['/**']['ros__parameters']['use_compressed'] = use_compressed
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump(params))
    proc, log = _start(tmp_path, 'image:=/cam/image_raw', 'camera_info:=/cam/camera_info',
                       f'namespace:={NAMESPACE}', f'params_file:={params_file}',
                       'max_depth:=1.5', 'use_sim_time:=False')
    try:
        # image_transport's convention: the compressed topic follows the remapped image.
        image = '/cam/image_raw/compressed' if use_compressed else '/cam/image_raw'
        _wait_for_subscriptions(graph_node, {image, '/cam/camera_info'}, proc, log)
    finally:
        code = _stop(proc, log)
    output = _output(log)
    assert code == 0, output
    assert 'process has finished cleanly' in output and 'Traceback' not in output, output


def _call(node, service_type, name, request, proc, log, timeout=90.0, attempt_s=10.0):
    """Call a service of the launched node once it is up; its response, or None.

    A request sent just as the service appears can go unanswered (the server has not
    yet matched the client's reply reader): each attempt waits attempt_s, and a call
    that may be repeated (GetState) is sent again until `timeout`.
    """
    client = node.create_client(service_type, name)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not client.wait_for_service(timeout_sec=0.5):
                assert proc.poll() is None, _output(log)
                continue
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=attempt_s)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
            if service_type is not GetState:
                return None
        pytest.fail(f'{name} never answered:\n{_output(log)}')
    finally:
        executor.remove_node(node)
        node.destroy_client(client)


def _state(node, prefix, proc, log):
    return _call(node, GetState, f'{prefix}/get_state', GetState.Request(), proc,
                 log).current_state.id


def test_lifecycle_argument_starts_a_managed_node_that_activates(tmp_path, graph_node):
    proc, log = _start(tmp_path, 'lifecycle:=true', f'namespace:={NAMESPACE}',
                       'image:=/cam/image_raw', 'camera_info:=/cam/camera_info')
    try:
        prefix = f'{NAMESPACE}/depthdet_node'
        assert _state(graph_node, prefix, proc, log) == State.PRIMARY_STATE_UNCONFIGURED
        for transition, reached in ((Transition.TRANSITION_CONFIGURE,
                                     State.PRIMARY_STATE_INACTIVE),
                                    (Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)):
            request = ChangeState.Request(transition=Transition(id=transition))
            deadline = time.monotonic() + 90.0
            while True:
                response = _call(graph_node, ChangeState, f'{prefix}/change_state', request,
                                 proc, log)
                assert response is None or response.success, _output(log)
                # An unanswered request may still have been carried out: the state tells.
                if _state(graph_node, prefix, proc, log) == reached:
                    break
                assert time.monotonic() < deadline, _output(log)
        _wait_for_subscriptions(graph_node, {'/cam/image_raw', '/cam/camera_info'}, proc, log)
    finally:
        code = _stop(proc, log)
    assert code == 0, _output(log)
