"""`depthdet replay BAG`: publish a bag's camera topics over ROS 2 with their timing.

What `ros2 bag play` would feed the node, without a ROS install beyond the pip rclpy:
the bag is read with rosbags, and each message's CDR bytes are published as they are
(rclpy publishes serialized messages directly), after checking that they deserialise;
messages that do not are counted and skipped. Message i goes out at
start + (t_i - t_0) / rate, t being bag timestamps. With --clock, /clock carries the
bag time (at --clock-hz between messages), so nodes with use_sim_time:=true see the
recorded time. Header stamps are never rewritten.

Topics: the camera images (Image / CompressedImage, not depth) and every CameraInfo by
default; --with-depth adds depth images, --with-ground-truth the ground-truth topics,
--topics names them explicitly. --remap FROM:=TO renames (FROM with or without the
leading slash; a relative TO resolves in the root namespace, as the node's inputs do).

Like a camera driver, the process publishes with the large-data Fast DDS profile (README,
"Large images and QoS") unless the user names a profile of their own: without it, camera
images hold up the CameraInfo published beside them, and frames are lost. Before it
exits, it waits (up to FLUSH_S) for reliable subscribers to acknowledge everything.
Ctrl-C stops it with the counts so far and exit status 0, as `ros2 bag play`.
"""
import importlib
import math
import os
import time

from depthdet_ros.arg_types import non_negative_float, positive_float
from depthdet_ros.bags import bag_messages, listed_messages

DEFAULT_CLOCK_HZ = 100.0
# Seconds the last messages may take to be acknowledged by reliable subscribers.
FLUSH_S = 5.0


