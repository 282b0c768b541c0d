"""`depthdet replay`: topic choice and remapping, and depthdet_node fed live from a bag."""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from depthdet_ros.eval import replay
from depthdet_ros.eval.bag_input import CAMERA_INFO as CAMERA_INFO_TYPE
from depthdet_ros.eval.bag_input import COMPRESSED_IMAGE, DETECTION_2D_ARRAY, IMAGE as IMAGE_TYPE
from eval_bags import CAMERA_INFO, DEPTH, FrameSpec, GT_2D, GT_3D, IMAGE
from eval_bags import object_behind_box, pinhole, stamp_of, write_eval_bag
from onnx_fixtures import constant_detector, red_depth, red_for_depth
from ros_harness import NodeProcess, write_params

W, H = 320, 256
CHAIR_BOX = (80, 64, 160, 128)
GT_DEPTHS = (0.8, 1.6, 3.0, 0.9, 2.0)
CORRUPT_FRAME = 2  # its image message is garbage: replay must skip it
MAX_DEPTH = 1.0


def test_remaps_and_topic_choice():
    assert replay.parse_remaps(['camera/image:=image', '/a/b:=/c']) == \
        {'/camera/image': 'image', '/a/b': '/c'}
    with pytest.raises(ValueError, match='FROM:=TO'):
        replay.parse_remaps(['camera/image=image'])
    types = {IMAGE: IMAGE_TYPE, IMAGE + '/compressed': COMPRESSED_IMAGE,
             CAMERA_INFO: CAMERA_INFO_TYPE, DEPTH: IMAGE_TYPE, GT_2D: DETECTION_2D_ARRAY}
    assert replay.replay_topics(types) == [CAMERA_INFO, IMAGE, IMAGE + '/compressed']
    assert replay.replay_topics(types, with_depth=True, with_ground_truth=True) == \
        sorted(types)
    assert replay.replay_topics(types, topics=[DEPTH]) == [DEPTH]
    with pytest.raises(ValueError, match='not in the bag: /x'):
        replay.replay_topics(types, topics=['/x'])


def _scene(tmp_path):
    camera = pinhole(W, H)
    frames = []
    for depth_m in GT_DEPTHS:
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 0] = red_for_depth(depth_m)  # the fixture predicts the GT object depth
        gt = np.full((H, W), 4.0, np.float32)
        x1, y1, x2, y2 = CHAIR_BOX
        gt[y1:y2, x1:x2] = depth_m
        frames.append(FrameSpec(rgb, gt, [object_behind_box('chair', CHAIR_BOX, depth_m, 0.3,
                                                            camera)]))
    return write_eval_bag(tmp_path / 'bag', frames, camera,
                          corrupt={(IMAGE, CORRUPT_FRAME)}), camera


def _bag_ground_truth(bag):
    """GT objects per header stamp, read back from the bag with the evaluation's code."""
    from depthdet_ros.bags import read_messages
    from depthdet_ros.eval.bag_input import camera_from_info, decode_depth, stamp_ns
    from depthdet_ros.eval.ground_truth import frame_ground_truth
    by_stamp = {}
    for m in read_messages(bag, [CAMERA_INFO, DEPTH, GT_2D, GT_3D]):
        by_stamp.setdefault(stamp_ns(m.message), {})[m.topic] = m.message
    return {stamp: frame_ground_truth(parts[GT_2D], parts[GT_3D], decode_depth(parts[DEPTH]),
                                      camera_from_info(parts[CAMERA_INFO]))
            for stamp, parts in by_stamp.items()}


