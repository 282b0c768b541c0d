"""`depthdet quantize`: static INT8 models for the CPU, with their accuracy cost measured.

Steps, all with onnxruntime's quantization tools:
1. pre-process (quant_pre_process): shape inference and onnxruntime's graph optimisation,
   which folds BatchNorm into convolutions and constants into initialisers;
2. calibrate on frames prepared exactly as the runtime prepares them (the detector's
   letterbox, the depth net's view), from a `depthdet synth dataset` split, image files or
   folders, or a rosbag2's camera topic; activation ranges are computed once and cached;
3. quantize (QDQ by default: uint8 activations, int8 per-channel weights with 7-bit range
   on CPUs without VNNI, see below), leaving in float the nodes that are slower in INT8
   and the operator types and nodes that cost the most accuracy: all measured, by
   profiling and timing, and by excluding each candidate in turn and comparing the model's
   output with the FP32 model's on held-out calibration frames (`search`);
4. copy the ONNX metadata, so the file runs in the node unchanged, and record the recipe.

On x86-64 with AVX2 or AVX-512 but no VNNI, onnxruntime's u8s8 kernels multiply with
VPMADDUBSW, whose 16-bit sums can saturate; 7-bit weights (reduce_range) avoid that, as
onnxruntime's quantization guide recommends there. `--cpu-features` says which this CPU has.
"""
import argparse
import glob
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, STRATEGIES

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')
DEFAULT_FRAMES = 64
DEFAULT_CHECK_FRAMES = 16
# Rows of the detector output whose FP32 score (objectness x best class) reaches this are
# compared: the candidates NMS could keep at and near the operating threshold.
DETECTOR_ROW_SCORE = 0.05
# Node exclusion stops when the next node would lower the output error by less than this
# fraction of the fully quantized model's error.
MIN_EXCLUSION_GAIN = 0.05
# The per-node study first leaves consecutive groups of this many weighted nodes in float,
# then single nodes of the GROUPS_SEARCHED groups that gain most (each step costs a
# quantization and a run on the check frames).
GROUP_SIZE = 8
GROUPS_SEARCHED = 3
# A node stays in float for speed when its INT8 kernel takes this much longer than its
# FP32 one (the profiler's medians wobble by a few per cent between runs).
SLOWER_IN_INT8 = 1.2


# --- what the CPU offers -----------------------------------------------------------------

def cpu_features():
    """Return this CPU's instruction sets that matter to 8-bit kernels, best first.

    Those of avx512_vnni, avx_vnni (u8s8 without saturation), avx512f and avx2 that
    /proc/cpuinfo lists; empty where it cannot be read.
    """
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return []
    return [name for name in ('avx512_vnni', 'avx_vnni', 'avx512f', 'avx2') if name in flags]


def has_vnni(features=None):
    """Whether the CPU has VNNI (8-bit dot products that do not saturate)."""
    features = cpu_features() if features is None else features
    return any('vnni' in name for name in features)


# --- settings ----------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantSettings:
    """How to quantize: format, types, granularity and what stays in float."""

    quant_format: str = 'qdq'             # 'qdq' | 'qoperator'
    activations: str = 'u8'               # 'u8' | 's8'
    weights: str = 's8'                   # 's8' | 'u8'
    per_channel: bool = True
    reduce_range: Optional[bool] = None   # None: on where the CPU has no VNNI
    op_types: Tuple[str, ...] = ()        # empty: every type onnxruntime can quantize
    exclude_op_types: Tuple[str, ...] = ()
    exclude_nodes: Tuple[str, ...] = ()
    calibration: str = 'minmax'           # 'minmax' | 'entropy' | 'percentile'
    # Keep in float the nodes after the last weighted layer (the detector's box decoding:
    # sigmoids, grid offsets, anchor powers), where 8 bits would quantize pixel positions.
    float_tail: bool = True

    def resolved(self):
        """Return the settings with reduce_range decided for this CPU."""
        if self.reduce_range is not None:
            return self
        return replace(self, reduce_range=not has_vnni())

    def describe(self):
        """One line, e.g. 'QDQ u8s8 per-channel 7-bit weights, minmax'."""
        bits = '7-bit' if self.reduce_range else '8-bit'
        parts = [f'{self.quant_format.upper()} {self.activations}{self.weights}',
                 'per-channel' if self.per_channel else 'per-tensor', f'{bits} weights',
                 self.calibration]
        if self.op_types:
            parts.append('ops ' + '+'.join(self.op_types))
        if self.exclude_op_types:
            parts.append('float ' + '+'.join(self.exclude_op_types))
        if self.exclude_nodes:
            parts.append(f'{len(self.exclude_nodes)} nodes float')
        if not self.float_tail:
            parts.append('output tail quantized')
        return ', '.join(parts)


# --- calibration frames ------------------------------------------------------------------

class CalibrationError(ValueError):
    """Calibration frames cannot be read from what was given."""


