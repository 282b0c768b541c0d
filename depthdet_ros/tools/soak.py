"""`depthdet soak`: feed depthdet_node at a steady rate for a long time and report drift.

Starts the node as its own process, publishes frames at --rate over DDS on this
machine, and samples the node's RSS and /diagnostics. Reports memory growth after
warm-up, latency drift (first vs last quarter), dropped frames, refused and failed
frames, stalls (gaps in output longer than --stall-seconds) and error log lines.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time

# Seconds between samples of the node's memory.
MEMORY_SAMPLE_S = 5.0
# Longest wait for the node to load its models and subscribe before frames are sent:
# frames published before that reach nobody and would count as lost.
STARTUP_TIMEOUT_S = 120.0
# After the last frame: time for the node to answer the frames in flight and publish
# diagnostics that count them (its diagnostics_period is 1 s).
DRAIN_S = 2.5


def add_parser(subparsers):
    """Register `depthdet soak`."""
    parser = subparsers.add_parser(
        'soak', help='long-running load test of depthdet_node (memory, latency drift, drops)',
        description=__doc__)
    parser.add_argument('--minutes', type=float, default=10.0, help='duration (default: 10)')
    parser.add_argument('--rate', type=float, default=30.0, help='input rate in Hz (default 30)')
    parser.add_argument('--params-file', default='', help='node parameters YAML')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--warmup-fraction', type=float, default=0.2,
                        help='share of the run treated as warm-up for memory growth')
    parser.add_argument('--stall-seconds', type=float, default=2.0,
                        help='an output gap longer than this counts as a stall')
    parser.add_argument('--input-reliability', default='reliable',
                        choices=('reliable', 'best_effort'),
                        help='QoS of the image stream; with best_effort, 640x480 frames are '
                             'also lost in Fast DDS transport (README, QoS) (default: reliable)')
    parser.add_argument('--json', default='', help='write the result here')
    parser.set_defaults(func=run)
    return parser


def _frames(width, height, count=8):
    """Render a few frames of the synthetic world to cycle through."""
    from depthdet_ros.sim.world import generate_frames
    return [f.rgb for f in generate_frames(seed=0, n_frames=count, scene='mixed',
                                           sizes=((width, height),))]


def check_arguments(args):
    """Raise CliError (ConfigError: the params file) with the reason an option cannot be used.

    Called before the node starts, so that a bad params file is not reported as a crash
    and a bad --json path does not cost the whole soak.
    """
    from depthdet_ros.arg_types import output_file
    from depthdet_ros.cli import CliError
    from depthdet_ros.ros.params import load_params_file
    for option, value in (('--minutes', args.minutes), ('--rate', args.rate),
                          ('--stall-seconds', args.stall_seconds), ('--width', args.width),
                          ('--height', args.height)):
        if not 0 < value < math.inf:
            raise CliError(f'{option} {value:g} must be a positive number')
    if not 0 <= args.warmup_fraction < 1:
        raise CliError(f'--warmup-fraction {args.warmup_fraction:g} must be in [0, 1), '
                       'e.g. 0.2')
    # Memory growth needs two samples after warm-up; a third interval absorbs timing slack.
    measured_s = args.minutes * 60 * (1 - args.warmup_fraction)
    if measured_s < 3 * MEMORY_SAMPLE_S:
        shortest = 3 * MEMORY_SAMPLE_S / 60 / (1 - args.warmup_fraction)
        raise CliError(f'--minutes {args.minutes:g} leaves {measured_s:.1f} s after warm-up, too '
                       f'short to measure memory growth (a sample every {MEMORY_SAMPLE_S:g} s); '
                       f'give --minutes {math.ceil(shortest * 100) / 100:g} or more')
    if args.params_file:
        load_params_file(args.params_file)
    if args.json:
        output_file(args.json, '--json')


def failures(result):
    """Return why the soak failed, one phrase per reason (empty when it passed)."""
    growth = result['rss_growth_percent']
    checks = (
        (result['node_crashed'], 'the node crashed'),
        (result['frames_failed'], f'{result["frames_failed"]} frames failed'),
        (result['error_log_lines'], f'{result["error_log_lines"]} error lines in the node log'),
        (result['stalls'], f'{result["stalls"]} output stalls'),
        (growth is None, 'memory growth not measured'),
        (growth is not None and growth >= 5.0, f'memory grew {growth} % (limit 5 %)'),
    )
    return [reason for failed, reason in checks if failed]


def run(args):
    """Run the soak and print a summary; exit 1 if an error, a stall or >5 % growth is seen."""
    check_arguments(args)
    import numpy as np
    import psutil
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from rich.console import Console
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2DArray

    from depthdet_ros.assets import default_params_file
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.ros import convert
    from depthdet_ros.ros.launcher import ros_environment

    console = Console()
    env = ros_environment()
    # This process is the camera: it gets the node's DDS settings (large-data profile
    # included), as a real camera driver should (README, Large images and QoS).
    os.environ.update(env)
    log_file = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
    node = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args',
                             '--params-file', args.params_file or default_params_file(),
                             '-p', 'diagnostics_period:=1.0',
                             '-p', f'input_reliability:={args.input_reliability}'],
                            env=env, stdout=log_file, stderr=subprocess.STDOUT)
    process = psutil.Process(node.pid)
    # Ctrl-C and SIGTERM (timeout, CI, systemd) end the soak early with the counts so far.
    from rclpy.signals import SignalHandlerOptions

    from depthdet_ros.ros.entry import StopSignals
    stop = StopSignals()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    probe = rclpy.create_node('depthdet_soak')
    qos = qos_profile_sensor_data if args.input_reliability == 'best_effort' else \
        QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = probe.create_publisher(Image, 'image', qos)
    info_pub = probe.create_publisher(CameraInfo, 'camera_info', qos)
    arrivals, diagnostics = [], []
    probe.create_subscription(Detection2DArray, 'detections',
                              lambda m: arrivals.append(time.monotonic()), 10)

    def on_diagnostics(msg):
        values = {kv.key: kv.value for kv in msg.status[0].values}
        diagnostics.append((time.monotonic(), values))

    probe.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    frames = _frames(args.width, args.height)
    camera = CameraModel.from_fov(args.width, args.height, 70.0, 'camera_optical_frame')
    messages = [convert.rgb_to_image_msg(f, Header(frame_id='camera_optical_frame'))
                for f in frames]
    duration = args.minutes * 60.0
    memory, stopped_by = [], None
    start = time.monotonic()
    sent = 0
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not image_pub.get_subscription_count() and node.poll() is None \
                and time.monotonic() < deadline and not stop.received:
            rclpy.spin_once(probe, timeout_sec=0.1)
        start = time.monotonic()
        next_frame, next_sample, sent = start, start, 0
        while time.monotonic() - start < duration and node.poll() is None \
                and not stop.received:
            now = time.monotonic()
            if now >= next_frame:
                msg = messages[sent % len(messages)]
                msg.header.stamp = probe.get_clock().now().to_msg()
                info_pub.publish(convert.camera_model_to_info(camera, msg.header))
                image_pub.publish(msg)
                sent += 1
                next_frame += 1.0 / args.rate
            if now >= next_sample:
                memory.append((now - start, process.memory_info().rss / 2**20))
                next_sample += MEMORY_SAMPLE_S
            rclpy.spin_once(probe, timeout_sec=max(0.0, min(next_frame, next_sample)
                                                   - time.monotonic()))
        # Stopped early: by a signal before the soak's time was up (not in the drain).
        stopped_by = stop.received
        if stopped_by:
            duration = time.monotonic() - start
        drained = time.monotonic() + DRAIN_S
        while time.monotonic() < drained and node.poll() is None and not stop.received:
            rclpy.spin_once(probe, timeout_sec=0.1)
    finally:
        # A terminal's Ctrl-C reaches the node too: its clean exit is no crash.
        crashed = node.poll() is not None and not (stop.received and node.returncode == 0)
        if not crashed:
            node.send_signal(2)
            node.wait(timeout=15)
        probe.destroy_node()
        rclpy.try_shutdown()
    log_file.seek(0)
    log = log_file.read()
    log_file.close()
    warm = [m for t, m in memory if t >= duration * args.warmup_fraction]
    growth = round((warm[-1] - warm[0]) / warm[0] * 100, 2) if len(warm) > 1 else None
    quarter = duration / 4
    early = [float(d['latency_total_p50_ms']) for t, d in diagnostics
             if 'latency_total_p50_ms' in d and t - start < quarter + duration * 0.05]
    late = [float(d['latency_total_p50_ms']) for t, d in diagnostics
            if 'latency_total_p50_ms' in d and t - start > duration - quarter]
    last = diagnostics[-1][1] if diagnostics else {}
    gaps = np.diff(arrivals) if len(arrivals) > 1 else np.zeros(0)
    result = {
        'minutes': args.minutes, 'rate_hz': args.rate, 'frames_sent': sent,
        'input_reliability': args.input_reliability,
        'outputs': len(arrivals), 'node_crashed': crashed,
        # Frames neither answered nor counted as dropped or refused by the node were
        # lost in transport (best-effort QoS, or a reliable writer's full queue).
        'lost_in_transport': None,
        'rss_mb_after_warmup': round(warm[0], 1) if warm else None,
        'rss_mb_end': round(warm[-1], 1) if warm else None,
        'rss_growth_percent': growth,
        'latency_p50_ms_first_quarter': round(float(np.median(early)), 2) if early else None,
        'latency_p50_ms_last_quarter': round(float(np.median(late)), 2) if late else None,
        'frames_dropped': int(last.get('frames_dropped', 0)),
        'frames_failed': int(last.get('frames_failed', 0)),
        'images_refused': int(last.get('images_refused', 0)),
        'longest_output_gap_s': round(float(gaps.max()), 3) if gaps.size else None,
        'stalls': int((gaps > args.stall_seconds).sum()),
        'error_log_lines': sum('[ERROR]' in line or 'Traceback' in line
                               for line in log.splitlines()),
        'provider': last.get('detector_provider', '?'),
    }
    result['lost_in_transport'] = max(0, sent - len(arrivals) - result['frames_dropped']
                                      - result['images_refused'])
    if stopped_by:
        result['stopped_early'] = (f'{stopped_by} after {duration / 60:.2f} of '
                                   f'{args.minutes:g} min')
    console.print_json(json.dumps(result))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    reasons = failures(result)
    if reasons or crashed:
        console.print(f'node log: {log_file.name}', soft_wrap=True)
    else:
        os.unlink(log_file.name)
    if reasons:
        console.print('soak failed: ' + '; '.join(reasons), soft_wrap=True)
    if stopped_by:
        console.print(f'soak stopped early by {stopped_by}', soft_wrap=True)
        return stop.exit_status
    return 1 if reasons else 0
