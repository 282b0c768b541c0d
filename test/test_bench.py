"""`depthdet bench` smoke tests on tiny models: every JSON field present, tables render.

No timing is asserted: this machine's timings are noise; the bench reports them.
"""
import json
import sys

import pytest

from depthdet_ros.bench import report, safety_latency, tracking, train_step
from depthdet_ros.bench.stats import PERCENTILES
from depthdet_ros.cli import main as depthdet
from onnx_fixtures import constant_detector, red_depth

PIPELINE_STAGES = ('conversion', 'detector_pre', 'depth_pre', 'detector', 'depth',
                   'detector_post', 'depth_post', 'fusion', 'end_to_end', 'detector_alone',
                   'depth_alone')
FAST = ['--size', '160x120', '--iterations', '3', '--warmup', '1']


def check_common_fields(result):
    """Every field a result always has, with percentiles for every stage measured."""
    assert result['schema'] == report.SCHEMA
    assert set(report.RESULT_FIELDS) <= set(result)
    assert set(report.RATIO_FIELDS) <= set(result['ratios'])
    assert set(report.MEMORY_FIELDS) <= set(result['memory'])
    for stage in PIPELINE_STAGES:
        summary = result['stages_ms'][stage]
        assert summary['n'] == 3
        assert all(summary[f'p{p}'] is not None for p in PERCENTILES)
    overhead = result['ratios']['overhead']
    assert overhead['value'] > 0 and overhead['target'] == report.OVERHEAD_TARGET
    assert overhead['met'] is (overhead['value'] <= report.OVERHEAD_TARGET)
    assert result['throughput_fps']['pipeline'] > 0
    assert result['providers'] == {'detector': 'cpu', 'depth': 'cpu'}
    assert result['memory']['rss_mb_after_load'] > 0
    assert result['config']['frame_size'] == '160x120'


def render_table(path, capsys):
    capsys.readouterr()
    assert depthdet(['bench', '--table', str(path)]) == 0
    table = capsys.readouterr().out
    assert '| Stage | p50 ms | p90 ms | p99 ms | n |' in table
    assert 'overhead: end-to-end / (detector alone + depth alone)' in table
    return table


def test_ratio_verdicts_follow_the_target_and_its_direction():
    assert report.ratio_record(1.2, 'd', 1.25)['met'] is True
    assert report.ratio_record(1.3, 'd', 1.25)['met'] is False
    assert report.ratio_record(1.25, 'd', 1.25)['met'] is True  # at the target: met
    assert report.ratio_record(2.0, 'd', 1.5, lower_is_better=False)['met'] is True
    assert report.ratio_record(1.4, 'd', 1.5, lower_is_better=False)['met'] is False
    assert report.ratio_record(None, 'd', 1.5)['met'] is None  # not measured: no verdict
    assert report.ratio_record(1.0, 'd')['met'] is None  # no target
    concurrent = report.overhead_ratio(0.8, concurrent=True)
    assert (concurrent['met'], concurrent['overlap_met']) == (True, False)
    assert report.overhead_ratio(0.8, concurrent=False)['overlap_met'] is None


