"""tools/tracker_sweep.py gives depthdet eval's tracking figures from cached frames."""
import json

from depthdet_ros import cli
from eval_bags import write_eval_bag
from test_eval_cli import _frames, models  # noqa: F401 (a fixture)
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
                          (['cache', 'b', 'o.pkl', 'max_age=0.4'], 'unrecognized')):
        try:
            tool.main(argv)
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(argv)
        assert message in capsys.readouterr().err
