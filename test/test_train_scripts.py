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


def test_the_tracking_figures_script_runs_every_readme_evaluation(tmp_path):
    """tools/tracking_figures.sh with a stand-in depthdet that logs its calls."""
    if subprocess.run(['git', '-C', ROOT, 'cat-file', '-e', 'a16f455^{commit}'],
                      capture_output=True).returncode:
        pytest.skip('a shallow clone: the v1 models of commit a16f455 are not in it')
    calls = tmp_path / 'calls'
    fake = tmp_path / 'depthdet'
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    env = dict(os.environ, DEPTHDET=str(fake), REPORT=str(tmp_path / 'report'),
               BAGS=str(tmp_path / 'bags'), ROS_DOMAIN_ID='0')
    done = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'tracking_figures.sh')],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    bags = [line for line in lines if line.startswith('synth bag')]
    evals = [line for line in lines if line.startswith('eval')]
    assert len(bags) == 10  # the README's three, and seven more for the held-out rows
    assert len(evals) == 3 * 8 + 2 + 7 * 2
    report = str(tmp_path / 'report')
    # The README's commands, with the report folders its figures come from.
    assert f'eval {tmp_path}/bags/moving_s7 --tracker-gt-depth 0.05 --out {report}/moving_s7_gt' \
        ' --no-progress' in evals
    assert any('--depth-strategy robust' in line and 'first_depth.onnx' in line
               for line in evals)
