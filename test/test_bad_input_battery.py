"""Bad-input and fault battery against running depthdet_node processes over DDS.

Each case either works correctly (detections for its stamp) or is refused with a
log line; after every refused case a good frame proves the node still serves.
"""
import math
import os
import signal
import time

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, Detection3DArray

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.ros import convert
from onnx_fixtures import constant_detector, depth_for_red, red_depth, red_for_depth, sqrt_depth
from ros_harness import NodeProcess, pinhole, Probe, write_params

pytestmark = pytest.mark.ros

RED = red_for_depth(3.0)


def scene(h=480, w=640):
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = RED
    return image


def raw(encoding, h, w, data, step=None, bigendian=0):
    msg = Image(encoding=encoding, height=h, width=w, is_bigendian=bigendian)
    msg.step = step if step is not None else (len(data) // h if h else 0)
    msg.data = bytes(data)
    return msg


# The depth each decodable case reads in the detector's box (red_depth of its red):
# every image is the scene's red, but all-zero 4:2:2 frames are black (Y 0 clips R to 0)
# and a 1x1 image leaves too few pixels in the box for a depth.
DEPTH_OF_CASE = {'yuv422 (uyvy)': depth_for_red(0), 'yuv422_yuy2': depth_for_red(0),
                 '1x1 image': math.nan}


def encoded_cases():
    """(name, message, expected) for the raw-image battery; expected 'ok' or 'refused'."""
    rgb = scene()
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    mono = np.full((480, 640), RED, np.uint8)
    cases = [
        ('rgb8', raw('rgb8', 480, 640, rgb.tobytes()), 'ok'),
        ('bgr8', raw('bgr8', 480, 640, bgr.tobytes()), 'ok'),
        ('rgba8', raw('rgba8', 480, 640, np.dstack([rgb, rgb[..., :1]]).tobytes()), 'ok'),
        ('bgra8', raw('bgra8', 480, 640, np.dstack([bgr, bgr[..., :1]]).tobytes()), 'ok'),
        ('mono8', raw('mono8', 480, 640, mono.tobytes()), 'ok'),
        ('mono16', raw('mono16', 480, 640, (mono.astype('<u2') << 8).tobytes()), 'ok'),
        # Big-endian bytes (numpy's shift gives native order: cast after it; test audit).
        ('mono16 big-endian', raw('mono16', 480, 640,
                                  (mono.astype(np.uint16) << 8).astype('>u2').tobytes(),
                                  bigendian=1), 'ok'),
        ('yuv422 (uyvy)', raw('yuv422', 480, 640, bytes(480 * 640 * 2)), 'ok'),
        ('yuv422_yuy2', raw('yuv422_yuy2', 480, 640, bytes(480 * 640 * 2)), 'ok'),
        ('bayer_rggb8', raw('bayer_rggb8', 480, 640, mono.tobytes()), 'ok'),
        ('bayer_bggr8', raw('bayer_bggr8', 480, 640, mono.tobytes()), 'ok'),
        ('bayer_gbrg16', raw('bayer_gbrg16', 480, 640, (mono.astype('<u2') << 8).tobytes()),
         'ok'),
        ('row padding (step > width*3)', raw('rgb8', 480, 640, np.pad(
            rgb.reshape(480, -1), ((0, 0), (0, 64))).tobytes(), step=640 * 3 + 64), 'ok'),
        ('odd width 641', raw('rgb8', 480, 641, scene(480, 641).tobytes()), 'ok'),
        ('1x1 image', raw('rgb8', 1, 1, bytes([RED, 0, 0])), 'ok'),
        ('16UC1 as a camera image', raw('16UC1', 480, 640, bytes(480 * 640 * 2)), 'refused'),
        ('32FC1 as a camera image', raw('32FC1', 480, 640, bytes(480 * 640 * 4)), 'refused'),
        ('unknown encoding', raw('hsv8', 480, 640, rgb.tobytes()), 'refused'),
        ('data shorter than step*height', raw('rgb8', 480, 640, rgb.tobytes()[:-1],
                                              step=1920), 'refused'),
        ('data longer than step*height', raw('rgb8', 480, 640, rgb.tobytes() + b'x',
                                             step=1920), 'refused'),
        ('step smaller than a row', raw('rgb8', 480, 640, rgb.tobytes(), step=100),
         'refused'),
        ('zero-size image', raw('rgb8', 0, 0, b'', step=0), 'refused'),
        ('yuv422 with odd width', raw('yuv422', 2, 3, bytes(12)), 'refused'),
        ('8K image above max_image_pixels', raw('mono8', 4320, 7680, bytes(4320 * 7680)),
         'refused'),
    ]
    return cases


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('battery_models')
    return {'detector': constant_detector(root / 'det.onnx',
                                          [(320, 320, 200, 200, 0.9, 0.95, 0.1)]),
            'depth': red_depth(root / 'depth.onnx'),
            'nan_depth': sqrt_depth(root / 'nan_depth.onnx')}


def _stamp(i):
    return (1000 + i, 0)


def _has_stamp(stamp):
    return lambda m: (m.header.stamp.sec, m.header.stamp.nanosec) == stamp


def _position_known_or_unknown(det):
    """Whether x, y, z are all numbers (camera used) or all NaN (no valid depth)."""
    p = det.results[0].pose.pose.position
    finite = np.isfinite([p.x, p.y, p.z])
    return finite.all() or not finite.any()


def _has_stamp_and_3d(stamp):
    return lambda m: _has_stamp(stamp)(m) and all(
        _position_known_or_unknown(d) for d in m.detections)


def _diag_values(msg):
    return {kv.key: kv.value for kv in msg.status[0].values}


def test_raw_image_battery_and_header_cases(ros, models, tmp_path):
    # 8K (33 Mpx) is refused by a lowered limit so the test stays light on memory.
    # Reliable input so that every case, 8K included, is delivered exactly once.
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['depth'], providers='cpu',
                          max_image_pixels=20_000_000, input_reliability='reliable',
                          diagnostics_period=0.2, publish_raw=True)
    camera = pinhole()
    topics = {'detections': Detection2DArray, '/diagnostics': DiagnosticArray}
    cases = encoded_cases()
    reliable = rclpy.qos.QoSProfile(depth=1, reliability=rclpy.qos.ReliabilityPolicy.RELIABLE)
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics, input_qos=reliable)
        try:
            probe.wait_for('detections', resend=lambda: probe.send(scene(), camera,
                                                                   stamp=(1, 0)), timeout=60)
            refused = 0
            for i, (name, msg, expected) in enumerate(cases):
                stamp = _stamp(i)
                msg.header = Header(frame_id='cam')
                msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
                start = len(probe.received['detections'])
                if expected == 'ok':
                    # Each frame with its own CameraInfo: the node matches them by stamp
                    # (an output made before its CameraInfo arrived has no x, y: wait on).
                    info = convert.camera_model_to_info(camera, msg.header)
                    out = probe.wait_for('detections', _has_stamp_and_3d(stamp), timeout=20,
                                         resend=lambda m=msg, i=info: (
                                             probe.info_pub.publish(i),
                                             probe.image_pub.publish(m)),
                                         start=start)
                    assert out.header.frame_id == 'cam', name
                    # The frame as decoded (publish_raw: this frame's depth, not smoothed):
                    # a decoder that got the pixels wrong reads another depth (test audit).
                    (det,) = out.detections
                    assert all(np.isfinite(det.results[0].pose.covariance)), name
                    assert det.results[0].pose.pose.position.z == pytest.approx(
                        DEPTH_OF_CASE.get(name, depth_for_red(RED)), abs=1e-3, nan_ok=True), \
                        name
                else:
                    refused += 1
                    probe.image_pub.publish(msg)
                    probe.wait_for('/diagnostics', lambda m, n=refused: int(
                        _diag_values(m)['images_refused']) >= n, timeout=20)
                    alive = (5000 + i, 0)
                    probe.wait_for('detections', _has_stamp(alive), timeout=20, start=start,
                                   resend=lambda s=alive: probe.send(scene(), camera, stamp=s))
            # Header cases: time going backwards (bag loop) and an empty frame_id.
            for stamp in ((9000, 0), (10, 0)):
                out = probe.wait_for('detections', _has_stamp(stamp), timeout=20,
                                     resend=lambda s=stamp: probe.send(scene(), camera, stamp=s))
            out = probe.wait_for('detections', _has_stamp((11, 0)), timeout=20,
                                 resend=lambda: probe.send(scene(), camera, stamp=(11, 0),
                                                           frame_id=''))
            assert out.header.frame_id == 'camera_optical_frame'
            diag = probe.wait_for('/diagnostics', lambda m: int(
                _diag_values(m)['images_refused']) >= refused, timeout=10)
            assert _diag_values(diag)['frames_failed'] == '0'
            # Why the last one was refused stays readable after its log line was throttled.
            assert _diag_values(diag)['last_image_refused'] != 'none'
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None
        log = node.output()
        assert 'image refused' in log and 'Traceback' not in log
        assert 'empty frame_id' in log
        # Refused within seconds of each other, each kind of problem still has its line.
        for words in ('is a depth/scalar image', 'unsupported encoding', 'does not match '
                      'step*height', 'smaller than width*bytes_per_pixel', 'empty image',
                      'needs an even width', 'exceeds the limit'):
            assert words in log, words


