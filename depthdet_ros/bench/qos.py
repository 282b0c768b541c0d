"""`depthdet bench-qos`: frames a camera sends and depthdet_node's input receives, per QoS.

For each camera reliability, image size and rate, a plain rclpy camera process publishes
--frames rgb8 images and a second process subscribes to them exactly as depthdet_node
does (depthdet_ros.ros.qos.subscribe_input), in a separate process as a real camera
driver would be (Fast DDS delivers in-process samples without its transports). Configs:
  before         the node's previous default: a best-effort subscription, no DDS profile;
  after          the node's default input_reliability, the environment `depthdet
                 pipeline` and the launch file give the node; the camera as it is;
  after+profile  as `after`, and the camera also given config/fastdds_large_data.xml.
The subscriber starts first and the camera publishes as soon as it is matched, as a
camera started after the node would. Like a driver, the camera publishes a CameraInfo
with each image's stamp right after it (before it with --info-first); a frame whose
CameraInfo comes more than the node's wait for it (ros.node.CAMERA_INFO_WAIT_S) after
the image, or never, is counted as late: the node would publish it without 3D
positions. Both use this machine's loopback only.
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

CONFIGS = ('before', 'after', 'after+profile')
CAMERAS = ('reliable', 'best_effort')
DEFAULT_SIZES = ('640x480', '1280x720', '1920x1080')
DEFAULT_RATES = (10.0, 30.0)
MATCH_TIMEOUT_S = 15.0
# The subscriber's side must see the camera this long before frames start: `auto`
# input QoS may still replace its first subscription (it re-reads the graph every 0.2 s).
MATCH_SETTLE_S = 0.6
# After the last frame: how long the subscriber waits for stragglers (retransmissions).
DRAIN_S = 1.0
TOPIC = 'bench_qos/image'
# The node's input subscription before input_reliability 'auto': rclpy's sensor-data QoS.
PREVIOUS_DEFAULT = 'sensor_data'


def add_parser(subparsers):
    """Register `depthdet bench-qos`."""
    parser = subparsers.add_parser(
        'bench-qos', help='frames received of large camera images, per camera QoS',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=30,
                        help='frames the camera publishes per case (default: 30)')
    parser.add_argument('--sizes', default=','.join(DEFAULT_SIZES), metavar='WxH,...',
                        help=f'image sizes (default: {",".join(DEFAULT_SIZES)})')
    parser.add_argument('--rates', default=','.join(f'{r:g}' for r in DEFAULT_RATES),
                        metavar='HZ,...', help='camera rates (default: 10,30)')
    parser.add_argument('--cameras', default=','.join(CAMERAS), metavar='QOS,...',
                        help=f'camera reliabilities from {", ".join(CAMERAS)} (default: both)')
    parser.add_argument('--configs', default=','.join(CONFIGS), metavar='NAME,...',
                        help=f'configs from {", ".join(CONFIGS)} (default: all)')
    parser.add_argument('--info-first', action='store_true',
                        help='the camera publishes each CameraInfo before its image, as some '
                             'drivers do (default: after it)')
    parser.add_argument('--json', metavar='PATH', help='also write the result as JSON')
    parser.set_defaults(func=run)
    return parser


def _csv(text, parse, allowed=None, what='value'):
    from depthdet_ros.cli import CliError
    items = [t.strip() for t in text.split(',') if t.strip()]
    try:
        values = [parse(t) for t in items]
    except ValueError:
        raise CliError(f'{text!r}: not a list of {what}') from None
    if not values or (allowed and set(values) - set(allowed)):
        raise CliError(f'{text!r}: choose {what} from {", ".join(allowed or ())}')
    return values


def _size(text):
    from depthdet_ros.arg_types import parse_size
    return parse_size(text)


def _rate(text):
    rate = float(text)
    if not 0 < rate <= 1000:
        raise ValueError(text)
    return rate


def node_default_reliability():
    """depthdet_node's default input_reliability (the parameter table's)."""
    from depthdet_ros.ros.params import BY_NAME
    return BY_NAME['input_reliability'].default


def environments(config, base=None):
    """(camera env, subscriber env, subscriber reliability) for a config name."""
    from depthdet_ros.ros.launcher import ros_environment
    from depthdet_ros.ros.qos import large_data_environment, PROFILE_ENV_VARS

    base = dict(ros_environment() if base is None else base)
    for name in PROFILE_ENV_VARS:  # a profile of the user's own would blur the comparison
        base.pop(name, None)
    if config == 'before':
        return base, base, PREVIOUS_DEFAULT
    with_profile = dict(base, **large_data_environment(base))
    camera = with_profile if config == 'after+profile' else base
    return camera, with_profile, node_default_reliability()


def info_topic(image_topic):
    """Return the CameraInfo topic beside an image topic (`ns/image` -> `ns/camera_info`)."""
    namespace = image_topic.rpartition('/')[0]
    return f'{namespace}/camera_info' if namespace else 'camera_info'


def _role_command(role, reliability, topic, frames, rate, size='640x480', info_first=False):
    return [sys.executable, '-m', 'depthdet_ros.bench.qos', '--role', role, '--reliability',
            reliability, '--topic', topic, '--frames', str(frames), '--rate', str(rate),
            '--size', size] + (['--info-first'] if info_first else [])


def start_camera(reliability, width, height, rate, frames, env, topic=TOPIC,
                 info_first=False):
    """Start a camera process: a first stdin line creates its publishers, a second starts.

    It then waits for a subscriber, publishes `frames` rgb8 images at `rate`, stays
    DRAIN_S for retransmissions, and prints {"sent", "publish_s", "matched"} as JSON.
    Closing stdin after the first line starts it once it sees a subscriber.
    """
    return subprocess.Popen(
        _role_command('camera', reliability, topic, frames, rate, f'{width}x{height}',
                      info_first),
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_case(camera_reliability, width, height, rate, frames, config, topic=TOPIC,
             info_first=False):
    """Run one camera and one subscriber process; returns the case's result dict."""
    camera_env, subscriber_env, reliability = environments(config)
    # Both start at once; the camera creates its publisher when the subscriber is up.
    subscriber = subprocess.Popen(
        _role_command('subscriber', reliability, topic, frames, rate),
        env=subscriber_env, stdout=subprocess.PIPE, text=True)
    camera = start_camera(camera_reliability, width, height, rate, frames, camera_env, topic,
                          info_first)
    try:
        if subscriber.stdout.readline().strip() != 'ready':
            raise RuntimeError('the subscriber process did not start')
        camera.stdin.write('go\n')  # create the publishers
        camera.stdin.flush()
        # Matching is not symmetric: the camera seeing the subscriber does not mean the
        # subscriber has matched the camera, and a first frame sent in between is lost
        # to a startup effect, not to QoS or size. Publishing starts once both sides see
        # each other (or the subscriber gave up: then the camera's own wait decides).
        subscriber.stdout.readline()
        out, _ = camera.communicate('start\n', timeout=MATCH_TIMEOUT_S + frames / rate + 30)
        sent = json.loads(out.strip().splitlines()[-1])
        subscriber.send_signal(signal.SIGUSR1)  # the camera is done and has drained
        out, _ = subscriber.communicate(timeout=30)
        received = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in (camera, subscriber):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {'camera': camera_reliability, 'size': f'{width}x{height}', 'rate': rate,
            'config': config, 'subscription': reliability, 'info_first': info_first, **sent,
            **received}


