"""`depthdet quantize`: INT8 models that run unchanged, calibrated from every source kind."""
import json

import cv2
import numpy as np
import onnx
import pytest

from depthdet_ros.cli import main
from depthdet_ros.core import metadata
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.nets import quantize
from eval_bags import FrameSpec, pinhole, write_eval_bag
from onnx_fixtures import depth_for_red, red_depth

NEAR, FAR = 0.5, 10.5


def red_frames(reds, size=(48, 64)):
    """Uniform frames whose red channel is each of `reds` (green and blue vary)."""
    frames = []
    for k, red in enumerate(reds):
        rgb = np.zeros((*size, 3), np.uint8)
        rgb[..., 0] = red
        rgb[..., 1] = (37 * k) % 256
        rgb[..., 2] = (91 * k) % 256
        frames.append(rgb)
    return frames


def write_images(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    for k, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f'{k:03d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(folder)


@pytest.fixture(scope='module')
def quantized_red_depth(tmp_path_factory):
    """red_depth quantized from image files spanning red 0-255; (fp32, int8, folder)."""
    tmp = tmp_path_factory.mktemp('quantize')
    fp32 = red_depth(tmp / 'depth.onnx', input_hw=(32, 40))
    images = write_images(tmp / 'calib', red_frames(range(0, 256, 8)))
    out = tmp / 'out'
    assert main(['quantize', fp32, '--calibration', images, '--frames', '24',
                 '--check-frames', '8', '--out-dir', str(out)]) == 0
    return fp32, str(out / 'depth_int8.onnx'), out


def test_int8_model_keeps_metadata_and_records_the_recipe(quantized_red_depth):
    fp32, int8, _ = quantized_red_depth
    before = {p.key: p.value for p in onnx.load(fp32).metadata_props}
    after = {p.key: p.value for p in onnx.load(int8).metadata_props}
    recipe = json.loads(after.pop(metadata.QUANTIZATION))
    assert after == before
    assert recipe['quant_format'] == 'qdq' and recipe['activations'] == 'u8'
    assert recipe['reduce_range'] == (not quantize.has_vnni())
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops


def test_int8_depth_is_within_two_steps_of_its_output_range(quantized_red_depth):
    """Hand-computed bound: 8-bit activations over 0.5-10.5 m step by 10 / 255 m.

    Every 4th frame (red 0, 32, ...) is held out for the check, so the calibrated reds
    span 8-248; values inside that range are tested.
    """
    fp32, int8, _ = quantized_red_depth
    step = (FAR - NEAR) / 255.0
    for red in (8, 40, 128, 200, 248):
        rgb = red_frames([red], size=(64, 80))[0]
        expected = float(depth_for_red(red))
        depth_int8 = DepthEstimator(int8).infer(rgb)
        assert DepthEstimator(fp32).infer(rgb)[20:-20, 20:-20] == pytest.approx(expected,
                                                                                abs=1e-4)
        assert np.abs(depth_int8[20:-20, 20:-20] - expected).max() <= 2 * step, red


def test_study_is_written_with_measured_variants(quantized_red_depth):
    _, _, out = quantized_red_depth
    study = json.loads((out / 'depth_int8.json').read_text())
    assert study['task'] == metadata.TASK_DEPTH
    assert study['calibration_frames'] + study['check_frames'] == 32
    names = [v['name'] for v in study['variants']]
    assert names[0] == 'all quantized' and 'Mul in float' in names
    assert study['chosen']['latency_ms'] > 0 and study['chosen']['error']['error'] >= 0


def test_int8_model_runs_in_depthdet_run(quantized_red_depth, tmp_path, capsys):
    _, int8, _ = quantized_red_depth
    image = tmp_path / 'scene.png'
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 2] = 128  # red 128, inside the calibrated 8-248
    cv2.imwrite(str(image), bgr)
    out = tmp_path / 'o'
    assert main(['run', str(image), '--depth-model', int8, '--out', str(out),
                 '--save-depth']) == 0
    (record,) = json.loads((out / 'results.json').read_text())['images']
    depth = np.load(out / record['files']['depth'])
    # Within two 8-bit steps of the 0.5-10.5 m range of red 128's 5.52 m.
    assert np.nanmedian(depth) == pytest.approx(depth_for_red(128), abs=2 * 10 / 255)