def _evenly(items, count):
    if count <= 0 or count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def read_frames(sources: Sequence[str], count: int) -> List:
    """Return up to `count` RGB uint8 frames spread evenly over `sources`.

    Each source is a `depthdet synth dataset` split folder (annotations.json), a rosbag2
    folder (metadata.yaml; its camera image topic), an image file, or a folder of images.
    Only the chosen frames are decoded; a bag is read once more for them.
    """
    items = []   # (source, index, loader or None for a bag message)
    for source in sources:
        if os.path.isfile(os.path.join(source, 'annotations.json')):
            from depthdet_ros.train.data import SimDataset
            dataset = SimDataset(source)
            items += [(source, i, lambda d=dataset, i=i: d.rgb(i)) for i in range(len(dataset))]
        elif os.path.isfile(os.path.join(source, 'metadata.yaml')):
            items += [(source, i, None) for i in range(_bag_image_count(source))]
        elif os.path.isdir(source):
            paths = sorted(p for p in glob.glob(os.path.join(source, '**', '*'), recursive=True)
                           if p.lower().endswith(IMAGE_EXTENSIONS))
            items += [(source, i, lambda p=p: _read_image(p)) for i, p in enumerate(paths)]
        elif os.path.isfile(source):
            items.append((source, 0, lambda p=source: _read_image(p)))
        else:
            raise CalibrationError(f'calibration source not found: {source}')
    if not items:
        raise CalibrationError('no calibration frames in ' + ', '.join(sources))
    chosen = _evenly(items, count)
    bags = {}
    for source, index, load in chosen:
        if load is None:
            bags.setdefault(source, set()).add(index)
    bag_frames = {source: _bag_images(source, wanted) for source, wanted in bags.items()}
    return [load() if load else bag_frames[source][index] for source, index, load in chosen]


def _read_image(path):
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise CalibrationError(f'{path}: not a readable image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _bag_messages(path):
    """Yield (ordinal, raw CDR, message type) of the bag's camera image topic."""
    from depthdet_ros.bags import bag_messages
    from depthdet_ros.eval import bag_input

    reader = bag_input.open_reader(path)
    try:
        topic_types = {c.topic: c.msgtype for c in reader.connections}
        topic = bag_input.select_topics(topic_types).image
        connections = [c for c in reader.connections if c.topic == topic]
        for ordinal, (_, _, raw) in enumerate(bag_messages(reader, connections)):
            yield ordinal, raw, topic_types[topic]
    finally:
        reader.close()


def _bag_image_count(path):
    return sum(1 for _ in _bag_messages(path))


def _bag_images(path, wanted):
    """Decode the camera images of a bag whose ordinals are in `wanted`: {ordinal: RGB}."""
    from depthdet_ros.bags import make_typestore
    from depthdet_ros.eval import bag_input

    typestore = make_typestore()
    return {ordinal: bag_input.decode_image(typestore.deserialize_cdr(raw, msgtype))
            for ordinal, raw, msgtype in _bag_messages(path) if ordinal in wanted}


def network_inputs(model_path, frames):
    """Return the input array the runtime would feed `model_path` for each frame."""
    from depthdet_ros.core import metadata
    from depthdet_ros.core.depth import DepthEstimator
    from depthdet_ros.core.detector import Detector
    from depthdet_ros.core.session import SessionOptions

    options = SessionOptions(providers='cpu')
    model = DepthEstimator(model_path, options) if model_task(model_path) == \
        metadata.TASK_DEPTH else Detector(model_path, options)
    inputs = []
    for rgb in frames:
        model.preprocess(rgb)  # fills the input buffer the model would run on
        inputs.append(model._blob.copy())
    return model.input_name, inputs


# Operators of a model that is already quantized: QDQ pairs, QOperator (QLinear*) and the
# integer ops of dynamic quantization; quantizing such a model again makes onnxruntime
# run for minutes and gives nothing usable.
_QUANTIZED_OPS = ('QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear',
                  'DynamicQuantizeMatMul', 'QGemm', 'QAttention')


def check_fp32_model(path):
    """Raise CliError unless `path` is an ONNX detector or depth net not yet quantized."""
    import onnx
    from google.protobuf.message import DecodeError

    from depthdet_ros.cli import CliError
    from depthdet_ros.core import metadata
    name = os.path.basename(path)
    try:
        model = onnx.load(path, load_external_data=False)
    except OSError as exc:
        raise CliError(f'cannot read {path}: {exc.strerror or exc}') from None
    except DecodeError:
        raise CliError(f'{path} is not an ONNX model; give an FP32 model from depthdet '
                       'export') from None
    # Almost any bytes parse as an empty ModelProto.
    if not model.graph.node:
        raise CliError(f'{path} is not an ONNX model (no graph); give an FP32 model from '
                       'depthdet export')
    props = {p.key: p.value for p in model.metadata_props}
    if props.get(metadata.TASK) == metadata.TASK_JOINT:
        raise CliError(f'{name} is a joint model (boxes, masks and depth in one): depthdet '
                       'quantize takes a detector or a depth net')
    quantized = sorted({node.op_type for node in model.graph.node
                        if node.op_type in _QUANTIZED_OPS or node.op_type.startswith('QLinear')
                        or node.op_type.endswith(('Integer', 'IntegerToFloat'))})
    if quantized:
        raise CliError(f'{name} is already quantized (it has {", ".join(quantized)}); give the '
                       'FP32 model (depthdet export)')


def check_settings(settings, prepared_models, model_names):
    """Raise CliError for op types and nodes of the recipe that none of the models has.

    The models are the pre-processed ones the quantizer sees (their node names are those
    the study JSON lists).
    """
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from depthdet_ros.cli import CliError
    nodes = [node for model in prepared_models for node in model.graph.node]
    present = {node.op_type for node in nodes}
    where = ' or '.join(model_names)
    quantizable = sorted(present & (set(QDQRegistry) | set(QLinearOpsRegistry)))
    for option, op_types in (('--op-types', settings.op_types),
                             ('--float-op-types', settings.exclude_op_types)):
        absent = [op_type for op_type in op_types if op_type not in present]
        if absent:
            raise CliError(f'{option} {" ".join(absent)}: not in {where}, whose quantizable op '
                           f'types are: {" ".join(quantizable)}')
    names = {node.name for node in nodes}
    absent = [name for name in settings.exclude_nodes if name not in names]
    if absent:
        raise CliError(f'--float-nodes {" ".join(absent)}: no such node in {where} (names as '
                       'the study JSON <model>_int8.json lists them)')


def model_task(path):
    """Return the model's depthdet task ('detector' or 'depth') from its metadata."""
    import onnx

    from depthdet_ros.core import metadata
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    task = props.get(metadata.TASK)
    if task in (metadata.TASK_DETECTOR, metadata.TASK_DEPTH):
        return task
    return metadata.TASK_DETECTOR if metadata.NAMES in props else metadata.TASK_DEPTH


# --- quantization --------------------------------------------------------------------------

def _calibration_reader(input_name, inputs):
    """Return an onnxruntime CalibrationDataReader over prepared network inputs."""
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self):
            self._iter = iter(inputs)

        def get_next(self):
            value = next(self._iter, None)
            return None if value is None else {input_name: value}

        def rewind(self):
            self._iter = iter(inputs)

    return Frames()


