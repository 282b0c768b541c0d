"""onnxruntime session creation with execution-provider selection and fallback."""
import ctypes
import json
import logging
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import onnxruntime as ort

PROVIDER_CHOICES = ('auto', 'tensorrt', 'cuda', 'cpu')
GPU_PROVIDERS = ('tensorrt', 'cuda')
_ORT_NAMES = {
    'tensorrt': 'TensorrtExecutionProvider',
    'cuda': 'CUDAExecutionProvider',
    'cpu': 'CPUExecutionProvider',
}
_SHORT_NAMES = {v: k for k, v in _ORT_NAMES.items()}
# Element types an image model may take or give, as onnxruntime names them. FP16 exports
# (YOLOv5's `export.py --half`) declare float16 input and output.
_FLOAT_TYPES = {'tensor(float)': np.dtype(np.float32), 'tensor(float16)': np.dtype(np.float16),
                'tensor(double)': np.dtype(np.float64)}

log = logging.getLogger(__name__)
_warned = set()


def _warn_once(message, *args):
    # Both models resolve providers the same way: say a fallback once per process.
    text = message % args
    if text not in _warned:
        _warned.add(text)
        log.warning(text)


class ModelLoadError(ValueError):
    """A model file that is missing, unreadable or of the wrong kind."""


@dataclass(frozen=True)
class SessionOptions:
    """How to run a model: provider choice, threads, GPU options."""

    providers: str = 'auto'
    intra_op_threads: int = 0          # 0: onnxruntime's default (one per core)
    # Whether idle intra-op threads busy-wait for work. None: onnxruntime's default (on)
    # for a session alone; Pipeline turns it off for its two sessions.
    allow_spinning: Optional[bool] = None
    device_id: int = 0
    trt_fp16: bool = False
    # TensorRT's INT8 mode, for models carrying QuantizeLinear/DequantizeLinear pairs
    # (`depthdet quantize`): their scales are used, no calibration table is needed.
    trt_int8: bool = False
    # Folder for TensorRT engines and its timing cache; empty: build at every start.
    trt_cache_dir: str = ''
    # The CUDA memory arena grows by what is asked (not to the next power of two), so a
    # process per camera holds little more than its models need. 0: no limit.
    gpu_mem_limit_mb: int = 0
    # A cudaStream_t (as an integer) both CUDA and TensorRT providers run on; sessions
    # given the same one share it. 0: each session has its own stream.
    cuda_stream: int = 0
    # Inputs and outputs bound on the provider's device (onnxruntime I/O binding).
    # None: on for the CUDA and TensorRT providers, off on the CPU, where it saves no copy.
    io_binding: Optional[bool] = None


def _nvidia_driver_present():
    """Whether the NVIDIA driver library loads; without it no GPU provider can run.

    onnxruntime-gpu lists the CUDA provider even on machines without a GPU and then
    prints errors when it fails to load, so `auto` checks for the driver first.
    """
    try:
        ctypes.CDLL('libcuda.so.1')
        return True
    except OSError:
        return False


def gpu_provider_status():
    """Return (GPU providers onnxruntime offers here, why none when the list is empty).

    Offered is not started: a provider whose libraries (cuDNN, TensorRT) are missing
    fails at session creation, which create_session reports.
    """
    available = ort.get_available_providers()
    offered = [name for name in GPU_PROVIDERS if _ORT_NAMES[name] in available]
    if not offered:
        return [], (f'onnxruntime {ort.__version__} is a CPU-only build (providers: '
                    f'{", ".join(available)}); install onnxruntime-gpu')
    if not _nvidia_driver_present():
        return [], 'no NVIDIA driver (libcuda.so.1 does not load)'
    return offered, ''


def _provider_chain(choice, options):
    available = ort.get_available_providers()
    if choice not in PROVIDER_CHOICES:
        raise ModelLoadError(
            f'unknown provider {choice!r}; choose one of {", ".join(PROVIDER_CHOICES)}')
    if choice == 'cpu':
        return [('CPUExecutionProvider', {})]
    wanted = ['tensorrt', 'cuda'] if choice in ('auto', 'tensorrt') else ['cuda']
    gpu_ok = _nvidia_driver_present()
    if choice != 'auto' and not gpu_ok:
        _warn_once('provider %r requested but no NVIDIA driver was found; using CPU', choice)
    chain = []
    for name in wanted if gpu_ok else []:
        ort_name = _ORT_NAMES[name]
        if ort_name not in available:
            if choice != 'auto':
                _warn_once('%s is not in this onnxruntime build', ort_name)
            continue
        if name == 'tensorrt' and options.trt_cache_dir:
            os.makedirs(options.trt_cache_dir, exist_ok=True)
        opts = provider_options(name, options)
        chain.append((ort_name, opts))
    chain.append(('CPUExecutionProvider', {}))
    return chain


