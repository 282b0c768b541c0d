"""The GPU benchmark (tools/bench_gpu.sh, `depthdet bench --sections gpu`) without a GPU.

On a machine without one the script must stop at once with one line and a non-zero
exit, having exported and measured nothing. The section's code paths (every variant,
I/O binding on batches, the PyTorch half, the tables) run on the CPU through the hidden
--gpu-allow-cpu flag with tiny models, and batched processing must give the objects of
Pipeline.process frame by frame.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from depthdet_ros.bench import gpu
from depthdet_ros.bench.frames import raw_frame, synthetic_rgb
from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.detector import DetectorConfig
from depthdet_ros.core.pipeline import Pipeline, PipelineModels
from depthdet_ros.core.session import gpu_provider_status, SessionOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPTHDET = [sys.executable, '-m', 'depthdet_ros.cli']


def _no_gpu():
    if gpu_provider_status()[0]:
        return False
    try:
        import torch
    except ImportError:
        return True
    return not torch.cuda.is_available()


needs_no_gpu = pytest.mark.skipif(not _no_gpu(), reason='this machine has a GPU to measure')


@pytest.fixture(scope='module')
def tiny_models(tmp_path_factory):
    """YOLOv5n at 64x64 and a narrow hybrid_mobilenetv2, both with a dynamic batch."""
    pytest.importorskip('torch')
    out = tmp_path_factory.mktemp('tiny')
    paths = {'detector': str(out / 'det.onnx'), 'depth': str(out / 'depth.onnx')}
    for kind, extra in (('detector', ['--arch', 'yolov5n']),
                        ('depth', ['--arch', 'hybrid_mobilenetv2', '--arch-kwargs',
                                   '{"decoder_width": 0.25}'])):
        subprocess.run(DEPTHDET + ['export', '--random-weights', '--input-size', '64', '64',
                                   '--dynamic-batch', '-o', paths[kind]] + extra,
                       check=True, capture_output=True, timeout=600)
    return paths


@needs_no_gpu
def test_script_stops_at_once_with_one_line(tmp_path):
    out = tmp_path / 'out'
    result = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'bench_gpu.sh')],
                            env=dict(os.environ, PYTHON=sys.executable, OUT_DIR=str(out)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ''
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('bench_gpu: no GPU to measure: ')
    assert 'nothing was measured' in lines[0]
    assert not out.exists()  # nothing exported


@needs_no_gpu
def test_bench_section_refuses_without_a_gpu():
    result = subprocess.run(DEPTHDET + ['bench', '--sections', 'gpu'], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.strip().splitlines()[-1].startswith(
        'depthdet bench: error: no GPU to measure: ')


def test_batched_pipeline_equals_pipeline_process(tiny_models):
    """Two frames as one bound batch give each frame's own objects and timings."""
    config = DetectorConfig(score_threshold=0.00001, max_detections=5)
    options = SessionOptions(providers='cpu')
    pipeline = Pipeline(PipelineModels(tiny_models['detector'], tiny_models['depth'], options),
                        config)
    camera = CameraModel.from_fov(160, 120, 60.0)
    frames = [raw_frame(synthetic_rgb(160, 120, seed=i)) for i in range(2)]
    batched = gpu.BatchedPipeline(pipeline, 2)
    for role, model, host in (('detector_runner', pipeline.detector, batched.detector_batch),
                              ('depth_runner', pipeline.depth, batched.depth_batch)):
        setattr(batched, role, gpu.onnxruntime_runner(model, host, 'cpu', 0, bind=True))
    try:
        stages, objects = batched.process(frames, camera)
        assert set(stages) >= {'preprocess', 'detector', 'depth', 'postprocess', 'fusion',
                               'end_to_end'}
        for frame, batch_objects in zip(frames, objects):
            rgb = np.frombuffer(frame.data, np.uint8).reshape(120, 160, 3)
            expected = pipeline.process(rgb, camera).objects
            assert len(expected) == 5
            assert [o.detection for o in batch_objects] == [o.detection for o in expected]
            for got, want in zip(batch_objects, expected):
                assert got.depth.depth == pytest.approx(want.depth.depth, rel=1e-5, nan_ok=True)
    finally:
        batched.close()
        pipeline.close()


def test_every_code_path_on_the_cpu(tiny_models, tmp_path):
    """--gpu-allow-cpu: CPU stand-ins for the GPU variants and PyTorch on the CPU, labelled."""
    out = tmp_path / 'gpu.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        DEPTHDET + ['bench', '--sections', 'gpu', '--gpu-allow-cpu', '--detector-model',
                    tiny_models['detector'], '--depth-model', tiny_models['depth'],
                    '--size', '160x120', '--iterations', '2', '--warmup', '1',
                    '--gpu-batch-sizes', '2', '--json', str(out)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith('TEST RUN ON THE CPU (--gpu-allow-cpu)')
    record = json.loads(out.read_text())
    assert record['backend'] == 'cpu-test'
    assert list(record['variants']) == ['cpu', 'cuda_fp32', 'cuda_fp32_plain_run',
                                        'tensorrt_fp16', 'torch_fp32', 'torch_fp16']
    for name, variant in record['variants'].items():
        assert variant['stages_ms']['end_to_end']['n'] == 2, name
    assert all(v['label'].endswith('[CPU stand-in]')
               for n, v in record['variants'].items() if n.startswith(('cuda', 'tensorrt')))
    batched = {b['variant']: b for b in record['batched']}
    assert set(batched) == set(record['variants']) - {'cpu'}
    assert all(b['cameras'] == 2 and b['how'].endswith('as one batch per network run')
               and b['frames_per_s'] > 0 for b in batched.values())
    assert [t['met'] for t in record['targets']] == [False, False]
    assert 'n/a (CPU test)' in result.stdout and record['torch']['device'] == 'cpu'
    table = subprocess.run(DEPTHDET + ['bench', '--table', str(out)], capture_output=True,
                           text=True, timeout=120)
    assert table.returncode == 0 and table.stdout.startswith('TEST RUN ON THE CPU')


def test_variants_on_a_machine_with_both_gpu_providers():
    """What a GPU machine with onnxruntime-gpu (and PyTorch for the stream) measures."""
    offered = ['tensorrt', 'cuda']
    variants = {v.name: v for v in gpu.onnxruntime_variants(offered, True, '/c', stream=5)}
    assert list(variants) == ['cpu', 'cuda_fp32', 'cuda_fp32_plain_run',
                              'cuda_fp32_one_stream', 'tensorrt_fp16', 'tensorrt_int8']
    assert variants['cpu'].options == SessionOptions(providers='cpu')
    assert variants['cuda_fp32'].options == SessionOptions(providers='cuda')
    assert variants['cuda_fp32_plain_run'].options.io_binding is False
    assert variants['cuda_fp32_one_stream'].options == SessionOptions(providers='cuda',
                                                                      cuda_stream=5)
    assert variants['tensorrt_fp16'].options == SessionOptions(
        providers='tensorrt', trt_fp16=True, trt_cache_dir='/c')
    assert variants['tensorrt_int8'].options == SessionOptions(
        providers='tensorrt', trt_fp16=True, trt_int8=True, trt_cache_dir='/c')
    assert variants['tensorrt_int8'].int8 and not variants['tensorrt_fp16'].int8
    only_cuda = [v.name for v in gpu.onnxruntime_variants(['cuda'], True, '')]
    assert only_cuda == ['cpu', 'cuda_fp32', 'cuda_fp32_plain_run']
