"""flake8 and pep257 (flake8-docstrings) over the package, as ament_flake8/ament_pep257 do."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flake8_and_pep257_clean():
    proc = subprocess.run(
        [sys.executable, '-m', 'flake8', 'depthdet_ros', 'test', 'launch', 'tools', 'setup.py'],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
