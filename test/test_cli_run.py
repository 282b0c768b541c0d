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
