"""python -m depthdet_ros.bench.tracking: figures printed, and --compare side by side."""
import re

from depthdet_ros.bench import tracking as bench
from depthdet_ros.core import tracking


def test_prints_both_stages_and_the_verdict(capsys):
    assert bench.main(['--objects', '20', '--frames', '12', '--warmup', '2']) == 0
    out = capsys.readouterr().out
    assert '20 objects, 12 frames (after 2 warm-up)' in out
    for stage in ('fusion (depth, 3D)', 'tracking (update + held)',
                  'tracking alone (no fusion)'):
        assert re.search(re.escape(stage) + r'\s+cpu\s+[\d.]+', out)
    assert re.search(r'cpu: tracking / fusion \(p50\) [\d.]+; tracking p50 [\d.]+ ms per frame, '
                     r'target <= 1 ms with 20 objects: (met|not met) \(alone: [\d.]+ ms\)', out)


def test_no_verdict_for_another_number_of_objects(capsys):
    # The target is set for 20 objects: 3 objects meeting it would say nothing.
    assert bench.main(['--objects', '3', '--frames', '5', '--warmup', '1']) == 0
    out = capsys.readouterr().out
    assert 'tracking p50' in out and 'target' not in out, out


def test_compare_with_the_same_module_agrees_exactly(capsys):
    assert bench.main(['--objects', '4', '--frames', '10', '--warmup', '2',
                       '--compare', tracking.__file__]) == 0
    out = capsys.readouterr().out
    assert 'outputs: same IDs and alerts, values within 0.0e+00' in out
    assert re.search(r'this / that [\d.]+', out)


def test_compare_reports_a_tracker_that_differs(tmp_path, capsys):
    # Three matched frames confirm a track in ours, one in the altered copy.
    altered = tmp_path / 'tracking_altered.py'
    source = open(tracking.__file__).read()
    assert 'min_hits: int = 3' in source
    altered.write_text(source.replace('min_hits: int = 3', 'min_hits: int = 1'))
    assert bench.main(['--objects', '2', '--frames', '6', '--warmup', '0',
                       '--compare', str(altered)]) == 0
    assert 'outputs: different track IDs, flags or alert rules' in capsys.readouterr().out


def test_compare_with_a_missing_file_is_one_line(tmp_path, capsys):
    assert bench.main(['--compare', str(tmp_path / 'nope.py')]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'no such file' in err and 'git show' in err


def test_compare_with_a_file_that_is_no_tracker_is_one_line(tmp_path, capsys):
    empty = tmp_path / 'empty.py'
    empty.write_text('X = 1\n')  # imports, but has no Tracker: it was an AttributeError
    assert bench.main(['--compare', str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'is not a usable core/tracking.py' in err
    assert 'no Tracker or TrackerConfig' in err


def test_compare_with_a_tracker_that_takes_no_image(tmp_path, capsys):
    # An older core/tracking.py, before re-identification: update() has no image.
    older = tmp_path / 'tracking_older.py'
    older.write_text(
        'from depthdet_ros.core.tracking import Tracker as _Tracker, TrackerConfig\n\n\n'
        'class Tracker(_Tracker):\n'
        '    def update(self, objects, stamp, max_depth, class_max_depth=None,\n'
        '               image_size=None):\n'
        '        return super().update(objects, stamp, max_depth, class_max_depth,\n'
        '                              image_size)\n')
    assert bench.main(['--objects', '4', '--frames', '10', '--warmup', '2',
                       '--compare', str(older)]) == 0
    # No object leaves the view, so the image changes nothing but the cost.
    assert 'outputs: same IDs and alerts' in capsys.readouterr().out


def test_camera_motion_is_given_to_this_tracker_only(capsys, monkeypatch):
    given = []
    update = tracking.Tracker.update

    def recording(self, *args, camera_motion=None, **kwargs):
        given.append(camera_motion)
        return update(self, *args, camera_motion=camera_motion, **kwargs)
    monkeypatch.setattr(tracking.Tracker, 'update', recording)
    assert bench.main(['--objects', '3', '--frames', '4', '--warmup', '0',
                       '--compare', tracking.__file__, '--camera-motion']) == 0
    # The compared module is a copy loaded from the file: only this tracker records.
    assert given == [bench.CAMERA_MOTION] * 4
    assert re.search(r'this / that [\d.]+', capsys.readouterr().out)
    given.clear()
    assert bench.main(['--objects', '3', '--frames', '4', '--warmup', '1',
                       '--camera-motion']) == 0
    assert given == [bench.CAMERA_MOTION] * 10  # after fusion and alone, 5 frames each
