"""Print what depthdet_node sees as a table, and save annotated frames (for the demo)."""
import math
import os
import signal
import sys
import time

import cv2
import rclpy
from rclpy.node import Node
from rich.console import Console
from rich.table import Table
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, Detection3DArray

from depthdet_ros.core.image import decode_raw
from depthdet_ros.ros.message_layout import COASTING, TENTATIVE, TIME_TO_CONTACT

SAVED_FRAMES = 5
# Columns of the table when the output is not a terminal.
PIPED_WIDTH = 160


def _iou(a, b):
    ax1, ay1 = a.center.position.x - a.size_x / 2, a.center.position.y - a.size_y / 2
    bx1, by1 = b.center.position.x - b.size_x / 2, b.center.position.y - b.size_y / 2
    ix = max(0.0, min(ax1 + a.size_x, bx1 + b.size_x) - max(ax1, bx1))
    iy = max(0.0, min(ay1 + a.size_y, by1 + b.size_y) - max(ay1, by1))
    inter = ix * iy
    union = a.size_x * a.size_y + b.size_x * b.size_y - inter
    return inter / union if union > 0 else 0.0


class Monitor(Node):
    """Collects detections, alerts, ground truth and debug images by stamp."""

    def __init__(self, namespace, out_dir):
        super().__init__('depthdet_monitor', namespace=namespace or '')
        self.out_dir = out_dir
        self.frames = {}
        self.truth = {}
        self.alerts = {}
        self.saved = 0
        self.count = 0
        self.create_subscription(Detection2DArray, 'detections', self._on_detections, 10)
        self.create_subscription(Detection3DArray, 'proximity_alert', self._on_alert, 10)
        self.create_subscription(Detection2DArray, 'ground_truth/detections',
                                 self._on_truth, 10)
        self.create_subscription(Image, 'debug_image', self._on_debug, 10)

    @staticmethod
    def _key(header):
        return (header.stamp.sec, header.stamp.nanosec)

    def _on_detections(self, msg):
        self.count += 1
        self.frames[self._key(msg.header)] = msg

    def _on_alert(self, msg):
        self.alerts[self._key(msg.header)] = msg

    def _on_truth(self, msg):
        self.truth[self._key(msg.header)] = msg

    def _on_debug(self, msg):
        if self.saved >= SAVED_FRAMES:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        rgb = decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        path = os.path.join(self.out_dir, f'frame_{self.saved:02d}.png')
        cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.saved += 1

    def table(self, key):
        """Build a rich Table of one frame's detections, with ground truth when published."""
        msg = self.frames[key]
        truth = self.truth.get(key)
        alerts = self.alerts.get(key)
        table = Table(title=f'frame {key[0]}.{key[1]:09d}  frame_id={msg.header.frame_id}  '
                            f'alerts={len(alerts.detections) if alerts else "?"}')
        for column in ('ID', 'class', 'score', 'depth m', 'true depth m', 'x, y, z m',
                       'contact in s', 'alert'):
            table.add_column(column, justify='right')
        shown = set()  # alerts matched to a row of detections
        for det in msg.detections:
            hyp = det.results[0]
            p = hyp.pose.pose.position
            # '?': this frame's ground truth has not come (the camera's first, sent
            # before the monitor matched it); blank: no object of the class overlaps.
            true_depth = '?'
            if truth is not None:
                true_depth = ''
                same = [t for t in truth.detections
                        if t.results
                        and t.results[0].hypothesis.class_id == hyp.hypothesis.class_id]
                best = max(same, key=lambda t: _iou(t.bbox, det.bbox), default=None)
                if best is not None and _iou(best.bbox, det.bbox) > 0.3:
                    true_depth = f'{best.results[0].pose.pose.position.z:.2f}'
            # The same object on proximity_alert: by track ID, or class and depth
            # without tracking; the rules it names (alert/proximity, ...) say why.
            alert = next((a for a in (alerts.detections if alerts else ())
                          if (a.id == det.id if det.id else
                              a.results[0].hypothesis.class_id == hyp.hypothesis.class_id
                              and abs(a.results[0].pose.pose.position.z - p.z) < 1e-6)), None)
            table.add_row(_track(det), hyp.hypothesis.class_id, f'{hyp.hypothesis.score:.2f}',
                          f'{p.z:.2f}', true_depth, f'{p.x:+.2f}, {p.y:+.2f}, {p.z:.2f}',
                          _time_to_contact(det), f'ALERT: {_rules(alert)}' if alert else '')
            if alert is not None:
                shown.add(id(alert))
        # Alerts of objects not on detections: held through a missed detection
        # (track/coasting), or of a track too young for detections (publish_tentative):
        # a consumer of proximity_alert sees them, so the demo shows them.
        for alert in (alerts.detections if alerts else ()):
            if id(alert) in shown or not alert.results:
                continue
            names = [r.hypothesis.class_id for r in alert.results]
            why = 'held' if COASTING in names else 'tentative' if TENTATIVE in names else \
                'not on detections'
            p = alert.bbox.center.position
            table.add_row(_track(alert), names[0], f'{alert.results[0].hypothesis.score:.2f}',
                          f'{p.z:.2f}', '', f'{p.x:+.2f}, {p.y:+.2f}, {p.z:.2f}',
                          _time_to_contact(alert), f'ALERT: {_rules(alert)} ({why})')
        return table


