"""`depthdet bench --sections gpu`: the pipeline's GPU figures, against the CPU in the same run.

With onnxruntime-gpu on a machine with the NVIDIA driver, the pipeline the node runs
(Pipeline.process on image bytes) is measured per stage under these variants,
interleaved frame by frame:

  cpu                  the CPU provider, the reference for the ratios (fewer frames);
  cuda_fp32            CUDA provider, inputs and outputs bound on the device;
  cuda_fp32_plain_run  the same without I/O binding (what binding saves);
  cuda_fp32_one_stream the same with both models on one CUDA stream (needs PyTorch with
                       CUDA to create the stream: onnxruntime's Python API cannot);
  tensorrt_fp16        TensorRT with FP16 engines (engine and timing cache in
                       --gpu-cache-dir);
  tensorrt_int8        with --int8-detector-model/--int8-depth-model: the QDQ models on
                       TensorRT in INT8 (FP16 where a layer has no INT8 kernel).

Each variant's GPU memory is read from nvidia-smi before and after it is built. Then the
throughput with several cameras: with models whose batch dimension is dynamic (`depthdet
export --dynamic-batch`), B frames (one per camera) are pre-processed, run as one batch
through each network and post-processed and fused frame by frame; with a fixed batch of
1, B cameras are served round-robin through one set of sessions.

Where onnxruntime has no GPU provider but PyTorch sees a CUDA device, the same networks
(rebuilt from the ONNX metadata `depthdet_arch`, random weights: speed does not depend on
them) run in PyTorch, FP32 and FP16 autocast, inside the same pre-processing,
post-processing and fusion; those are labelled PyTorch figures. With neither, the section
stops with one line and exit code 2, having measured nothing.
"""
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TARGET_END_TO_END_P50_MS = 6.0
TARGET_BATCHED_FPS = 250.0
# The CPU reference is 10-100x slower than the GPU variants: fewer rounds keep the run short.
CPU_REFERENCE_FRAMES = 10
CAMERA_HFOV_DEG = 60.0
# Stage rows of the tables, in data-path order: Pipeline.process's (onnxruntime) and
# BatchedPipeline's (PyTorch, batches).
STAGES = ('conversion', 'detector_pre', 'depth_pre', 'preprocess', 'detector', 'depth',
          'inference', 'detector_post', 'depth_post', 'postprocess', 'fusion', 'messages',
          'end_to_end')


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of running the pair: a name, a label and how its networks run."""

    name: str
    label: str
    provider: str                 # the provider it must run on ('cpu', 'cuda', 'tensorrt')
    options: object = None        # SessionOptions (onnxruntime variants)
    int8: bool = False            # runs the INT8 models
    half: bool = False            # PyTorch autocast to 16-bit floats


def select_backend(allow_cpu=False):
    """Return (backend, GPU providers offered, note); raise CliError without a GPU.

    backend: 'onnxruntime' (onnxruntime-gpu and the driver), 'torch' (PyTorch sees CUDA)
    or 'cpu-test' (`allow_cpu`: every code path on the CPU, for tests; no GPU figure).
    """
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import gpu_provider_status

    offered, why = gpu_provider_status()
    if offered:
        return 'onnxruntime', offered, ''
    torch_ok, torch_detail = _torch_cuda()
    if torch_ok:
        return 'torch', [], f'onnxruntime has no GPU provider here ({why})'
    if allow_cpu:
        return 'cpu-test', [], why
    raise CliError(f'no GPU to measure: {why}, and {torch_detail}; nothing was measured')


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return False, 'PyTorch is not installed'
    if torch.cuda.is_available():
        return True, torch.cuda.get_device_name(0)
    return False, f'PyTorch {torch.__version__} sees no CUDA device'


def onnxruntime_variants(offered, int8, cache_dir, stand_in=False, stream=0):
    """Return the onnxruntime variants to measure (see the module docstring).

    `stand_in` runs every one on the CPU provider (binding as the GPU variant would),
    so a test exercises the code without a GPU. `stream`, a cudaStream_t as an integer,
    adds a variant with both models on that one stream.
    """
    from depthdet_ros.core.session import SessionOptions

    def options(provider, **kwargs):
        if stand_in:
            return SessionOptions(providers='cpu',
                                  io_binding=kwargs.get('io_binding', True))
        return SessionOptions(providers=provider, **kwargs)

    variants = [Variant('cpu', 'onnxruntime CPU (reference)', 'cpu',
                        SessionOptions(providers='cpu'))]
    if 'cuda' in offered or stand_in:
        variants += [
            Variant('cuda_fp32', 'CUDA FP32, I/O binding', 'cuda', options('cuda')),
            Variant('cuda_fp32_plain_run', 'CUDA FP32, plain run()', 'cuda',
                    options('cuda', io_binding=False))]
        if stream:
            variants.append(Variant('cuda_fp32_one_stream', 'CUDA FP32, both on one stream',
                                    'cuda', options('cuda', cuda_stream=stream)))
    if 'tensorrt' in offered or stand_in:
        variants.append(Variant('tensorrt_fp16', 'TensorRT FP16', 'tensorrt', options(
            'tensorrt', trt_fp16=True, trt_cache_dir=cache_dir)))
        if int8:
            variants.append(Variant('tensorrt_int8', 'TensorRT INT8 (QDQ models) + FP16',
                                    'tensorrt', options('tensorrt', trt_fp16=True,
                                                        trt_int8=True,
                                                        trt_cache_dir=cache_dir),
                                    int8=True))
    if stand_in:
        variants = [variants[0]] + [dataclasses.replace(
            v, provider='cpu', label=f'{v.label} [CPU stand-in]') for v in variants[1:]]
    return variants


class BatchedPipeline:
    """Pipeline.process for B frames with one run of each network per batch.

    Pre-processing, post-processing and fusion are the pipeline's own, frame by frame;
    `detector_runner` and `depth_runner` run a network on the filled [B, 3, H, W] host
    batch (`detector_batch`, `depth_batch`) and return its first output on the host.
    With `concurrent` both run at once (as in Pipeline), else one after the other.
    """

    def __init__(self, pipeline, batch, concurrent=True):
        import numpy as np

        self.pipeline = pipeline
        self.batch = batch
        detector, depth = pipeline.detector, pipeline.depth
        self.detector_batch = np.zeros((batch,) + detector.input_buffer.shape[1:],
                                       detector.input_buffer.dtype)
        self.depth_batch = np.zeros((batch,) + depth.input_buffer.shape[1:],
                                    depth.input_buffer.dtype)
        self.detector_runner = self.depth_runner = None
        self._executor = ThreadPoolExecutor(1) if concurrent else None

    @staticmethod
    def _timed(runner):
        t0 = time.perf_counter()
        out = runner()
        return out, (time.perf_counter() - t0) * 1e3

    def process(self, frames, camera):
        """Run len(frames) == B raw frames; returns (stage times in ms, objects per frame)."""
        from depthdet_ros.core.image import decode_raw
        from depthdet_ros.core.object_depth import estimate_objects

        pipeline, detector, depth = self.pipeline, self.pipeline.detector, self.pipeline.depth
        fusion = pipeline.fusion
        t0 = time.perf_counter()
        images = [decode_raw(f.encoding, f.height, f.width, f.step, f.data) for f in frames]
        t1 = time.perf_counter()
        letterboxes, views = [], []
        for i, rgb in enumerate(images):
            letterboxes.append(detector.preprocess(rgb))
            self.detector_batch[i] = detector.input_buffer[0]
            views.append(depth.preprocess(rgb))
            self.depth_batch[i] = depth.input_buffer[0]
        t2 = time.perf_counter()
        if self._executor is not None:
            future = self._executor.submit(self._timed, self.depth_runner)
            (raw, detector_ms), (depth_out, depth_ms) = self._timed(self.detector_runner), \
                future.result()
        else:
            raw, detector_ms = self._timed(self.detector_runner)
            depth_out, depth_ms = self._timed(self.depth_runner)
        t3 = time.perf_counter()
        height, width = images[0].shape[:2]
        scale = depth.focal_scale(height, width, camera, fusion.assumed_hfov_deg)
        results = []
        for i, rgb in enumerate(images):
            detections = detector.postprocess(raw[i], letterboxes[i])
            output = depth_out[i].reshape(depth.output_h, depth.output_w)
            results.append((detections, depth.to_image(output * scale, views[i])))
        t4 = time.perf_counter()
        objects = [estimate_objects(detections, depth_map, camera, fusion.strategy,
                                    fusion.max_depth, fusion.class_max_depth)
                   for detections, depth_map in results]
        t5 = time.perf_counter()
        return {'conversion': (t1 - t0) * 1e3, 'preprocess': (t2 - t1) * 1e3,
                'detector': detector_ms, 'depth': depth_ms, 'inference': (t3 - t2) * 1e3,
                'postprocess': (t4 - t3) * 1e3, 'fusion': (t5 - t4) * 1e3,
                'end_to_end': (t5 - t0) * 1e3}, objects

    def close(self):
        """Stop the worker thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class RoundRobin:
    """B cameras taking turns through one pipeline (models with a batch fixed at 1)."""

    def __init__(self, pipeline, builder):
        self.pipeline, self.builder = pipeline, builder

    def process(self, frames, camera):
        """Run each frame in turn as the node would; returns ({'end_to_end': ms}, objects)."""
        from depthdet_ros.bench.inprocess import process_frame

        t0 = time.perf_counter()
        objects = [process_frame(self.pipeline, frame, camera, self.builder)[1].objects
                   for frame in frames]
        return {'end_to_end': (time.perf_counter() - t0) * 1e3}, objects

    def close(self):
        """Nothing of its own to stop (the pipeline is closed by its owner)."""