def test_compressed_input_cases(ros, models, tmp_path):
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['depth'], providers='cpu', use_compressed=True)
    topics = {'detections': Detection2DArray, '/diagnostics': DiagnosticArray}
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics)
        pub = probe.create_publisher(CompressedImage, 'image/compressed',
                                     rclpy.qos.qos_profile_sensor_data)
        _, jpeg = cv2.imencode('.jpg', scene()[..., ::-1])
        _, png = cv2.imencode('.png', scene()[..., ::-1])

        def compressed(data, stamp, fmt='jpeg'):
            msg = CompressedImage(format=fmt, data=bytes(data))
            msg.header.frame_id = 'cam'
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
            return msg

        try:
            for stamp, data in (((1, 0), jpeg.tobytes()), ((2, 0), png.tobytes())):
                probe.wait_for('detections', _has_stamp(stamp), timeout=60,
                               resend=lambda d=data, s=stamp: pub.publish(compressed(d, s)))
            for stamp, data in (((3, 0), b''), ((4, 0), jpeg.tobytes()[:200]),
                                ((5, 0), b'\x89PNG garbage')):
                pub.publish(compressed(data, stamp))
                for _ in range(6):
                    rclpy.spin_once(probe, timeout_sec=0.05)
            probe.wait_for('detections', _has_stamp((6, 0)), timeout=20,
                           resend=lambda: pub.publish(compressed(jpeg.tobytes(), (6, 0))))
            probe.wait_for('/diagnostics',
                           lambda m: int(_diag_values(m)['images_refused']) >= 3, timeout=10)
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None and 'Traceback' not in node.output()