def message_class(msgtype):
    """Return the rclpy message class of a type name such as 'sensor_msgs/msg/Image'."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def add_parser(subparsers):
    """Register `depthdet replay`."""
    parser = subparsers.add_parser(
        'replay', help='publish a rosbag2\'s camera topics over ROS 2 with original timing',
        description='Publish the camera topics of a rosbag2 (MCAP or sqlite3) with their '
                    'recorded timing, optionally with /clock, so that depthdet_node can be '
                    'evaluated live as `ros2 bag play` would feed it.')
    parser.add_argument('bag', help='rosbag2 folder')
    parser.add_argument('--rate', type=positive_float, default=1.0,
                        help='speed factor (default 1)')
    parser.add_argument('--loop', action='store_true', help='start over at the end')
    parser.add_argument('--clock', action='store_true',
                        help='publish /clock with the bag time (for use_sim_time)')
    parser.add_argument('--clock-hz', type=float, default=DEFAULT_CLOCK_HZ,
                        help=f'/clock rate between messages (default {DEFAULT_CLOCK_HZ:g})')
    parser.add_argument('--topics', nargs='+', default=None, metavar='TOPIC',
                        help='topics to publish (default: camera images and camera_info)')
    parser.add_argument('--with-depth', action='store_true', help='also publish depth images')
    parser.add_argument('--with-ground-truth', action='store_true',
                        help='also publish the ground-truth topics')
    parser.add_argument('--remap', action='append', default=[], metavar='FROM:=TO',
                        help='publish topic FROM as TO (repeatable), e.g. '
                             'camera/image:=image')
    parser.add_argument('--reliability', choices=('reliable', 'best_effort'),
                        default='reliable', help='publisher QoS reliability (default reliable)')
    parser.add_argument('--wait-for-subscribers', type=non_negative_float, default=0.0,
                        metavar='SECONDS',
                        help='before starting, wait up to this long for a subscriber on '
                             'every image topic')
    parser.set_defaults(func=run)
    return parser


def parse_remaps(entries):
    """Turn ['a:=b', ...] into {'/a': 'b'}; raises ValueError on malformed entries."""
    remaps = {}
    for entry in entries:
        source, sep, target = entry.partition(':=')
        if not sep or not source.strip('/') or not target.strip('/'):
            raise ValueError(f'--remap {entry!r} must look like FROM:=TO')
        remaps['/' + source.strip('/')] = target
    return remaps


def replay_topics(topic_types, topics=None, with_depth=False, with_ground_truth=False):
    """Choose the topics to publish (see the module doc); raises ValueError."""
    from depthdet_ros.eval.bag_input import (camera_image_topics, CAMERA_INFO, COMPRESSED_IMAGE,
                                             IMAGE, is_depth_topic, is_ground_truth_topic)
    if topics:
        missing = [t for t in topics if t not in topic_types]
        if missing:
            raise ValueError(f'not in the bag: {", ".join(missing)}; topics in the bag: '
                             + ', '.join(sorted(topic_types)))
        return list(topics)
    chosen = set(camera_image_topics(topic_types))
    chosen |= {t for t, m in topic_types.items() if m == CAMERA_INFO}
    if with_depth:
        chosen |= {t for t, m in topic_types.items()
                   if m in (IMAGE, COMPRESSED_IMAGE) and is_depth_topic(t)}
    if with_ground_truth:
        chosen |= {t for t in topic_types if is_ground_truth_topic(t)}
    if not chosen:
        raise ValueError('no camera topics in the bag; topics in the bag: '
                         + ', '.join(f'{t} [{m}]' for t, m in sorted(topic_types.items())))
    return sorted(chosen)


class Replayer:
    """Publishes chosen bag topics on an rclpy node with the recorded timing."""

    def __init__(self, node, bag, topics, remaps, rate=1.0, clock_hz=0.0,
                 reliability='reliable'):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from depthdet_ros.bags import make_typestore
        from depthdet_ros.eval.bag_input import open_reader

        if not rate > 0:
            raise ValueError(f'--rate must be > 0, got {rate}')
        self.node, self.bag, self.rate = node, bag, float(rate)
        self.store = make_typestore()
        reader = open_reader(bag)
        self._types = {c.topic: c.msgtype for c in reader.connections}
        # Messages the bag's index lists on the topics replayed (a damaged file reads fewer).
        self.listed = sum(n for topic, n in listed_messages(reader).items() if topic in topics)
        reader.close()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE
                         if reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT)
        self.publishers = {}
        for topic in topics:
            try:
                msg_class = message_class(self._types[topic])
            except (AttributeError, ImportError, ValueError):
                raise ValueError(f'{topic}: message type {self._types[topic]} is not '
                                 'installed for rclpy') from None
            target = remaps.get(topic, topic)
            try:
                self.publishers[topic] = node.create_publisher(msg_class, target, qos)
            except Exception as exc:  # rclpy's name and type errors have no common base
                reason = str(exc).splitlines()[0]
                raise ValueError(f'cannot publish {topic} as {target!r}: {reason}') from None
        self.clock_period = 1.0 / clock_hz if clock_hz > 0 else 0.0
        self.clock_pub = None
        if self.clock_period:
            from rosgraph_msgs.msg import Clock
            self.clock_pub = node.create_publisher(Clock, '/clock', QoSProfile(depth=1))
        self.published = {topic: 0 for topic in topics}
        self.corrupt = 0

    def wait_for_subscribers(self, topics, timeout_s):
        """Wait until every topic in `topics` has a subscriber; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def flush(self, timeout_s=FLUSH_S):
        """Wait until reliable subscribers have every message (False if some have not)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        return all(publisher.wait_for_all_acked(
            Duration(seconds=max(0.0, deadline - time.monotonic())))
            for publisher in self.publishers.values())

    def _publish_clock(self, bag_time_ns):
        from rosgraph_msgs.msg import Clock
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_time_ns), 1_000_000_000)
        self.clock_pub.publish(msg)

    def _wait_until(self, due, start, first_ns):
        while True:
            now = time.monotonic()
            if now >= due:
                return
            if self.clock_pub is None:
                time.sleep(due - now)
                continue
            self._publish_clock(first_ns + (now - start) * self.rate * 1e9)
            time.sleep(min(due - now, self.clock_period))

    def play_once(self):
        """Publish the chosen topics once through, in bag order, with the bag's timing."""
        from depthdet_ros.eval.bag_input import open_reader
        reader = open_reader(self.bag)
        try:
            connections = [c for c in reader.connections if c.topic in self.publishers]
            start, first_ns = time.monotonic(), None
            for connection, bag_time, raw in bag_messages(reader, connections):
                if first_ns is None:
                    first_ns = bag_time
                self._wait_until(start + (bag_time - first_ns) / 1e9 / self.rate, start,
                                 first_ns)
                data = bytes(raw)
                try:
                    self.store.deserialize_cdr(data, connection.msgtype)
                except Exception:  # garbage of any kind: never hand it to subscribers
                    self.corrupt += 1
                    continue
                if self.clock_pub is not None:
                    self._publish_clock(bag_time)
                self.publishers[connection.topic].publish(data)
                self.published[connection.topic] += 1
        finally:
            reader.close()


