"""Camera input QoS: subscriptions that follow the publisher's reliability.

A reliable subscription never matches a best-effort publisher (no data, one warning),
and a best-effort subscription takes frames from a reliable publisher without
retransmission, so large frames whose fragments go missing are lost. With
`input_reliability: auto` the node therefore subscribes with the reliability the topic's
publishers offer, read from the ROS graph: reliable when every publisher is reliable,
best-effort when any is best-effort. Until a publisher is seen it holds one subscription
of each kind, so whichever camera appears is matched at once; a subscription no longer
wanted is kept until the publisher has had time to match its replacement, and frames
both deliver meanwhile are passed on once.

Frames larger than Fast DDS's default 512 KB shared-memory segment need a bigger segment
in the publishing process (best-effort ones are lost whole, reliable ones resent until
the writer's queue moves on): config/fastdds_large_data.xml, which `depthdet pipeline`
and the launch file apply (`large_data_environment`), and which the camera driver needs
too (README, "Large images and QoS", has the measured cases).
"""
import collections
import os
import time

from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITY_CHOICES = ('auto', 'reliable', 'best_effort')
# Frames queued per subscription while the executor is busy: 1 s of a 30 Hz camera
# (10 lost up to half of the first 30 1920x1080 frames on a loaded 2-core machine).
# Memory is taken only while frames wait: at most 30 x 6.2 MB at 1920x1080 rgb8.
INPUT_DEPTH = 30
# How often `auto` reads the graph for the topic's publishers.
GRAPH_CHECK_PERIOD_S = 0.2
# A subscription no longer wanted is kept until its replacement is this old (time for the
# publisher to match it), and at least RETIRE_SETTLE_S after the graph changed.
RETIRE_AFTER_S = 1.0
RETIRE_SETTLE_S = 0.25
PROFILE_FILE_NAME = 'fastdds_large_data.xml'
# Fast DDS 2.x (Jazzy) reads the first name, Fast DDS 3.x the second.
PROFILE_ENV_VARS = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')

_POLICIES = {'reliable': ReliabilityPolicy.RELIABLE,
             'best_effort': ReliabilityPolicy.BEST_EFFORT}


