"""`depthdet soak` end to end on tiny fixture models, over DDS on localhost."""
import json
import subprocess
import sys

import pytest

from onnx_fixtures import constant_detector, red_depth
from ros_harness import write_params

pytestmark = pytest.mark.ros


def fixture_params(tmp_path):
    """Parameters with tiny fixture models: one chair, depth from the red channel."""
    chair = (200, 355, 200, 250, 0.9, 0.95, 0.1)
    return write_params(tmp_path / 'p.yaml',
                        detector_model=constant_detector(tmp_path / 'det.onnx', [chair]),
                        depth_model=red_depth(tmp_path / 'depth.onnx'), providers='cpu')


def test_a_short_reliable_soak_accounts_for_every_frame(tmp_path):
    # Before: frames sent while the node still loaded its models, and those in flight at
    # the end, were counted as lost in transport (3 of 150 at 5 Hz, reliable QoS).
    params = fixture_params(tmp_path)
    result_path = tmp_path / 'soak.json'
    run = subprocess.run([sys.executable, '-m', 'depthdet_ros.cli', 'soak', '--minutes', '0.5',
                          '--rate', '5', '--width', '320', '--height', '240', '--params-file',
                          params, '--json', str(result_path)],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(result_path.read_text())
    assert result['frames_sent'] == 150 and not result['node_crashed']
    assert result['lost_in_transport'] == 0, result
    # The node keeps the newest frame: what it did not answer, it counted as dropped.
    assert result['outputs'] + result['frames_dropped'] == result['frames_sent'], result


@pytest.mark.parametrize('signal_name, said, code', [('SIGTERM', 'SIGTERM', 143),
                                                     ('SIGINT', 'Ctrl-C', 130)])
def test_a_soak_stopped_early_reports_the_counts_so_far(tmp_path, signal_name, said, code):
    """timeout(1), CI or systemd stop it with SIGTERM: it gave a traceback and no report."""
    import signal
    import time
    params = fixture_params(tmp_path)
    result_path = tmp_path / 'soak.json'
    proc = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.cli', 'soak', '--minutes', '5',
                             '--rate', '5', '--width', '160', '--height', '120',
                             '--params-file', params, '--json', str(result_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(12.0)  # the node is up and frames flow
        proc.send_signal(getattr(signal, signal_name))
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, output
    assert 'Traceback' not in output and f'stopped early by {said}' in output, output
    result = json.loads(result_path.read_text())
    assert result['stopped_early'].startswith(f'{said} after ')
    assert result['frames_sent'] > 0 and not result['node_crashed']
