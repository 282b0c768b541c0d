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
    # A bag recorded with the camera's odometry is kept; one from before it is recorded
    # again (the same frames, with it).
    for name, topics in (('moving_s7', '/camera/image\n/camera/odometry'),
                         ('moving_s3', '/camera/image')):
        (tmp_path / 'bags' / name).mkdir(parents=True)
        (tmp_path / 'bags' / name / 'metadata.yaml').write_text(topics)
    done = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'tracking_figures.sh')],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'moving_s3 has no /camera/odometry: recording it again' in done.stdout
    lines = calls.read_text().splitlines()
    bags = [line for line in lines if line.startswith('synth bag')]
    evals = [line for line in lines if line.startswith('eval')]
    assert not any('moving_s7 ' in line for line in bags)
    assert any('--out ' + str(tmp_path / 'bags' / 'moving_s3') in line for line in bags)
    assert len(bags) == 11  # the README's three, nine more for the held-out rows, but s7
    # Eight per README bag, two expansion runs, two per other bag, and each of the
    # twelve with the camera's odometry (with and without the GT depth).
    assert len(evals) == 3 * 8 + 2 + 9 * 2 + 12 * 2
    assert f'eval {tmp_path}/bags/moving_s29 --camera-odometry /camera/odometry ' \
        f'--tracker-gt-depth 0.05 --no-plots --out {tmp_path}/report/tracking_figures/' \
        'odomgt_moving_s29 --no-progress' in evals
    report = str(tmp_path / 'report')
    # The README's commands, with the report folders its figures come from.
    assert f'eval {tmp_path}/bags/moving_s7 --tracker-gt-depth 0.05 --out {report}/moving_s7_gt' \
        ' --no-progress' in evals
    assert any('--depth-strategy robust' in line and 'first_depth.onnx' in line
               for line in evals)
