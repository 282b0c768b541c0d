"""tools/tracker_sweep.py gives depthdet eval's tracking figures from cached frames."""
import json
import re

import numpy as np
import pytest

from depthdet_ros import cli
from depthdet_ros.core import tracking
from eval_bags import FrameSpec, object_behind_box, pinhole, write_eval_bag
from onnx_fixtures import red_depth, red_for_depth
from test_eval_cli import CHAIR_BOX, H, W, _frames, models  # noqa: F401 (a fixture)
from tool_scripts import load_tool


def test_cached_frames_give_the_figures_of_depthdet_eval(models, tmp_path):  # noqa: F811
    frames, camera = _frames()
    bag = str(write_eval_bag(tmp_path / 'bag', frames, camera))
    # Settings from the params file (both read it: a tracker one and an alert threshold),
    # one given on top.
    params = tmp_path / 'params.yaml'
    params.write_text(open(models).read() + '    track_min_hits: 1\n'
                      '    class_max_depth: ["chair:3.0"]\n')
    params = str(params)
    settings = {'alert_hysteresis': 0.3}
    assert cli.main(['eval', bag, '--params-file', params, '--out', str(tmp_path / 'r'),
                     '--no-progress', '--no-plots', '--tracker-gt-depth', '0.05',
                     *(f'--tracker={k}={v}' for k, v in settings.items())]) == 0
    expected = json.loads((tmp_path / 'r' / 'report.json').read_text())['tracking']
    tool = load_tool('tracker_sweep')
    assert tool.cache(bag, str(tmp_path / 'frames.pkl'), params) == len(frames)
    got = tool.run(str(tmp_path / 'frames.pkl'), settings, gt_depth=0.05)
    assert got['identity']['gt_object_frames'] > 0
    for section in ('identity', 'depth', 'jitter', 'time_to_contact', 'alerts', 'alert_topic'):
        assert json.loads(json.dumps(got[section])) == expected[section], section
    switches = tool.run(str(tmp_path / 'frames.pkl'), settings, gt_depth=0.05, switches=True)
    assert len(switches) == expected['identity']['id_switches']
    # The chair never leaves the view: no ID is given back.
    assert tool.run(str(tmp_path / 'frames.pkl'), settings, gt_depth=0.05, reids=True) == []


def test_reidentifications_are_counted_by_the_objects_before_and_after():
    tool = load_tool('tracker_sweep')
    events = [(10, 1, '5', '5'), (20, 2, '5', '6'), (30, 3, None, '6'), (40, 4, '6', None),
              (50, 1, '5', '5')]
    assert tool.reidentification_counts(events) == {
        'same object': 2, 'another object': 1, 'no GT object now': 1,
        'no GT object before': 1}


def test_settings_are_taken_before_or_after_the_options(monkeypatch, capsys):
    tool = load_tool('tracker_sweep')
    calls = []
    monkeypatch.setattr(tool, 'run', lambda *args: calls.append(args) or [])
    for argv in (['run', 'c.pkl', 'max_age=0.4', '--switches'],
                 ['run', 'c.pkl', '--switches', 'max_age=0.4'],
                 ['run', 'c.pkl', '--gt-depth', '0.05', '--switches', 'max_age=0.4']):
        assert tool.main(argv) == 0
    assert [c[1] for c in calls] == [{'max_age': 0.4}] * 3
    assert calls[2][2] == 0.05 and all(c[3] for c in calls)
    # A bad setting or option after the options is still refused, in one line.
    for argv, message in ((['run', 'c.pkl', '--switches', 'max_ages=0.4'], 'one of'),
                          (['run', 'c.pkl', '--switches', 'max_age=x'], 'needs a number'),
                          (['run', 'c.pkl', '--switches', '--frames'], 'unrecognized'),
                          (['run', 'c.pkl', '--constant', 'max_age=1'], 'not a numeric constant'),
                          (['run', 'c.pkl', '--constant', 'MODE_HOLD_S=x'], 'is not a number'),
                          (['cache', 'b', 'o.pkl', 'max_age=0.4'], 'unrecognized')):
        try:
            tool.main(argv)
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(argv)
        assert message in capsys.readouterr().err