def provider_options(name, options):
    """Return onnxruntime's option dictionary for provider `name` (tensorrt, cuda, cpu).

    Values are strings, as onnxruntime's Python API takes them. The TensorRT provider
    falls back to the CUDA one for nodes it does not take, so both get the stream.
    """
    if name == 'cpu':
        return {}
    opts = {'device_id': str(options.device_id)}
    if options.cuda_stream:
        # Setting the stream implies has_user_compute_stream (whose boolean spelling the
        # two providers parse differently).
        opts['user_compute_stream'] = str(options.cuda_stream)
    if name == 'cuda':
        # Input shapes are fixed, so the exhaustive search runs once per shape at the
        # first frame and every later frame gets the fastest kernels.
        opts.update(cudnn_conv_algo_search='EXHAUSTIVE', cudnn_conv_use_max_workspace='1',
                    arena_extend_strategy='kSameAsRequested',
                    do_copy_in_default_stream='1')
        if options.gpu_mem_limit_mb > 0:
            opts['gpu_mem_limit'] = str(options.gpu_mem_limit_mb * 2**20)
        return opts
    if name != 'tensorrt':
        raise ValueError(f'no provider options for {name!r}')
    opts['trt_fp16_enable'] = 'True' if options.trt_fp16 else 'False'
    opts['trt_int8_enable'] = 'True' if options.trt_int8 else 'False'
    if options.trt_cache_dir:
        # Engines are keyed by model and GPU; the timing cache (per-layer kernel timings)
        # also shortens the build of a new model or precision.
        opts.update(trt_engine_cache_enable='True', trt_engine_cache_path=options.trt_cache_dir,
                    trt_timing_cache_enable='True', trt_timing_cache_path=options.trt_cache_dir)
    return opts


def create_session(path, options=SessionOptions()):
    """Open an ONNX model; returns (InferenceSession, active provider short name).

    Raises ModelLoadError with a one-line reason for a missing or invalid file. A path
    starting with ~ is taken from the home folder, as a shell would.
    """
    path = os.path.expanduser(path) if path else path
    if not path or not os.path.isfile(path):
        raise ModelLoadError(f'model file not found: {path!r}')
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    if options.intra_op_threads > 0:
        so.intra_op_num_threads = options.intra_op_threads
    so.add_session_config_entry('session.intra_op.allow_spinning',
                                '0' if options.allow_spinning is False else '1')
    so.log_severity_level = 3
    chain = _provider_chain(options.providers, options)
    try:
        session = ort.InferenceSession(path, sess_options=so,
                                       providers=[name for name, _ in chain],
                                       provider_options=[opts for _, opts in chain])
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise ModelLoadError(f'cannot load ONNX model {path!r}: {_first_line(exc)}') from None
    active = _SHORT_NAMES.get(session.get_providers()[0], session.get_providers()[0])
    requested = chain[0][0]
    if options.providers != 'cpu' and session.get_providers()[0] != requested:
        _warn_once('%s could not start; running on %s', requested, active)
    return session, active


def model_metadata(session):
    """Return the ONNX model's custom metadata as a dict of strings."""
    return dict(session.get_modelmeta().custom_metadata_map)


@dataclass(frozen=True)
class ImageModel:
    """An opened single-image NCHW model: session, provider, metadata, input geometry.

    `input_dtype` is the element type the model declares for its input; the buffer from
    `input_buffer` has it, so callers feed each model what it expects.
    """

    session: ort.InferenceSession
    provider: str
    metadata: dict
    input_name: str
    input_h: int
    input_w: int
    input_dtype: np.dtype
    path: str
    kind: str                  # 'detector', 'depth model': names it in errors

    def input_buffer(self):
        """Return a zeroed [1, 3, H, W] input of the model's declared element type."""
        return np.zeros((1, 3, self.input_h, self.input_w), self.input_dtype)

    def first_run(self, blob, all_outputs=False):
        """Run the model once on `blob` (warm-up, output check); returns its first output.

        With `all_outputs`, returns the list of all of them.

        A model that loads but cannot run (an operator failing on this input, a shape it
        does not accept) raises ModelLoadError with onnxruntime's first line.
        """
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # the exception says it; onnxruntime's log would repeat it
        try:
            outputs = self.session.run(None, {self.input_name: blob}, quiet)
            return outputs if all_outputs else outputs[0]
        except Exception as exc:  # onnxruntime raises several unrelated types
            shape = 'x'.join(str(v) for v in blob.shape)
            raise ModelLoadError(f'{os.path.basename(self.path)}: the {self.kind} fails on a '
                                 f'{shape} {blob.dtype} input: {_first_line(exc)}') from None