def test_nan_depth_never_reaches_a_promised_number(ros, models, tmp_path):
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['nan_depth'], providers='cpu', max_depth=100.0)
    topics = {'detections': Detection2DArray, 'detections_3d': Detection3DArray,
              'proximity_alert': Detection3DArray, 'depth': Image}
    camera = pinhole()
    image = np.zeros((480, 640, 3), np.uint8)  # red 0: sqrt(negative) = NaN everywhere
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics)
        try:
            out = probe.wait_for('detections', resend=lambda: probe.send(image, camera),
                                 timeout=60)
            (det,) = out.detections
            p = det.results[0].pose.pose.position
            assert np.isnan([p.x, p.y, p.z]).all()   # unknown is NaN (REP 117), never 0
            assert det.results[0].pose.covariance[0] >= 1e6  # and flagged unknown
            d3 = probe.wait_for('detections_3d')
            assert d3.detections == []
            assert probe.wait_for('proximity_alert').detections == []
            depth = convert.depth_image_to_array(probe.wait_for('depth'))
            assert np.isnan(depth).all()
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None


def test_faults_stale_camera_missing_info_gpu_fallback_and_shutdown(ros, models, tmp_path):
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['depth'], providers='cuda',
                          stale_input_timeout=0.5, diagnostics_period=0.2)
    topics = {'detections': Detection2DArray, 'detections_3d': Detection3DArray,
              '/diagnostics': DiagnosticArray}
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe(topics)
        try:
            # camera_info never arrives: depth without 3D, diagnostics say so.
            out = probe.wait_for('detections', resend=lambda: probe.send(scene(), None),
                                 timeout=60)
            assert out.detections[0].results[0].pose.pose.position.z > 0
            assert probe.wait_for('detections_3d').detections == []
            diag = probe.wait_for('/diagnostics', lambda m: 'camera_info' in m.status[0].message)
            values = _diag_values(diag)
            # The CUDA provider cannot start here: a clean, reported CPU fallback.
            assert values['detector_provider'] == 'cpu'
            assert 'GPU provider unavailable' in diag.status[0].message
            # Camera stops: input goes stale; it restarts: the node resumes.
            time.sleep(1.0)
            stale = probe.wait_for('/diagnostics',
                                   lambda m: 'stale' in m.status[0].message, timeout=10)
            assert stale.status[0].level == DiagnosticStatus.WARN
            camera = CameraModel(K=pinhole().K * [[0.5], [0.5], [1]], width=320, height=240)
            out = probe.wait_for('detections_3d', lambda m: len(m.detections) == 1, timeout=20,
                                 resend=lambda: probe.send(scene(), camera, stamp=(50, 0)),
                                 start=0)
            # camera_info at half the image size is scaled up to the image (pixel centres:
            # cx = 2 (160 + 0.5) - 0.5 = 320.5, fx = 500): the box centre (320, 240) at
            # the red's depth is 0.5 px left of and above the axis (test audit: an
            # unscaled camera passed the finite check).
            z = depth_for_red(RED)
            centre = out.detections[0].bbox.center.position
            assert (centre.x, centre.y, centre.z) == pytest.approx(
                ((320 - 320.5) * z / 500, (240 - 240.5) * z / 500, z), abs=1e-4)
            # One of another aspect ratio (640x360 for 640x480) does not describe the
            # image: no 3D, and diagnostics say why.
            wide = CameraModel(K=pinhole().K, width=640, height=360)
            out = probe.wait_for('detections', _has_stamp((55, 0)), timeout=20, start=0,
                                 resend=lambda: probe.send(scene(), wide, stamp=(55, 0)))
            assert math.isnan(out.detections[0].results[0].pose.pose.position.x)
            probe.wait_for('/diagnostics',
                           lambda m: 'another aspect ratio' in m.status[0].message, timeout=10)
            # Unusable camera_info (no size; a D OpenCV cannot take) is refused: the frame
            # keeps its detections, depth and alert check, without 3D. Before, every
            # frame failed (ZeroDivisionError, an OpenCV assertion): nothing published.
            sizeless = CameraModel(K=pinhole().K, width=0, height=0)
            short_d = CameraModel(K=pinhole().K, width=640, height=480,
                                  D=np.array([0.1, 0.01, 0.0]))
            for stamp, bad in (((56, 0), sizeless), ((57, 0), short_d)):
                out = probe.wait_for('detections', _has_stamp(stamp), timeout=20, start=0,
                                     resend=lambda b=bad, s=stamp: probe.send(scene(), b,
                                                                              stamp=s))
                position = out.detections[0].results[0].pose.pose.position
                assert math.isnan(position.x) and position.z > 0
            # Shut down in the middle of a stream of frames: clean exit, no traceback.
            for i in range(10):
                probe.send(scene(), camera, stamp=(60 + i, 0))
                rclpy.spin_once(probe, timeout_sec=0.02)
            node.proc.send_signal(signal.SIGINT)
            assert node.proc.wait(timeout=15) == 0
        finally:
            probe.destroy_node()
        log = node.output()
        assert 'Traceback' not in log and '[ERROR]' not in log
        assert 'scaling the intrinsics' in log
        # (The next refusal's line falls in the same rate-limit window.)
        assert 'camera_info ignored: width and height must be positive' in log
        assert log.count('could not start') + log.count('no NVIDIA driver') == 1, log


