"""GPU session set-up testable without a GPU: provider options and the I/O binding path.

The provider dictionaries are compared with hand-written ones (what onnxruntime's CUDA
and TensorRT documentation names). The binding path runs through real onnxruntime
sessions on the CPU device, where it must give exactly the outputs of plain run().
"""
import numpy as np
import pytest

from depthdet_ros.assets import default_model
from depthdet_ros.bench.frames import synthetic_rgb
from depthdet_ros.core import session as session_module
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.core.detector import Detector, DetectorConfig
from depthdet_ros.core.joint import JointModel
from depthdet_ros.core.session import create_session, DeviceBinding, provider_options, \
    SessionOptions
from test_core_joint import joint_model, prototypes, ROW_A, ROW_A_WEAK, ROW_B, two_tone_image


def test_cuda_options_default():
    assert provider_options('cuda', SessionOptions()) == {
        'device_id': '0', 'cudnn_conv_algo_search': 'EXHAUSTIVE',
        'cudnn_conv_use_max_workspace': '1', 'arena_extend_strategy': 'kSameAsRequested',
        'do_copy_in_default_stream': '1'}


def test_cuda_options_with_a_shared_stream_and_a_memory_limit():
    options = SessionOptions(device_id=1, cuda_stream=140245, gpu_mem_limit_mb=512)
    assert provider_options('cuda', options) == {
        'device_id': '1', 'user_compute_stream': '140245',
        'cudnn_conv_algo_search': 'EXHAUSTIVE', 'cudnn_conv_use_max_workspace': '1',
        'arena_extend_strategy': 'kSameAsRequested', 'do_copy_in_default_stream': '1',
        'gpu_mem_limit': '536870912'}


def test_tensorrt_options_fp16_with_engine_and_timing_cache():
    options = SessionOptions(trt_fp16=True, trt_cache_dir='/tmp/engines', cuda_stream=77)
    assert provider_options('tensorrt', options) == {
        'device_id': '0', 'user_compute_stream': '77',
        'trt_fp16_enable': 'True', 'trt_int8_enable': 'False',
        'trt_engine_cache_enable': 'True', 'trt_engine_cache_path': '/tmp/engines',
        'trt_timing_cache_enable': 'True', 'trt_timing_cache_path': '/tmp/engines'}


def test_tensorrt_options_int8_without_cache():
    assert provider_options('tensorrt', SessionOptions(trt_int8=True)) == {
        'device_id': '0', 'trt_fp16_enable': 'False', 'trt_int8_enable': 'True'}
    assert provider_options('cpu', SessionOptions(trt_fp16=True)) == {}
    with pytest.raises(ValueError):
        provider_options('rocm', SessionOptions())


def test_provider_chain_on_a_gpu_machine(monkeypatch, tmp_path):
    """With a driver and onnxruntime-gpu: TensorRT, then CUDA, then CPU, each with its options."""
    monkeypatch.setattr(session_module, '_nvidia_driver_present', lambda: True)
    monkeypatch.setattr(session_module.ort, 'get_available_providers', lambda: [
        'TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider'])
    cache = tmp_path / 'trt'
    options = SessionOptions(providers='tensorrt', trt_fp16=True, trt_cache_dir=str(cache))
    chain = session_module._provider_chain('tensorrt', options)
    assert chain == [
        ('TensorrtExecutionProvider', {
            'device_id': '0', 'trt_fp16_enable': 'True', 'trt_int8_enable': 'False',
            'trt_engine_cache_enable': 'True', 'trt_engine_cache_path': str(cache),
            'trt_timing_cache_enable': 'True', 'trt_timing_cache_path': str(cache)}),
        ('CUDAExecutionProvider', {
            'device_id': '0', 'cudnn_conv_algo_search': 'EXHAUSTIVE',
            'cudnn_conv_use_max_workspace': '1', 'arena_extend_strategy': 'kSameAsRequested',
            'do_copy_in_default_stream': '1'}),
        ('CPUExecutionProvider', {})]
    assert cache.is_dir()
    assert [name for name, _ in session_module._provider_chain('cuda', options)] == [
        'CUDAExecutionProvider', 'CPUExecutionProvider']


def test_cpu_sessions_keep_plain_run():
    """On the CPU provider the default is no binding: the CPU path is unchanged."""
    detector = Detector(default_model('detector'), SessionOptions(providers='cpu'))
    depth = DepthEstimator(default_model('depth'), SessionOptions(providers='cpu'))
    assert detector._binding is None and depth._binding is None


def test_binding_gives_the_outputs_of_run_on_every_frame():
    """A bound session on the CPU device equals run() frame after frame (same buffers)."""
    session, _ = create_session(default_model('depth'), SessionOptions(providers='cpu'))
    host = np.zeros((1, 3, 256, 320), np.float32)
    binding = DeviceBinding(session, 'image', host, device='cpu')
    rng = np.random.default_rng(3)
    previous = None
    for _ in range(3):
        host[...] = rng.standard_normal(host.shape)
        binding.run()
        bound = binding.output(0).copy()
        expected = session.run(None, {'image': host})[0]
        np.testing.assert_array_equal(bound, expected)
        assert previous is None or not np.array_equal(bound, previous)
        previous = bound


def test_detector_and_depth_with_binding_equal_plain_run():
    """The runtime classes give identical detections and depth with and without binding."""
    rgb = synthetic_rgb(640, 480)
    config = DetectorConfig(score_threshold=0.001, max_detections=50)
    results = []
    for io_binding in (False, True):
        options = SessionOptions(providers='cpu', io_binding=io_binding)
        detector = Detector(default_model('detector'), options, config=config)
        depth = DepthEstimator(default_model('depth'), options)
        assert (detector._binding is not None) == io_binding
        results.append((detector.infer(rgb), depth.infer(rgb, scale=1.5)))
    (detections, depth_plain), (bound_detections, depth_bound) = results
    assert detections and detections == bound_detections
    np.testing.assert_array_equal(depth_plain, depth_bound)


def test_joint_model_with_binding_fetches_prototypes_only_for_detections(tmp_path):
    """Same boxes, masks and depth as run(); no detections: the prototypes stay bound."""
    path = joint_model(tmp_path / 'joint.onnx', [ROW_A_WEAK, ROW_A, ROW_B], prototypes())
    rgb = two_tone_image()
    plain = JointModel(path, SessionOptions(providers='cpu', io_binding=False)).infer(rgb)
    model = JointModel(path, SessionOptions(providers='cpu', io_binding=True))
    fetched = []
    output = model._binding.output
    model._binding.output = lambda index: fetched.append(index) or output(index)
    bound = model.infer(rgb)
    assert bound.detections == plain.detections and len(bound.detections) == 2
    for mask, expected in zip(bound.masks, plain.masks):
        assert (mask.x, mask.y) == (expected.x, expected.y)
        np.testing.assert_array_equal(mask.pixels, expected.pixels)
    np.testing.assert_array_equal(bound.depth, plain.depth)
    protos_index = model.session.get_outputs().index(
        next(o for o in model.session.get_outputs() if o.name == 'protos'))
    assert protos_index in fetched
    fetched.clear()
    model.config = DetectorConfig(score_threshold=0.99)
    empty = model.infer(rgb)
    assert empty.detections == [] and protos_index not in fetched and len(fetched) == 2
