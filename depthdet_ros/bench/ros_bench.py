"""Through ROS: depthdet_node as a subprocess, fed and read over DDS on localhost.

Each input frame carries a unique header stamp; the node copies it to its outputs, so
every `detections` message is matched to the moment its frame was published.
"""
import os
import subprocess
import sys
import tempfile
import time

from depthdet_ros.bench.stats import summarize

NODE_START_TIMEOUT_S = 90.0
# A frame unanswered this long counts as lost (a best-effort image lost in DDS, or a
# failure); the node answers a frame in well under a second on a loaded 2-core CPU.
REPLY_TIMEOUT_S = 3.0
# The node's diagnostics period during the benchmark (fresh counters after each phase).
DIAGNOSTICS_PERIOD_S = 0.25


def ros_available():
    """Return (True, '') when rclpy and the messages load, else (False, reason)."""
    try:
        import rclpy  # noqa: F401
        from vision_msgs.msg import Detection2DArray  # noqa: F401

        from depthdet_ros.ros import convert  # noqa: F401
    except ImportError as exc:
        return False, f'rclpy / ROS 2 messages not importable ({exc})'
    return True, ''


def isolate_dds():
    """Keep DDS on this machine in a domain of its own (before rclpy.init).

    Without a ROS_DOMAIN_ID set, one in 10-99 from the process ID: on Linux, domains
    above 101 can take ports from the ephemeral range (ROS 2's "The ROS_DOMAIN_ID" doc).
    """
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('ROS_DOMAIN_ID', str(10 + os.getpid() % 90))


def write_params(path, values):
    """Write a ROS parameters YAML for depthdet_node from a {name: value} dict."""
    import yaml
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump({'/**': {'ros__parameters': values}}, f)
    return path


class NodeUnderTest:
    """depthdet_node in a subprocess with a parameters file; output kept in a log."""

    def __init__(self, params, workdir):
        self.params_file = write_params(os.path.join(workdir, 'params.yaml'), params)
        self.log_path = os.path.join(workdir, 'node.log')
        self.proc = None

    def __enter__(self):
        self._log = open(self.log_path, 'w')
        cmd = [sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args', '-r',
               '__node:=depthdet_node', '--params-file', self.params_file]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED='1'))
        return self

    def running(self):
        """Whether the node process is still alive."""
        return self.proc.poll() is None

    def log_tail(self, lines=15):
        """Return the last lines the node printed."""
        self._log.flush()
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return ''.join(f.readlines()[-lines:])

    def rss_mb(self):
        """Resident memory of the node process in MB, None without psutil."""
        try:
            import psutil
            return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)
        except (ImportError, OSError):
            return None

    def __exit__(self, *exc):
        if self.running():
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class NodeStartError(RuntimeError):
    """depthdet_node did not come up; the message holds its last output."""


def _make_probe(builder_topics, reliability):
    """Create the benchmark's rclpy node (imports rclpy here, after isolate_dds).

    Its image and camera_info publishers use the QoS the node subscribes with.
    """
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection2DArray

    class Probe(Node):
        """Publishes frames, records when each answer arrives, republishes in-process output."""

        def __init__(self):
            super().__init__('depthdet_bench')
            qos = qos_profile_sensor_data if reliability == 'best_effort' else QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=5,
                reliability=ReliabilityPolicy.RELIABLE)
            self.image_pub = self.create_publisher(Image, 'image', qos)
            self.info_pub = self.create_publisher(CameraInfo, 'camera_info', qos)
            self.answers = {}      # stamp (ns) -> receive time (perf_counter)
            self.diagnostics = []  # (receive time, {key: value})
            self.create_subscription(Detection2DArray, 'detections', self._on_detections, 50)
            self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
            # The in-process pipeline's messages go out on bench/* with a subscriber
            # attached, so publishing costs what it costs the node.
            self.bench_pubs = {}
            self.bench_received = 0
            for topic, msg_type in builder_topics.items():
                self.bench_pubs[topic] = self.create_publisher(msg_type, 'bench/' + topic, 10)
                self.create_subscription(msg_type, 'bench/' + topic, self._on_bench, 10)

        def _on_detections(self, msg):
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.answers.setdefault(stamp, time.perf_counter())

        def _on_diagnostics(self, msg):
            for status in msg.status:
                if status.name.startswith('depthdet_node'):
                    self.diagnostics.append(
                        (time.perf_counter(), {kv.key: kv.value for kv in status.values}))

        def _on_bench(self, msg):
            self.bench_received += 1

    return Probe()