def test_calibration_sources_split_bag_images(tmp_path):
    """A synth split, a bag and image files each give their frames, evenly spread."""
    frames = red_frames([10, 60, 110, 160])
    split = tmp_path / 'split'
    write_images(split, frames)
    (split / 'annotations.json').write_text(json.dumps({
        'images': [{'id': k + 1, 'file_name': f'{k:03d}.png', 'depth_file': 'none.npy'}
                   for k in range(4)], 'annotations': [],
        'categories': [{'id': 1, 'name': 'chair'}]}))
    bag = write_eval_bag(tmp_path / 'bag', [FrameSpec(rgb, None) for rgb in frames],
                         pinhole(64, 48))
    single = write_images(tmp_path / 'one', frames[:1]) + '/000.png'
    for source in (str(split), bag):
        read = quantize.read_frames([source], 2)
        assert [int(f[0, 0, 0]) for f in read] == [10, 110]
    read = quantize.read_frames([str(split), single], 10)
    assert [int(f[0, 0, 0]) for f in read] == [10, 60, 110, 160, 10]
    with pytest.raises(quantize.CalibrationError, match='not found'):
        quantize.read_frames([str(tmp_path / 'nothing')], 4)


def test_reduce_range_follows_vnni(monkeypatch):
    monkeypatch.setattr(quantize, 'cpu_features', lambda: ['avx2'])
    assert quantize.QuantSettings().resolved().reduce_range is True
    monkeypatch.setattr(quantize, 'cpu_features', lambda: ['avx512_vnni', 'avx512f', 'avx2'])
    assert quantize.QuantSettings().resolved().reduce_range is False
    assert quantize.QuantSettings(reduce_range=True).resolved().reduce_range is True


def test_detector_output_tail_is_the_box_decoding(tmp_path):
    """The nodes after the last convolution of a YOLOv5 are its Detect decoding."""
    pytest.importorskip('torch')
    from depthdet_ros.nets import export
    from depthdet_ros.nets.registry import build_model

    path = str(tmp_path / 'det.onnx')
    export.export_detector(build_model('yolov5n', 2, width_multiple=0.125), path,
                           ['a', 'b'], input_size=(64, 64))
    model = onnx.load(path)
    nodes = {n.name: n.op_type for n in model.graph.node}
    tail = {name for name in quantize.tail_nodes(model) if nodes[name] != 'Constant'}
    assert tail and all(name.startswith('/model.24/') for name in tail)
    assert {nodes[name] for name in tail} >= {'Sigmoid', 'Pow', 'Reshape', 'Concat'}
    assert not any(op == 'Conv' for name, op in nodes.items() if name in tail)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(['quantize', str(tmp_path / 'none.onnx'), '--calibration', str(tmp_path)]) \
        == 2
    captured = capsys.readouterr()
    assert 'model not found' in captured.err and not captured.out  # no CPU line first
    model = red_depth(tmp_path / 'd.onnx', input_hw=(32, 40))
    (tmp_path / 'empty').mkdir()
    assert main(['quantize', model, '--calibration', str(tmp_path / 'empty')]) == 2
    assert 'no calibration frames' in capsys.readouterr().err
    # Negative counts started the study (an outsider's check).
    for option, value in (('--max-float-nodes', '-5'), ('--threads', '-2'),
                          ('--frames', '0')):
        with pytest.raises(SystemExit) as exit_info:
            main(['quantize', model, '--calibration', str(tmp_path), option, value])
        assert exit_info.value.code == 2
        assert f'argument {option}: must be an integer' in capsys.readouterr().err


