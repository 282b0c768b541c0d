"""`depthdet pipeline --demo`: synthetic camera -> depthdet_node -> monitor over DDS."""
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