def _topic_types():
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection2DArray, Detection3DArray
    return {'detections': Detection2DArray, 'detections_3d': Detection3DArray,
            'proximity_alert': Detection3DArray, 'depth': Image, 'depth/camera_info': CameraInfo}


class RosBench:
    """The node over DDS next to the in-process pipeline; see run_ros_sections."""

    def __init__(self, probe, image_msg, info_msg, reliability):
        self.probe = probe
        self.reliability = reliability
        self.image_msg = image_msg
        self.info_msg = info_msg
        self._stamp = time.time_ns()

    def drain(self, count):
        """Handle up to `count` waiting callbacks without blocking."""
        import rclpy
        for _ in range(count):
            rclpy.spin_once(self.probe, timeout_sec=0.0)

    def send(self):
        """Publish the frame with a new unique stamp; returns (stamp ns, publish time)."""
        self._stamp += 1000
        stamp = self._stamp
        for header in (self.image_msg.header, self.info_msg.header):
            header.stamp.sec, header.stamp.nanosec = divmod(stamp, 10**9)
        self.probe.info_pub.publish(self.info_msg)
        sent = time.perf_counter()
        self.probe.image_pub.publish(self.image_msg)
        return stamp, sent

    def round_trip(self, timeout=REPLY_TIMEOUT_S):
        """Send one frame and wait for its detections; returns ms or None on timeout."""
        import rclpy
        stamp, sent = self.send()
        deadline = sent + timeout
        while stamp not in self.probe.answers and time.perf_counter() < deadline:
            rclpy.spin_once(self.probe, timeout_sec=0.05)
        answered = self.probe.answers.get(stamp)
        return None if answered is None else (answered - sent) * 1e3

    def wait_until_serving(self, node, timeout=NODE_START_TIMEOUT_S):
        """Resend frames until the node answers one; raises NodeStartError."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not node.running():
                raise NodeStartError('depthdet_node exited:\n' + node.log_tail())
            if self.round_trip(timeout=1.0) is not None:
                return
        raise NodeStartError(f'depthdet_node gave no detections within {timeout:.0f} s:\n'
                             + node.log_tail())

    def fresh_diagnostics(self, after, timeout=5.0):
        """Return the first diagnostics values received after perf_counter time `after`."""
        import rclpy
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for received, values in self.probe.diagnostics:
                if received > after:
                    return values
            rclpy.spin_once(self.probe, timeout_sec=0.05)
        return None

    def stream(self, rate_hz, seconds, quiet_s=1.0, settle_max_s=5.0):
        """Publish at `rate_hz` for `seconds`; returns the keep-latest record.

        Afterwards answers are collected until none has come for `quiet_s`.
        """
        import rclpy
        start_counters = self.fresh_diagnostics(time.perf_counter())
        sent = {}
        start = time.perf_counter()
        frames = int(round(rate_hz * seconds))
        for i in range(frames):
            due = start + i / rate_hz
            while time.perf_counter() < due:
                rclpy.spin_once(self.probe, timeout_sec=max(0.0, due - time.perf_counter()))
            stamp, at = self.send()
            sent[stamp] = at
        send_span = time.perf_counter() - start
        last_sent = last_event = time.perf_counter()
        answers = len(self.probe.answers)
        while time.perf_counter() < min(last_event + quiet_s, last_sent + settle_max_s):
            rclpy.spin_once(self.probe, timeout_sec=0.05)
            if len(self.probe.answers) != answers:
                answers, last_event = len(self.probe.answers), time.perf_counter()
        end_counters = self.fresh_diagnostics(time.perf_counter())
        answered = {s: self.probe.answers[s] for s in sent if s in self.probe.answers}
        ages = [(answered[s] - sent[s]) * 1e3 for s in answered]
        span = max(answered.values()) - start if answered else 0.0
        record = {
            'rate_hz': rate_hz,
            'seconds': seconds,
            'sent': frames,
            'achieved_send_rate_hz': round(frames / send_span, 2) if send_span > 0 else None,
            'answered': len(answered),
            'output_rate_hz': round(len(answered) / span, 2) if span > 0 else None,
            'output_age_ms': summarize(ages),
        }
        record.update(_counter_deltas(start_counters, end_counters))
        if record['processed'] is not None:
            # Neither processed nor replaced by a newer frame: lost before the node's
            # callback (a best-effort DDS drop, or the subscription queue overwritten).
            record['not_delivered'] = frames - record['processed'] - record['dropped']
        else:
            record['not_delivered'] = None
        return record


def _counter_deltas(before, after):
    keys = {'frames_processed': 'processed', 'frames_dropped': 'dropped'}
    if before is None or after is None:
        return {name: None for name in keys.values()}
    return {name: int(after.get(key, 0)) - int(before.get(key, 0))
            for key, name in keys.items()}


def node_stage_latency(diagnostics):
    """Per-stage latency the node reports in /diagnostics ({stage: {p50, p95}})."""
    stages = {}
    for key, value in (diagnostics or {}).items():
        if key.startswith('latency_') and key.endswith('_ms'):
            stage, _, percentile = key[len('latency_'):-len('_ms')].rpartition('_')
            stages.setdefault(stage, {})[percentile] = float(value)
    return stages


def run_ros_sections(pipeline, frame, camera, node_params, iterations, warmup, rates,
                     seconds, keep_latest=True, measure_latency=True, progress=None):
    """Node latency over DDS vs in-process, publish cost, keep-latest at `rates`.

    Returns {'latency': {...} or None, 'keep_latest': [...] or None, 'node': {...}}.
    """
    import rclpy
    from std_msgs.msg import Header

    from depthdet_ros.bench.inprocess import MessageBuilder
    from depthdet_ros.ros import convert

    isolate_dds()
    builder = MessageBuilder()
    rgb_msg = convert.rgb_to_image_msg(
        _decoded(frame), Header(frame_id='camera_optical_frame'))
    if frame.encoding != 'rgb8':
        rgb_msg.encoding, rgb_msg.data = frame.encoding, frame.data
    info_msg = convert.camera_model_to_info(camera, Header(frame_id='camera_optical_frame'))
    params = dict(node_params, diagnostics_period=DIAGNOSTICS_PERIOD_S)
    out = {'latency': None, 'keep_latest': None, 'node': {}}
    with tempfile.TemporaryDirectory(prefix='depthdet_bench_') as workdir, \
            NodeUnderTest(params, workdir) as node:
        rclpy.init()
        try:
            probe = _make_probe(_topic_types(), params['input_reliability'])
            bench = RosBench(probe, rgb_msg, info_msg, params['input_reliability'])
            bench.wait_until_serving(node)
            if measure_latency:
                out['latency'] = _latency(bench, pipeline, frame, camera, builder, iterations,
                                          warmup, progress)
            if keep_latest:
                out['keep_latest'] = [bench.stream(rate, seconds) for rate in rates]
            diagnostics = bench.fresh_diagnostics(time.perf_counter())
            out['node'] = {
                'rss_mb': node.rss_mb(),
                'providers': {'detector': (diagnostics or {}).get('detector_provider'),
                              'depth': (diagnostics or {}).get('depth_provider')},
                'diagnostics_stage_ms': node_stage_latency(diagnostics),
                'frames_failed': (diagnostics or {}).get('frames_failed'),
                'ros_domain_id': os.environ['ROS_DOMAIN_ID'],
            }
            probe.destroy_node()
        finally:
            rclpy.try_shutdown()
    return out


def _decoded(frame):
    from depthdet_ros.core.image import decode_raw
    return decode_raw(frame.encoding, frame.height, frame.width, frame.step, frame.data)


def _latency(bench, pipeline, frame, camera, builder, iterations, warmup, progress):
    """Interleave node round trips with in-process frames that publish their messages."""
    from depthdet_ros.bench.inprocess import interleave, process_frame

    probe = bench.probe

    def in_process():
        stages, _, messages = process_frame(pipeline, frame, camera, builder)
        t0 = time.perf_counter()
        for topic, msg in messages:
            probe.bench_pubs[topic].publish(msg)
        stages['publish'] = (time.perf_counter() - t0) * 1e3
        stages['end_to_end_with_publish'] = stages['end_to_end'] + stages['publish']
        bench.drain(len(messages))
        return {'inprocess_' + k: v for k, v in stages.items()}

    def node_round_trip():
        return {'node_round_trip': bench.round_trip()}

    samples = interleave([('node', node_round_trip), ('inprocess', in_process)], iterations,
                         warmup, progress=progress)
    names = ('node_round_trip', 'inprocess_end_to_end', 'inprocess_end_to_end_with_publish',
             'inprocess_publish', 'inprocess_messages')
    result = samples.summaries(names)
    unanswered = sum(1 for v in samples.values('node_round_trip') if v is None)
    return {'node_round_trip_ms': result['node_round_trip'],
            'inprocess_end_to_end_ms': result['inprocess_end_to_end'],
            'inprocess_end_to_end_with_publish_ms': result['inprocess_end_to_end_with_publish'],
            'publish_ms': result['inprocess_publish'],
            'messages_ms': result['inprocess_messages'],
            'round_trips': len(samples.values('node_round_trip')),
            'round_trips_unanswered': unanswered,
            'input_reliability': bench.reliability}