def _first_line(exc, limit=240):
    """Return the first line of an error, its middle elided when long (the cause is often last)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else f'{line[:limit // 2]} ... {line[-limit // 2:]}'


def open_image_model(path, options, kind, other_task, input_size=None, default_size=None):
    """Open a model that takes one 3-channel NCHW image; `kind` names it in errors.

    Refuses a model whose metadata task is `other_task`, and one whose input or output
    is not floating point (float32, float16, float64). The input size is, in order:
    `input_size`, the model's fixed input shape, its metadata, `default_size`.
    """
    from depthdet_ros.core import metadata
    session, provider = create_session(path, options)
    name = os.path.basename(path)
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelLoadError(f'{name} is not a {kind}: expected one NCHW image input, '
                             f'got {[(i.name, i.shape) for i in inputs]}')
    meta = model_metadata(session)
    if meta.get(metadata.TASK) == metadata.TASK_JOINT and kind != 'joint model':
        raise ModelLoadError(f'{name} is a joint model (boxes, masks and depth in one), not a '
                             f'{kind}: give it as the joint model instead (the joint_model '
                             'parameter, or --joint-model)')
    if meta.get(metadata.TASK) == other_task:
        other = 'depth model' if other_task == metadata.TASK_DEPTH else other_task
        raise ModelLoadError(f'{name} is a {other}, not a {kind}')
    for role, value in (('input', inputs[0]), ('output', session.get_outputs()[0])):
        if value.type not in _FLOAT_TYPES:
            raise ModelLoadError(f'{name}: the {kind} {role} {value.name!r} is {value.type}; '
                                 'supported are float32, float16 and float64 tensors')
    shape = inputs[0].shape
    if isinstance(shape[1], int) and shape[1] != 3:
        raise ModelLoadError(f'{name}: the {kind} input must have 3 channels, has {shape[1]}')
    fixed = isinstance(shape[2], int) and isinstance(shape[3], int)
    if input_size and fixed and tuple(input_size) != tuple(shape[2:]):
        raise ModelLoadError(f'{name} takes a fixed {shape[2]}x{shape[3]} input (height x '
                             f'width), not the {input_size[0]}x{input_size[1]} asked for: '
                             'leave the input size to the model')
    if input_size:
        size = input_size
    elif fixed:
        size = shape[2:]
    elif metadata.INPUT_SIZE in meta:
        size = json.loads(meta[metadata.INPUT_SIZE])
    else:
        size = default_size
    return ImageModel(session, provider, meta, inputs[0].name, int(size[0]), int(size[1]),
                      _FLOAT_TYPES[inputs[0].type], path, kind)


class DeviceBinding:
    """A model's input and outputs bound on its provider's device (onnxruntime I/O binding).

    The input lives in one device buffer, bound once; each run uploads the host buffer
    into it (one copy, no allocation) and the outputs stay in device buffers, bound once
    too, until `output` copies one back. So post-processing fetches what it reads and
    nothing else (a joint model's prototype masks only when there are detections). On
    the CPU device the buffers are the host arrays themselves: no copy at all.
    """

    def __init__(self, session, input_name, host_input, device='cuda', device_id=0):
        self.session = session
        self.device = device
        self._host_input = host_input
        self._binding = session.io_binding()
        self._input = ort.OrtValue.ortvalue_from_numpy(host_input, device, device_id)
        self._binding.bind_ortvalue_input(input_name, self._input)
        self._outputs = []
        for value in session.get_outputs():
            if all(isinstance(d, int) for d in value.shape):
                buffer = ort.OrtValue.ortvalue_from_shape_and_type(
                    value.shape, _FLOAT_TYPES.get(value.type, np.float32), device, device_id)
                self._binding.bind_ortvalue_output(value.name, buffer)
                self._outputs.append(buffer)
            else:  # a dynamic shape: onnxruntime allocates it on the device at each run
                self._binding.bind_output(value.name, device, device_id)
                self._outputs.append(None)
        self.output_names = [value.name for value in session.get_outputs()]
        self._current = self._outputs

    def run(self):
        """Upload the host input and run; outputs stay on the device (see `output`)."""
        if self.device != 'cpu':
            self._input.update_inplace(self._host_input)
        self.session.run_with_iobinding(self._binding)
        if None in self._outputs:
            produced = self._binding.get_outputs()
            self._current = [fixed if fixed is not None else produced[i]
                             for i, fixed in enumerate(self._outputs)]
        else:
            self._current = self._outputs

    def output(self, index):
        """Output `index` of the last run as a host array.

        From a GPU it is a copy; on the CPU it is the bound buffer, valid until the next run.
        """
        return self._current[index].numpy()


class SingleInputModel:
    """Mixin of a one-input model run on its reused input buffer `_blob`.

    The class sets `session`, `input_name`, `_blob` and `_binding` (device_binding's
    result); `_run` returns the first output, through the binding when there is one.
    """

    @property
    def input_buffer(self):
        """The [1, 3, H, W] network input that preprocess() fills (reused every frame)."""
        return self._blob

    def _run(self):
        if self._binding is not None:
            self._binding.run()
            return self._binding.output(0)
        return self.session.run(None, {self.input_name: self._blob})[0]


def device_binding(model, host_input, options):
    """Return a DeviceBinding for an opened model, or None where it is not wanted.

    `options.io_binding` None binds on the CUDA and TensorRT providers only: on the CPU
    plain run() already reads the host buffer in place.
    """
    wanted = options.io_binding if options.io_binding is not None \
        else model.provider in GPU_PROVIDERS
    if not wanted:
        return None
    device = 'cuda' if model.provider in GPU_PROVIDERS else 'cpu'
    return DeviceBinding(model.session, model.input_name, host_input, device,
                         options.device_id)