def test_model_and_parameter_faults_at_start_up(models, tmp_path):
    import subprocess
    import sys
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(os.urandom(2048))
    cases = [
        (dict(detector_model=str(garbage), depth_model=models['depth']), 'cannot load ONNX'),
        (dict(detector_model=models['detector'], depth_model=models['detector']),
         'is a detector, not a depth model'),
        (dict(detector_model=models['detector'], depth_model=models['depth'], threads='two'),
         'threads'),
        (dict(detector_model=models['detector'], depth_model=models['depth'],
              providers='opencl'), 'choose one of auto, tensorrt, cuda, cpu'),
        (dict(detector_model=models['detector'], depth_model=models['depth'],
              class_max_depth='["chair"]'), 'class_max_depth'),
    ]
    for index, (values, expected) in enumerate(cases):
        params = write_params(tmp_path / f'p{index}.yaml', **values)
        if "class_max_depth" in values:
            text = open(params).read().replace('"[\\"chair\\"]"', '["chair"]')
            open(params, 'w').write(text.replace('"["chair"]"', '["chair"]'))
        proc = subprocess.run([sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args',
                               '--params-file', params], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2, (values, proc.stderr)
        assert expected in proc.stderr and 'Traceback' not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize('module', ['depthdet_ros.ros.node', 'depthdet_ros.ros.lifecycle_node'])
def test_ctrl_c_twice_stops_cleanly(ros, models, tmp_path, module):
    """A terminal's Ctrl-C reaches the node, then `ros2 launch` forwards another SIGINT."""
    import subprocess
    import sys
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['depth'], providers='cpu')
    namespace = f'/ctrl_c_{os.getpid()}'
    log_path = tmp_path / 'node.log'
    probe = rclpy.create_node('ctrl_c_probe', namespace=namespace)
    with open(log_path, 'w+') as log:
        proc = subprocess.Popen([sys.executable, '-m', module, '--ros-args', '-r',
                                 f'__ns:={namespace}', '--params-file', params],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        try:
            deadline = time.monotonic() + 60
            while ('depthdet_node', namespace) not in probe.get_node_names_and_namespaces():
                assert proc.poll() is None and time.monotonic() < deadline, \
                    log_path.read_text()
                rclpy.spin_once(probe, timeout_sec=0.1)
            time.sleep(0.5)
            for _ in range(3):
                proc.send_signal(signal.SIGINT)
                time.sleep(0.05)
            assert proc.wait(timeout=20) == 0, log_path.read_text()
        finally:
            probe.destroy_node()
            if proc.poll() is None:
                proc.kill()
    output = log_path.read_text()
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output


@pytest.mark.parametrize('executable', ['depthdet_node', 'depthdet_lifecycle_node',
                                        'synthetic_camera'])
def test_ctrl_c_while_loading_stops_quietly(executable):
    """Ctrl-C while the node's modules load: exit 0, no traceback.

    The entry point is what the console scripts (and `ros2 launch`) run. The signal is
    sent as soon as rclpy's library is mapped into the process, while the heavier
    modules after it still load; before the entry points guarded loading, it broke the
    import with a KeyboardInterrupt traceback and exit -2.
    """
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.ros.entry', executable],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while 'rclpy' not in open(f'/proc/{proc.pid}/maps').read():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output


@pytest.mark.parametrize('executable', ['depthdet_node', 'depthdet_lifecycle_node',
                                        'synthetic_camera'])
@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help_prints_usage_and_starts_no_node(executable, flag):
    """A node given --help would ignore it and start: it prints its usage instead.

    No rclpy in the process: nothing reaches DDS. A --help after --ros-args is ROS's.
    """
    import subprocess
    import sys
    code = ('import sys; from depthdet_ros.ros import entry; status = entry.run(sys.argv[1]); '
            'print("rclpy loaded" if "rclpy" in sys.modules else "no rclpy"); sys.exit(status)')
    done = subprocess.run([sys.executable, '-c', code, executable, flag], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'usage: {executable} [--ros-args')
    assert 'README.md' in done.stdout and done.stdout.rstrip().endswith('no rclpy')


def test_help_after_ros_args_is_left_to_ros():
    from depthdet_ros.ros.entry import _wants_help
    assert _wants_help(['--help', '--ros-args', '-p', 'max_depth:=1.0'])
    assert not _wants_help(['--ros-args', '--help'])
    assert not _wants_help(['--ros-args', '-p', 'max_depth:=1.0'])


def test_ctrl_c_while_the_node_is_built_stops_quietly():
    """The SIGINT handler of rclpy shuts the context down while the node is built.

    Creating a publisher then fails ("context is invalid"): a requested stop, exit 0.
    It used to end in that RCLError's traceback, and `ros2 launch` in "process has died".
    """
    import subprocess
    import sys
    code = '\n'.join([
        'import sys',
        'import rclpy',
        'from rclpy.node import Node',
        'from std_msgs.msg import String',
        'from depthdet_ros.ros.node import run',
        'class StoppedWhileBuilt(Node):',
        '    def __init__(self):',
        '        super().__init__("stopped_while_built")',
        '        rclpy.shutdown()  # what the SIGINT handler does',
        '        self.create_publisher(String, "x", 1)',
        'sys.exit(run(StoppedWhileBuilt, args=[]))'])
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr


def test_diagnostics_are_error_while_every_image_is_refused(ros, models, tmp_path):
    """A camera sending only unusable frames: the node publishes nothing, so not OK.

    It used to report OK (images arrive, the input is not stale) with images_refused
    counting up. Once frames are processed again and refusals stop, it is OK again.
    """
    params = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                          depth_model=models['depth'], providers='cpu',
                          stale_input_timeout=1.0)
    camera = pinhole()
    with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
        probe = Probe({'detections': Detection2DArray, '/diagnostics': DiagnosticArray})
        bad = raw('foo8', 480, 640, bytes(480 * 640))
        try:
            diag = probe.wait_for('/diagnostics', lambda m: m.status[0].level ==
                                  DiagnosticStatus.ERROR, timeout=30,
                                  resend=lambda: probe.image_pub.publish(bad))
            assert diag.status[0].message.startswith('every image refused: '), diag
            assert 'foo8' in diag.status[0].message
            assert _diag_values(diag)['frames_processed'] == '0'

            def good():  # stamped now, as a camera does (other stamps WARN: another clock)
                now = time.time()
                probe.send(scene(), camera, stamp=(int(now), int(now % 1 * 1e9)))

            probe.wait_for('detections', timeout=30, resend=good)
            diag = probe.wait_for('/diagnostics', lambda m: m.status[0].level ==
                                  DiagnosticStatus.OK, timeout=30, resend=good,
                                  start=len(probe.received['/diagnostics']))
            assert int(_diag_values(diag)['images_refused']) >= 1
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None


