"""Models users bring: float16 inputs and outputs run; unusable models are one line."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from depthdet_ros.cli import main
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.core.detector import Detector
from depthdet_ros.core.session import ModelLoadError
from onnx_fixtures import (constant_detector, depth_for_red, failing_depth, float16_io,
                           red_depth, red_for_depth, uint8_input_detector)
from ros_harness import write_params

# Image box (100,150)-(300,400) letterboxed into 640x640: centre (200, 355), 200x250.
CHAIR_ROW = (200, 355, 200, 250, 0.9, 0.95, 0.1)


@pytest.fixture(scope='module')
def fp16_models(tmp_path_factory):
    """FP16-input/output copies of the constant detector and the red-channel depth net.

    Returns (detector FP16, depth FP16, depth FP32).
    """
    tmp = tmp_path_factory.mktemp('fp16')
    det = float16_io(constant_detector(tmp / 'det32.onnx', [CHAIR_ROW]), tmp / 'det16.onnx')
    depth32 = red_depth(tmp / 'depth32.onnx')
    return det, float16_io(depth32, tmp / 'depth16.onnx'), depth32


def test_fp16_models_get_fp16_input_and_give_fp32_results(fp16_models):
    det_path, depth_path, depth32_path = fp16_models
    detector, depth = Detector(det_path), DepthEstimator(depth_path)
    assert detector.input_dtype == np.float16 and depth.input_dtype == np.float16
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = red_for_depth(3.0)
    (chair,) = detector.infer(image)
    # The box values are exact in float16; 0.9 * 0.95 is 0.8999 * 0.9502 there.
    assert (chair.box.x1, chair.box.y1, chair.box.x2, chair.box.y2) == (100, 150, 300, 400)
    assert chair.class_name == 'chair' and chair.score == pytest.approx(0.855, abs=1e-3)
    depth_map = depth.infer(image)
    assert depth_map.dtype == np.float32
    # Away from the image border (where the view's padding blends in) every pixel reads
    # the red channel's depth; float16 keeps 11 significant bits: 3 m within 2e-3 m.
    np.testing.assert_allclose(depth_map[20:-20, 20:-20],
                               float(depth_for_red(red_for_depth(3.0))), atol=3e-3)
    reference = DepthEstimator(depth32_path).infer(image)
    np.testing.assert_allclose(depth_map, reference, atol=1e-2)


def test_depthdet_run_with_fp16_models(fp16_models, tmp_path, capsys):
    """The reported case: `depthdet run` on an FP16 export (it raised a traceback)."""
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 2] = red_for_depth(3.0)  # BGR on disk
    cv2.imwrite(str(tmp_path / 'scene.png'), image)
    code = main(['run', str(tmp_path / 'scene.png'), '--detector-model', fp16_models[0],
                 '--depth-model', fp16_models[1], '--out', str(tmp_path / 'out')])
    assert code == 0
    assert 'chair' in capsys.readouterr().out
    (record,) = json.loads((tmp_path / 'out' / 'results.json').read_text())['images']
    (obj,) = record['objects']
    # The red's depth, to float16's precision at 3 m (steps of 2 mm).
    assert obj['depth_m'] == pytest.approx(depth_for_red(red_for_depth(3.0)), abs=3e-3)


def test_real_yolov5_and_hybrid_fp16_exports_match_fp32(tmp_path):
    """Real networks exported by nets.export, then converted to float16 end to end."""
    pytest.importorskip('torch')
    from depthdet_ros.nets import export
    from test_nets_export import NAMES, tiny_depth, tiny_detector

    det32, depth32 = str(tmp_path / 'det32.onnx'), str(tmp_path / 'depth32.onnx')
    export.export_detector(tiny_detector(), det32, NAMES, input_size=(64, 96))
    export.export_depth(tiny_depth(), depth32, 'hybrid_mobilenetv2', input_size=(64, 96))
    det16 = float16_io(det32, tmp_path / 'det16.onnx')
    depth16 = float16_io(depth32, tmp_path / 'depth16.onnx')
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)
    raw = {}
    for name, path in (('fp32', det32), ('fp16', det16)):
        detector = Detector(path)
        detector.preprocess(rgb)
        raw[name] = detector._run()
        assert raw[name].dtype == (np.float16 if name == 'fp16' else np.float32)
    np.testing.assert_allclose(raw['fp16'].astype(np.float32), raw['fp32'], rtol=2e-2, atol=5e-2)
    maps = [DepthEstimator(path).infer(rgb) for path in (depth32, depth16)]
    assert np.isfinite(maps[0]).any()
    np.testing.assert_allclose(maps[1], maps[0], rtol=2e-2, atol=2e-2)


@pytest.fixture(scope='module')
def unusable(tmp_path_factory):
    """(detector taking uint8, depth net failing at run time, a good detector, good depth)."""
    tmp = tmp_path_factory.mktemp('unusable')
    return (uint8_input_detector(tmp / 'u8.onnx'), failing_depth(tmp / 'fail.onnx'),
            constant_detector(tmp / 'det.onnx', [CHAIR_ROW]), red_depth(tmp / 'depth.onnx'))


def test_unusable_models_raise_model_load_errors(unusable):
    u8, failing, _, _ = unusable
    with pytest.raises(ModelLoadError, match=r"u8.onnx: the detector input 'images' is "
                                             r'tensor\(uint8\); supported are float32'):
        Detector(u8)
    with pytest.raises(ModelLoadError, match='fail.onnx: the depth model fails on a 1x3x64x64 '
                                             'float32 input: .*cannot be reshaped'):
        DepthEstimator(failing)


def _one_line_error(stderr, expected):
    errors = [line for line in stderr.splitlines() if 'error' in line.lower()]
    assert len(errors) == 1 and expected in errors[0], stderr
    assert 'Traceback' not in stderr


@pytest.mark.parametrize('command', ['run', 'bench', 'evaluate'])
def test_cli_tools_report_unusable_models_in_one_line(unusable, tmp_path, capsys, command):
    u8, failing, good_det, good_depth = unusable
    for det, depth, expected in ((u8, good_depth, 'is tensor(uint8)'),
                                 (good_det, failing, 'fails on a 1x3x64x64 float32 input')):
        if command == 'run':
            cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((48, 64, 3), np.uint8))
            argv = ['run', str(tmp_path / 'a.png'), '--detector-model', det, '--depth-model',
                    depth, '--out', str(tmp_path / 'out')]
        elif command == 'bench':
            argv = ['bench', '--detector-model', det, '--depth-model', depth, '--no-ros',
                    '--no-baseline', '--iterations', '1']
        else:
            split = _tiny_split(tmp_path)
            argv = ['train', 'evaluate', '--data', split, '--detector', det, '--depth', depth]
        assert main(argv) == 2
        _one_line_error(capsys.readouterr().err, expected)


def _tiny_split(tmp_path):
    """Write a one-frame split folder with the sim's annotation layout (classes of the fixture)."""
    import json
    split = tmp_path / 'split'
    split.mkdir(exist_ok=True)
    cv2.imwrite(str(split / 'f.png'), np.zeros((48, 64, 3), np.uint8))
    np.save(split / 'f.npy', np.ones((48, 64), np.float32))
    (split / 'annotations.json').write_text(json.dumps({
        'images': [{'id': 1, 'file_name': 'f.png', 'depth_file': 'f.npy'}],
        'annotations': [], 'categories': [{'id': 1, 'name': 'chair'},
                                          {'id': 2, 'name': 'bottle'}]}))
    return str(split)


def test_node_reports_unusable_models_in_one_line(unusable, tmp_path):
    u8, failing, good_det, good_depth = unusable
    for index, (det, depth, expected) in enumerate((
            (u8, good_depth, 'is tensor(uint8)'),
            (good_det, failing, 'fails on a 1x3x64x64 float32 input'))):
        params = write_params(tmp_path / f'p{index}.yaml', detector_model=det,
                              depth_model=depth)
        proc = subprocess.run([sys.executable, '-m', 'depthdet_ros.ros.node', '--ros-args',
                               '--params-file', params], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2, proc.stderr
        _one_line_error(proc.stderr, expected)