def onnxruntime_runner(model, host, device, device_id, bind):
    """Return a callable running `model`'s session on the host batch `host`.

    With `bind`, the batch is uploaded into a bound device buffer (core.session's
    DeviceBinding) and the output comes back from the device; else plain run().
    """
    from depthdet_ros.core.session import DeviceBinding

    if bind:
        binding = DeviceBinding(model.session, model.input_name, host, device, device_id)

        def run():
            binding.run()
            return binding.output(0)
        return run
    feed = {model.input_name: host}
    return lambda: model.session.run(None, feed)[0]


def torch_runner(net, host, device, half):
    """Return a callable running a PyTorch network on the host batch `host`.

    The batch is copied to the device each run, as the onnxruntime variants upload it;
    `half` runs under autocast (FP16 on CUDA, bfloat16 on the CPU test path).
    """
    import torch

    dtype = torch.float16 if device == 'cuda' else torch.bfloat16

    def run():
        with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=half):
            out = net(torch.from_numpy(host).to(device))
        return out.float().cpu().numpy()
    return run


def _dynamic_batch(pipeline):
    return all(not isinstance(model.session.get_inputs()[0].shape[0], int)
               for model in (pipeline.detector, pipeline.depth))


def _gpu_memory_mb():
    """Return the GPU memory in use per nvidia-smi, MB (None: unreadable).

    This process's own where nvidia-smi lists it; in a container it often lists no
    process, and then the whole first GPU's, which other processes may change too.
    """
    from depthdet_ros.bench import system

    used = system.gpu_memory_mb({os.getpid()})
    if used:
        return round(sum(used.values()), 1)
    return system.gpu_memory_used_mb()