def render_table(cases, configs):
    """Markdown table: one row per camera QoS, size and rate; received per config."""
    rows = {}
    for case in cases:
        key = (case['camera'], case['size'], case['rate'])
        rows.setdefault(key, {})[case['config']] = case
    header = ['camera QoS', 'size', 'rate', 'sent'] + [f'received, {c}' for c in configs]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for (camera, size, rate), by_config in rows.items():
        sent = max(c['sent'] for c in by_config.values())
        cells = [camera, size, f'{rate:g} Hz', str(sent)]
        for config in configs:
            case = by_config.get(config)
            if case is None or not case['matched']:
                cells.append('-' if case is None else 'no match')
                continue
            late = case.get('info_late', 0)
            cells.append(f'{case["received"]}' + (f' ({late} CameraInfo late)' if late else ''))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def run(args):
    """Run every case; print the table (and write JSON)."""
    from depthdet_ros.arg_types import output_file
    from depthdet_ros.cli import CliError

    sizes = _csv(args.sizes, _size, what='WIDTHxHEIGHT sizes')
    rates = _csv(args.rates, _rate, what='rates in Hz (0-1000]')
    cameras = _csv(args.cameras, str, CAMERAS, 'camera reliabilities')
    configs = _csv(args.configs, str, CONFIGS, 'configs')
    if args.frames < 1:
        raise CliError('--frames must be >= 1')
    if args.json:
        output_file(args.json, '--json')  # before the cases, not after them
    order = 'before' if args.info_first else 'after'
    print(f'camera {args.frames} frames per case, CameraInfo {order} each image; the '
          f'node\'s default input_reliability: {node_default_reliability()}; '
          f'ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")}', file=sys.stderr)
    cases = []
    for camera in cameras:
        for width, height in sizes:
            for rate in rates:
                for config in configs:
                    case = run_case(camera, width, height, rate, args.frames, config,
                                    info_first=args.info_first)
                    never = '' if case['matched'] else ' (never matched)'
                    print(f'  {camera:<11} {width}x{height} {rate:g} Hz {config:<13} '
                          f'received {case["received"]}/{case["sent"]}, CameraInfo late '
                          f'{case["info_late"]}{never}', file=sys.stderr, flush=True)
                    cases.append(case)
    load = os.getloadavg()[0]
    print(render_table(cases, configs))
    print(f'\n{os.cpu_count()} CPUs, load average {load:.1f} at the end; frames a CPU-bound '
          'machine cannot move in time are lost whatever the QoS; "CameraInfo late": frames '
          f'received whose CameraInfo came over {_info_wait_s():g} s after them or never')
    duplicates = sum(c['delivered'] - c['received'] for c in cases)
    if duplicates:
        print(f'\n{duplicates} frames were delivered twice')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'frames': args.frames, 'cpus': os.cpu_count(), 'load_average': load,
                       'cases': cases}, f, indent=1)
    return 0