def _node_and_reliable_probe(tmp_path, models, topics, **params):
    """Start a node with reliable input (every image delivered once) and a probe for it."""
    path = write_params(tmp_path / 'p.yaml', detector_model=models['detector'],
                        depth_model=models['depth'], providers='cpu',
                        input_reliability='reliable', diagnostics_period=0.2, **params)
    reliable = rclpy.qos.QoSProfile(depth=10,
                                    reliability=rclpy.qos.ReliabilityPolicy.RELIABLE)
    node = NodeProcess(path, log_path=tmp_path / 'node.log')
    return node, lambda: Probe(topics, input_qos=reliable)


def test_an_image_that_comes_twice_is_processed_once(ros, models, tmp_path):
    """Two publishers on one topic deliver every image twice.

    The copy used to be tracked as another frame at the same moment (a second hit: here
    min_hits 2, the copy confirmed the track). It now goes no further; an
    image with only the stamp repeated (a camera that does not stamp its images) is
    processed, and the diagnostics say which. (Late copies, the window and a copy
    meeting a waiting image, at chosen arrival times: test_node_worker_stop.py.)
    """
    camera = pinhole()
    started, make_probe = _node_and_reliable_probe(
        tmp_path, models, {'detections': Detection2DArray, '/diagnostics': DiagnosticArray},
        track_min_hits=2, publish_tentative=False)
    with started as node:
        probe = make_probe()

        def image(stamp, red=RED):
            rgb = np.zeros((480, 640, 3), np.uint8)
            rgb[..., 0] = red
            return convert.rgb_to_image_msg(rgb, probe.send_camera_info(camera, stamp))

        def answers(stamp):
            return [m for m in probe.received['detections'] if _has_stamp(stamp)(m)]

        def publish_and_wait(msg, stamp, count):
            probe.image_pub.publish(msg)
            probe.wait_for('detections', lambda m: len(answers(stamp)) == count, timeout=20)
            return answers(stamp)[-1]

        def diagnostics(**values):
            return probe.wait_for('/diagnostics', lambda m: all(
                _diag_values(m).get(k) == str(v) for k, v in values.items()), timeout=20)

        try:
            # Until the node is up, frames of their own stamps (none the same).
            startup = iter(range(10**6))
            probe.wait_for('detections', timeout=60, resend=lambda: probe.send(
                scene(), camera, stamp=(1, next(startup))))
            end = time.monotonic() + 1.0  # the last of them finished: a fresh count
            while time.monotonic() < end:
                rclpy.spin_once(probe, timeout_sec=0.05)
            fresh = probe.wait_for('/diagnostics', start=len(probe.received['/diagnostics']))
            assert _diag_values(fresh)['images_repeated'] == '0'
            processed = int(_diag_values(fresh)['frames_processed'])
            first = image((2000, 0))
            probe.image_pub.publish(first)
            probe.image_pub.publish(first)  # the same message again, as a second publisher
            once = probe.wait_for('detections', lambda m: answers((2000, 0)), timeout=20)
            assert len(once.detections) == 0  # tentative: not shown
            diag = diagnostics(images_repeated=1, frames_processed=processed + 1)
            assert diag.status[0].level == DiagnosticStatus.WARN
            assert ('1 image(s) came twice (same stamp, frame_id and data), given no new answer: '
                    'the publisher of /image sends images more than once') \
                in diag.status[0].message
            assert diag.status[0].hardware_id == probe.resolve_topic_name('image')
            # The next frame is the track's second hit: confirmed.
            (det,) = publish_and_wait(image((2001, 0)), (2001, 0), 1).detections
            assert det.id != ''
            # Only the stamp again: another image, processed.
            other = image((2001, 0), red=red_for_depth(2.0))
            publish_and_wait(other, (2001, 0), 2)
            diag = diagnostics(image_stamps_repeated=1, frames_processed=processed + 3)
            assert _diag_values(diag)['images_repeated'] == '1'  # no copy
            assert ('the camera driver should stamp each image with its capture time'
                    in diag.status[0].message)  # one publisher: the driver is named
            # A driver that leaves the stamp 0 is named as the likely cause.
            probe.image_pub.publish(image((0, 0)))
            diag = diagnostics(frames_processed=processed + 4)
            assert 'the camera driver leaves header.stamp 0?' in diag.status[0].message
            # Stamps going back again and again (outsider round 51: a relay 1.2 s late
            # restarted tracking on every copy, with a false track_max_age warning).
            for stamp in (3000, 1000, 3001, 1001):
                publish_and_wait(image((stamp, 0)), (stamp, 0), 1)
            diag = diagnostics(track_restarts=3)  # 2001 -> 0, 3000 -> 1000, 3001 -> 1001
            assert 'tracking started over' in diag.status[0].message
            assert 'track_max_age' not in diag.status[0].message
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None
        log = node.output()
        assert 'came twice' in log and 'the stamp of the one before' in log
        assert 'Traceback' not in log


