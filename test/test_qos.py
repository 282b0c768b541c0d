"""Camera input QoS: the node's default subscription takes every frame of either camera QoS."""
import json
import os
import time
import xml.etree.ElementTree as ET

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import ReliabilityPolicy

from depthdet_ros.bench.qos import start_camera
from depthdet_ros.ros.launcher import ros_environment
from depthdet_ros.ros.params import BY_NAME
from depthdet_ros.ros.qos import (DuplicateFilter, large_data_environment, PROFILE_ENV_VARS,
                                  profile_file, wanted_reliabilities)
from onnx_fixtures import constant_detector, red_depth
from ros_harness import ctrl_c_group, NodeProcess, write_params

RELIABLE, BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT


def test_subscriptions_follow_the_publishers_reliability():
    assert wanted_reliabilities([]) == {RELIABLE, BEST_EFFORT}
    assert wanted_reliabilities([RELIABLE, RELIABLE]) == {RELIABLE}
    assert wanted_reliabilities([BEST_EFFORT]) == {BEST_EFFORT}
    assert wanted_reliabilities([RELIABLE, BEST_EFFORT]) == {BEST_EFFORT}


def test_duplicate_filter_passes_each_message_once():
    frames = DuplicateFilter()
    assert frames.is_new('reliable', 1)
    assert not frames.is_new('best_effort', 1)
    assert frames.is_new('best_effort', 2)      # best-effort first this time
    assert not frames.is_new('reliable', 2)
    assert frames.is_new('reliable', 3)         # lost by the other subscription: passed once
    # A camera that never sets stamps: every frame still passes once.
    assert [frames.is_new('reliable', 0), frames.is_new('best_effort', 0),
            frames.is_new('best_effort', 0), frames.is_new('reliable', 0)] == [
                True, False, True, False]


@pytest.mark.ros
def test_a_frame_passed_on_by_a_retired_subscription_is_not_passed_again():
    # A reliable camera appears while `auto` holds both kinds: the best-effort
    # subscription retires, and the reliable one, which may lag, must not repeat a frame
    # the best-effort one already passed on.
    from sensor_msgs.msg import Image
    from depthdet_ros.ros import qos

    rclpy.init()
    node = rclpy.create_node('qos_retire_test')
    received = []
    try:
        follower = qos.subscribe_input(node, Image, 'retire_test', received.append, 'auto')
        assert follower.reliabilities == {RELIABLE, BEST_EFFORT}
        node.create_publisher(Image, 'retire_test', 10)  # reliable
        by_policy = {s.qos_profile.reliability: s for s in node.subscriptions
                     if s.topic_name == follower.topic_name}

        def frame(sec):
            msg = Image()
            msg.header.stamp.sec = sec
            return msg
        by_policy[BEST_EFFORT].callback(frame(1))
        by_policy[RELIABLE].callback(frame(1))
        follower._follow()  # what its graph timer runs: sees the reliable publisher
        time.sleep(qos.RETIRE_AFTER_S + qos.RETIRE_SETTLE_S)
        by_policy[BEST_EFFORT].callback(frame(2))
        follower._follow()
        assert follower.reliabilities == {RELIABLE}
        by_policy[BEST_EFFORT].callback(frame(3))   # taken before it was destroyed: dropped
        by_policy[RELIABLE].callback(frame(2))      # the reliable copy, later
        by_policy[RELIABLE].callback(frame(3))
        assert [m.header.stamp.sec for m in received] == [1, 2, 3]
        follower.destroy()
        assert not [s for s in node.subscriptions if s.topic_name == follower.topic_name]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def test_auto_is_the_default():
    assert BY_NAME['input_reliability'].default == 'auto'