def test_the_camera_odometry_reaches_the_tracker_in_eval_and_in_the_sweep(models, tmp_path, capsys):  # noqa: F811,E501
    # The camera drives at 0.5 m/s toward the chair: given to the tracker, it predicts
    # the chair nearer each frame (other depth and TTC figures); the sweep agrees.
    frames, camera = _frames()
    twist = (0.0, 0.0, 0.5, 0.0, 0.0, 0.0)
    bag = str(write_eval_bag(tmp_path / 'bag', frames, camera, camera_twist=twist))
    reports = {}
    for name, extra in (('without', []), ('with', ['--camera-odometry', '/camera/odometry'])):
        assert cli.main(['eval', bag, '--params-file', models, '--out', str(tmp_path / name),
                         '--no-progress', '--no-plots', '--tracker-gt-depth', '0.05',
                         *extra]) == 0
        reports[name] = json.loads((tmp_path / name / 'report.json').read_text())
    assert reports['with']['settings']['camera_odometry'] == '/camera/odometry'
    assert reports['without']['settings']['camera_odometry'] is None
    assert 'camera\'s own motion from `/camera/odometry`' in \
        (tmp_path / 'with' / 'report.md').read_text()
    assert reports['with']['tracking']['depth'] != reports['without']['tracking']['depth']
    tool = load_tool('tracker_sweep')
    assert tool.cache(bag, str(tmp_path / 'frames.pkl'), models) == len(frames)
    for name, given in (('without', False), ('with', True)):
        got = tool.run(str(tmp_path / 'frames.pkl'), {}, gt_depth=0.05, camera_odometry=given)
        for section in ('identity', 'depth', 'jitter', 'time_to_contact', 'alerts'):
            assert json.loads(json.dumps(got[section])) == \
                reports[name]['tracking'][section], (name, section)
    # A module constant of the tracker for one run (the IMM's are no settings): the
    # steady filter as noisy as the other moves the depths; the constant is put back.
    capsys.readouterr()
    assert tool.main(['run', str(tmp_path / 'frames.pkl'), '--camera-odometry', '--gt-depth',
                      '0.05', '--constant', 'STEADY_ACCEL_NOISE=2.0']) == 0
    assert json.loads(capsys.readouterr().out)['depth'] != \
        reports['with']['tracking']['depth']
    assert tracking.STEADY_ACCEL_NOISE == 0.1


def test_a_cache_without_camera_odometry_is_refused_with_the_flag(models, tmp_path, capsys):  # noqa: F811,E501
    frames, camera = _frames()
    bag = str(write_eval_bag(tmp_path / 'bag', frames[:2], camera))
    tool = load_tool('tracker_sweep')
    tool.cache(bag, str(tmp_path / 'frames.pkl'), models)
    assert tool.main(['run', str(tmp_path / 'frames.pkl'), '--camera-odometry']) == 2
    assert 'holds no camera motion' in capsys.readouterr().err


def _steady_frames(camera, count=6):
    """Return frames of the chair 2 m away, its depth predicted as 2 m in each."""
    image = np.zeros((H, W, 3), np.uint8)
    image[..., 0] = red_for_depth(2.0)
    depth = np.full((H, W), 4.0, np.float32)
    x1, y1, x2, y2 = CHAIR_BOX
    depth[y1:y2, x1:x2] = 2.0
    return [FrameSpec(image, depth, [object_behind_box('chair', CHAIR_BOX, 2.0, 0.3, camera)])
            for _ in range(count)]


@pytest.mark.parametrize('camera_infos, id_switches', [
    ({k: pinhole(W, H, f=160.0) for k in range(2, 6)}, 1),
    ({2: pinhole(W, int(round(W * 9 / 16)))}, 0)], ids=['zoom', 'refused'])
def test_tracking_starts_over_where_depth_is_scaled_otherwise_in_eval_and_the_sweep(
        models, tmp_path, camera_infos, id_switches):  # noqa: F811
    # As the node: where the focal length changes (a zoom) the depth takes another scale
    # and tracking starts over; a frame whose CameraInfo is refused keeps the scale of
    # the last one (eval used to give it the assumed field of view's, starting over
    # twice). The depth net takes the focal length into account (canonical 250 px).
    depth = red_depth(tmp_path / 'depth.onnx', input_hw=(H, W), canonical_focal=250.0)
    params = tmp_path / 'params.yaml'
    params.write_text(re.sub(r'depth_model: "[^"]*"', f'depth_model: "{depth}"',
                             open(models).read()))
    camera = pinhole(W, H)
    bag = str(write_eval_bag(tmp_path / 'bag', _steady_frames(camera), camera,
                             info_cameras=camera_infos))
    assert cli.main(['eval', bag, '--params-file', str(params), '--out',
                     str(tmp_path / 'r'), '--no-progress', '--no-plots', '--tracker',
                     'min_hits=1']) == 0
    report = json.loads((tmp_path / 'r' / 'report.json').read_text())['tracking']
    assert report['identity']['id_switches'] == id_switches
    tool = load_tool('tracker_sweep')
    tool.cache(bag, str(tmp_path / 'frames.pkl'), str(params))
    swept = tool.run(str(tmp_path / 'frames.pkl'), {'min_hits': 1})
    assert swept['identity']['id_switches'] == id_switches