def input_qos(reliability):
    """Return the QoS of a camera input subscription: keep the last INPUT_DEPTH, volatile."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=INPUT_DEPTH,
                      reliability=reliability)


def wanted_reliabilities(offered):
    """Return the subscriptions to hold for publishers offering these reliabilities.

    None offered: both kinds, to match whichever comes; all reliable: reliable only
    (every frame, retransmitted if need be); any other: best-effort, the only kind a
    best-effort publisher matches.
    """
    offered = list(offered)
    if not offered:
        return frozenset(_POLICIES.values())
    if all(policy == ReliabilityPolicy.RELIABLE for policy in offered):
        return frozenset({ReliabilityPolicy.RELIABLE})
    return frozenset({ReliabilityPolicy.BEST_EFFORT})


def message_key(msg):
    """Return what identifies one camera message across subscriptions: stamp and frame."""
    header = msg.header
    return header.stamp.sec, header.stamp.nanosec, header.frame_id


class DuplicateFilter:
    """Passes each message once when several subscriptions to one topic deliver it.

    Each subscription delivers a given message at most once, so the n-th message with a
    key from one source is new only if no other source has delivered that key n times;
    repeated keys (a camera that never sets stamps) are therefore still all passed.
    """

    def __init__(self, window=256):
        self._counts = collections.defaultdict(collections.Counter)  # source -> key counts
        self._order = collections.deque()                           # (source, key), oldest first
        self._window = window

    def is_new(self, source, key):
        """Record `key` from `source`; True if no other source delivered this one first."""
        count = self._counts[source][key]
        others = max((c[key] for s, c in self._counts.items() if s != source), default=0)
        self._counts[source][key] += 1
        self._order.append((source, key))
        if len(self._order) > self._window:
            old_source, old_key = self._order.popleft()
            counts = self._counts[old_source]
            counts[old_key] -= 1
            if counts[old_key] <= 0:
                del counts[old_key]
        return count >= others

    def clear(self):
        """Forget everything (one source left)."""
        self._counts.clear()
        self._order.clear()


class InputSubscription:
    """One camera input topic, subscribed with a fixed reliability or following `auto`.

    Use `subscribe_input`; `destroy()` removes the subscriptions and the graph timer.
    """

    def __init__(self, node, msg_type, topic, callback, reliability):
        if reliability not in RELIABILITY_CHOICES:
            raise ValueError(f'input reliability {reliability!r}; choose one of '
                             f'{", ".join(RELIABILITY_CHOICES)}')
        self._node = node
        self._msg_type = msg_type
        self._callback = callback
        self.topic_name = node.resolve_topic_name(topic)
        self._subscriptions = {}   # ReliabilityPolicy -> rclpy Subscription
        self._created = {}         # ReliabilityPolicy -> monotonic time
        self._unwanted_since = {}  # ReliabilityPolicy -> monotonic time
        self._duplicates = DuplicateFilter()
        self._filter_until = 0.0   # monotonic time; filter duplicates until then
        self._followed = None
        self._timer = None
        if reliability != 'auto':
            self._add(_POLICIES[reliability], follow=False)
            return
        self._follow()
        # A steady clock: with use_sim_time and no /clock a ROS-time timer never fires.
        self._timer = node.create_timer(GRAPH_CHECK_PERIOD_S, self._follow,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def reliabilities(self):
        """Return the reliabilities of the subscriptions held now."""
        return frozenset(self._subscriptions)

    def publisher_count(self):
        """Return the publishers matched by the subscriptions held now (this side's view)."""
        return sum(s.get_publisher_count() for s in self._subscriptions.values())

    def destroy(self):
        """Remove the subscriptions and the graph timer."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
        for policy in list(self._subscriptions):
            self._remove(policy)

    def _add(self, policy, follow=True):
        if self._subscriptions and time.monotonic() >= self._filter_until:
            self._duplicates.clear()  # a new overlap: nothing from the last one counts
        # In `auto`, a publisher the new subscription cannot match is expected: re-read
        # the graph instead of rclpy's default warning. A fixed choice keeps the warning.
        events = (SubscriptionEventCallbacks(incompatible_qos=lambda _: self._follow(False))
                  if follow else None)
        self._subscriptions[policy] = self._node.create_subscription(
            self._msg_type, self.topic_name, lambda msg: self._deliver(policy, msg),
            input_qos(policy), event_callbacks=events)
        self._created[policy] = time.monotonic()

    def _remove(self, policy):
        self._node.destroy_subscription(self._subscriptions.pop(policy))
        self._created.pop(policy, None)
        self._unwanted_since.pop(policy, None)
        # The one left may still deliver frames the removed one passed on first.
        self._filter_until = time.monotonic() + RETIRE_AFTER_S

    def _deliver(self, policy, msg):
        if policy not in self._subscriptions:
            return
        if len(self._subscriptions) > 1 or time.monotonic() < self._filter_until:
            if not self._duplicates.is_new(policy, message_key(msg)):
                return
        elif self._filter_until:
            self._duplicates.clear()
            self._filter_until = 0.0
        self._callback(msg)

    def _follow(self, retire=True):
        """Hold the subscriptions the topic's publishers call for (see module docstring)."""
        offered = [info.qos_profile.reliability for info in
                   self._node.get_publishers_info_by_topic(self.topic_name)]
        wanted = wanted_reliabilities(offered)
        for policy in wanted:
            self._unwanted_since.pop(policy, None)
            if policy not in self._subscriptions:
                self._add(policy)
        if offered and wanted != self._followed:
            self._followed = wanted
            self._node.get_logger().info(
                f'{self.topic_name}: publisher reliability '
                f'{"/".join(sorted(p.name.lower() for p in set(offered)))}; subscribed '
                f'{next(iter(wanted)).name.lower()}')
        if not retire:
            return
        now = time.monotonic()
        replacements_ready = max(self._created[p] for p in wanted) + RETIRE_AFTER_S
        for policy in [p for p in self._subscriptions if p not in wanted]:
            since = self._unwanted_since.setdefault(policy, now)
            if now >= max(since + RETIRE_SETTLE_S, replacements_ready):
                self._remove(policy)


def subscribe_input(node, msg_type, topic, callback, reliability):
    """Subscribe a camera input topic; reliability is one of RELIABILITY_CHOICES."""
    return InputSubscription(node, msg_type, topic, callback, reliability)


def profile_file():
    """Return the path of the bundled Fast DDS large-data profile."""
    from depthdet_ros.assets import share_dir
    return os.path.join(share_dir(), 'config', PROFILE_FILE_NAME)


def large_data_environment(environ=None):
    """Return variables that give a started process the large-data profile (README, QoS).

    Empty when the user has named a Fast DDS profile file of their own.
    """
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in PROFILE_ENV_VARS):
        return {}
    return {name: profile_file() for name in PROFILE_ENV_VARS}