def test_large_data_profile_is_given_unless_the_user_names_one():
    env = large_data_environment({})
    assert set(env) == set(PROFILE_ENV_VARS) and os.path.isfile(profile_file())
    assert all(path == profile_file() for path in env.values())
    assert large_data_environment({'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}) == {}
    launched = ros_environment()
    assert launched[PROFILE_ENV_VARS[0]] == os.environ.get(PROFILE_ENV_VARS[0],
                                                           profile_file())
    ns = {'f': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    root = ET.parse(profile_file()).getroot()
    segment = int(root.find('.//f:transport_descriptor[f:type="SHM"]/f:segment_size',
                            ns).text)
    assert segment >= 10 * 1920 * 1080 * 3  # ten 1080p rgb8 frames, not Fast DDS's 512 KB
    participant = root.find('f:participant', ns)
    assert participant.get('is_default_profile') == 'true'


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('models')
    detector = constant_detector(root / 'det.onnx', [(200, 355, 200, 250, 0.9, 0.95, 0.1)])
    return detector, red_depth(root / 'depth.onnx')


def _frames_taken(msg):
    """Images the node took: processed, replaced while waiting, refused or failed."""
    values = {kv.key: kv.value for kv in msg.status[0].values}
    return sum(int(values[k]) for k in ('frames_processed', 'frames_dropped',
                                        'images_refused', 'frames_failed'))


@pytest.mark.ros
def test_a_reliable_or_best_effort_camera_reaches_the_default_node(
        models, tmp_path, monkeypatch):
    # The node runs as `depthdet pipeline` and the launch file start it (large-data
    # profile); the cameras are plain rclpy publishers in processes of their own. A
    # best-effort camera needs the profile for large frames (README); a reliable one not.
    node_env = ros_environment()
    for name in PROFILE_ENV_VARS:
        monkeypatch.setenv(name, node_env[name])
    plain_env = {k: v for k, v in node_env.items() if k not in PROFILE_ENV_VARS}
    cameras = [  # (reliability, width, height, rate, frames, camera env)
        ('best_effort', 320, 240, 10.0, 10, plain_env),
        ('reliable', 320, 240, 10.0, 10, plain_env),
        ('best_effort', 1280, 720, 5.0, 10, node_env),
        ('reliable', 1280, 720, 5.0, 10, plain_env),
    ]
    params = write_params(tmp_path / 'params.yaml', detector_model=models[0],
                          depth_model=models[1], providers='cpu', diagnostics_period=0.2)
    rclpy.init()
    listener = rclpy.create_node('qos_test_listener')
    diagnostics = []
    listener.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)

    def taken(timeout, until=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rclpy.spin_once(listener, timeout_sec=0.1)
            if diagnostics and (until is None or _frames_taken(diagnostics[-1]) >= until):
                break
        assert diagnostics, 'no /diagnostics from depthdet_node'
        return _frames_taken(diagnostics[-1])

    results = []
    try:
        with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
            before = taken(timeout=90)
            for reliability, width, height, rate, frames, env in cameras:
                camera = start_camera(reliability, width, height, rate, frames, env,
                                      topic='image')
                camera.stdin.write('go\n')  # create the publishers
                camera.stdin.flush()
                # The camera publishes once it sees the node, but matching is not
                # symmetric: a best-effort frame sent before the node has matched the
                # camera is lost to discovery (under load, a first frame in ten), not to
                # QoS. Publishing starts once this process's graph shows the camera and
                # the node has had a second more to match it and settle `auto`.
                seen_by = time.monotonic() + 30
                while not listener.get_publishers_info_by_topic('/image') \
                        and time.monotonic() < seen_by:
                    rclpy.spin_once(listener, timeout_sec=0.05)
                settled = time.monotonic() + 1.0
                while time.monotonic() < settled:
                    rclpy.spin_once(listener, timeout_sec=0.05)
                out, _ = camera.communicate('start\n', timeout=120)
                sent = json.loads(out.strip().splitlines()[-1])['sent']
                after = taken(timeout=30, until=before + sent)
                time.sleep(0.5)  # anything more would be a duplicate: count it too
                after = taken(timeout=0.5)
                results.append((reliability, f'{width}x{height}', sent, after - before))
                before = after
                time.sleep(1.0)  # the node sees this camera leave before the next comes
            assert node.proc.poll() is None, node.output()
            # Taken means processed: none refused or failed (test audit: they counted too).
            values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
            assert (values['images_refused'], values['frames_failed']) == ('0', '0'), values
    finally:
        listener.destroy_node()
        rclpy.try_shutdown()
    assert [r[2] for r in results] == [c[4] for c in cameras], results
    # A reliable camera's frames all arrive. Best effort promises no delivery: on a
    # loaded machine one frame in ten was lost once (session 20) with the node and the
    # camera matched both ways; more than one lost, or any duplicate, is a fault.
    for reliability, size, sent, received in results:
        least = sent if reliability == 'reliable' else sent - 1
        assert least <= received <= sent, results


@pytest.mark.parametrize('camera, config', [('reliable', 'before'), ('reliable', 'after')])
def test_bench_qos_loses_no_first_frame_to_one_sided_matching(camera, config):
    # Before: the camera started when it saw the subscriber, which had not yet matched
    # the camera: frame 0 of a reliable camera was missing in every `before` run.
    from depthdet_ros.bench.qos import run_case
    result = run_case(camera, 320, 240, 10.0, 10, config)
    assert result['matched'] and result['sent'] == 10, result
    assert result['missing'] == [] and result['received'] == 10, result


def test_ctrl_c_of_bench_qos_stops_its_children_quietly():
    """A terminal's Ctrl-C reaches bench-qos and its camera and subscriber processes.

    The children used to print KeyboardInterrupt tracebacks; the parent stops them.
    """
    import subprocess
    import sys
    proc = subprocess.Popen(
        [sys.executable, '-m', 'depthdet_ros.cli', 'bench-qos', '--frames', '200', '--rates',
         '5', '--sizes', '320x240', '--cameras', 'reliable', '--configs', 'after'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    # Both children are up once the subscriber reports its subscription.
    for line in proc.stdout:
        if 'subscribed reliable' in line:
            break
    time.sleep(1.0)
    output = ctrl_c_group(proc)
    assert proc.returncode == 130, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