@pytest.mark.ros
def test_node_fed_by_replay_matches_bag_ground_truth(tmp_path):
    import rclpy
    from rosgraph_msgs.msg import Clock
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    from ros_harness import Probe

    bag, _ = _scene(tmp_path)
    truth = _bag_ground_truth(bag)
    x1, y1, x2, y2 = CHAIR_BOX
    detector = constant_detector(tmp_path / 'det.onnx', [
        ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.9, 1.0, 0.0)], input_hw=(H, W),
        names=('chair', 'bottle'))
    depth = red_depth(tmp_path / 'depth.onnx', input_hw=(H, W))
    params = write_params(tmp_path / 'params.yaml', detector_model=detector, depth_model=depth,
                          max_depth=MAX_DEPTH, providers='cpu', threads=1,
                          input_reliability='reliable', use_sim_time=True, tracking=False)
    # tracking off: each frame's depth and alert are compared with that frame's truth (the
    # bag's depths jump between frames, and --loop sends stamps backwards).
    rclpy.init()
    try:
        with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
            probe = Probe({'detections': Detection2DArray, 'proximity_alert': Detection3DArray,
                           '/clock': Clock})
            # --loop: a frame the busy node skipped comes round again, and /clock keeps
            # coming until the probe has matched it.
            player = subprocess.Popen(
                [sys.executable, '-m', 'depthdet_ros.cli', 'replay', bag, '--rate', '0.25',
                 '--loop', '--clock', '--remap', 'camera/image:=image', '--remap',
                 'camera/camera_info:=camera_info', '--wait-for-subscribers', '60'],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wanted = {stamp_of(i) for i in range(len(GT_DEPTHS)) if i != CORRUPT_FRAME}

            def stamps(topic):
                return {m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec
                        for m in probe.received[topic]}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and player.poll() is None and not (
                    wanted <= stamps('detections') and wanted <= stamps('proximity_alert')
                    and probe.received['/clock']):
                rclpy.spin_once(probe, timeout_sec=0.1)
            player.send_signal(signal.SIGINT)
            output, _ = player.communicate(timeout=30)
            assert player.returncode == 0, output  # Ctrl-C stops it as `ros2 bag play`
            assert 'Traceback' not in output and output.rstrip().endswith('stopped by Ctrl-C')
            assert 'publishing /camera/camera_info -> camera_info, /camera/image -> image' \
                in output
            corrupt = int(output.split(' corrupt messages skipped')[0].rsplit(' ', 1)[1])
            assert corrupt >= 1 and stamp_of(CORRUPT_FRAME) not in stamps('detections')
            assert wanted <= stamps('detections'), node.output() + output
            for msg in probe.received['detections']:
                stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
                (gt,) = truth[stamp]
                (det,) = msg.detections
                assert det.results[0].hypothesis.class_id == gt.class_name
                assert (det.bbox.center.position.x, det.bbox.center.position.y) == \
                    pytest.approx(((gt.box.x1 + gt.box.x2) / 2, (gt.box.y1 + gt.box.y2) / 2))
                # Colour quantisation of the fixture: half a step of 10 m / 255.
                assert det.results[0].pose.pose.position.z == pytest.approx(gt.depth, abs=0.02)
            # Every frame's alert message comes, empty or not (test audit: this loop ran
            # over nothing when none came).
            assert wanted <= stamps('proximity_alert'), node.output() + output
            alerting = set()
            for msg in probe.received['proximity_alert']:
                stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
                assert len(msg.detections) == int(truth[stamp][0].depth < MAX_DEPTH)
                if msg.detections:
                    alerting.add(stamp)
            # The frames nearer than MAX_DEPTH (0.8 m and 0.9 m) alert.
            assert alerting == {stamp_of(i) for i, z in enumerate(GT_DEPTHS)
                                if z < MAX_DEPTH and i != CORRUPT_FRAME}
            clock_ns = [m.clock.sec * 10 ** 9 + m.clock.nanosec for m in probe.received['/clock']]
            assert clock_ns and min(wanted) <= min(clock_ns) and max(clock_ns) <= max(wanted)
            probe.destroy_node()
    finally:
        rclpy.try_shutdown()


@pytest.mark.parametrize('options, message', [
    (['--remap', 'camera/image:=bad name'], "cannot publish /camera/image as 'bad name': "),
    (['--clock', '--clock-hz', '0'], '--clock-hz must be a number > 0, got 0.0'),
    (['--clock', '--clock-hz', 'nan'], '--clock-hz must be a number > 0, got nan'),
    # A typo in FROM used to replay under the bag's names, exit 0: the node got nothing.
    (['--remap', '/camera/imag:=image'], '--remap /camera/imag: not a topic being replayed'),
    (['--rate', 'inf'], "argument --rate: must be a number > 0, got 'inf'"),
    (['--wait-for-subscribers', '-1'], 'argument --wait-for-subscribers: must be a number'),
])
def test_unusable_replay_options_are_one_line(tmp_path, options, message):
    bag, _ = _scene(tmp_path)
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'replay', bag, *options],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and 'Traceback' not in result.stderr
    assert result.stderr.strip().count('\n') == 0, result.stderr