def _frames(width, height, count):
    from depthdet_ros.bench.frames import raw_frame, synthetic_rgb
    return [raw_frame(synthetic_rgb(width, height, seed=i)) for i in range(count)]


def run(args, progress=None):
    """Run the gpu section; returns (result dict, Markdown text)."""
    from depthdet_ros.bench import cli, system
    from depthdet_ros.bench.inprocess import message_builder
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.core.session import ModelLoadError

    backend, offered, backend_note = select_backend(args.gpu_allow_cpu)
    try:
        batch_sizes = sorted({int(v) for v in args.gpu_batch_sizes.split(',') if v.strip()})
    except ValueError:
        raise CliError(f'--gpu-batch-sizes {args.gpu_batch_sizes!r} is not N,N,...') from None
    if not batch_sizes or batch_sizes[0] < 1:
        raise CliError('--gpu-batch-sizes: numbers >= 1')
    values = cli._node_values(args)
    width, height = cli._frame_size(args.size)
    int8 = {kind: cli.model_path(getattr(args, f'int8_{kind}_model'))
            for kind in ('detector', 'depth') if getattr(args, f'int8_{kind}_model')}
    result = {
        'section': 'gpu',
        'command': 'depthdet bench ' + ' '.join(cli._argv_of(
            args, ('gpu_batch_sizes', 'gpu_cache_dir'))),
        'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'environment': system.environment(),
        'backend': backend, 'backend_note': backend_note,
        'models': {kind: values[f'{kind}_model'] for kind in ('detector', 'depth')},
        'int8_models': int8, 'frame_size': f'{width}x{height}',
        'iterations': args.iterations, 'warmup': args.warmup, 'batch_sizes': batch_sizes,
        'variants': {}, 'batched': [], 'not_measured': [],
    }
    builder, missing = message_builder()
    if missing:
        result['not_measured'].append(f'message building: {missing}')
    camera = CameraModel.from_fov(width, height, CAMERA_HFOV_DEG)
    session = _Session(result, values, builder, camera, _frames(width, height, max(batch_sizes)),
                       progress)
    try:
        if backend in ('onnxruntime', 'cpu-test'):
            stream = session.shared_stream() if backend == 'onnxruntime' else 0
            session.onnxruntime(onnxruntime_variants(
                offered, bool(int8), args.gpu_cache_dir, stand_in=backend == 'cpu-test',
                stream=stream), int8)
        else:
            session.onnxruntime(onnxruntime_variants([], False, ''), {})
            if int8:
                result['not_measured'].append(
                    'the INT8 models: TensorRT INT8 needs onnxruntime-gpu, which this '
                    'machine lacks')
        if backend in ('torch', 'cpu-test'):
            session.torch('cuda' if backend == 'torch' else 'cpu')
        session.measure(args.iterations, args.warmup, batch_sizes)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from None
    finally:
        session.close()
    result['environment']['load_average_end'] = [round(v, 2) for v in os.getloadavg()]
    result['ratios'] = ratios(result['variants'])
    result['targets'] = targets(result)
    return result, render_markdown(result)


