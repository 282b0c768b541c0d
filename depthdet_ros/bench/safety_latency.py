"""proximity_alert latency with and without heavy subscribers on depth and debug_image.

    python -m depthdet_ros.bench.safety_latency [--width 1280 --height 720 --rate 2]

Starts depthdet_node (depth and debug_image on, reliable input) and a second process
whose subscriptions to `depth` and `debug_image` are switched on and off between phases.
Phases alternate (without, with, without, ...) in one run so the machine's load falls
on both alike; each frame's latency is from publishing the image to receiving its
proximity_alert (matched by stamp). Prints p50/p99 per condition, the ratios, and the
alerts that never arrived. Target: p99 with / without <= 1.2.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from depthdet_ros.arg_types import bench_count, bench_seconds, image_side, output_file, \
    positive_float
from depthdet_ros.bench.frames import synthetic_rgb
from depthdet_ros.bench.ros_bench import isolate_dds, NodeUnderTest
from depthdet_ros.bench.stats import ratio, summarize

REPLY_TIMEOUT_S = 3.0
SETTLE_S = 2.0          # after switching the heavy subscriptions (discovery, matching)
CONDITIONS = ('without', 'with')


def _reliable(depth):
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE)


def heavy_subscriber():
    """Run the heavy reader: 'on' / 'off' lines on stdin switch its subscriptions."""
    import select

    import numpy as np
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    import signal

    from rclpy.signals import SignalHandlerOptions

    # The parent ends this process ('quit' on stdin); a terminal's Ctrl-C to the whole
    # group must not break it into a traceback first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = Node('heavy_reader')
    subscriptions = []
    received = [0]

    def on_image(msg):
        # A real consumer reads the pixels (a viewer, a recorder, a costmap).
        np.frombuffer(msg.data, np.uint8).sum()
        received[0] += 1

    try:
        while True:
            if select.select([sys.stdin], [], [], 0.0)[0]:
                command = sys.stdin.readline().strip()
                if command in ('quit', ''):
                    break
                for subscription in subscriptions:
                    node.destroy_subscription(subscription)
                subscriptions = []
                if command == 'on':
                    # Two readers per image topic, default reliable QoS like rviz.
                    subscriptions = [node.create_subscription(Image, topic, on_image, 10)
                                     for topic in ('depth', 'debug_image') for _ in range(2)]
                print(f'{command} {received[0]}', flush=True)
            rclpy.spin_once(node, timeout_sec=0.01)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


class HeavyReader:
    """The heavy_subscriber process, switched on and off from here."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'depthdet_ros.bench.safety_latency', '--heavy-subscriber'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def switch(self, on):
        """Create (on) or remove (off) its subscriptions; returns images read so far."""
        self.proc.stdin.write('on\n' if on else 'off\n')
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def close(self):
        """End the process."""
        try:
            self.proc.stdin.write('quit\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def _make_probe(width, height):
    import rclpy  # noqa: F401  (initialised by the caller)
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection3DArray

    class Probe(Node):
        """Publishes stamped frames and records when each proximity_alert arrives."""

        def __init__(self):
            super().__init__('safety_latency_bench')
            self.image_pub = self.create_publisher(Image, 'image', _reliable(5))
            self.info_pub = self.create_publisher(CameraInfo, 'camera_info', _reliable(5))
            self.sent = {}       # stamp ns -> publish time
            self.alerts = {}     # stamp ns -> receive time
            self.create_subscription(Detection3DArray, 'proximity_alert', self._on_alert,
                                     _reliable(50))
            rgb = synthetic_rgb(width, height)
            self.image = Image(encoding='rgb8', width=width, height=height, step=width * 3,
                               data=rgb.tobytes())
            self.image.header.frame_id = 'camera_optical_frame'
            f = width / 2.0
            self.info = CameraInfo(width=width, height=height, distortion_model='plumb_bob',
                                   d=[0.0] * 5,
                                   k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0],
                                   r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                                   p=[f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0,
                                      0.0, 1.0, 0.0])
            self.counter = 0

        def _on_alert(self, msg):
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.alerts.setdefault(stamp, time.perf_counter())

        def send(self):
            """Publish the frame (then its CameraInfo) with a new stamp; returns the stamp."""
            self.counter += 1
            stamp = 1_000 * 10**9 + self.counter * 10**6
            self.image.header.stamp.sec, self.image.header.stamp.nanosec = divmod(stamp, 10**9)
            self.info.header = self.image.header
            self.sent[stamp] = time.perf_counter()
            self.image_pub.publish(self.image)
            self.info_pub.publish(self.info)
            return stamp

    return Probe()


def _spin(probe, stop, seconds, rate_hz=None, stamps=None):
    """Spin the probe, sending at `rate_hz`; KeyboardInterrupt once `stop` has a signal.

    Raised here, between spins: raised from a signal handler inside rclpy's take, it
    would surface as a pybind11 RuntimeError (ros.entry.StopSignals).
    """
    import rclpy
    deadline = time.monotonic() + seconds
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        if stop.received:
            raise KeyboardInterrupt
        if rate_hz and time.monotonic() >= next_send:
            stamp = probe.send()
            if stamps is not None:
                stamps.append(stamp)
            next_send += 1.0 / rate_hz
        rclpy.spin_once(probe, timeout_sec=0.002)