def damage(bag, fill):
    """Overwrite bytes 100-5000 of the bag's mcap file with `fill` (one byte, repeated)."""
    (path,) = Path(bag).glob('*.mcap')
    data = bytearray(path.read_bytes())
    data[100:5000] = fill * 4900
    path.write_bytes(bytes(data))


@pytest.mark.parametrize('fill, command, message', [
    # The mcap reader breaks part way (an OverflowError traceback before: outsider 45).
    (b'\xab', 'eval', 'it breaks off after 0 messages ('),
    (b'\xab', 'replay', 'it breaks off after 0 messages'),
    # Or reads nothing at all: eval said the topic had no images, replay exited 0.
    (b'\x00', 'eval', 'no frame to evaluate: /camera/image: the bag lists 5 messages on it, '
     'but none could be read (a damaged file?)'),
    (b'\x00', 'replay', 'nothing was published: the bag lists 10 messages on these topics, '
     'none could be read (a damaged file, or a type rosbags cannot read?)'),
])
def test_a_damaged_bag_is_one_line(tmp_path, fill, command, message):
    # Five grey frames and their camera_info (10 messages); how the damage shows depends
    # on where it falls, so the bag is this small one.
    frames = [FrameSpec(np.full((48, 64, 3), 100, np.uint8), None) for _ in range(5)]
    bag = write_eval_bag(tmp_path / 'bag', frames, pinhole(64, 48))
    damage(bag, fill)
    extra = ['--out', str(tmp_path / 'report'), '--no-progress'] if command == 'eval' else []
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', command, bag, *extra],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and 'Traceback' not in result.stderr, result.stderr
    assert result.stderr.strip().count('\n') == 0, result.stderr


@pytest.mark.parametrize('loop', [False, True])
def test_a_bag_without_messages_is_refused(tmp_path, loop):
    """Topics declared, no messages: one line, exit 2 (with --loop it used to spin forever)."""
    from rosbags.rosbag2 import Writer

    from depthdet_ros.bags import BAG_VERSION, make_typestore
    store = make_typestore()
    with Writer(tmp_path / 'empty', version=BAG_VERSION) as writer:
        writer.add_connection('/camera/image', 'sensor_msgs/msg/Image', typestore=store)
        writer.add_connection('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
                              typestore=store)
    result = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'replay',
                             str(tmp_path / 'empty'), *(['--loop'] if loop else [])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'has no messages on /camera/camera_info, /camera/image' in result.stderr
    assert result.stderr.strip().count('\n') == 0, result.stderr


def test_sigterm_stops_replay_with_its_counts(tmp_path):
    # timeout(1), systemd or CI stop it with SIGTERM: the counts so far, then the status
    # a shell reports for SIGTERM (it used to die at once, saying nothing).
    bag, _ = _scene(tmp_path)
    player = subprocess.Popen(
        [sys.executable, '-m', 'depthdet_ros.cli', 'replay', bag, '--loop', '--rate', '5'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in player.stdout:
            if line.startswith('publishing '):
                break
        time.sleep(2.0)
        player.send_signal(signal.SIGTERM)
        output, _ = player.communicate(timeout=30)
    finally:
        if player.poll() is None:
            player.kill()
    assert player.returncode == 128 + signal.SIGTERM, output
    assert 'Traceback' not in output and output.rstrip().endswith('stopped by SIGTERM'), output
    assert re.search(r'published /camera/camera_info: [1-9]\d*, /camera/image: [1-9]', output)
