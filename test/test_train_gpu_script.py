"""tools/train_gpu.sh works end to end, run on the CPU with a tiny budget.

The script is meant for a GPU machine that this suite never has; this run proves the
whole chain (parallel render shards, the three trainers on several shards, export, size
check, held-out evaluation) so that it works the first time a GPU is available.
"""
import os
import subprocess
import sys

import pytest

pytest.importorskip('torch')
pytest.importorskip('mujoco')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_gpu_script_with_a_tiny_budget(tmp_path):
    out = tmp_path / 'gpu'
    env = dict(os.environ, PYTHON=sys.executable, OUT_DIR=str(out), FRAMES='4', SHARDS='2',
               VAL_FRAMES='2', TEST_FRAMES='2', DEPTH_EPOCHS='1', DETECTOR_EPOCHS='1',
               DEVICE='cpu', WORKERS='0', DEPTH_BATCH='2', DETECTOR_BATCH='2',
               DEPTH_SIZE='64 96', DETECTOR_SIZE='64', SIZES='160x120', JOINT_EPOCHS='1',
               JOINT_BATCH='2',
               MUJOCO_GL=os.environ.get('MUJOCO_GL', 'osmesa'))
    result = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'train_gpu.sh')], env=env,
                            capture_output=True, text=True, timeout=900)
    log = (out / 'train_gpu.log').read_text() if (out / 'train_gpu.log').exists() else ''
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + log
    for name in ('depth.onnx', 'detector.onnx', 'joint.onnx'):
        assert 0 < (out / name).stat().st_size <= 16 * 1024 * 1024
    assert (out / 'depth' / 'metrics.csv').exists() and (out / 'detector' / 'metrics.csv').exists()
    assert 'mAP@0.5' in (out / 'evaluation.md').read_text()
    assert len(list((out / 'data').glob('train*/annotations.json'))) == 2