def _track(detection):
    """Return '#ID' of a detection's track, '' without tracking."""
    return f'#{detection.id}' if detection.id else ''


def _time_to_contact(detection):
    """Return the seconds of its time_to_contact hypothesis while closing, else ''."""
    seconds = next((r.pose.pose.position.x for r in detection.results
                    if r.hypothesis.class_id == TIME_TO_CONTACT), math.nan)
    return f'{seconds:.1f}' if math.isfinite(seconds) else ''


def _rules(alert):
    """Return the rules a proximity_alert entry names (alert/proximity, ...), readable."""
    return ', '.join(r.hypothesis.class_id.split('/', 1)[1].replace('_', ' ')
                     for r in alert.results if r.hypothesis.class_id.startswith('alert/'))


def demo_console(record=False):
    """Return the demo's rich Console: the terminal's width, or PIPED_WIDTH when piped.

    Piped into a file or `tee`, rich would wrap the table at 80 columns, a row over
    several lines (outsider round 39).
    """
    if sys.stdout.isatty():
        return Console(record=record)
    return Console(width=PIPED_WIDTH, record=record)


def run_monitor(namespace, seconds, out_dir, processes):
    """Spin a Monitor for `seconds`, printing a table about once a second."""
    from rclpy.signals import SignalHandlerOptions

    from depthdet_ros.ros.entry import StopSignals

    console = demo_console()
    # Ctrl-C and SIGTERM end the loop; the caller then stops the processes. rclpy's own
    # handler would break spin_once with ExternalShutdownException.
    stop = StopSignals()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    monitor = Monitor(namespace, out_dir)
    start = last_print = time.monotonic()
    printed = set()
    try:
        while time.monotonic() - start < seconds and not stop.received:
            exited = [p.returncode for p in processes if p.poll() is not None]
            if exited:
                console.print('[red]a pipeline process exited early[/red]')
                # The node's own status (2: a configuration error), as without --demo.
                return next((code for code in exited if code > 0), 1)
            rclpy.spin_once(monitor, timeout_sec=0.1)
            # The newest frame whose detections and alerts have both arrived.
            complete = [k for k in monitor.frames if k in monitor.alerts]
            if time.monotonic() - last_print > 1.0 and complete:
                key = max(complete)
                if key not in printed:
                    console.print(monitor.table(key))
                    printed.add(key)
                last_print = time.monotonic()
        stopped_by = stop.received  # not a signal that comes during the shutdown below
    finally:
        frames, saved = monitor.count, monitor.saved
        monitor.destroy_node()
        rclpy.try_shutdown()
    console.print(f'{frames} detection messages received; {saved} annotated frames saved '
                  f'in {out_dir}' + (f'; stopped by {stopped_by}' if stopped_by else ''),
                  soft_wrap=True)  # a path broken over lines cannot be copied
    # Ctrl-C is how a demo is ended early (0); SIGTERM is reported as a shell would.
    if stopped_by:
        return 0 if stop.signum == signal.SIGINT else stop.exit_status
    return 0 if frames else 1