def preprocess_model(source, target):
    """Run quant_pre_process: shape inference (symbolic, ONNX), optimisation (BN folding)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process
    quant_pre_process(source, target, skip_symbolic_shape=False, auto_merge=True)


def quantize_model(prepared, target, settings, input_name, inputs, cache_path, metadata_from):
    """Write the INT8 model `target` from the pre-processed `prepared`; returns settings used.

    Activation ranges are computed on `inputs` once and kept in `cache_path` (JSON).
    The metadata of `metadata_from` is copied, plus the recipe under QUANTIZATION.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    settings = settings.resolved()
    types = {'u8': QuantType.QUInt8, 's8': QuantType.QInt8}
    methods = {'minmax': CalibrationMethod.MinMax, 'entropy': CalibrationMethod.Entropy,
               'percentile': CalibrationMethod.Percentile}
    model = onnx.load(prepared)
    present = sorted({node.op_type for node in model.graph.node})
    op_types = [t for t in (settings.op_types or present) if t not in settings.exclude_op_types]
    extra = {'ActivationSymmetric': settings.activations == 's8',
             'WeightSymmetric': settings.weights == 's8'}
    exclude = list(settings.exclude_nodes) + (tail_nodes(model) if settings.float_tail else [])
    # Ranges differ by calibration method: one cache file each.
    cache = f'{cache_path}.{settings.calibration}.json' if cache_path else None
    root = logging.getLogger()
    level = root.level
    # onnxruntime's quantizer warns on the root logger about every 1-D weight it cannot
    # quantize per channel (BatchNormalization scales); they stay per tensor, as they should.
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            prepared, target, _calibration_reader(input_name, inputs),
            quant_format=QuantFormat.QDQ if settings.quant_format == 'qdq'
            else QuantFormat.QOperator,
            op_types_to_quantize=op_types, per_channel=settings.per_channel,
            reduce_range=settings.reduce_range, activation_type=types[settings.activations],
            weight_type=types[settings.weights],
            nodes_to_exclude=exclude,
            calibrate_method=methods[settings.calibration], extra_options=extra,
            calibration_cache_path=cache)
    finally:
        root.setLevel(level)
    copy_metadata(metadata_from, target, settings)
    return settings


def tail_nodes(model):
    """Names of the nodes after the last weighted layer (_WEIGHTED); none without such."""
    if not any(node.op_type in _WEIGHTED for node in model.graph.node):
        return []
    nodes = list(model.graph.node)
    consumers = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    feeds_weights = set()
    # ONNX keeps nodes in topological order: consumers are decided before producers.
    for index in reversed(range(len(nodes))):
        if any(nodes[k].op_type in _WEIGHTED or k in feeds_weights
               for out in nodes[index].output for k in consumers.get(out, [])):
            feeds_weights.add(index)
    return [node.name for index, node in enumerate(nodes) if node.name
            and node.op_type not in _WEIGHTED and index not in feeds_weights]


def copy_metadata(source, target, settings):
    """Copy `source`'s metadata_props into `target` and record the quantization recipe."""
    import onnx

    from depthdet_ros.core import metadata
    props = {p.key: p.value for p in onnx.load(source, load_external_data=False).metadata_props}
    props[metadata.QUANTIZATION] = json.dumps(
        dict(asdict(settings), cpu=cpu_features()[:1] or ['unknown']))
    model = onnx.load(target)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, target)


# --- measuring a quantized model -----------------------------------------------------------

def run_outputs(path, input_name, inputs, threads=0):
    """Return the first output of `path` for each input (CPU provider)."""
    session = _session(path, threads)
    return [session.run(None, {input_name: x})[0] for x in inputs]