class _Session:
    """The variants of one gpu-section run: built one by one, measured interleaved."""

    def __init__(self, result, values, builder, camera, frames, progress):
        self.result, self.values, self.builder = result, values, builder
        self.camera, self.frames, self.progress = camera, frames, progress
        self.single = []       # (variant, callable returning a stage dict for one frame)
        self.batched = []      # (variant, factory(batch) -> BatchedPipeline or None)
        self.pipelines = []
        self.reference = None  # the CPU pipeline: pre/post-processing of the torch variants
        self._stream = None    # the CUDA stream of the one-stream variant, kept alive

    def shared_stream(self):
        """Return a CUDA stream both models can share, as an integer; 0 when none.

        onnxruntime's Python API takes a stream (user_compute_stream) but cannot make one;
        PyTorch, where it is installed with CUDA, can. The stream lives as long as this.
        """
        ok, detail = _torch_cuda()
        if not ok:
            self.result['not_measured'].append(
                f'both models on one CUDA stream: onnxruntime cannot create a stream and '
                f'no library here can ({detail})')
            return 0
        import torch
        self._stream = torch.cuda.Stream()
        return int(self._stream.cuda_stream)

    def _say(self, text):
        if self.progress is not None:
            print(f'  {text}', file=sys.stderr, flush=True)

    def _record(self, variant, **fields):
        self.result['variants'][variant.name] = dict(label=variant.label, **fields)

    def onnxruntime(self, variants, int8):
        """Build each onnxruntime variant; skip one that fails or falls back to another."""
        from depthdet_ros.bench.inprocess import process_frame
        from depthdet_ros.core.session import ModelLoadError

        for variant in variants:
            self._say(f'building {variant.label}')
            before = _gpu_memory_mb()
            t0 = time.perf_counter()
            try:
                pipeline = _build(self.values, variant.options, int8 if variant.int8 else None)
            except ModelLoadError as exc:
                if variant.name == 'cpu':
                    raise
                self.result['not_measured'].append(f'{variant.label}: {exc}')
                continue
            load_s = time.perf_counter() - t0
            self.pipelines.append(pipeline)
            if variant.name == 'cpu':
                self.reference = pipeline
            active = set(pipeline.providers.values())
            if active != {variant.provider}:
                self.result['not_measured'].append(
                    f'{variant.label}: onnxruntime ran it on {", ".join(sorted(active))} '
                    f'instead of {variant.provider} (its libraries did not load; see the '
                    'warning above)')
                continue
            after = _gpu_memory_mb()
            self._record(variant, providers=pipeline.providers, load_s=round(load_s, 2),
                         gpu_memory_mb_added=None if after is None or before is None
                         else round(after - before, 1), gpu_memory_mb_process=after)

            def frame(pipeline=pipeline, name=variant.name):
                stages = process_frame(pipeline, self.frames[0], self.camera, self.builder)[0]
                return {f'{name}:{key}': value for key, value in stages.items()}
            self.single.append((variant, frame))
            if variant.name != 'cpu':
                self.batched.append((variant, lambda batch, pipeline=pipeline, v=variant:
                                     self._onnxruntime_batched(pipeline, v, batch)))

    def _onnxruntime_batched(self, pipeline, variant, batch):
        if not _dynamic_batch(pipeline):
            return RoundRobin(pipeline, self.builder)
        batched = BatchedPipeline(pipeline, batch)
        options = variant.options
        device = 'cuda' if variant.provider in ('cuda', 'tensorrt') else 'cpu'
        bind = options.io_binding is not False
        batched.detector_runner = onnxruntime_runner(pipeline.detector, batched.detector_batch,
                                                     device, options.device_id, bind)
        batched.depth_runner = onnxruntime_runner(pipeline.depth, batched.depth_batch, device,
                                                  options.device_id, bind)
        return batched

    def torch(self, device):
        """Add PyTorch FP32 and FP16-autocast variants of the same networks on `device`."""
        import torch

        from depthdet_ros.bench.baseline import BaselineUnavailable, build_torch_models
        from depthdet_ros.cli import CliError
        from depthdet_ros.core import metadata
        from depthdet_ros.core.session import model_metadata

        detector, depth = self.reference.detector, self.reference.depth
        meta = model_metadata(depth.session)
        try:
            nets = build_torch_models(model_metadata(detector.session).get(metadata.ARCH),
                                      meta.get(metadata.ARCH), len(detector.class_names),
                                      json.loads(meta.get(metadata.ARCH_KWARGS, '{}')))
        except BaselineUnavailable as exc:
            raise CliError(f'PyTorch figures: {exc}') from None
        if device == 'cuda':
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels
        before = _gpu_memory_mb()
        detector_net, depth_net = (net.to(device).eval() for net in nets)
        after = _gpu_memory_mb()
        self.result['torch'] = {'version': torch.__version__, 'device': device,
                                'device_name': torch.cuda.get_device_name(0)
                                if device == 'cuda' else 'CPU (test run, not a GPU figure)'}
        for half in (False, True):
            precision = ('FP16' if device == 'cuda' else 'BF16') + ' autocast' if half \
                else 'FP32'
            variant = Variant(f'torch_{"fp16" if half else "fp32"}', f'PyTorch {precision}',
                              device, half=half)
            self._record(variant, providers={'detector': f'torch-{device}',
                                             'depth': f'torch-{device}'},
                         gpu_memory_mb_added=None if after is None or before is None
                         else round(after - before, 1), gpu_memory_mb_process=after)

            def factory(batch, half=half):
                batched = BatchedPipeline(self.reference, batch, concurrent=False)
                batched.detector_runner = torch_runner(detector_net, batched.detector_batch,
                                                       device, half)
                batched.depth_runner = torch_runner(depth_net, batched.depth_batch, device,
                                                    half)
                return batched
            single = factory(1)
            self.pipelines.append(single)

            def frame(single=single, name=variant.name):
                stages = single.process(self.frames[:1], self.camera)[0]
                return {f'{name}:{key}': value for key, value in stages.items()}
            self.single.append((variant, frame))
            self.batched.append((variant, factory))

    def measure(self, iterations, warmup, batch_sizes):
        """Single frames interleaved across variants, then each batch size per variant."""
        from depthdet_ros.bench.inprocess import interleave

        self._say(f'single frames: {len(self.single)} variants x {iterations}')
        schedule = {'cpu': min(iterations, CPU_REFERENCE_FRAMES)}
        samples = interleave([(v.name, run) for v, run in self.single], iterations, warmup,
                             schedule)
        for variant, _ in self.single:
            prefix = f'{variant.name}:'
            names = [n for n in samples.names() if n.startswith(prefix)]
            summaries = samples.summaries(names)
            self.result['variants'][variant.name]['stages_ms'] = {
                n[len(prefix):]: summaries[n] for n in names}
        for variant, factory in self.batched:
            for batch in batch_sizes:
                self._say(f'{variant.label}: {batch} cameras')
                self.result['batched'].append(self._batch(variant, factory, batch, iterations,
                                                          warmup))

    def _batch(self, variant, factory, batch, iterations, warmup):
        from depthdet_ros.bench.stats import summarize

        batched = factory(batch)
        self.pipelines.append(batched)
        frames = self.frames[:batch]
        rounds = max(1, iterations // 4)
        if isinstance(batched, RoundRobin):
            how = f'{batch} cameras round-robin through one session set (batch fixed at 1)'
        else:
            how = f'{batch} cameras as one batch per network run'

        def step():
            return batched.process(frames, self.camera)[0]
        for _ in range(warmup):
            step()
        times = [step() for _ in range(rounds)]
        totals = [t['end_to_end'] for t in times]
        record = {'variant': variant.name, 'label': variant.label, 'cameras': batch,
                  'how': how, 'frames_per_s': round(1e3 * batch * len(totals) / sum(totals), 1),
                  'batch_ms': summarize(totals)}
        if not isinstance(batched, RoundRobin):
            record['stages_ms'] = {k: summarize([t[k] for t in times]) for k in times[0]}
        return record

    def close(self):
        """Stop every pipeline's worker threads."""
        for pipeline in self.pipelines:
            pipeline.close()


def _build(values, options, int8=None):
    """Build the pipeline the node would for `values`, with other session options."""
    from depthdet_ros.core.pipeline import Pipeline, PipelineModels
    from depthdet_ros.ros.params import detector_config, fusion_config

    int8 = int8 or {}
    size = tuple(values['detector_input_size'])
    models = PipelineModels(int8.get('detector', values['detector_model']),
                            int8.get('depth', values['depth_model']), options,
                            values['class_names_file'], size if any(size) else None,
                            depth_coverage=values['depth_coverage'])
    return Pipeline(models, detector_config(values), fusion_config(values))


def ratios(variants):
    """Return ratios of end-to-end p50 latencies measured in the same run."""
    from depthdet_ros.bench.stats import ratio

    def p50(name):
        return variants.get(name, {}).get('stages_ms', {}).get('end_to_end', {}).get('p50')

    out = {}
    for name in variants:
        if name != 'cpu':
            out[f'cpu_over_{name}'] = ratio(p50('cpu'), p50(name))
    for slower, faster in (('cuda_fp32', 'tensorrt_fp16'), ('tensorrt_fp16', 'tensorrt_int8'),
                           ('cuda_fp32_plain_run', 'cuda_fp32'),
                           ('cuda_fp32', 'cuda_fp32_one_stream'), ('torch_fp32', 'torch_fp16')):
        if p50(slower) is not None and p50(faster) is not None:
            out[f'{slower}_over_{faster}'] = ratio(p50(slower), p50(faster))
    return out


def targets(result):
    """Return the issue's two GPU targets against the best variant measured."""
    single = [(v['stages_ms']['end_to_end']['p50'], name)
              for name, v in result['variants'].items()
              if name != 'cpu' and v.get('stages_ms', {}).get('end_to_end', {}).get('p50')]
    batched = [(b['frames_per_s'], b['variant'], b['cameras']) for b in result['batched']]
    gpu = result['backend'] != 'cpu-test'
    out = []
    if single:
        best, name = min(single)
        out.append({'target': f'end to end p50 <= {TARGET_END_TO_END_P50_MS:g} ms',
                    'measured': f'{best:.2f} ms ({name})',
                    'met': gpu and best <= TARGET_END_TO_END_P50_MS})
    if batched:
        best, name, cameras = max(batched)
        out.append({'target': f'>= {TARGET_BATCHED_FPS:g} frames/s with several cameras',
                    'measured': f'{best:.1f} frames/s ({name}, {cameras} cameras)',
                    'met': gpu and best >= TARGET_BATCHED_FPS})
    return out


def render_markdown(result):
    """Return the gpu section's tables: per-stage latency, ratios, batches, targets."""
    env = result['environment']
    if result['backend'] == 'cpu-test':
        head = ('TEST RUN ON THE CPU (--gpu-allow-cpu): the GPU variants ran on CPU '
                'stand-ins; no figure below is a GPU figure.')
    elif result['backend'] == 'torch':
        head = (f'PyTorch {result["torch"]["version"]} figures on '
                f'{result["torch"]["device_name"]} ({result["backend_note"]}); the CPU '
                'reference is onnxruntime on the CPU.')
    else:
        head = (f'onnxruntime {env["onnxruntime"]} GPU figures on {env.get("gpu")}, '
                f'CPU reference on {env["cpu"]} ({env["usable_cores"]} cores).')
    lines = [head, '', f'Models: {result["models"]["detector"]} + {result["models"]["depth"]}'
             f'; {result["frame_size"]} frames; load average {env["load_average"][0]} at '
             f'start, {env.get("load_average_end", ["?"])[0]} at the end.', '']
    variants = {n: v for n, v in result['variants'].items() if 'stages_ms' in v}
    lines.append('| Stage (p50 / p90 ms) | ' + ' | '.join(v['label'] for v in variants.values())
                 + ' |')
    lines.append('|---|' + '---:|' * len(variants))
    for stage in STAGES:
        cells = []
        for v in variants.values():
            s = v['stages_ms'].get(stage)
            cells.append(f'{s["p50"]:.2f} / {s["p90"]:.2f}' if s and s['n'] else '')
        if any(cells):
            lines.append(f'| {stage} | ' + ' | '.join(cells) + ' |')
    memory = [f'{v["label"]}: +{v["gpu_memory_mb_added"]:.0f} MB'
              for v in variants.values() if v.get('gpu_memory_mb_added') is not None]
    lines += ['', 'GPU memory (nvidia-smi, added by building each variant): '
              + ('; '.join(memory) if memory else 'not readable (nvidia-smi)'), '']
    lines += ['| Ratio (end-to-end p50, same run) | Value |', '|---|---:|']
    lines += [f'| {name} | {value} |' for name, value in result.get('ratios', {}).items()]
    if result['batched']:
        lines += ['', '| Several cameras | How | frames/s | batch p50 ms |', '|---|---|---:|---:|']
        lines += [f'| {b["label"]}, {b["cameras"]} cameras | {b["how"]} | '
                  f'{b["frames_per_s"]:.1f} | {b["batch_ms"]["p50"]:.2f} |'
                  for b in result['batched']]
    if result.get('targets'):
        lines += ['', '| Target | Measured | Met |', '|---|---|---|']
        verdict = {True: 'yes', False: 'no'} if result['backend'] != 'cpu-test' else \
            {True: 'n/a (CPU test)', False: 'n/a (CPU test)'}
        lines += [f'| {t["target"]} | {t["measured"]} | {verdict[t["met"]]} |'
                  for t in result['targets']]
    if result['not_measured']:
        lines += ['', 'Not measured:'] + [f'- {text}' for text in result['not_measured']]
    return '\n'.join(lines)


def main():
    """`python -m depthdet_ros.bench.gpu`: say what the gpu section would measure on.

    Exit code 0 with one line naming the backend, or 2 with one line saying why there is
    no GPU to measure (tools/bench_gpu.sh asks this before exporting anything).
    """
    try:
        from depthdet_ros.cli import CliError
        backend, offered, note = select_backend()
    except ImportError as exc:
        print(f'bench_gpu: {sys.executable} cannot import {exc.name} (pip install -r '
              'requirements/runtime.txt, or set PYTHON); nothing was measured', file=sys.stderr)
        return 2
    except CliError as exc:
        print(f'bench_gpu: {exc}', file=sys.stderr)
        return 2
    if backend == 'onnxruntime':
        print(f'GPU backend: onnxruntime ({", ".join(offered)})')
    else:
        print(f'GPU backend: PyTorch on {_torch_cuda()[1]} ({note}): PyTorch figures')
    return 0


if __name__ == '__main__':
    sys.exit(main())
