"""`depthdet bench`: latency, throughput, ratios and memory of the pipeline, in one run.

Sections (--sections):
  pipeline     per-stage latency (conversion, pre-processing, both models, post-processing,
               fusion, message building), end to end, each model alone, overhead ratio;
  baseline     seed 000's notebook pipeline in eager PyTorch, interleaved with `pipeline`,
               for the speed-up (needs torch and models exported by `depthdet export`);
  ros          depthdet_node as a subprocess over DDS on localhost: input-to-output
               latency interleaved with the in-process pipeline, publish cost;
  keep_latest  the node fed at --rates for --rate-seconds each: output age, dropped frames;
  threading    (not default) the pipeline under several thread settings, interleaved;
  int8         (with --int8-detector-model / --int8-depth-model) FP32 against INT8 models
               (`depthdet quantize`): each model alone and end to end, interleaved, with
               the CPU's 8-bit instruction set.
Sections run alone (not with others):
  multicamera  several cameras on this machine: one process per camera and one process
               serving all through shared sessions, N = 1 .. --cameras: frames/s and
               memory per extra camera (bench/multicamera.py);
  gpu          the GPU figures (bench/gpu.py; tools/bench_gpu.sh runs it): per-stage
               latency on CUDA FP32 and TensorRT FP16 (and INT8 with --int8-*-model), the
               CPU in the same run, GPU memory, batched throughput; PyTorch on CUDA where
               onnxruntime has no GPU provider. Exits 2 with one line on a machine without.
Variants compared with each other run interleaved in one process, so ratios hold on a
loaded machine even where absolute times do not.
"""
import argparse
import json
import os
import sys
import time

from depthdet_ros.arg_types import bench_count, bench_seconds, fraction, non_negative_int, \
    output_file, positive_float, positive_int
from depthdet_ros.bench.frames import ENCODINGS

SECTIONS = ('pipeline', 'baseline', 'ros', 'keep_latest', 'threading', 'int8', 'multicamera',
            'gpu')
# Sections with their own measurement and report, requested alone.
STANDALONE_SECTIONS = ('multicamera', 'gpu')
DEFAULT_SECTIONS = ('pipeline', 'baseline', 'ros', 'keep_latest')
ROS_SECTIONS = ('ros', 'keep_latest')
# Horizontal field of view of the camera the synthetic frames are said to come from.
CAMERA_HFOV_DEG = 60.0