def _session(path, threads=0):
    from depthdet_ros.core.session import create_session, SessionOptions
    return create_session(path, SessionOptions(providers='cpu', intra_op_threads=threads,
                                               allow_spinning=False))[0]


def _scored_rows(output, layout):
    """Return (N x 4 boxes, N scores, N box sizes) of one raw detector output."""
    import numpy as np

    from depthdet_ros.core.detector import LAYOUT_NMS, LAYOUT_YOLOV8
    if layout == LAYOUT_YOLOV8:
        rows = output.reshape(output.shape[-2], output.shape[-1]).T
        return rows[:, :4], rows[:, 4:].max(axis=1), rows[:, 2] + rows[:, 3]
    rows = output.reshape(-1, output.shape[-1])
    if layout == LAYOUT_NMS:   # x1, y1, x2, y2, score, class
        return rows[:, :4], rows[:, 4], np.abs(rows[:, 2] - rows[:, 0]) + \
            np.abs(rows[:, 3] - rows[:, 1])
    return rows[:, :4], rows[:, 4] * rows[:, 5:].max(axis=1), rows[:, 2] + rows[:, 3]


def output_error(task, reference, outputs, layout=None):
    """How far a model's outputs are from the FP32 model's, as {name: value}, plus 'error'.

    Depth: mean relative difference over all output pixels (the REL of the INT8 depth
    against the FP32 depth). Detector (`layout` as core.detector names them, YOLOv5 when
    None), on the rows either model scores >= DETECTOR_ROW_SCORE: mean |score difference|
    and mean box difference over the box size, (|dcx| + |dcy| + |dw| + |dh|) / (w + h).
    'error' is their sum for the detector.
    """
    import numpy as np

    from depthdet_ros.core import metadata
    if task == metadata.TASK_DEPTH:
        rel = [np.mean(np.abs(q.astype(np.float64) - f) / np.maximum(np.abs(f), 1e-3))
               for f, q in zip(reference, outputs)]
        return {'error': float(np.mean(rel)), 'depth_rel': float(np.mean(rel))}
    score_diffs, box_diffs = [], []
    for f, q in zip(reference, outputs):
        f_box, f_score, f_size = _scored_rows(f.astype(np.float64), layout)
        q_box, q_score, _ = _scored_rows(q.astype(np.float64), layout)
        rows = (f_score >= DETECTOR_ROW_SCORE) | (q_score >= DETECTOR_ROW_SCORE)
        if not rows.any():
            continue
        score_diffs.append(np.abs(q_score[rows] - f_score[rows]))
        size = np.maximum(f_size[rows], 1.0)
        box_diffs.append(np.abs(q_box[rows] - f_box[rows]).sum(axis=1) / size)
    if not score_diffs:
        return {'error': 0.0, 'score_abs': 0.0, 'box_rel': 0.0, 'rows': 0}
    score = float(np.mean(np.concatenate(score_diffs)))
    box = float(np.mean(np.concatenate(box_diffs)))
    return {'error': score + box, 'score_abs': score, 'box_rel': box,
            'rows': int(sum(len(d) for d in score_diffs))}


def latencies_ms(paths, input_name, sample, rounds=20, threads=0):
    """Median latency (ms) of each model on one input, measured interleaved round by round."""
    import numpy as np

    sessions = [_session(path, threads) for path in paths]
    feed = {input_name: sample}
    for session in sessions:
        for _ in range(3):
            session.run(None, feed)
    times = [[] for _ in sessions]
    for round_index in range(rounds):
        order = list(range(len(sessions)))
        order = order[round_index % len(order):] + order[:round_index % len(order)]
        for k in order:
            time.sleep(0.01)  # let spinning threads of the previous session settle
            t0 = time.perf_counter()
            sessions[k].run(None, feed)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return [float(np.median(t)) for t in times]


# --- choosing what stays in float -----------------------------------------------------------