def run_benchmark(args):
    """Run the phases; returns the result dict."""
    isolate_dds()
    if not args.no_large_data_profile:
        # As `depthdet pipeline` and the launch file run the node (and the camera).
        from depthdet_ros.ros.qos import large_data_environment
        os.environ.update(large_data_environment(os.environ))
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from depthdet_ros.ros.entry import StopSignals

    params = {'providers': args.providers, 'publish_depth': True,
              'publish_debug_image': True, 'input_reliability': 'reliable',
              'max_depth': 1000.0}
    stamps = {c: [] for c in CONDITIONS}
    with tempfile.TemporaryDirectory() as workdir, NodeUnderTest(params, workdir) as node:
        stop = StopSignals()
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        probe = _make_probe(args.width, args.height)
        heavy = HeavyReader()
        try:
            deadline = time.monotonic() + 120
            while not probe.alerts:
                if not node.running() or time.monotonic() > deadline:
                    raise SystemExit('depthdet_node did not answer:\n' + node.log_tail())
                _spin(probe, stop, 0.5, rate_hz=2)
            images_read = 0
            for round_index in range(args.rounds):
                for condition in CONDITIONS:
                    # The run takes minutes: say where it is (stderr; stdout is the table).
                    print(f'round {round_index + 1}/{args.rounds}: {args.seconds:g} s '
                          f'{condition} heavy subscribers', file=sys.stderr, flush=True)
                    heavy.switch(condition == 'with')
                    _spin(probe, stop, SETTLE_S, rate_hz=args.rate)
                    _spin(probe, stop, args.seconds, rate_hz=args.rate,
                          stamps=stamps[condition])
            _spin(probe, stop, REPLY_TIMEOUT_S)
            images_read = heavy.switch(False)
        finally:
            heavy.close()
            probe.destroy_node()
            rclpy.try_shutdown()
    result = {'frame': f'{args.width}x{args.height}', 'rate_hz': args.rate,
              'fastdds_profile': os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE', ''),
              'rounds': args.rounds, 'seconds_per_phase': args.seconds,
              'heavy_images_read': images_read, 'conditions': {}}
    for condition in CONDITIONS:
        latencies, missing = [], 0
        for stamp in stamps[condition]:
            received = probe.alerts.get(stamp)
            if received is None or received - probe.sent[stamp] > REPLY_TIMEOUT_S:
                missing += 1
            else:
                latencies.append((received - probe.sent[stamp]) * 1e3)
        result['conditions'][condition] = {'sent': len(stamps[condition]),
                                           'missing': missing, **summarize(latencies)}
    without, with_ = result['conditions']['without'], result['conditions']['with']
    result['ratio_p50'] = ratio(with_['p50'], without['p50'])
    result['ratio_p99'] = ratio(with_['p99'], without['p99'])
    return result


def print_result(result):
    """Print the table and ratios."""
    print(f"proximity_alert latency, {result['frame']} at {result['rate_hz']} Hz, "
          f"{result['rounds']} rounds x {result['seconds_per_phase']} s per condition "
          f"(heavy reader took {result['heavy_images_read']} images; Fast DDS profile: "
          f"{result['fastdds_profile'] or 'none'})")
    print('| heavy subscribers on depth + debug_image | sent | missing | p50 ms | p99 ms |')
    print('|---|---:|---:|---:|---:|')
    for condition, row in result['conditions'].items():
        print(f"| {condition} | {row['sent']} | {row['missing']} | {row['p50']} | "
              f"{row['p99']} |")
    print(f"ratio with / without: p50 {result['ratio_p50']}, p99 {result['ratio_p99']} "
          '(target p99 <= 1.2)')


def _providers(text):
    """Check a `providers` value as the node would, before the node starts."""
    from depthdet_ros.ros.params import check_value, ConfigError
    try:
        return check_value('providers', text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv=None):
    """Entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=image_side, default=1280)
    parser.add_argument('--height', type=image_side, default=720)
    parser.add_argument('--rate', type=positive_float, default=2.0, help='frames per second sent')
    parser.add_argument('--rounds', type=bench_count, default=5)
    parser.add_argument('--seconds', type=bench_seconds, default=15.0, help='per phase')
    parser.add_argument('--providers', type=_providers, default='cpu')
    parser.add_argument('--no-large-data-profile', action='store_true',
                        help="run without the Fast DDS large-data profile the launch applies")
    parser.add_argument('--json', help='also write the result here')
    parser.add_argument('--heavy-subscriber', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.heavy_subscriber:
        heavy_subscriber()
        return 0
    if args.json:
        from depthdet_ros.cli import CliError
        try:
            output_file(args.json, '--json')
        except CliError as exc:
            parser.error(str(exc))
    try:
        result = run_benchmark(args)
    except KeyboardInterrupt:
        print('safety_latency: stopped by a signal; nothing measured', file=sys.stderr)
        return 130
    print_result(result)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
