"""The CPU training scripts in tools/ say why training failed (it is logged to a file)."""
import os
import subprocess
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('script', ['train_depth_canonical_continue.sh',
                                    'train_detector_moving.sh'])
def test_a_failed_training_run_shows_the_end_of_its_log(tmp_path, script):
    # A stand-in for depthdet: data commands succeed, training fails as a bad option would.
    fake = tmp_path / 'depthdet'
    fake.write_text(textwrap.dedent("""\
        #!/usr/bin/env bash
        if [[ $1 == train && $2 != evaluate ]]; then
            echo "depthdet train: error: --data data/nope/train: no annotations.json" >&2
            exit 2
        fi
        """))
    fake.chmod(0o755)
    (tmp_path / 'init.onnx').write_bytes(b'')
    env = dict(os.environ, DEPTHDET=str(fake), OUT=str(tmp_path / 'out'),
               DATA=str(tmp_path / 'data'), MOVING=str(tmp_path / 'moving'),
               INIT=str(tmp_path / 'init.onnx'))
    done = subprocess.run(['bash', os.path.join(ROOT, 'tools', script)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # the training command's own status
    assert 'training failed' in done.stderr and 'train.log' in done.stderr
    assert 'no annotations.json' in done.stderr