def _info_wait_s():
    from depthdet_ros.ros.node import CAMERA_INFO_WAIT_S
    return CAMERA_INFO_WAIT_S


# Child processes ------------------------------------------------------------------------

def _camera(args):
    """Publish --frames images at --rate once a subscriber is matched; print what was sent."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    width, height = _size(args.size)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bench_qos_camera')
    sys.stdin.readline()  # the subscriber is up
    # What camera drivers commonly use: rclpy's default (reliable, keep last 10) or
    # the sensor-data profile (best-effort, keep last 5).
    qos = 10 if args.reliability == 'reliable' else qos_profile_sensor_data
    publisher = node.create_publisher(Image, args.topic, qos)
    info_publisher = node.create_publisher(CameraInfo, info_topic(args.topic), qos)
    msg = Image(width=width, height=height, encoding='rgb8', step=3 * width)
    msg.header.frame_id = 'bench_camera'
    msg.data = bytes(3 * width * height)
    f = 0.5 * width
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob',
                      k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0])
    info.header = msg.header
    sys.stdin.readline()  # the subscriber has matched these publishers (or gave up)
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while min(publisher.get_subscription_count(), info_publisher.get_subscription_count()) < 1 \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    matched = publisher.get_subscription_count() > 0
    sent = 0
    start = time.monotonic()
    for i in range(args.frames if matched else 0):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 0
        # The CameraInfo shares msg.header: the image's stamp.
        if args.info_first:
            info_publisher.publish(info)
        publisher.publish(msg)
        if not args.info_first:
            info_publisher.publish(info)
        sent += 1
        time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    time.sleep(DRAIN_S)  # stay to answer retransmission requests
    print(json.dumps({'sent': sent, 'publish_s': round(time.monotonic() - start - DRAIN_S, 2),
                      'matched': matched}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def _publisher_count(subscription):
    counter = getattr(subscription, 'publisher_count', None) or subscription.get_publisher_count
    return counter()


def _wait_for_publishers(node, subscriptions):
    """Spin until every subscription has matched a publisher and `auto` has settled.

    `auto` may replace its first subscription once it sees the camera's QoS: matched
    means matched for MATCH_SETTLE_S on end.
    """
    import rclpy
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    since = None
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
        if all(_publisher_count(s) for s in subscriptions):
            since = since or time.monotonic()
            if time.monotonic() - since >= MATCH_SETTLE_S:
                return
        else:
            since = None


def _subscriber(args):
    """Subscribe as depthdet_node does; print frames received when all came or SIGUSR1."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo, Image

    from depthdet_ros.ros.qos import subscribe_input

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bench_qos_node')
    arrivals = {Image: {}, CameraInfo: {}}  # type -> stamp -> first arrival (monotonic)
    delivered, camera_done = [0], []

    def on_image(msg):
        arrivals[Image].setdefault(msg.header.stamp.sec, time.monotonic())
        delivered[0] += 1

    def on_info(msg):
        arrivals[CameraInfo].setdefault(msg.header.stamp.sec, time.monotonic())

    signal.signal(signal.SIGUSR1, lambda *_: camera_done.append(time.monotonic()))
    subscriptions = []
    for msg_type, topic, callback in ((Image, args.topic, on_image),
                                      (CameraInfo, info_topic(args.topic), on_info)):
        if args.reliability == PREVIOUS_DEFAULT:
            from rclpy.qos import qos_profile_sensor_data
            subscriptions.append(node.create_subscription(msg_type, topic, callback,
                                                          qos_profile_sensor_data))
        else:
            subscriptions.append(subscribe_input(node, msg_type, topic, callback,
                                                 args.reliability))
    print('ready', flush=True)
    _wait_for_publishers(node, subscriptions)
    print('matched', flush=True)
    images, infos = arrivals[Image], arrivals[CameraInfo]
    deadline = time.monotonic() + MATCH_TIMEOUT_S + args.frames / args.rate + DRAIN_S + 30
    while min(len(images), len(infos)) < args.frames and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if camera_done and time.monotonic() > camera_done[0] + 0.5:
            break
    missing = sorted(set(range(1000, 1000 + args.frames)) - set(images))
    wait = _info_wait_s()
    late = sum(1 for stamp, arrived in images.items()
               if infos.get(stamp, math.inf) - arrived > wait)
    print(json.dumps({'received': len(images), 'delivered': delivered[0],
                      'missing': [i - 1000 for i in missing], 'info_late': late}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def main(argv=None):
    """Entry point of the camera and subscriber child processes."""
    parser = argparse.ArgumentParser(description='depthdet bench-qos child process')
    parser.add_argument('--role', choices=('camera', 'subscriber'), required=True)
    parser.add_argument('--reliability', required=True)
    parser.add_argument('--topic', default=TOPIC)
    parser.add_argument('--frames', type=int, required=True)
    parser.add_argument('--rate', type=float, required=True)
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--info-first', action='store_true')
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches these children too; `depthdet bench-qos` stops them
    # itself, so they stay quiet instead of printing KeyboardInterrupt tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    (_camera if args.role == 'camera' else _subscriber)(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