def kernel_times_ms(path, input_name, sample, runs=15):
    """Median kernel time (ms) of every node onnxruntime runs, by its profiler (1 thread)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, 'profile')
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        for _ in range(runs):
            session.run(None, {input_name: sample})
        with open(session.end_profiling(), encoding='utf-8') as f:
            events = json.load(f)
    times = {}
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
            times.setdefault(event['name'][:-len('_kernel_time')], []).append(event['dur'])
    return {name: float(np.median(values)) / 1e3 for name, values in times.items()}


# Activations onnxruntime fuses into the convolution before it (FP32 and INT8 alike).
_FUSED_ACTIVATIONS = ('Clip', 'Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'Tanh')


def node_speed(model, fp32_times, int8_times):
    """{weighted node: (FP32 ms, INT8 ms)} matched by the names onnxruntime gives kernels.

    FP32 convolutions run as '<output>_nchwc' (their own output, or that of the activation
    fused into them); INT8 ones as '<node name>' followed by a suffix.
    """
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    speed = {}
    for node in model.graph.node:
        if node.op_type not in _WEIGHTED:
            continue
        outputs = [node.output[0]] + [c.output[0] for c in consumers.get(node.output[0], [])
                                      if c.op_type in _FUSED_ACTIVATIONS]
        fp32 = next((fp32_times[key] for key in [node.name] + [o + '_nchwc' for o in outputs]
                     if key in fp32_times), None)
        int8 = next((t for key, t in int8_times.items() if key == node.name
                     or key.startswith(node.name + '_token') or key == node.name + '_quant'),
                    None)
        if fp32 is not None and int8 is not None:
            speed[node.name] = (fp32, int8)
    return speed


@dataclass
class Variant:
    """One quantized candidate and what it measured."""

    name: str
    settings: QuantSettings
    error: Dict[str, float] = field(default_factory=dict)
    latency_ms: Optional[float] = None
    fp32_latency_ms: Optional[float] = None   # measured in the same rounds

    def line(self):
        """One line for the log and the docs."""
        text = f'{self.name}: output error {self.error["error"]:.4f}'
        if self.latency_ms:
            text += (f', {self.latency_ms:.1f} ms vs FP32 {self.fp32_latency_ms:.1f} ms '
                     f'(x{self.fp32_latency_ms / self.latency_ms:.2f})')
        return text


@dataclass
class Study:
    """Everything `depthdet quantize` measured for one model."""

    model: str
    task: str
    cpu: List[str]
    calibration_frames: int
    check_frames: int
    variants: List[Variant] = field(default_factory=list)
    slower_in_int8: List[Tuple[str, float, float]] = field(default_factory=list)
    node_gains: List[Tuple[str, float]] = field(default_factory=list)
    recipes: List[Tuple[str, float, float, float]] = field(default_factory=list)
    chosen: Optional[Variant] = None

    def to_json(self):
        """Return the study as JSON."""
        return json.dumps(asdict(self), indent=1)


class Quantizer:
    """Quantize one model several ways against one calibration set and one check set."""

    def __init__(self, model_path, workdir, calibration_inputs, check_inputs, input_name,
                 threads=1, log=print):
        self.model_path, self.workdir = model_path, workdir
        self.task = model_task(model_path)
        self.input_name = input_name
        self.calibration, self.check = calibration_inputs, check_inputs
        self.threads, self.log = threads, log
        self.prepared = os.path.join(workdir, 'prepared.onnx')
        preprocess_model(model_path, self.prepared)
        self.cache = os.path.join(workdir, 'ranges')
        self.reference = run_outputs(model_path, input_name, check_inputs, threads)
        self.layout = None
        from depthdet_ros.core import metadata
        if self.task == metadata.TASK_DETECTOR:
            from depthdet_ros.core.detector import detect_layout
            self.layout = detect_layout(self.reference[0].shape,
                                        *check_inputs[0].shape[2:])[0]
        self._count = 0

    def build(self, settings, path=None):
        """Quantize with `settings`; returns (path, resolved settings)."""
        self._count += 1
        path = path or os.path.join(self.workdir, f'candidate_{self._count}.onnx')
        settings = quantize_model(self.prepared, path, settings, self.input_name,
                                  self.calibration, self.cache, self.model_path)
        return path, settings

    def measure(self, name, settings, timed=False, keep=False):
        """Build and measure one variant (output error; latency when `timed`).

        Returns the Variant, and its file when `keep` (else the file is removed).
        """
        path, settings = self.build(settings)
        outputs = run_outputs(path, self.input_name, self.check, self.threads)
        variant = Variant(name, settings, output_error(self.task, self.reference, outputs,
                                                       self.layout))
        if timed:
            variant.fp32_latency_ms, variant.latency_ms = latencies_ms(
                [self.model_path, path], self.input_name, self.check[0], threads=self.threads)
        self.log('  ' + variant.line())
        if keep:
            return variant, path
        os.remove(path)
        return variant


# Nodes whose exclusion is considered one by one: those with weights, where most of the
# arithmetic (and of the quantization error) is.
_WEIGHTED = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')


def search(quantizer, base, max_nodes, log=print):
    """Measure what to keep in float, starting from `base` settings; returns a Study.

    1. `base`, fully quantized, timed against FP32;
    2. speed per weighted node from onnxruntime's profiler (FP32 and INT8 kernels, one
       thread): nodes SLOWER_IN_INT8 times slower in INT8 stay in float if the whole
       model, timed interleaved with the fully quantized one, is faster for it;
    3. each operator type present left in float alone: types whose exclusion lowers the
       output error by >= MIN_EXCLUSION_GAIN of the full model's stay in float;
    4. groups of GROUP_SIZE consecutive weighted nodes left in float, then each node of
       the GROUPS_SEARCHED groups that gain most; the best nodes are added greedily, each
       re-measured with those before, while each still gains MIN_EXCLUSION_GAIN, up to
       `max_nodes`.
    """
    import onnx

    study = Study(os.path.basename(quantizer.model_path), quantizer.task, cpu_features(),
                  len(quantizer.calibration), len(quantizer.check))
    log(f'{study.model}: {len(quantizer.calibration)} calibration frames, output error on '
        f'{len(quantizer.check)} others')
    full, full_path = quantizer.measure('all quantized', base, timed=True, keep=True)
    study.variants.append(full)
    model = onnx.load(quantizer.prepared)
    speed = node_speed(model,
                       kernel_times_ms(quantizer.prepared, quantizer.input_name,
                                       quantizer.check[0]),
                       kernel_times_ms(full_path, quantizer.input_name, quantizer.check[0]))
    slower = sorted(((name, fp32, int8) for name, (fp32, int8) in speed.items()
                     if int8 >= SLOWER_IN_INT8 * fp32), key=lambda s: s[1] - s[2])
    for name, fp32, int8 in slower:
        log(f'  {name}: {int8:.2f} ms in INT8 vs {fp32:.2f} ms in FP32')
    chosen = full.settings
    if slower:
        # Leaving them in float adds conversions around them: keep that only when the
        # whole model is faster for it, timed interleaved with the full INT8 model.
        candidate, candidate_settings = quantizer.build(replace(
            full.settings, exclude_nodes=full.settings.exclude_nodes + tuple(
                name for name, _, _ in slower)))
        fp32_ms, full_ms, candidate_ms = latencies_ms(
            [quantizer.model_path, full_path, candidate], quantizer.input_name,
            quantizer.check[0], rounds=30, threads=quantizer.threads)
        os.remove(candidate)
        log(f'  the {len(slower)} in float: {candidate_ms:.1f} ms vs all quantized '
            f'{full_ms:.1f} ms (FP32 {fp32_ms:.1f} ms)')
        if candidate_ms < full_ms:
            study.slower_in_int8 = slower
            chosen = candidate_settings
    os.remove(full_path)
    threshold = MIN_EXCLUSION_GAIN * full.error['error']
    tail = set(tail_nodes(model)) if base.float_tail else set()
    present = sorted({n.op_type for n in model.graph.node if n.name not in tail})
    for op_type in present:
        if op_type in base.exclude_op_types or (base.op_types and op_type not in base.op_types):
            continue
        variant = quantizer.measure(f'{op_type} in float', replace(
            full.settings, exclude_op_types=full.settings.exclude_op_types + (op_type,)))
        study.variants.append(variant)
        if op_type not in _WEIGHTED and full.error['error'] - variant.error['error'] >= threshold:
            chosen = replace(chosen, exclude_op_types=chosen.exclude_op_types + (op_type,))
    candidates = [n.name for n in model.graph.node if n.op_type in _WEIGHTED
                  and n.name not in chosen.exclude_nodes and n.op_type
                  not in chosen.exclude_op_types and n.name not in tail]
    current = quantizer.measure('speed and type exclusions', chosen)
    study.variants.append(current)

    def gain_of(names, label):
        variant = quantizer.measure(label, replace(
            chosen, exclude_nodes=chosen.exclude_nodes + tuple(names)))
        return current.error['error'] - variant.error['error']

    groups = [candidates[i:i + GROUP_SIZE] for i in range(0, len(candidates), GROUP_SIZE)]
    group_gains = sorted(((gain_of(group, f'{group[0]} .. {group[-1]} ({len(group)}) in float'),
                           group) for group in groups if max_nodes > 0), key=lambda g: -g[0])
    gains = []
    for gain, group in group_gains[:GROUPS_SEARCHED]:
        if gain < threshold:
            break
        gains += [(name, gain_of([name], f'{name} in float')) for name in group]
    gains.sort(key=lambda g: -g[1])
    study.node_gains = gains
    for name, gain in gains[:max_nodes]:
        if gain < threshold:
            break
        trial = quantizer.measure(f'+ {name} in float',
                                  replace(chosen, exclude_nodes=chosen.exclude_nodes + (name,)))
        if current.error['error'] - trial.error['error'] >= threshold:
            chosen, current = trial.settings, trial
    study.chosen = quantizer.measure('chosen', chosen, timed=True)
    return study


# Recipes `--compare-recipes` measures side by side (format, types, granularity, what is
# quantized); each on top of the given settings.
RECIPES = (
    ('QDQ u8s8 per-channel', {}),
    ('QDQ u8s8 per-channel 8-bit', {'reduce_range': False}),
    ('QDQ u8s8 per-tensor', {'per_channel': False}),
    ('QDQ u8u8 per-channel', {'weights': 'u8'}),
    ('QDQ s8s8 per-channel', {'activations': 's8'}),
    ('QOperator u8s8 per-channel', {'quant_format': 'qoperator'}),
    ('QDQ Conv only', {'op_types': ('Conv',)}),
    ('QDQ Conv + activations', {'op_types': ('Conv', 'Clip', 'Relu', 'Sigmoid', 'Mul')}),
)


def compare_recipes(quantizer, base, log=print):
    """Quantize with each of RECIPES; returns [(name, output error, ms, FP32 ms)].

    Latencies come from one interleaved set of rounds over FP32 and every recipe.
    """
    paths, rows = [quantizer.model_path], []
    for name, changes in RECIPES:
        path, settings = quantizer.build(replace(base, **changes))
        outputs = run_outputs(path, quantizer.input_name, quantizer.check, quantizer.threads)
        rows.append([name, output_error(quantizer.task, quantizer.reference, outputs,
                                        quantizer.layout)['error']])
        paths.append(path)
    times = latencies_ms(paths, quantizer.input_name, quantizer.check[0], rounds=30,
                         threads=quantizer.threads)
    for row, ms in zip(rows, times[1:]):
        row += [ms, times[0]]
        log(f'  {row[0]}: output error {row[1]:.4f}, {ms:.1f} ms vs FP32 {times[0]:.1f} ms '
            f'(x{times[0] / ms:.2f})')
    return [tuple(row) for row in rows]


# The accuracy an INT8 pair may cost through the pipeline (issue 15): mAP@0.5, delta1 and
# the per-object median relative depth error (detections matched in the pipeline setting,
# all objects, the node's default strategy).
ACCURACY_BOUNDS = {'map50': 0.015, 'delta1': 0.02, 'object_median_rel': 0.01}


def accuracy_cost(fp32_report, int8_report, strategy):
    """Return [(metric, FP32, INT8, change, bound, within)] of two `train evaluate` JSONs."""
    def figures(report):
        objects = report['objects']['pipeline']['all'][strategy]
        return {'map50': report['map50'], 'delta1': report['depth']['delta1'],
                'object_median_rel': objects['median_rel']}
    before, after = figures(fp32_report), figures(int8_report)
    rows = []
    for key, bound in ACCURACY_BOUNDS.items():
        # mAP and delta1 may drop by the bound; the relative error may rise by it.
        change = after[key] - before[key]
        cost = -change if key != 'object_median_rel' else change
        rows.append((key, before[key], after[key], change, bound, cost <= bound))
    return rows


def print_accuracy_cost(fp32_path, int8_path, strategy):
    """Print the accuracy_cost table (Markdown); returns whether every bound holds."""
    with open(fp32_path, encoding='utf-8') as f:
        fp32 = json.load(f)
    with open(int8_path, encoding='utf-8') as f:
        int8 = json.load(f)
    # A report names its set only by its frame count; a different set changes the numbers
    # by more than INT8 does.
    if fp32['frames'] != int8['frames']:
        raise ValueError(f'they were made on different held-out sets ({fp32["frames"]} and '
                         f'{int8["frames"]} frames); run depthdet train evaluate with the '
                         'same --data and --max-frames for both')
    for path, report in ((fp32_path, fp32), (int8_path, int8)):
        if strategy not in report.get('objects', {}).get('pipeline', {}).get('all', {}):
            raise ValueError(f'{path} has no per-object figures for the {strategy!r} '
                             'strategy (a report of an older depthdet, or `mask` for a '
                             'model pair, which has no masks); give --strategy one it '
                             'has, or evaluate again')
    rows = accuracy_cost(fp32, int8, strategy)
    labels = {'map50': 'mAP@0.5', 'delta1': 'δ1',
              'object_median_rel': f'per-object median REL ({strategy}, pipeline)'}
    print(f'| held-out, {fp32["frames"]} frames | FP32 | INT8 | change | allowed | within |')
    print('|---|---:|---:|---:|---:|---|')
    for key, before, after, change, bound, within in rows:
        sign = '+' if key == 'object_median_rel' else '-'
        print(f'| {labels[key]} | {before:.4f} | {after:.4f} | {change:+.4f} | {sign}{bound} | '
              f'{"yes" if within else "NO"} |')
    return all(row[-1] for row in rows)


# --- command line -----------------------------------------------------------------------

def add_parser(subparsers):
    """Register `depthdet quantize`."""
    from depthdet_ros.arg_types import non_negative_int, positive_int
    parser = subparsers.add_parser(
        'quantize', help='static INT8 quantization of a detector or depth net (CPU)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('models', nargs='*', metavar='ONNX',
                        help='FP32 models exported by depthdet export (detector, depth net)')
    parser.add_argument('--calibration', nargs='+', metavar='SOURCE', default=[],
                        help='calibration frames: `depthdet synth dataset` split folders, '
                             'image files or folders, rosbag2 folders (camera image topic)')
    parser.add_argument('--frames', type=positive_int, default=DEFAULT_FRAMES,
                        help=f'calibration frames, spread evenly (default {DEFAULT_FRAMES})')
    parser.add_argument('--check-frames', type=positive_int, default=DEFAULT_CHECK_FRAMES,
                        help='further frames, not calibrated on, on which INT8 outputs are '
                             f'compared with FP32 (default {DEFAULT_CHECK_FRAMES})')
    parser.add_argument('--out-dir', default='.', metavar='DIR',
                        help='writes DIR/<model>_int8.onnx and <model>_int8.json (the study)')
    recipe = parser.add_argument_group('recipe (defaults: what the study found best on CPU)')
    recipe.add_argument('--format', dest='quant_format', choices=('qdq', 'qoperator'),
                        default='qdq')
    recipe.add_argument('--activations', choices=('u8', 's8'), default='u8')
    recipe.add_argument('--weights', choices=('s8', 'u8'), default='s8')
    recipe.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor instead of per output channel')
    recipe.add_argument('--reduce-range', choices=('auto', 'on', 'off'), default='auto',
                        help='7-bit weights; auto: on where the CPU has no VNNI')
    recipe.add_argument('--calibration-method', choices=('minmax', 'entropy', 'percentile'),
                        default='minmax')
    recipe.add_argument('--op-types', nargs='+', default=[], metavar='OP',
                        help='quantize only these operator types (default: all it can)')
    recipe.add_argument('--float-op-types', nargs='+', default=[], metavar='OP',
                        help='operator types kept in float')
    recipe.add_argument('--float-nodes', nargs='+', default=[], metavar='NODE',
                        help='nodes kept in float')
    recipe.add_argument('--quantize-tail', action='store_true',
                        help='also quantize the nodes after the last weighted layer')
    parser.add_argument('--no-search', action='store_true',
                        help='quantize with the recipe as given; skip the sensitivity study')
    parser.add_argument('--max-float-nodes', type=non_negative_int, default=8,
                        help='most nodes the study keeps in float for accuracy (default 8)')
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='onnxruntime threads for the study\'s runs and timings '
                             '(default 1: steadier on a shared machine)')
    parser.add_argument('--compare-recipes', action='store_true',
                        help='also measure the recipes of RECIPES side by side (output error, '
                             'latency interleaved with FP32) and record them in the study')
    parser.add_argument('--accuracy-cost', nargs=2, metavar=('FP32_JSON', 'INT8_JSON'),
                        help='compare two `depthdet train evaluate --json` reports against '
                             'the INT8 accuracy bounds and exit (1 when one is exceeded)')
    parser.add_argument('--strategy', default=DEFAULT_STRATEGY, choices=STRATEGIES,
                        help='per-object depth strategy for --accuracy-cost (default '
                             f'{DEFAULT_STRATEGY}, the node\'s)')
    parser.add_argument('--cpu-features', action='store_true',
                        help='print the CPU\'s 8-bit dot-product instruction sets and exit')
    parser.set_defaults(func=run)
    return parser


def settings_from_args(args):
    """Return the QuantSettings the command line asks for."""
    return QuantSettings(
        quant_format=args.quant_format, activations=args.activations, weights=args.weights,
        per_channel=not args.per_tensor,
        reduce_range={'auto': None, 'on': True, 'off': False}[args.reduce_range],
        op_types=tuple(args.op_types), exclude_op_types=tuple(args.float_op_types),
        exclude_nodes=tuple(args.float_nodes), calibration=args.calibration_method,
        float_tail=not args.quantize_tail)


def run(args) -> int:
    """Run `depthdet quantize`; returns the exit code."""
    import onnx

    from depthdet_ros.arg_types import output_folder
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import ModelLoadError

    if args.accuracy_cost:
        try:
            return 0 if print_accuracy_cost(*args.accuracy_cost, args.strategy) else 1
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f'cannot compare {" and ".join(args.accuracy_cost)}: {exc}') from None
    features = cpu_features()
    vnni = 'VNNI: u8s8 without saturation' if has_vnni(features) else \
        'no VNNI: 7-bit weights (reduce_range) by default'
    cpu_line = f'CPU: {", ".join(features) or "no AVX2/AVX-512 flags found"}; {vnni}'
    if args.cpu_features:
        print(cpu_line)
        return 0
    if not args.models or not args.calibration:
        raise CliError('give the models to quantize and --calibration frames')
    for path in args.models:
        if not os.path.isfile(path):
            raise CliError(f'model not found: {path}')
        check_fp32_model(path)
    output_folder(args.out_dir, '--out-dir')
    try:
        frames = read_frames(args.calibration, args.frames + args.check_frames)
    except (CalibrationError, OSError) as exc:
        raise CliError(str(exc)) from None
    if len(frames) < 2:
        raise CliError(f'{len(frames)} calibration frame(s) found; need at least 2')
    check_count = min(args.check_frames, len(frames) // 2)
    if len(frames) < args.frames + args.check_frames:
        print(f'only {len(frames)} frames in {" ".join(args.calibration)} (asked --frames '
              f'{args.frames} + --check-frames {args.check_frames}): calibrating on '
              f'{len(frames) - check_count}, comparing on {check_count}')
    # Frames spread evenly are held out for the comparison, the rest calibrate.
    held_out = set(_evenly(range(len(frames)), check_count))
    check = [f for i, f in enumerate(frames) if i in held_out]
    calibration = [f for i, f in enumerate(frames) if i not in held_out]
    base = settings_from_args(args)
    with tempfile.TemporaryDirectory() as workdir:
        quantizers = []
        for index, path in enumerate(args.models):
            try:
                # One model load for both sets: it warns once about what its metadata lacks.
                input_name, inputs = network_inputs(path, calibration + check)
            except ModelLoadError as exc:
                raise CliError(str(exc)) from None
            model_dir = os.path.join(workdir, str(index))
            os.mkdir(model_dir)
            quantizers.append(Quantizer(path, model_dir, inputs[:len(calibration)],
                                        inputs[len(calibration):], input_name,
                                        threads=args.threads))
        # Node names exist only once onnxruntime has pre-processed the models.
        check_settings(base, [onnx.load(q.prepared, load_external_data=False)
                              for q in quantizers],
                       [os.path.basename(path) for path in args.models])
        print(cpu_line)  # once the arguments are good: an error stays one line
        for path, quantizer in zip(args.models, quantizers):
            stem = os.path.splitext(os.path.basename(path))[0]
            target = os.path.join(args.out_dir, f'{stem}_int8.onnx')
            recipes = compare_recipes(quantizer, base) if args.compare_recipes else []
            if args.no_search:
                study = Study(os.path.basename(path), quantizer.task, features,
                              len(calibration), len(check))
                study.chosen = quantizer.measure('as given', base, timed=True)
            else:
                study = search(quantizer, base, args.max_float_nodes)
            study.recipes = recipes
            quantizer.build(study.chosen.settings, target)
            with open(os.path.join(args.out_dir, f'{stem}_int8.json'), 'w',
                      encoding='utf-8') as f:
                f.write(study.to_json())
            # The chosen variant's measurements were just logged.
            print(f'wrote {target}: {study.chosen.settings.describe()}')
    return 0