def run(args):
    """Replay until the bag ends (or Ctrl-C); print what was published."""
    import rclpy

    from depthdet_ros.cli import CliError
    from depthdet_ros.eval.bag_input import camera_image_topics, open_reader

    try:
        if args.clock and not (math.isfinite(args.clock_hz) and args.clock_hz > 0):
            raise ValueError(f'--clock-hz must be a number > 0, got {args.clock_hz}')
        remaps = parse_remaps(args.remap)
        reader = open_reader(args.bag)
        topic_types = {c.topic: c.msgtype for c in reader.connections}
        counts = {}
        for c in reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
        reader.close()
        topics = replay_topics(topic_types, args.topics, args.with_depth,
                               args.with_ground_truth)
        # Nothing to publish: a --loop over it would spin without end.
        if not any(counts[t] for t in topics):
            raise ValueError(f'{args.bag} has no messages on {", ".join(topics)}')
        # A FROM the replay does not publish is a typo: the node would get nothing there.
        unused = [source for source in remaps if source not in topics]
        if unused:
            raise ValueError(f'--remap {", ".join(unused)}: not a topic being replayed; '
                             f'replayed: {", ".join(topics)}')
    except ValueError as exc:
        raise CliError(str(exc)) from None
    from rclpy.signals import SignalHandlerOptions

    from depthdet_ros.ros.qos import large_data_environment

    os.environ.update(large_data_environment())  # read when the participant is created
    # Ctrl-C as Python's KeyboardInterrupt: rclpy's own handler would invalidate the
    # context under a publish in progress (a traceback instead of the counts).
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('depthdet_replay')
    replayer, rounds, note, stopped = None, 0, '', None
    try:
        replayer = Replayer(node, args.bag, topics, remaps, args.rate,
                            args.clock_hz if args.clock else 0.0, args.reliability)
        images = [t for t in topics if t in camera_image_topics(topic_types)]
        if args.wait_for_subscribers > 0 and not replayer.wait_for_subscribers(
                images, args.wait_for_subscribers):
            print(f'no subscriber on {", ".join(images)} after {args.wait_for_subscribers} s; '
                  'publishing anyway', flush=True)
        print('publishing ' + ', '.join(f'{t} -> {remaps.get(t, t)}' for t in topics),
              flush=True)
        while True:
            replayer.play_once()
            rounds += 1
            if not args.loop:
                break
        if not replayer.flush():
            note = f'; some subscribers had not received everything after {FLUSH_S:g} s'
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        note = '; stopped by Ctrl-C'
    except SystemExit as exc:  # SIGTERM (cli.unwind_on_sigterm): the counts, then its status
        note, stopped = '; stopped by SIGTERM', exc
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if replayer is not None:
        counts = ', '.join(f'{t}: {n}' for t, n in replayer.published.items())
        print(f'published {counts} ({rounds} full pass{"es" if rounds != 1 else ""}); '
              f'{replayer.corrupt} corrupt messages skipped{note}', flush=True)
        if rounds and not any(replayer.published.values()):
            raise CliError(f'nothing was published: the bag lists {replayer.listed} messages '
                           'on these topics, none could be read (a damaged file, or a type '
                           'rosbags cannot read?)'
                           if replayer.listed else 'nothing was published: the bag holds no '
                           'message on these topics')
    if stopped is not None:
        raise stopped
    return 0