def add_parser(subparsers):
    """Register `depthdet bench`."""
    from depthdet_ros.tools.options import add_override

    parser = subparsers.add_parser(
        'bench', help='measure latency, throughput and memory of the pipeline',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--detector-model', default='',
                        help='detector ONNX (default: params file, else the bundled model)')
    parser.add_argument('--depth-model', default='',
                        help='depth ONNX (default: params file, else the bundled model)')
    add_override(parser, 'joint_model', 'joint ONNX (boxes, masks and depth in one network) '
                 'to compare with the detector + depth pair side by side, interleaved: end to '
                 'end and each network alone (bench.joint); the other sections run the pair')
    parser.add_argument('--int8-detector-model', default='',
                        help='INT8 detector (depthdet quantize) to compare with the FP32 one; '
                             'adds the int8 section')
    parser.add_argument('--int8-depth-model', default='',
                        help='INT8 depth net to compare with the FP32 one; adds the int8 '
                             'section')
    parser.add_argument('--params-file', default='',
                        help='depthdet_node parameters YAML (default: the bundled one); the '
                             'pipeline and the node under test both use it')
    parser.add_argument('--size', default='640x480', metavar='WxH',
                        help='input frame size (default: 640x480)')
    parser.add_argument('--encoding', default='rgb8', choices=ENCODINGS,
                        help='image encoding of the input frames (default: rgb8)')
    parser.add_argument('--iterations', type=bench_count, default=50,
                        help='measured frames per variant (default: 50)')
    parser.add_argument('--warmup', type=non_negative_int, default=5,
                        help='unmeasured frames per variant first (default: 5)')
    parser.add_argument('--baseline-iterations', type=bench_count, default=10,
                        help='baseline frames, spread over the pipeline rounds (default: 10)')
    parser.add_argument('--ros-iterations', type=bench_count, default=30,
                        help='node round trips (and in-process frames) (default: 30)')
    parser.add_argument('--threads', type=non_negative_int, default=None,
                        help='onnxruntime intra-op threads per model (default: params file; '
                             '0: automatic)')
    parser.add_argument('--providers', choices=('auto', 'tensorrt', 'cuda', 'cpu'),
                        help='execution provider (default: params file)')
    parser.add_argument('--score-threshold', type=fraction, default=None,
                        help='detection score threshold (default: params file); lower it to '
                             'exercise fusion and message building with untrained models')
    parser.add_argument('--max-detections', type=positive_int, default=None,
                        help='most detections kept per frame (default: params file)')
    parser.add_argument('--sections', default=','.join(DEFAULT_SECTIONS),
                        help=f'comma-separated sections from {", ".join(SECTIONS)} '
                             f'(default: {",".join(DEFAULT_SECTIONS)})')
    parser.add_argument('--no-ros', action='store_true', help='skip the ros and keep_latest '
                        'sections')
    parser.add_argument('--no-baseline', action='store_true', help='skip the baseline')
    parser.add_argument('--input-reliability', choices=('auto', 'best_effort', 'reliable'),
                        help="QoS of the node's image subscription, and of the bench's "
                             'publisher (auto: the node follows the publisher, which is '
                             'reliable) (default: params file)')
    parser.add_argument('--rates', type=positive_float, nargs='+', default=[30.0, 60.0],
                        metavar='HZ', help='keep_latest input rates (default: 30 60)')
    parser.add_argument('--rate-seconds', type=bench_seconds, default=4.0,
                        help='seconds of input per keep_latest rate (default: 4)')
    parser.add_argument('--cameras', type=positive_int, default=3,
                        help='multicamera: most cameras measured (default: 3)')
    parser.add_argument('--camera-seconds', type=bench_seconds, default=20.0,
                        help='multicamera: seconds of frames per measurement (default: 20)')
    parser.add_argument('--camera-repeats', type=bench_count, default=1,
                        help='multicamera: runs of the whole sequence; figures are medians '
                             '(default: 1)')
    parser.add_argument('--gpu-batch-sizes', type=_batch_sizes, default='4,8', metavar='N,N',
                        help='gpu: cameras batched per model run for the throughput figure '
                             '(default: 4,8; needs models exported with --dynamic-batch)')
    parser.add_argument('--gpu-cache-dir', default='',
                        help='gpu: TensorRT engine and timing cache folder (default: none)')
    # Runs the PyTorch half of the gpu section on the CPU (its tests); never a GPU figure.
    parser.add_argument('--gpu-allow-cpu', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--json', metavar='PATH', help='write the result as JSON')
    parser.add_argument('--table', metavar='JSON',
                        help='print the Markdown performance tables of a result file and exit')
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Run `depthdet bench`; returns the exit code."""
    from depthdet_ros.bench import report
    from depthdet_ros.cli import CliError

    if args.table:
        try:
            with open(args.table, encoding='utf-8') as f:
                result = json.load(f)
        except (OSError, ValueError) as exc:
            raise CliError(f'cannot read {args.table}: {exc}') from None
        not_ours = CliError(f'{args.table} is not a `depthdet bench --json` result')
        if not isinstance(result, dict):
            raise not_ours
        section = result.get('section')
        try:
            if section == 'gpu':
                from depthdet_ros.bench import gpu
                text = gpu.render_markdown(result)
            elif section == 'multicamera':
                from depthdet_ros.bench import multicamera
                text = multicamera.render_markdown(result['multicamera'])
            elif result.get('schema') != report.SCHEMA:
                raise not_ours
            else:
                text = report.render_markdown(result)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
            # The right kind, but parts are missing or of the wrong type (edited by hand).
            raise CliError(f'{args.table} is not a complete `depthdet bench --json` result '
                           f'({type(exc).__name__}: {exc})') from None
        print(text)
        return 0
    sections = _sections(args)
    if args.json:
        output_file(args.json, '--json')  # before the run, not after it
    if sections[0] in STANDALONE_SECTIONS:
        result, text = _standalone(sections[0], args)
        print(text)
    else:
        result = benchmark(args, sections)
        print(report.render_markdown(result))
        notes = report.render_notes(result)
        if notes:
            print('\n' + notes)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
        print(f'\nwrote {args.json}')
    return 0


def _batch_sizes(text):
    """Check N,N,... (whole numbers >= 1) when the command line is read, whatever runs."""
    try:
        sizes = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not N,N,... with whole numbers >= 1')
    return ','.join(str(v) for v in sizes)


def _sections(args):
    from depthdet_ros.cli import CliError

    sections = [s.strip() for s in args.sections.split(',') if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise CliError(f'unknown section(s) {", ".join(unknown)}; choose from '
                       f'{", ".join(SECTIONS)}')
    if args.no_ros:
        sections = [s for s in sections if s not in ROS_SECTIONS]
    if args.no_baseline:
        sections = [s for s in sections if s != 'baseline']
    if (args.int8_detector_model or args.int8_depth_model) and 'int8' not in sections \
            and 'gpu' not in sections:  # the gpu section runs them on TensorRT itself
        sections.append('int8')
    if 'int8' in sections and not (args.int8_detector_model or args.int8_depth_model):
        raise CliError('the int8 section needs --int8-detector-model and/or '
                       '--int8-depth-model')
    for option in ('int8_detector_model', 'int8_depth_model'):
        path = getattr(args, option)
        if path and not os.path.isfile(path):
            raise CliError(f'--{option.replace("_", "-")} {path}: file not found')
    standalone = [s for s in sections if s in STANDALONE_SECTIONS]
    if standalone and len(sections) > 1:
        raise CliError(f'the {standalone[0]} section runs alone: --sections {standalone[0]}')
    if not sections:
        raise CliError('no section to run')
    return sections


def _standalone(section, args):
    """Run a section that runs alone; returns (result dict, Markdown text)."""
    import tempfile

    from depthdet_ros.bench import system
    from depthdet_ros.cli import CliError

    if section == 'gpu':
        from depthdet_ros.bench import gpu
        return gpu.run(args, _progress('gpu'))
    from depthdet_ros.bench import multicamera

    if args.cameras < 1 or args.camera_seconds <= 0 or args.camera_repeats < 1:
        raise CliError('--cameras and --camera-repeats must be >= 1, --camera-seconds > 0')
    # One process per camera, all at once, each holding its own sessions.
    needed_mb = args.cameras * multicamera.PROCESS_MB
    available_mb = system.available_memory_mb()
    if needed_mb > available_mb:
        raise CliError(f'--cameras {args.cameras} starts {args.cameras} processes at once, '
                       f'about {needed_mb:.0f} MB with {multicamera.PROCESS_MB} MB each, and '
                       f'{available_mb:.0f} MB are available: give fewer cameras')
    values = _node_values(args)
    width, height = _frame_size(args.size)
    environment = system.environment()
    with tempfile.TemporaryDirectory() as workdir:
        try:
            record = multicamera.run(values, args.cameras, args.camera_seconds, width, height,
                                     workdir, args.camera_repeats,
                                     lambda text: print(f'  {text}', file=sys.stderr))
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
    argv = _argv_of(args, ('cameras', 'camera_seconds', 'camera_repeats'))
    result = {'section': 'multicamera', 'command': 'depthdet bench ' + ' '.join(argv),
              'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'environment': environment,
              'models': {k: values[f'{k}_model'] for k in ('detector', 'depth')},
              'frame_size': f'{width}x{height}', 'multicamera': record}
    text = (f'Models: {os.path.basename(values["detector_model"])} + '
            f'{os.path.basename(values["depth_model"])}, {width}x{height} frames, '
            f'{environment["usable_cores"]} usable cores, {environment["cpu"]}.\n\n'
            + multicamera.render_markdown(record))
    return result, text


def _frame_size(text):
    from depthdet_ros.arg_types import MIN_BENCH_IMAGE_SIDE, parse_size
    from depthdet_ros.cli import CliError
    try:
        return parse_size(text, MIN_BENCH_IMAGE_SIDE)
    except ValueError as exc:
        raise CliError(f'--size: {exc}') from None


def model_path(path):
    """Return a model path as the bench's workers and reports need it: `~` out, absolute."""
    return os.path.abspath(os.path.expanduser(path))


def _node_values(args):
    """Return the node's parameter values with the command line's overrides applied."""
    from depthdet_ros.assets import default_model
    from depthdet_ros.cli import CliError
    from depthdet_ros.tools.options import pipeline_values

    values = pipeline_values(args)
    for kind in ('detector', 'depth'):
        key = f'{kind}_model'
        values[key] = model_path(values[key] or default_model(kind))
        if not os.path.isfile(values[key]):
            raise CliError(
                f'{kind} model {values[key]} not found; pass --{kind}-model, or export one, '
                f'e.g. depthdet export --random-weights --arch '
                f'{"yolov5n" if kind == "detector" else "hybrid_resnet18"} -o model.onnx')
    return values


def _progress(name):
    def show(done, total):
        if done == total or done % max(1, total // 5) == 0:
            print(f'  {name}: {done}/{total}', file=sys.stderr, flush=True)
    return show


def benchmark(args, sections):
    """Run the requested sections; returns the result dict (see report.RESULT_FIELDS)."""
    from depthdet_ros.bench import report, system
    from depthdet_ros.bench.frames import raw_frame, synthetic_rgb
    from depthdet_ros.bench.inprocess import measure_pipeline, message_builder, STAGES
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.ros.params import build_pipeline

    width, height = _frame_size(args.size)
    values = _node_values(args)
    # The sections run the pair; a joint model (option or params file) is compared with it.
    joint_path, values['joint_model'] = values['joint_model'], ''
    started = time.strftime('%Y-%m-%dT%H:%M:%S%z')
    environment = system.environment()
    not_measured, notes = [], []
    print(f'loading {values["detector_model"]} and {values["depth_model"]}', file=sys.stderr)
    try:
        pipeline = build_pipeline(values)
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    rss_after_load = system.rss_mb()
    rgb = synthetic_rgb(width, height)
    frame = raw_frame(rgb, args.encoding)
    camera = CameraModel.from_fov(width, height, CAMERA_HFOV_DEG)
    builder, builder_missing = message_builder()
    if builder_missing:
        not_measured.append(f'message building and everything through ROS: {builder_missing}')
    throughput = {'pipeline': None, 'baseline': None}
    try:
        baseline, baseline_record = _baseline(sections, pipeline, values, not_measured)
        samples, objects = measure_pipeline(
            pipeline, frame, camera, args.iterations, args.warmup, builder, baseline,
            args.baseline_iterations, _progress('pipeline'))
        stages = samples.summaries([name for name in STAGES + (
            'detector_alone', 'depth_alone', 'baseline', 'baseline_1_thread')
            if samples.values(name)])
        throughput['pipeline'] = _fps(samples.values('end_to_end'))
        if baseline is not None:
            fastest = min(('baseline', 'baseline_1_thread'), key=lambda k: stages[k]['p50'])
            throughput['baseline'] = _fps(samples.values(fastest))
            baseline_record.update(latency_ms=stages['baseline'],
                                   latency_1_thread_ms=stages['baseline_1_thread'],
                                   reference=fastest)
        threading = _threading(sections, args, values, rgb, camera)
        int8 = _int8(sections, args, values, pipeline, frame, camera)
        joint = None
        if joint_path:
            from depthdet_ros.bench.joint import run_section
            joint = run_section(values, joint_path, pipeline, frame, camera, args.iterations,
                                args.warmup, _progress('joint'))
        ros_out = _ros(sections, args, pipeline, frame, camera, values, not_measured)
    finally:
        pipeline.close()
    latency = (ros_out or {}).get('latency')
    if latency:
        stages['publish'] = latency['publish_ms']
        stages['node_round_trip'] = latency['node_round_trip_ms']
    ratios = _ratios(stages, latency, pipeline.concurrent)
    memory = _memory(pipeline, ros_out, rss_after_load, not_measured)
    if objects == 0:
        notes.append('the detector found no objects in the synthetic frame, so fusion and '
                     'message building ran with none; untrained models need a lower '
                     '--score-threshold to exercise them')
    notes.append('absolute times depend on other load on this machine (load average '
                 f'{environment["load_average"][0]} at start, '
                 f'{system.environment()["load_average"][0]} at the end); compare the ratios')
    return {
        'schema': report.SCHEMA,
        'command': 'depthdet bench ' + ' '.join(_argv_of(args)),
        'created': started,
        'environment': environment,
        'config': {
            'detector_model': values['detector_model'], 'depth_model': values['depth_model'],
            'detector_arch': _arch(pipeline.detector), 'depth_arch': _arch(pipeline.depth),
            'detector_input': f'{pipeline.detector.input_w}x{pipeline.detector.input_h}',
            'depth_input': f'{pipeline.depth.input_w}x{pipeline.depth.input_h}',
            'frame_size': f'{width}x{height}', 'encoding': args.encoding,
            'sections': sections, 'iterations': args.iterations, 'warmup': args.warmup,
            'baseline_iterations': args.baseline_iterations,
            'ros_iterations': args.ros_iterations, 'providers_requested': values['providers'],
            'threads_requested': values['threads'],
            'intra_op_threads': pipeline.session_options.intra_op_threads,
            'allow_spinning': pipeline.session_options.allow_spinning,
            'concurrent': pipeline.concurrent,
            'score_threshold': values['score_threshold'],
            'max_detections': values['max_detections'],
            'depth_strategy': values['depth_strategy'],
            'objects_per_frame': round(objects, 2),
        },
        'providers': pipeline.providers,
        'stages_ms': stages,
        'throughput_fps': throughput,
        'ratios': ratios,
        'baseline': baseline_record,
        'threading': threading,
        'int8': int8,
        'joint': joint,
        'ros': _ros_record(ros_out),
        'keep_latest': (ros_out or {}).get('keep_latest'),
        'memory': memory,
        'not_measured': not_measured,
        'notes': notes,
    }


def _ratios(stages, latency, concurrent):
    """Compute the ratios of a result (see report.RATIO_FIELDS) from p50 latencies."""
    from depthdet_ros.bench import report
    from depthdet_ros.bench.stats import ratio

    e2e = stages['end_to_end']['p50']
    alone = stages['detector_alone']['p50'] + stages['depth_alone']['p50']
    baseline_p50 = min((stages[k]['p50'] for k in ('baseline', 'baseline_1_thread')
                        if k in stages), default=None)
    ratios = {
        'overhead': report.overhead_ratio(ratio(e2e, alone), concurrent),
        'speedup_vs_baseline': report.ratio_record(
            ratio(baseline_p50, e2e), 'speed-up: naive baseline p50 (the faster of PyTorch '
            'default threads and 1 thread) / pipeline end-to-end p50', report.SPEEDUP_TARGET,
            lower_is_better=False),
        'ros_vs_inprocess': report.ratio_record(
            ratio(latency['node_round_trip_ms']['p50'],
                  latency['inprocess_end_to_end_ms']['p50']) if latency else None,
            'node round trip over DDS p50 / in-process end-to-end p50, interleaved'),
    }
    ratios['speedup_vs_baseline']['vs_default_threads'] = ratio(
        stages.get('baseline', {}).get('p50'), e2e)
    return ratios


def _arch(model):
    from depthdet_ros.core import metadata
    from depthdet_ros.core.session import model_metadata
    return model_metadata(model.session).get(metadata.ARCH)


def _fps(samples_ms):
    if not samples_ms:
        return None
    return round(1e3 * len(samples_ms) / sum(samples_ms), 2)


def _argv_of(args, extra=()):
    """Spell out the command line's options with every value used (and `extra` ones)."""
    parts = []
    for name in ('detector_model', 'depth_model', 'joint_model', 'int8_detector_model',
                 'int8_depth_model',
                 'size', 'encoding', 'iterations', 'warmup',
                 'baseline_iterations', 'ros_iterations', 'threads', 'providers',
                 'score_threshold', 'max_detections', 'sections', 'input_reliability',
                 'rate_seconds', 'params_file', 'json') + tuple(extra):
        value = getattr(args, name)
        if value not in (None, ''):
            parts.append(f'--{name.replace("_", "-")} {value}')
    parts += [flag for flag, on in (('--no-ros', args.no_ros),
                                    ('--no-baseline', args.no_baseline)) if on]
    parts.append('--rates ' + ' '.join(f'{r:g}' for r in args.rates))
    return parts


def _baseline(sections, pipeline, values, not_measured):
    """Build the baseline when requested; returns (NaiveBaseline or None, record)."""
    from depthdet_ros.bench.baseline import BaselineUnavailable, load_baseline

    if 'baseline' not in sections:
        not_measured.append('speed-up over the naive baseline: section not requested')
        return None, {'status': 'not run', 'reason': 'section not requested'}
    print('building the naive baseline (PyTorch)', file=sys.stderr)
    try:
        baseline, info = load_baseline(pipeline, values['score_threshold'])
    except BaselineUnavailable as exc:
        not_measured.append(f'speed-up over the naive baseline: {exc}')
        return None, {'status': 'skipped', 'reason': str(exc)}
    return baseline, dict(info, status='measured')


def _threading(sections, args, values, rgb, camera):
    if 'threading' not in sections:
        return None
    from depthdet_ros.bench.inprocess import measure_threading
    from depthdet_ros.ros.params import build_pipeline

    print('comparing thread settings', file=sys.stderr)
    reference = build_pipeline(values)
    models, detector_config, fusion = reference.models, reference.detector.config, \
        reference.fusion
    reference.close()
    variants, cores = measure_threading(models, detector_config, fusion, rgb, camera,
                                        args.iterations, args.warmup, values['providers'],
                                        _progress('threading'))
    return {'cores': cores, 'metric': 'Pipeline.process, ms', 'variants': variants}


def _int8(sections, args, values, pipeline, frame, camera):
    """FP32 (the bench's pipeline) against the same pipeline with the INT8 models."""
    if 'int8' not in sections:
        return None
    from depthdet_ros.bench.inprocess import measure_int8
    from depthdet_ros.bench.stats import ratio
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.nets.quantize import cpu_features
    from depthdet_ros.ros.params import build_pipeline

    int8_values = dict(values)
    for kind in ('detector', 'depth'):
        path = getattr(args, f'int8_{kind}_model')
        if path:
            int8_values[f'{kind}_model'] = model_path(path)
    print('comparing FP32 and INT8 models', file=sys.stderr)
    try:
        int8_pipeline = build_pipeline(int8_values)
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        stages = measure_int8(pipeline, int8_pipeline, frame, camera, args.iterations,
                              args.warmup, _progress('int8'))
    finally:
        int8_pipeline.close()
    speedups = {name: ratio(stages[f'{name}_fp32']['p50'], stages[f'{name}_int8']['p50'])
                for name in ('detector_alone', 'depth_alone', 'end_to_end')}
    return {'cpu_features': cpu_features(),
            'models': {kind: int8_values[f'{kind}_model'] for kind in ('detector', 'depth')},
            'stages_ms': stages,
            'speedup_fp32_over_int8': speedups}


def _ros(sections, args, pipeline, frame, camera, values, not_measured):
    wanted = [s for s in ROS_SECTIONS if s in sections]
    if not wanted:
        not_measured.append('through ROS (node latency, publish, keep-latest): sections not '
                            'requested')
        return None
    from depthdet_ros.bench.ros_bench import NodeStartError, ros_available, run_ros_sections

    available, reason = ros_available()
    if not available:
        not_measured.append(f'{", ".join(wanted)} (node latency over DDS, publish, '
                            f'keep-latest output age and drops): {reason}')
        return None
    print('starting depthdet_node for the ROS sections', file=sys.stderr)
    try:
        return run_ros_sections(pipeline, frame, camera, values, args.ros_iterations,
                                args.warmup, args.rates, args.rate_seconds,
                                keep_latest='keep_latest' in sections,
                                measure_latency='ros' in sections, progress=_progress('ros'))
    except NodeStartError as exc:
        not_measured.append(f'{", ".join(wanted)}: {exc}')
        return None


def _ros_record(ros_out):
    if ros_out is None:
        return {'status': 'not run'}
    record = {'status': 'measured', 'node': ros_out['node']}
    if ros_out.get('latency'):
        record.update(ros_out['latency'])
    return record


def _memory(pipeline, ros_out, rss_after_load, not_measured):
    from depthdet_ros.bench import system

    node = (ros_out or {}).get('node', {})
    memory = {'rss_mb_after_load': rss_after_load, 'rss_mb_end': system.rss_mb(),
              'peak_rss_mb': system.peak_rss_mb(), 'node_rss_mb': node.get('rss_mb'),
              'gpu_memory_mb': None, 'gpu_note': None}
    if set(pipeline.providers.values()) == {'cpu'}:
        memory['gpu_note'] = 'none used (CPU execution provider)'
        not_measured.append('GPU memory and GPU latency: the models ran on the CPU '
                            'execution provider')
    else:
        used = system.gpu_memory_mb({os.getpid()})
        if used is None:
            memory['gpu_note'] = 'nvidia-smi not available'
            not_measured.append('GPU memory: nvidia-smi not available')
        else:
            memory['gpu_memory_mb'] = {str(pid): mb for pid, mb in used.items()}
    return memory
