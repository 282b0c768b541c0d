"""`depthdet run` on image files with the node's parameters file."""
import json

import cv2
import numpy as np
import pytest

from depthdet_ros.cli import main
from onnx_fixtures import constant_detector, depth_for_red, red_depth, red_for_depth


def test_run_on_files_writes_results_and_annotations(tmp_path):
    det = constant_detector(tmp_path / 'det.onnx', [(200, 355, 200, 250, 0.9, 0.95, 0.1)])
    depth = red_depth(tmp_path / 'depth.onnx')
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 2] = red_for_depth(3.0)  # BGR on disk: channel 2 is red
    cv2.imwrite(str(tmp_path / 'scene.png'), image)
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    out = tmp_path / 'out'
    code = main(['run', str(tmp_path / 'scene.png'), str(tmp_path / 'broken.png'),
                 '--detector-model', det, '--depth-model', depth, '--hfov', '90',
                 '--max-depth', '4', '--out', str(out)])
    assert code == 0
    results = json.loads((out / 'results.json').read_text())
    good, broken = results['images']
    assert broken['error'] == 'not a readable image'
    assert results['camera'] == {'camera_info': None, 'hfov_deg': 90.0}  # was not recorded
    (obj,) = good['objects']
    assert obj['class'] == 'chair' and obj['alert'] is True
    assert obj['depth_m'] == pytest.approx(float(depth_for_red(red_for_depth(3.0))), abs=1e-3)
    # hfov 90 on 640 px: f = 320, principal point 319.5; box centre u = 200.
    assert obj['position_m'][0] == pytest.approx((200 - 319.5) * obj['depth_m'] / 320, abs=1e-3)
    assert (out / 'scene_annotated.png').exists()


def test_run_reports_bad_arguments_in_one_line(tmp_path, capsys):
    assert main(['run', str(tmp_path / 'missing.png')]) == 2
    assert 'no such file or folder' in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    assert main(['run', str(tmp_path / 'a.png'), '--detector-model',
                 str(tmp_path / 'nope.onnx')]) == 2
    assert 'file not found' in capsys.readouterr().err


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Build a detector seeing one chair centred at u = 200 and a depth net reading red."""
    folder = tmp_path_factory.mktemp('models')
    return ['--detector-model',
            constant_detector(folder / 'det.onnx', [(200, 355, 200, 250, 0.9, 0.95, 0.1)]),
            '--depth-model', red_depth(folder / 'depth.onnx')]


def scene_image(path, size=(640, 480)):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[..., 2] = red_for_depth(3.0)
    assert cv2.imwrite(str(path), image)
    return str(path)


def one_error_line(capsys, *words):
    """Check that a refused command said one error line holding every word."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('depthdet run: error: '), lines
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_run_gives_inputs_sharing_a_name_their_own_outputs(tmp_path, models):
    (tmp_path / 'one').mkdir()
    (tmp_path / 'two').mkdir()
    inputs = [scene_image(tmp_path / 'one' / 'x.png'), scene_image(tmp_path / 'one' / 'x.jpg'),
              scene_image(tmp_path / 'two' / 'x.png')]
    out = tmp_path / 'out'
    argv = ['run', str(tmp_path / 'one'), str(tmp_path / 'two'), *models, '--save-depth',
            '--out', str(out)]
    assert main(argv) == 0
    records = json.loads((out / 'results.json').read_text())['images']
    assert sorted(r['image'] for r in records) == sorted(inputs)
    files = [r['files'] for r in records]
    # Folder order, sorted within a folder; later repeats of a name get -2, -3.
    assert [f['annotated'] for f in files] == ['x_annotated.png', 'x-2_annotated.png',
                                               'x-3_annotated.png']
    assert [f['depth'] for f in files] == ['x_depth.npy', 'x-2_depth.npy', 'x-3_depth.npy']
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ['results.json'] + [name for f in files for name in f.values()])
    # The same inputs get the same names on a rerun.
    assert main(argv) == 0
    assert [r['files'] for r in json.loads((out / 'results.json').read_text())['images']] \
        == files


@pytest.mark.parametrize('text, words', [
    ('foo: [\n', ['not valid YAML']),
    ('image_width: 640\nimage_height: 480\n', ['has no camera_matrix']),
    ('- just a list\n', ['has no image_width, image_height, camera_matrix']),
    ('image_width: 640\nimage_height: 480\ncamera_matrix: {data: [1, 2, 3]}\n',
     ['9 numbers']),
    ('image_width: 640\nimage_height: 480\ncamera_matrix: {data: [0, 0, 319.5, 0, 0, 239.5, '
     '0, 0, 1]}\n', ['focal lengths must be positive']),
    ('image_width: 0\nimage_height: 480\ncamera_matrix: {data: [320, 0, 319.5, 0, 320, 239.5, '
     '0, 0, 1]}\n', ['image_width and image_height must be positive']),
])
def test_run_refuses_a_bad_camera_info_in_one_line(tmp_path, capsys, models, text, words):
    calibration = tmp_path / 'calib.yaml'
    calibration.write_text(text)
    assert main(['run', scene_image(tmp_path / 'a.png'), *models, '--camera-info',
                 str(calibration), '--out', str(tmp_path / 'out')]) == 2
    one_error_line(capsys, str(calibration), *words)


