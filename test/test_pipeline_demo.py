"""`depthdet pipeline --demo`: synthetic camera -> depthdet_node -> monitor over DDS."""
import math
import subprocess
import sys

import pytest

from onnx_fixtures import constant_detector, red_depth
from ros_harness import write_params

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_runs_camera_node_and_monitor(tmp_path):
    detector = constant_detector(tmp_path / 'det.onnx', [(320, 320, 200, 200, 0.9, 0.95, 0.1)])
    params = write_params(tmp_path / 'p.yaml', detector_model=detector,
                          depth_model=red_depth(tmp_path / 'depth.onnx'), providers='cpu',
                          max_depth=100.0)
    out = tmp_path / 'demo'
    proc = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'pipeline', '--demo', '12',
                           '--params-file', params, '--demo-out', str(out), '--namespace',
                           'front', '--camera-rate', '4'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'detection messages received' in proc.stdout
    assert 'chair' in proc.stdout and 'frame_id=camera_optical_frame' in proc.stdout
    assert 'ALERT: proximity' in proc.stdout  # the table names the rule that fired
    assert sorted(p.name for p in out.glob('frame_*.png'))
    assert 'Traceback' not in proc.stderr


def test_the_demo_table_shows_alerts_of_objects_not_on_detections():
    """A held alert and a tentative track's alert get rows of their own.

    Before, the demo printed `alerts=2` over a table with no alert row in it.
    """
    from types import SimpleNamespace

    from rich.console import Console
    from std_msgs.msg import Header
    from vision_msgs.msg import (Detection2D, Detection2DArray, Detection3D,
                                 Detection3DArray, ObjectHypothesisWithPose)

    from depthdet_ros.ros.monitor import demo_console, Monitor, PIPED_WIDTH

    def hypothesis(name, score=0.0, z=0.0):
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id, h.hypothesis.score = name, score
        h.pose.pose.position.z = z
        return h

    def alert(track_id, names, z):
        a = Detection3D(id=track_id)
        a.results = [hypothesis(names[0], 0.7, z)] + [hypothesis(n) for n in names[1:]]
        a.bbox.center.position.z = z
        return a

    header = Header(frame_id='cam')
    header.stamp.sec = 3
    chair = Detection2D(id='4')
    chair.results = [hypothesis('chair', 0.9, 2.5), hypothesis('time_to_contact')]
    chair.results[1].pose.pose.position.x = 1.84  # seconds
    receding = Detection2D(id='5')
    receding.results = [hypothesis('ball', 0.8, 4.0), hypothesis('time_to_contact')]
    receding.results[1].pose.pose.position.x = math.inf  # not closing: no time shown
    untracked = Detection2D()  # tracking off: no ID
    untracked.results = [hypothesis('cup', 0.6, 3.0)]
    detections = Detection2DArray(header=header, detections=[chair, receding, untracked])
    alerts = Detection3DArray(header=header, detections=[
        alert('4', ['chair', 'alert/proximity'], 2.5),
        alert('7', ['person', 'alert/time_to_contact', 'track/coasting'], 1.25),
        alert('9', ['bottle', 'alert/proximity', 'track/tentative'], 0.5)])
    monitor = SimpleNamespace(frames={(3, 0): detections}, truth={}, alerts={(3, 0): alerts})
    # Output not to a terminal (pytest captures it), as piped into a file: each row on
    # one line (outsider round 39: rich wrapped the rows at 80 columns there).
    console = demo_console(record=True)
    assert console.width == PIPED_WIDTH
    console.print(Monitor.table(monitor, (3, 0)))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if 'ALERT' in line]
    assert len(rows) == 3, rows
    narrow = Console(width=80, record=True)
    narrow.print(Monitor.table(monitor, (3, 0)))
    assert not any('person' in line and 'time to contact (held)' in line
                   for line in narrow.export_text().splitlines())
    assert 'chair' in rows[0] and 'ALERT: proximity' in rows[0] and '(' not in rows[0]
    cells = [cell.strip() for cell in rows[0].split('│')]
    # The track ID first, the time to contact before the alert.
    assert (cells[1], cells[2], cells[7]) == ('#4', 'chair', '1.8'), rows[0]
    # No ground truth for this frame (the monitor's `truth` is empty): '?', not blank.
    assert cells[5] == '?', rows[0]
    ball = [cell.strip() for cell in next(line for line in lines if 'ball' in line).split('│')]
    cup = [cell.strip() for cell in next(line for line in lines if 'cup' in line).split('│')]
    assert (ball[1], ball[7], cup[1], cup[7]) == ('#5', '', '', ''), (ball, cup)
    assert 'person' in rows[1] and '1.25' in rows[1] and 'time to contact (held)' in rows[1]
    assert '#7' in rows[1] and '#9' in rows[2]
    assert 'bottle' in rows[2] and '0.50' in rows[2] and 'proximity (tentative)' in rows[2]