@pytest.mark.torch
@pytest.mark.ros
def test_bench_all_sections_on_tiny_exported_models(tmp_path, capsys):
    """Tiny nets exported by depthdet export, so the PyTorch baseline can be rebuilt."""
    from depthdet_ros.nets import export
    from depthdet_ros.nets.registry import build_model

    detector = str(tmp_path / 'detector.onnx')
    depth = str(tmp_path / 'depth.onnx')
    export.export_detector(build_model('yolov5n', 2, width_multiple=0.125), detector,
                           ['chair', 'bottle'], input_size=(64, 96))
    export.export_depth(build_model('unet_seed000'), depth, 'unet_seed000', input_size=(64, 96))
    out = tmp_path / 'result.json'
    code = depthdet(['bench', '--detector-model', detector, '--depth-model', depth, *FAST,
                     '--providers', 'cpu', '--score-threshold', '0.0001',
                     '--baseline-iterations', '2', '--ros-iterations', '3',
                     '--rates', '30', '60', '--rate-seconds', '0.5',
                     '--sections', ','.join(('pipeline', 'baseline', 'ros', 'keep_latest',
                                             'threading')),
                     '--input-reliability', 'reliable', '--json', str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    check_common_fields(result)
    assert result['config']['detector_arch'] == 'yolov5n-d0.33-w0.125'
    assert result['config']['objects_per_frame'] > 0
    assert result['stages_ms']['messages']['n'] == 3
    assert result['baseline']['status'] == 'measured'
    assert result['stages_ms']['baseline']['n'] == 2
    assert result['stages_ms']['baseline_1_thread']['n'] == 2
    assert result['baseline']['reference'] in ('baseline', 'baseline_1_thread')
    assert result['ratios']['speedup_vs_baseline']['value'] > 0
    ros = result['ros']
    assert ros['status'] == 'measured' and ros['round_trips'] == 3
    assert ros['node']['providers'] == {'detector': 'cpu', 'depth': 'cpu'}
    assert result['ratios']['ros_vs_inprocess']['value'] > 0
    assert result['stages_ms']['publish']['n'] == 3
    assert [r['rate_hz'] for r in result['keep_latest']] == [30, 60]
    for record in result['keep_latest']:
        assert record['sent'] == record['rate_hz'] * 0.5
        # The node's counters over the burst: it kept up with some frames, and every frame
        # it counts was sent.
        assert record['processed'] >= 1 and record['dropped'] >= 0
        assert record['processed'] + record['dropped'] <= record['sent']
    assert len(result['threading']['variants']) == 5
    assert result['memory']['node_rss_mb'] > 0
    table = render_table(out, capsys)
    assert 'speed-up over the naive baseline' in table and 'Input rate' in table
    assert 'Thread settings' in table
    # The through-ROS ratio's denominator is printed: the in-process sample beside it.
    p50 = ros['inprocess_end_to_end_ms']['p50']
    p50 = f'{p50:.1f}' if p50 >= 10 else f'{p50:.2f}'
    assert f'| end to end, in process, interleaved with the round trips | {p50} |' in table


def test_bench_without_ros_reports_what_it_could_not_measure(tmp_path, capsys, monkeypatch):
    """As on a GPU machine without rclpy; fixture models carry no PyTorch architecture."""
    for name in ('rclpy', 'std_msgs.msg'):
        monkeypatch.setitem(sys.modules, name, None)
    detector = constant_detector(tmp_path / 'det.onnx', [(48, 32, 40, 30, 0.9, 0.95, 0.1)],
                                 input_hw=(64, 64))
    depth = red_depth(tmp_path / 'depth.onnx', input_hw=(32, 40))
    out = tmp_path / 'result.json'
    assert depthdet(['bench', '--detector-model', detector, '--depth-model', depth, *FAST,
                     '--providers', 'cpu', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    check_common_fields(result)
    assert result['config']['objects_per_frame'] == 1
    assert 'messages' not in result['stages_ms']
    assert result['ros'] == {'status': 'not run'} and result['keep_latest'] is None
    assert result['baseline']['status'] == 'skipped'
    assert 'depthdet_arch' in result['baseline']['reason']
    assert result['ratios']['speedup_vs_baseline']['value'] is None
    missing = '\n'.join(result['not_measured'])
    assert 'rclpy' in missing and 'baseline' in missing and 'GPU memory' in missing
    table = render_table(out, capsys)
    assert 'not measured' in table


@pytest.mark.parametrize('text, words', [
    ('{"images": []}', 'not a `depthdet bench --json` result'),
    ('[1, 2]', 'not a `depthdet bench --json` result'),  # was an AttributeError traceback
    ('{"schema": "depthdet-bench/1"}', 'not a complete'),  # was a KeyError traceback
])
def test_table_refuses_other_json(tmp_path, capsys, text, words):
    path = tmp_path / 'other.json'
    path.write_text(text)
    assert depthdet(['bench', '--table', str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.strip().count('\n') == 0, err


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert depthdet(['bench', '--detector-model', str(tmp_path / 'none.onnx'),
                     '--no-ros']) == 2
    assert 'file not found' in capsys.readouterr().err


def test_unusable_int8_models_and_batch_sizes_are_refused_before_any_work(
        tmp_path, capsys, monkeypatch):
    # A missing INT8 model failed after the other sections had run, unnamed; a negative
    # GPU batch size passed when the gpu section did not run.
    from depthdet_ros.bench import cli as bench_cli
    monkeypatch.setattr(bench_cli, 'benchmark', lambda *a, **k: pytest.fail('work started'))
    assert depthdet(['bench', '--int8-depth-model', str(tmp_path / 'none.onnx'),
                     '--no-ros']) == 2
    err = capsys.readouterr().err
    assert f'--int8-depth-model {tmp_path / "none.onnx"}: file not found' in err
    with pytest.raises(SystemExit) as exited:
        depthdet(['bench', '--gpu-batch-sizes', '0,-4', '--no-ros'])
    assert exited.value.code == 2
    assert "argument --gpu-batch-sizes: '0,-4' is not N,N,..." in capsys.readouterr().err


def test_int8_section_compares_fp32_and_int8_side_by_side(tmp_path, capsys):
    """An INT8 depth net from depthdet quantize against its FP32 source, in one run."""
    import cv2
    import numpy as np

    detector = constant_detector(tmp_path / 'det.onnx', [(48, 32, 40, 30, 0.9, 0.95, 0.1)],
                                 input_hw=(64, 64))
    depth = red_depth(tmp_path / 'depth.onnx', input_hw=(32, 40))
    images = tmp_path / 'calib'
    images.mkdir()
    for red in range(0, 256, 32):
        cv2.imwrite(str(images / f'{red}.png'), np.full((48, 64, 3), red, np.uint8))
    assert depthdet(['quantize', depth, '--calibration', str(images), '--frames', '6',
                     '--check-frames', '2', '--no-search', '--out-dir', str(tmp_path)]) == 0
    out = tmp_path / 'result.json'
    assert depthdet(['bench', '--detector-model', detector, '--depth-model', depth, *FAST,
                     '--no-ros', '--no-baseline', '--int8-depth-model',
                     str(tmp_path / 'depth_int8.onnx'), '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    int8 = result['int8']
    assert int8['models'] == {'detector': detector, 'depth': str(tmp_path / 'depth_int8.onnx')}
    assert 'int8' in result['config']['sections']
    for stage in ('end_to_end', 'detector_alone', 'depth_alone'):
        assert int8['stages_ms'][f'{stage}_fp32']['n'] == 3
        assert int8['stages_ms'][f'{stage}_int8']['n'] == 3
        assert int8['speedup_fp32_over_int8'][stage] > 0
    table = render_table(out, capsys)
    assert '| Interleaved, p50 ms | FP32 | INT8 | FP32 / INT8 |' in table
    assert 'CPU 8-bit instruction sets' in table


@pytest.mark.parametrize('module, args, message', [
    (tracking, ['--frames', '0'], 'argument --frames: must be an integer in [1, 1000000]'),
    (tracking, ['--objects', '-1'], 'argument --objects: must be an integer in [1, 1000]'),
    (safety_latency, ['--rate', 'nan'], 'argument --rate: must be a number > 0'),
    (safety_latency, ['--rounds', '-1'], 'argument --rounds: must be an integer in [1, 1000000]'),
    (safety_latency, ['--height', '0'], 'argument --height: must be an integer in [32'),
    (safety_latency, ['--providers', 'bogus'], "providers is 'bogus'; choose one of"),
    (safety_latency, ['--json', '/'], '--json /: is a folder'),
    (train_step, ['--threads', '0'], 'argument --threads: must be an integer > 0'),
    (train_step, ['--iterations', '0'],
     'argument --iterations: must be an integer in [1, 1000000]'),
    (train_step, ['--size', '50', '64'], 'argument --size: must be a positive multiple of 32'),
])
def test_bench_modules_refuse_unusable_options_before_any_work(module, args, message, capsys):
    # Before: tracebacks, a node started first, or minutes of work printing None / nan.
    with pytest.raises(SystemExit) as stop:
        module.main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err, err