def test_run_scales_a_camera_info_of_another_size_with_one_warning(tmp_path, capsys, models):
    # The same camera calibrated at 1280x960: halved, f = 320 and cx = 319.5 at 640x480.
    calibration = tmp_path / 'calib.yaml'
    calibration.write_text('image_width: 1280\nimage_height: 960\ncamera_matrix:\n  data: '
                           '[640, 0, 639.5, 0, 640, 479.5, 0, 0, 1]\n')
    out = tmp_path / 'out'
    assert main(['run', scene_image(tmp_path / 'a.png'), scene_image(tmp_path / 'b.png'),
                 *models, '--camera-info', str(calibration), '--out', str(out)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if 'warning' in line]
    assert len(warnings) == 1 and '1280x960' in warnings[0] and '640x480' in warnings[0]
    for record in json.loads((out / 'results.json').read_text())['images']:
        (obj,) = record['objects']
        assert obj['position_m'][0] == pytest.approx((200 - 319.5) * obj['depth_m'] / 320,
                                                     abs=1e-3)


def test_run_gives_no_3d_for_a_camera_info_of_another_aspect_ratio(tmp_path, capsys, models):
    """As the node: 640x360 intrinsics do not describe a 640x480 image (it stretched them)."""
    calibration = tmp_path / 'calib.yaml'
    calibration.write_text('image_width: 640\nimage_height: 360\ncamera_matrix:\n  data: '
                           '[320, 0, 319.5, 0, 320, 179.5, 0, 0, 1]\n')
    out = tmp_path / 'out'
    assert main(['run', scene_image(tmp_path / 'a.png'), *models, '--camera-info',
                 str(calibration), '--out', str(out)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if 'warning' in line]
    assert len(warnings) == 1 and 'another aspect ratio' in warnings[0], warnings
    (record,) = json.loads((out / 'results.json').read_text())['images']
    (obj,) = record['objects']
    assert obj['position_m'] is None
    assert obj['depth_m'] == pytest.approx(depth_for_red(red_for_depth(3.0)), abs=1e-3)


@pytest.mark.parametrize('hfov', ['nan', 'inf', '200', '180', '-30', '0'])
def test_run_refuses_a_field_of_view_outside_0_to_180_degrees(tmp_path, capsys, models, hfov):
    out = tmp_path / 'out'
    assert main(['run', scene_image(tmp_path / 'a.png'), *models, '--hfov', hfov,
                 '--out', str(out)]) == 2
    one_error_line(capsys, f'--hfov {float(hfov):g}', 'between 0 and 180')
    assert not out.exists()


def test_run_says_why_the_output_folder_cannot_be_created(tmp_path, capsys, models):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 'out'
    assert main(['run', scene_image(tmp_path / 'a.png'), *models, '--out', str(out)]) == 2
    one_error_line(capsys, f'cannot create output folder {out}: Not a directory')


def test_run_counts_skipped_inputs_and_fails_when_none_is_readable(tmp_path, capsys, models):
    notes = tmp_path / 'notes.txt'
    notes.write_text('not an image')
    good = scene_image(tmp_path / 'a.png')
    assert main(['run', good, str(notes), *models, '--out', str(tmp_path / 'some')]) == 0
    assert '1 image processed, 1 skipped (not readable)' in capsys.readouterr().out
    out = tmp_path / 'none'
    assert main(['run', str(notes), *models, '--out', str(out)]) == 2
    one_error_line(capsys, 'no readable image in 1 input')
    (record,) = json.loads((out / 'results.json').read_text())['images']
    assert record == {'image': str(notes), 'error': 'not a readable image'}


def test_a_folder_gives_every_image_format_opencv_reads(tmp_path, models):
    """WebP, PPM and Sun raster files in a folder were passed over without a word."""
    folder = tmp_path / 'in'
    folder.mkdir()
    rgb = cv2.imread(scene_image(tmp_path / 'a.png'))
    for name in ('a.webp', 'b.ppm', 'c.ras'):
        assert cv2.imwrite(str(folder / name), rgb)
    (folder / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    assert main(['run', str(folder), *models, '--out', str(out)]) == 0
    results = json.loads((out / 'results.json').read_text())
    assert sorted(r['image'].rsplit('/', 1)[1] for r in results['images']) == \
        ['a.webp', 'b.ppm', 'c.ras']
    # The class lists as names, not their ROS parameter form ([""]).
    assert results['params']['class_filter'] == [] and results['params']['class_max_depth'] == {}


def test_results_record_the_class_settings_by_name(tmp_path, models):
    """results.json wrote class_filter as [""] (the ROS parameter form of "every class")."""
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n    class_filter: ["chair"]\n'
                      '    class_max_depth: ["chair:4.0"]\n    max_depth: 1.0\n')
    out = tmp_path / 'out'
    assert main(['run', scene_image(tmp_path / 'a.png'), *models, '--params-file',
                 str(params), '--out', str(out)]) == 0
    results = json.loads((out / 'results.json').read_text())
    assert results['params']['class_filter'] == ['chair']
    assert results['params']['class_max_depth'] == {'chair': 4.0}
    # The chair at 3 m alerts by its class distance, not max_depth: what the record explains.
    (obj,) = results['images'][0]['objects']
    assert obj['alert'] is True and results['params']['max_depth'] == 1.0