def test_a_camera_that_leaves_the_stamp_0_is_tracked_by_arrival(ros, models, tmp_path):
    """Images all stamped 0 (a driver that does not stamp): the tracker's clock went on.

    Before, it stood still at 0: a track whose object was gone never ended, and its
    alert was held for ever on proximity_alert.
    """
    camera = pinhole()
    started, make_probe = _node_and_reliable_probe(
        tmp_path, models,
        {'proximity_alert': Detection3DArray, '/diagnostics': DiagnosticArray},
        track_min_hits=1, track_max_age=1.0, max_depth=5.0)
    with started as node:
        probe = make_probe()
        frames = iter(range(10**6))

        def unstamped():  # another image each time (a copy would go no further)
            rgb = scene()
            rgb[0, 0, 1] = next(frames) % 256
            probe.send(rgb, camera, stamp=(0, 0))

        try:
            probe.wait_for('proximity_alert', lambda m: len(m.detections) == 1, timeout=60,
                           resend=unstamped)
            probe.set_parameter('score_threshold', 0.99)  # the object is no longer detected
            start = len(probe.received['proximity_alert'])
            probe.wait_for('proximity_alert', lambda m: not m.detections, timeout=20,
                           resend=unstamped, start=start)
            diag = probe.wait_for('/diagnostics', lambda m: _diag_values(m)['tracks'] == '0',
                                  timeout=20, resend=unstamped,
                                  start=len(probe.received['/diagnostics']))
            assert 'image(s) had the stamp of the one before: tracked by their arrival times' \
                in diag.status[0].message
            assert 'the camera driver leaves header.stamp 0?' in diag.status[0].message
        finally:
            probe.destroy_node()
        assert node.proc.poll() is None
        assert 'an image has the stamp of the one before (stamp 0: not stamped)' \
            in node.output()