def test_unquantizable_model_is_refused_at_once(quantized_red_depth, tmp_path, capsys):
    """Already INT8, not ONNX, a joint model: one line before any frame is read."""
    _, int8, _ = quantized_red_depth
    not_onnx, empty = tmp_path / 'text.onnx', tmp_path / 'empty.onnx'
    not_onnx.write_text('hi\n')
    empty.write_bytes(b'')
    joint = onnx.load(red_depth(tmp_path / 'joint.onnx', input_hw=(32, 40)))
    onnx.helper.set_model_props(joint, {metadata.TASK: metadata.TASK_JOINT})
    onnx.save(joint, str(tmp_path / 'joint.onnx'))
    already = ('depth_int8.onnx is already quantized (it has DequantizeLinear, '
               'QuantizeLinear); give the FP32 model')
    for model, message in ((int8, already), (not_onnx, 'is not an ONNX model;'),
                           (empty, 'is not an ONNX model'),
                           (tmp_path / 'joint.onnx', 'joint.onnx is a joint model')):
        assert main(['quantize', str(model), '--calibration', str(tmp_path / 'none'),
                     '--out-dir', str(tmp_path / 'out')]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1 and 'joint_path' not in err
    assert not (tmp_path / 'out').exists()


def test_recipe_names_absent_from_the_model_are_refused(tmp_path, capsys):
    model = red_depth(tmp_path / 'd.onnx', input_hw=(32, 40))
    images = write_images(tmp_path / 'calib', red_frames([16, 128, 240]))
    common = ['quantize', model, '--calibration', images, '--no-search',
              '--out-dir', str(tmp_path / 'out')]
    assert main(common + ['--op-types', 'Mul', 'Bogus']) == 2
    captured = capsys.readouterr()
    assert 'error: --op-types Bogus: not in d.onnx, whose quantizable op types are: ' \
        'Add AveragePool Mul Slice' in captured.err and 'CPU:' not in captured.out
    assert main(common + ['--float-op-types', 'Conv']) == 2
    assert 'error: --float-op-types Conv: not in d.onnx' in capsys.readouterr().err
    assert main(common + ['--float-nodes', 'nosuch_node']) == 2
    assert 'error: --float-nodes nosuch_node: no such node in d.onnx' in \
        capsys.readouterr().err
    assert not (tmp_path / 'out' / 'd_int8.onnx').exists()


def test_fewer_frames_than_asked_are_said_once(tmp_path, capsys, caplog):
    """The frames used are those asked when there are enough, else one line says so."""
    model = red_depth(tmp_path / 'd.onnx', input_hw=(32, 40))
    images = write_images(tmp_path / 'calib', red_frames(range(16, 240, 16)))   # 14
    out = tmp_path / 'out'
    assert main(['quantize', model, '--calibration', images, '--frames', '10',
                 '--check-frames', '3', '--no-search', '--out-dir', str(out)]) == 0
    study = json.loads((out / 'd_int8.json').read_text())
    assert (study['calibration_frames'], study['check_frames']) == (10, 3)
    output = capsys.readouterr().out
    assert 'only' not in output
    # The measured line once (not again after "wrote"), the model's metadata warning once.
    assert output.count('as given: output error') == 1
    assert sum('canonical_focal' in r.getMessage() for r in caplog.records) == 1
    assert main(['quantize', model, '--calibration', images, '--frames', '64',
                 '--check-frames', '16', '--no-search', '--out-dir', str(out)]) == 0
    assert f'only 14 frames in {images} (asked --frames 64 + --check-frames 16): ' \
        'calibrating on 7, comparing on 7' in capsys.readouterr().out
    study = json.loads((out / 'd_int8.json').read_text())
    assert (study['calibration_frames'], study['check_frames']) == (7, 7)


def test_out_dir_that_is_a_file_is_refused(tmp_path, capsys):
    model = red_depth(tmp_path / 'd.onnx', input_hw=(32, 40))
    images = write_images(tmp_path / 'calib', red_frames([16, 128, 240]))
    (tmp_path / 'afile').write_text('')
    assert main(['quantize', model, '--calibration', images, '--no-search',
                 '--out-dir', str(tmp_path / 'afile')]) == 2
    err = capsys.readouterr().err
    assert 'choose another --out-dir' in err and len(err.splitlines()) == 1


def _report(map50, delta1, median_rel, frames=10, strategy='near_median'):
    return {'frames': frames, 'map50': map50, 'depth': {'delta1': delta1},
            'objects': {'pipeline': {'all': {strategy: {'median_rel': median_rel}}}}}


def test_accuracy_cost_against_the_bounds(tmp_path, capsys):
    fp32, ok, bad = (_report(0.650, 0.400, 0.100), _report(0.640, 0.385, 0.108),
                     _report(0.630, 0.400, 0.100))
    rows = quantize.accuracy_cost(fp32, ok, 'near_median')
    assert [(r[0], round(r[3], 3), r[5]) for r in rows] == [
        ('map50', -0.010, True), ('delta1', -0.015, True), ('object_median_rel', 0.008, True)]
    assert not quantize.accuracy_cost(fp32, bad, 'near_median')[0][5]  # mAP 0.020 > 0.015
    paths = []
    for name, report in (('fp32', fp32), ('ok', ok), ('bad', bad)):
        paths.append(tmp_path / f'{name}.json')
        paths[-1].write_text(json.dumps(report))
    assert main(['quantize', '--accuracy-cost', str(paths[0]), str(paths[1])]) == 0
    assert '| mAP@0.5 | 0.6500 | 0.6400 | -0.0100 | -0.015 | yes |' in capsys.readouterr().out
    assert main(['quantize', '--accuracy-cost', str(paths[0]), str(paths[2])]) == 1
    assert main(['quantize', '--accuracy-cost', str(paths[0]), str(tmp_path / 'x.json')]) == 2
    capsys.readouterr()
    # A report without the node's default strategy (an older depthdet's): one line.
    older = tmp_path / 'older.json'
    older.write_text(json.dumps(_report(0.65, 0.4, 0.1, strategy='robust')))
    assert main(['quantize', '--accuracy-cost', str(older), str(paths[1])]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no per-object figures for the 'near_median'" in err
    assert main(['quantize', '--accuracy-cost', str(older), str(older),
                 '--strategy', 'robust']) == 0


def test_accuracy_cost_refuses_reports_of_different_frames(tmp_path, capsys):
    paths = []
    for frames in (2, 1):
        paths.append(tmp_path / f'{frames}.json')
        paths[-1].write_text(json.dumps(_report(0.65, 0.4, 0.1, frames=frames)))
    assert main(['quantize', '--accuracy-cost', str(paths[0]), str(paths[1])]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 1
    assert 'different held-out sets (2 and 1 frames)' in err


def test_recipes_are_compared_side_by_side(tmp_path):
    model = red_depth(tmp_path / 'd.onnx', input_hw=(32, 40))
    # Frames 0 and 4 are held out: reds inside the calibrated 16-240.
    images = write_images(tmp_path / 'calib', red_frames([128, 16, 240, 64, 96, 200, 32, 160]))
    assert main(['quantize', model, '--calibration', images, '--frames', '6',
                 '--check-frames', '2', '--no-search', '--compare-recipes',
                 '--out-dir', str(tmp_path / 'out')]) == 0
    study = json.loads((tmp_path / 'out' / 'd_int8.json').read_text())
    assert [row[0] for row in study['recipes']] == [name for name, _ in quantize.RECIPES]
    for _, error, int8_ms, fp32_ms in study['recipes']:
        assert error < 0.05 and int8_ms > 0 and fp32_ms > 0


@pytest.mark.ros
def test_int8_and_fp16_models_run_in_the_node_unchanged(tmp_path):
    """depthdet_node over DDS with an INT8 depth net and an FP16-I/O detector."""
    import rclpy
    from vision_msgs.msg import Detection2DArray

    from onnx_fixtures import constant_detector, float16_io, red_for_depth
    from ros_harness import NodeProcess, pinhole, Probe, write_params

    detector = float16_io(constant_detector(
        tmp_path / 'det.onnx', [(200, 355, 200, 250, 0.9, 0.95, 0.1)]), tmp_path / 'det16.onnx')
    depth = red_depth(tmp_path / 'depth.onnx')
    # Held-out frames 0 and 4 lie inside the calibrated reds.
    images = write_images(tmp_path / 'calib', red_frames([128, 16, 240, 64, 96, 200, 32, 160],
                                                         size=(480, 640)))
    assert main(['quantize', depth, '--calibration', images, '--frames', '6',
                 '--check-frames', '2', '--no-search', '--out-dir', str(tmp_path)]) == 0
    params = write_params(tmp_path / 'params.yaml', detector_model=detector,
                          depth_model=str(tmp_path / 'depth_int8.onnx'), providers='cpu')
    red = red_for_depth(3.0)
    image = red_frames([red], size=(480, 640))[0]
    rclpy.init()
    try:
        with NodeProcess(params, log_path=tmp_path / 'node.log') as node:
            probe = Probe({'detections': Detection2DArray})
            try:
                msg = probe.wait_for('detections', lambda m: m.detections and np.isfinite(
                    m.detections[0].results[0].pose.pose.position.z),
                    resend=lambda: probe.send(image, pinhole()), timeout=60)
            finally:
                probe.destroy_node()
            assert node.proc.poll() is None, node.output()
    finally:
        rclpy.try_shutdown()
    hypothesis = msg.detections[0].results[0]
    assert hypothesis.hypothesis.class_id == 'chair'
    assert hypothesis.hypothesis.score == pytest.approx(0.855, abs=1e-3)
    step = (FAR - NEAR) / 255.0
    assert hypothesis.pose.pose.position.z == pytest.approx(float(depth_for_red(red)),
                                                            abs=2 * step)


def test_output_error_by_hand():
    f = np.zeros((1, 4, 7), np.float32)
    f[0, 0] = [100, 100, 20, 30, 0.9, 0.5, 0.1]   # score 0.45: compared
    f[0, 1] = [10, 10, 5, 5, 0.1, 0.2, 0.1]       # score 0.02: below DETECTOR_ROW_SCORE
    q = f.copy()
    q[0, 0, 0] += 1.0                             # cx off by 1 px of a 20 + 30 px box
    q[0, 0, 4] = 0.8                              # score 0.40
    error = quantize.output_error(metadata.TASK_DETECTOR, [f], [q])
    assert error['rows'] == 1
    assert error['box_rel'] == pytest.approx(1 / 50) and error['score_abs'] == pytest.approx(0.05)
    assert error['error'] == pytest.approx(0.07)
    v8 = quantize.output_error(metadata.TASK_DETECTOR, [f[:, :, [0, 1, 2, 3, 5, 6]].transpose(
        0, 2, 1)], [q[:, :, [0, 1, 2, 3, 5, 6]].transpose(0, 2, 1)], layout='yolov8')
    # Without objectness the second row scores 0.2 and is compared too (no difference).
    assert v8['rows'] == 2 and v8['score_abs'] == 0
    assert v8['box_rel'] == pytest.approx((1 / 50 + 0) / 2)
    depth = quantize.output_error(metadata.TASK_DEPTH, [np.full((1, 1, 2, 2), 2.0)],
                                  [np.full((1, 1, 2, 2), 2.2)])
    assert depth['error'] == pytest.approx(0.1)


def test_search_on_a_real_detector(tmp_path):
    """The whole study on a tiny YOLOv5: every stage measured, exclusions consistent."""
    pytest.importorskip('torch')
    from depthdet_ros.nets import export
    from depthdet_ros.nets.registry import build_model

    path = str(tmp_path / 'det.onnx')
    export.export_detector(build_model('yolov5n', 2, width_multiple=0.125), path,
                           ['a', 'b'], input_size=(64, 64))
    images = write_images(tmp_path / 'calib', red_frames(range(0, 256, 16), size=(48, 64)))
    assert main(['quantize', path, '--calibration', images, '--frames', '12',
                 '--check-frames', '4', '--max-float-nodes', '2',
                 '--out-dir', str(tmp_path / 'out')]) == 0
    study = json.loads((tmp_path / 'out' / 'det_int8.json').read_text())
    names = [v['name'] for v in study['variants']]
    assert names[0] == 'all quantized' and 'Conv in float' in names
    assert 'speed and type exclusions' in names
    chosen = study['chosen']['settings']
    assert {name for name, _, _ in study['slower_in_int8']} <= set(chosen['exclude_nodes'])
    assert len(chosen['exclude_nodes']) <= len(study['slower_in_int8']) + 2
    assert study['chosen']['error']['error'] <= study['variants'][0]['error']['error']
    tail = quantize.tail_nodes(onnx.load(path))
    int8 = onnx.load(str(tmp_path / 'out' / 'det_int8.onnx'))
    quantized = {n.input[0] for n in int8.graph.node if n.op_type == 'DequantizeLinear'}
    assert tail and not any(name.startswith('/model.24/Pow') for name in quantized)
