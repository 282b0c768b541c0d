"""Bad arguments to `depthdet synth bag`, `soak` and `bench`: one line, exit code 2."""
import errno

import pytest

from depthdet_ros.cli import main
from depthdet_ros.sim import bag as simbag

TINY_BAG = ['--frames', '1', '--size', '64x48', '--quality', 'fast']


def one_error_line(capsys, command, *words):
    """Check that a refused command said one error line holding every word."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'depthdet {command}: error: '), lines
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize('start_time, frames', [
    ('-5', '1'), ('1e20', '1'), ('nan', '1'), ('inf', '1'),
    ('2147483647', '20'),  # the first stamp fits an int32 of seconds, the last does not
])
def test_synth_bag_refuses_stamps_outside_ros_time_and_writes_nothing(
        tmp_path, capsys, start_time, frames):
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG, '--frames', frames,
                 '--start-time', start_time]) == 2
    one_error_line(capsys, 'synth', f'--start-time {float(start_time):.17g}', '2^31')
    assert not out.exists()


def test_synth_bag_takes_the_last_second_of_ros_time(tmp_path):
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG,
                 '--start-time', str(2**31 - 1)]) == 0
    assert (out / 'metadata.yaml').exists()


def test_synth_bag_refuses_an_out_folder_it_cannot_create(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG]) == 2
    one_error_line(capsys, 'synth', f'cannot create {out}',
                   f'{tmp_path / "file"} is not a writable folder')


def test_synth_bag_removes_a_bag_it_could_not_finish(tmp_path, capsys, monkeypatch):
    def disk_full(path, *args, **kwargs):
        path.mkdir()
        (path / 'bag.mcap').write_bytes(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(simbag, 'write_bag', disk_full)
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG]) == 2
    one_error_line(capsys, 'synth', f'cannot write {out}: No space left on device')
    assert not out.exists()


@pytest.mark.parametrize('option, value, words', [
    ('--minutes', '-1', ['--minutes -1 must be a positive number']),
    ('--minutes', '0', ['--minutes 0 must be a positive number']),
    ('--minutes', 'nan', ['--minutes nan must be a positive number']),
    ('--minutes', '0.1', ['too short to measure memory growth', '--minutes 0.32 or more']),
    ('--rate', '0', ['--rate 0 must be a positive number']),
    ('--stall-seconds', '-2', ['--stall-seconds -2 must be a positive number']),
    ('--width', '0', ['--width 0 must be a positive number']),
    ('--warmup-fraction', '1', ['--warmup-fraction 1 must be in [0, 1)']),
])
def test_soak_refuses_numbers_it_cannot_run_with(capsys, option, value, words):
    assert main(['soak', option, value]) == 2
    one_error_line(capsys, 'soak', *words)


def test_bench_help_gives_the_exit_code_of_the_gpu_section_without_a_gpu(capsys):
    with pytest.raises(SystemExit):
        main(['bench', '--help'])
    help_text = ' '.join(capsys.readouterr().out.split())
    # A refused section is a CliError, which the command turns into exit code 2.
    assert 'Exits 2 with one line on a machine without.' in help_text
