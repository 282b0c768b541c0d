"""bench.train_step: every network trains a batch, and the report names each one."""
import pytest

pytest.importorskip('torch')

from depthdet_ros.bench import train_step  # noqa: E402

pytestmark = pytest.mark.torch


def test_times_each_network_interleaved_and_prints_ratios(capsys):
    """Two passes each of a detector and a joint net at 64x64; the first is the reference."""
    times = train_step.measure(['yolov5n', 'joint_yolov5n'], batch=1, size=(64, 64),
                               iterations=2, arch_kwargs={'joint_yolov5n': {'num_masks': 4}})
    assert {arch: len(v) for arch, v in times.items()} == {'yolov5n': 2, 'joint_yolov5n': 2}
    assert all(t > 0 for v in times.values() for t in v)
    assert train_step.main(['--archs', 'joint_mobilenetv2', 'hybrid_mobilenetv2', '--batch',
                            '1', '--size', '64', '64', '--iterations', '1']) == 0
    out = capsys.readouterr().out
    assert 'joint_mobilenetv2' in out and ' 1.00x joint_mobilenetv2' in out
    assert 'hybrid_mobilenetv2' in out


def test_unknown_network_is_one_line(capsys):
    """A wrong name stops with one line naming the registry's networks, exit 2."""
    with pytest.raises(SystemExit) as stop:
        train_step.main(['--archs', 'yolov9'])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown arch 'yolov9'" in err[0] and 'joint_mobilenetv2' in err[0]


@pytest.mark.parametrize('kwargs', ['[1]', '{"joint_yolov5n": 5}'])
def test_arch_kwargs_that_are_not_objects_of_objects_are_one_line(capsys, kwargs):
    with pytest.raises(SystemExit) as stop:
        train_step.main(['--archs', 'joint_yolov5n', '--arch-kwargs', kwargs])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'give a JSON object of objects' in err[0]
