"""`depthdet export`: PyTorch detector / depth net -> ONNX with metadata, verified.

Detectors are written like ultralytics' YOLOv5 export (input `images`, output `output0`
[B, rows, 5 + C], metadata `names` and `stride`); depth nets take `image` and give `depth`
[B, 1, H/2, W/2] metres; joint nets (nets.joint) take `images` like a detector and give
`output0` (rows with k mask coefficients after the class probabilities), `protos`
[B, k, H/4, W/4] and `depth` [B, 1, H/2, W/2]. All carry the depthdet_* keys of
core.metadata. After writing,
the file is run on onnxruntime's CPU provider against PyTorch on one random input, and
the export fails when they disagree beyond the limits below (FP32_TOLERANCE,
FP16_TOLERANCE): per value, |ONNX - PyTorch| <= atol + rtol |PyTorch|, numpy.allclose's
rule, so the limit grows with the output as float rounding does.
"""
import argparse
import json
import os
import textwrap
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from depthdet_ros.arg_types import output_file, positive_int
from depthdet_ros.core import metadata

DETECTOR_IO = ('images', 'output0')
DEPTH_IO = ('image', 'depth')
JOINT_IO = ('images', 'output0', 'protos', 'depth')
# The hybrid CNN authors trained on NYU Depth v2 (Kinect fx 518.86 px at 640x480) resized
# by 0.55 to 352x264 before cropping 320x256 (seed 003): fx at the network input.
AUTHORS_CANONICAL_FOCAL = 518.86 * 0.55
# Boxes are compared on the rows a detector would keep (score >= this) plus the best ones.
BOX_CHECK_MIN_SCORE = 1e-3
BOX_CHECK_TOP_ROWS = 100
# ONNX opsets the TorchScript exporter of torch 2.13 handles (ONNX_BASE_OPSET to
# ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET); tiny yolov5n, hybrid_mobilenetv2, unet_seed000 and
# joint_mobilenetv2 verified at 9-14, 18 and 20. Below, it prints pages of errors.
OPSET_RANGE = (9, 20)


@dataclass(frozen=True)
class Limit:
    """Accepted |ONNX - PyTorch| of one value: atol + rtol * |PyTorch value|."""

    atol: float
    rtol: float = 0.0

    def scaled(self, scale):
        """Return this limit with atol multiplied by `scale` (FP16's reference scale)."""
        return Limit(self.atol * scale, self.rtol)

    def fraction_used(self, reference, output):
        """Return max over values of |diff| / limit: 1 at the limit, NaN for NaN outputs."""
        import numpy as np
        diff = np.abs(output.astype(np.float64) - reference)
        allowed = self.atol + self.rtol * np.abs(reference.astype(np.float64))
        fraction = diff / allowed
        return float('nan') if np.isnan(fraction).any() else float(fraction.max(initial=0.0))

    def __str__(self):
        return f'{self.atol:.3g}' + (f' + {self.rtol:.3g} |PyTorch|' if self.rtol else '')


@dataclass(frozen=True)
class Tolerance:
    """Accepted |ONNX - PyTorch| per output kind.

    For FP16 the atol parts are fractions of the reference scale: the largest |depth| (at
    least 1 m); the largest compared |box value| (at least the larger input side), since
    FP16 rounding grows with the value.
    """

    depth_m: Limit
    box_px: Limit
    score: Limit
    # Joint nets: mask coefficients of the compared rows and prototype values (linear
    # outputs of magnitude ~1-10; FP16: fractions of the largest |value|, at least 1).
    mask: Limit = Limit(1e-3, 2e-3)


# FP32 onnxruntime and PyTorch differ by float rounding that deep nets amplify: yolov5s at
# 640 with realistic-magnitude weights (BN statistics of its own activations, BN gains
# 0.5-2.5) differs by up to 0.09 px in box sizes, growing with the size (0.06 px at 245 px),
# and 7e-5 in scores; the official exporter's file differs from PyTorch by 0.02-0.2 px on
# trained yolov5s weights. The box limit leaves ~7x headroom there; a wrong layer misses by
# pixels (test_nets_export).
FP32_TOLERANCE = Tolerance(depth_m=Limit(1e-4, 1e-4), box_px=Limit(1e-2, 2e-3),
                           score=Limit(1e-4, 2e-3))
# Measured with random weights scaled to keep activations O(1) (hybrid resnet18/50 at
# 256x320, mobilenetv2, U-Net; yolov5 n/s at 640 and tiny ones at 64x96): FP16 stays within
# 0.11 % of the depth range, 0.02 % of the box scale and 4e-5 in scores. ~10x headroom.
FP16_TOLERANCE = Tolerance(depth_m=Limit(1e-2), box_px=Limit(2e-3), score=Limit(5e-3),
                           mask=Limit(1e-2))


class ExportVerificationError(RuntimeError):
    """The exported file's outputs differ from PyTorch's beyond tolerance."""


@dataclass
class ExportReport:
    """What was written and how closely onnxruntime reproduces PyTorch."""

    path: str
    size_bytes: int
    fp16: bool
    max_abs_diff: Dict[str, float]   # per compared quantity
    limits: Dict[str, Limit]         # the per-value limit each was checked against
    fraction_used: Dict[str, float]  # max |diff| / limit over the values (<= 1 passes)

    def summary(self) -> str:
        """One line per compared quantity."""
        precision = 'FP16' if self.fp16 else 'FP32'
        lines = [f'wrote {self.path} ({self.size_bytes / 1e6:.1f} MB, {precision})']
        for name, diff in self.max_abs_diff.items():
            lines.append(f'  onnxruntime vs PyTorch max |diff| {name}: {diff:.3g} '
                         f'(limit per value {self.limits[name]}; '
                         f'{self.fraction_used[name]:.0%} of it used)')
        return '\n'.join(lines)


def _detector_props(model, names, task, arch, input_size):
    """Metadata of a YOLOv5-headed export: names, stride, task, arch and input size."""
    if len(names) != model.num_classes:
        raise ValueError(f'{len(names)} class names for a {model.num_classes}-class model')
    return {
        metadata.NAMES: metadata.format_names(names),
        metadata.STRIDE: str(int(max(model.detect.strides))),
        metadata.TASK: task,
        metadata.ARCH: arch or model.arch,
        metadata.INPUT_SIZE: json.dumps([int(v) for v in input_size]),
    }


def export_detector(model, path: str, names: Sequence[str],
                    input_size: Tuple[int, int] = (640, 640), opset: int = 17,
                    dynamic_batch: bool = False, fp16: bool = False,
                    arch: Optional[str] = None) -> ExportReport:
    """Export a YOLOv5 detector (nets.yolov5.YoloV5) and verify it; returns the report.

    `names` must hold one name per class; `arch` defaults to the model's own name.
    Raises ExportVerificationError when onnxruntime disagrees with PyTorch.
    """
    props = _detector_props(model, names, metadata.TASK_DETECTOR, arch, input_size)
    return _export(model, path, DETECTOR_IO, input_size, opset, dynamic_batch, fp16, props,
                   _compare_detections, normalise=False)


def export_joint(model, path: str, names: Sequence[str],
                 input_size: Tuple[int, int] = (320, 320), opset: int = 17,
                 dynamic_batch: bool = False, fp16: bool = False,
                 arch: Optional[str] = None, arch_kwargs=None,
                 canonical_focal: Optional[float] = None) -> ExportReport:
    """Export a joint net (nets.joint.JointNet) and verify all three outputs.

    Metadata: a detector's (names, stride, input size) plus the prototype count and
    strides, and `canonical_focal` (network-input pixels) for the depth output as
    export_depth records it. The input is the detector's ([0, 1] RGB, letterboxed).
    Raises ExportVerificationError when onnxruntime disagrees with PyTorch.
    """
    from depthdet_ros.nets.joint import PROTO_STRIDE

    props = _detector_props(model, names, metadata.TASK_JOINT, arch, input_size)
    props.update({
        metadata.ARCH_KWARGS: json.dumps(arch_kwargs or {}),
        metadata.MASK_PROTOTYPES: str(int(model.num_masks)),
        metadata.PROTO_STRIDE: str(PROTO_STRIDE),
        metadata.DEPTH_STRIDE: str(int(model.depth_stride)),
        metadata.DEPTH_UNITS: 'metres',
    })
    if canonical_focal is not None:
        props[metadata.CANONICAL_FOCAL] = _focal_text(canonical_focal)
    num_classes = model.num_classes

    def compare(references, outputs, tolerance, fp16, input_size):
        return _compare_joint(references, outputs, tolerance, fp16, input_size, num_classes)

    return _export(model, path, JOINT_IO, input_size, opset, dynamic_batch, fp16, props,
                   compare, normalise=False)


def _focal_text(canonical_focal):
    if not canonical_focal > 0:
        raise ValueError(f'canonical focal length must be > 0 pixels, got {canonical_focal}')
    return f'{float(canonical_focal):.6g}'


def export_depth(model, path: str, arch: str, input_size: Tuple[int, int] = (256, 320),
                 opset: int = 17, dynamic_batch: bool = False,
                 fp16: bool = False, arch_kwargs=None,
                 canonical_focal: Optional[float] = None) -> ExportReport:
    """Export a depth net (nets.hybrid.build_depth_net) and verify it; returns the report.

    `canonical_focal` (network-input pixels) is the focal length the net predicts metres
    for (core.depth); None leaves it out (the runtime then uses the depth as predicted).

    Raises ExportVerificationError when onnxruntime disagrees with PyTorch.
    """
    props = {
        metadata.STRIDE: str(int(model.input_multiple)),
        metadata.TASK: metadata.TASK_DEPTH,
        metadata.ARCH: arch,
        metadata.ARCH_KWARGS: json.dumps(arch_kwargs or {}),
        metadata.INPUT_SIZE: json.dumps([int(v) for v in input_size]),
        metadata.DEPTH_UNITS: 'metres',
        metadata.PREPROCESS: json.dumps(metadata.HYBRID_PREPROCESS),
    }
    if canonical_focal is not None:
        props[metadata.CANONICAL_FOCAL] = _focal_text(canonical_focal)
    return _export(model, path, DEPTH_IO, input_size, opset, dynamic_batch, fp16, props,
                   _compare_depth, normalise=True)


def _export(model, path, io_names, input_size, opset, dynamic_batch, fp16, props, compare,
            normalise):
    import warnings

    import torch

    height, width = (int(v) for v in input_size)
    multiple = int(model.input_multiple)
    if height % multiple or width % multiple:
        raise ValueError(f'input size {height}x{width} must be a multiple of {multiple}')
    input_name, *output_names = io_names
    dynamic_axes = {name: {0: 'batch'} for name in io_names} if dynamic_batch else None
    sample = _sample_input(2 if dynamic_batch else 1, height, width, normalise)
    # Written beside the target and moved into place only once verified.
    staging = f'{path}.partial'
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            reference = model(sample)
            reference = [r.numpy() for r in reference] if isinstance(reference, tuple) \
                else reference.numpy()
            # onnxscript (the dynamo exporter's dependency) is not in our stack; the
            # TorchScript exporter handles every op these nets use.
            warnings.simplefilter('ignore', DeprecationWarning)
            # Sizes read as Python ints are meant to be constants (fixed H, W).
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            warnings.filterwarnings('ignore', message='Constant folding - Only steps=1')
            torch.onnx.export(model, (sample[:1],), staging, dynamo=False,
                              opset_version=opset, input_names=[input_name],
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              do_constant_folding=True)
        _finalise(staging, fp16, props)
        output = _run_onnxruntime(staging, input_name, sample.numpy(), len(output_names) > 1)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    finally:
        model.train(was_training)
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    diffs, limits, used = compare(reference, output, tolerance, fp16, (height, width))
    failed = [name for name in diffs if not used[name] <= 1.0]
    if failed:
        report = ExportReport(staging, os.path.getsize(staging), fp16, diffs, limits, used)
        os.remove(staging)
        raise ExportVerificationError(f'{path}: onnxruntime differs from PyTorch beyond '
                                      f'the limit in {", ".join(failed)}; file not written\n'
                                      f'{report.summary()}')
    os.replace(staging, path)
    return ExportReport(path, os.path.getsize(path), fp16, diffs, limits, used)


def _finalise(path, fp16, props):
    """Optionally convert to FP16, add metadata, check and save in place."""
    import warnings

    import onnx

    proto = onnx.load(path)
    if fp16:
        from onnxconverter_common import float16
        with warnings.catch_warnings():
            # Weights below FP16's range are clamped to +-1e-7, one warning each.
            warnings.filterwarnings('ignore', message='the float32 number')
            proto = float16.convert_float_to_float16(proto, keep_io_types=True)
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def _sample_input(batch, height, width, normalise):
    import torch
    image = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    if not normalise:
        return image
    mean = torch.tensor(metadata.HYBRID_PREPROCESS['mean']).view(1, 3, 1, 1)
    std = torch.tensor(metadata.HYBRID_PREPROCESS['std']).view(1, 3, 1, 1)
    return (image - mean) / std


def _run_onnxruntime(path, input_name, array, all_outputs=False):
    """Return the first output (or all) of the file on onnxruntime's CPU provider."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outputs = session.run(None, {input_name: array})
    return outputs if all_outputs else outputs[0]


def _checks(pairs):
    """{name: (reference, output, Limit)} -> (max |diff|, limits, fraction used) dicts."""
    import numpy as np
    diffs = {name: float(np.abs(out.astype(np.float64) - ref).max())
             for name, (ref, out, _) in pairs.items()}
    limits = {name: limit for name, (_, _, limit) in pairs.items()}
    used = {name: limit.fraction_used(ref, out) for name, (ref, out, limit) in pairs.items()}
    return diffs, limits, used


def _compare_depth(reference, output, tolerance, fp16, input_size):
    import numpy as np
    scale = max(1.0, float(np.abs(reference).max())) if fp16 else 1.0
    return _checks({'depth (m)': (reference, output, tolerance.depth_m.scaled(scale))})


def _compared_rows(reference, num_classes=None):
    """[B, rows] mask of the rows a detector would keep plus the best-scoring ones."""
    import numpy as np
    end = None if num_classes is None else 5 + num_classes
    scores = reference[..., 4:5] * reference[..., 5:end]
    best = scores.max(axis=-1)                                    # [B, rows]
    keep = best >= BOX_CHECK_MIN_SCORE
    top = np.argsort(-best, axis=1)[:, :BOX_CHECK_TOP_ROWS]
    np.put_along_axis(keep, top, True, axis=1)
    return keep


def _detection_pairs(reference, output, tolerance, fp16, input_size, keep, end=None):
    import numpy as np
    reference_boxes = reference[..., :4][keep]
    box_scale = max(max(input_size), float(np.abs(reference_boxes).max())) if fp16 else 1.0
    return {
        'boxes (px)': (reference_boxes, output[..., :4][keep], tolerance.box_px.scaled(box_scale)),
        'objectness/class': (reference[..., 4:end], output[..., 4:end], tolerance.score)}


def _compare_detections(reference, output, tolerance, fp16, input_size):
    keep = _compared_rows(reference)
    return _checks(_detection_pairs(reference, output, tolerance, fp16, input_size, keep))


def _compare_joint(references, outputs, tolerance, fp16, input_size, num_classes):
    """Compare a joint net's three outputs.

    Detections as a detector's plus the coefficients of the compared rows; prototypes;
    depth as a depth net's.
    """
    import numpy as np
    (rows, protos, depth), (rows_out, protos_out, depth_out) = references, outputs
    end = 5 + num_classes
    keep = _compared_rows(rows, num_classes)
    pairs = _detection_pairs(rows, rows_out, tolerance, fp16, input_size, keep, end)
    for name, ref, out in (('mask coefficients', rows[..., end:][keep], rows_out[..., end:][keep]),
                           ('prototypes', protos, protos_out)):
        scale = max(1.0, float(np.abs(ref).max(initial=0.0))) if fp16 else 1.0
        pairs[name] = (ref, out, tolerance.mask.scaled(scale))
    scale = max(1.0, float(np.abs(depth).max())) if fp16 else 1.0
    pairs['depth (m)'] = (depth, depth_out, tolerance.depth_m.scaled(scale))
    return _checks(pairs)


# --- command line -----------------------------------------------------------------------

def add_parser(subparsers):
    """Register `depthdet export`."""
    parser = subparsers.add_parser(
        'export', help='export a detector or depth net to ONNX (verified on onnxruntime)',
        description=__doc__ + _tolerance_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group('weights (exactly one)')
    source.add_argument('--weights', metavar='PT',
                        help="our training checkpoint: a dict with 'model' (state_dict) and "
                             "'config' (arch, arch_kwargs, names, input_size)")
    source.add_argument('--authors-hybrid', metavar='PATH',
                        help="the hybrid CNN authors' hyb_net_weights.model (implies "
                             '--kind depth --arch hybrid_resnet50)')
    source.add_argument('--random-weights', action='store_true',
                        help='export freshly initialised weights (runtime benchmarks only)')
    parser.add_argument('--kind', choices=(metadata.TASK_DETECTOR, metadata.TASK_DEPTH,
                                           metadata.TASK_JOINT),
                        help='detector, depth net or joint net (default: from --arch)')
    parser.add_argument('--arch', metavar='NAME',
                        help='network: yolov5n|yolov5s|yolov5m, hybrid_resnet50|34|18, '
                             'hybrid_mobilenetv2, unet_seed000, joint_yolov5n|s|m, '
                             'joint_mobilenetv2 (default: '
                             'from the checkpoint)')
    parser.add_argument('--arch-kwargs', metavar='JSON', default='',
                        help='builder options, --random-weights only (a checkpoint\'s config '
                             'holds its own), e.g. \'{"decoder_width": 0.5}\' or '
                             '\'{"width_multiple": 0.125}\'')
    parser.add_argument('--num-classes', type=positive_int, metavar='N',
                        help='detector classes when neither --names nor the checkpoint name '
                             'them (names become class_0 ...); default 80')
    parser.add_argument('--names', metavar='FILE',
                        help='detector class names, one per line (overrides the checkpoint)')
    parser.add_argument('--input-size', type=positive_int, nargs=2, metavar=('H', 'W'),
                        help='input height and width, multiples of the net\'s stride '
                             '(default: checkpoint, else 640 640 detector / 256 320 depth)')
    parser.add_argument('--opset', type=int, default=17, metavar='N',
                        choices=range(OPSET_RANGE[0], OPSET_RANGE[1] + 1),
                        help=f'ONNX opset, {OPSET_RANGE[0]} to {OPSET_RANGE[1]} (default 17)')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='make the batch dimension dynamic (verified with batch 2)')
    parser.add_argument('--canonical-focal', type=float, metavar='PX',
                        help='depth and joint nets: focal length in network-input pixels the '
                             'net predicts metres for (default: the checkpoint\'s; '
                             '--authors-hybrid: '
                             f'{AUTHORS_CANONICAL_FOCAL:.2f}, NYU\'s Kinect fx 518.86 px '
                             'scaled by 0.55)')
    parser.add_argument('--fp16', action='store_true',
                        help='convert weights and compute to float16, keeping FP32 inputs '
                             'and outputs (verified against looser, relative limits)')
    parser.add_argument('-o', '--output', required=True, metavar='ONNX',
                        help='output .onnx path')
    parser.set_defaults(func=run)
    return parser


def _tolerance_help():
    fp32, fp16 = FP32_TOLERANCE, FP16_TOLERANCE
    text = (f'Limits on |ONNX - PyTorch| per value: FP32 depth {fp32.depth_m} m, boxes '
            f'{fp32.box_px} px (rows scoring >= {BOX_CHECK_MIN_SCORE:g} and the top '
            f'{BOX_CHECK_TOP_ROWS}), objectness/class {fp32.score}; FP16 depth '
            f'{fp16.depth_m.atol:.0%} of the largest depth (>= 1 m), boxes '
            f'{fp16.box_px.atol:.1%} of the largest box value (>= input side), '
            f'objectness/class {fp16.score}.')
    return '\n' + textwrap.fill(text, 90) + '\n'


def run(args) -> int:
    """Run `depthdet export`; returns the exit code."""
    from depthdet_ros.cli import CliError

    sources = [bool(args.weights), bool(args.authors_hybrid), args.random_weights]
    if sum(sources) != 1:
        raise CliError('give exactly one of --weights, --authors-hybrid, --random-weights')
    if args.arch_kwargs and not args.random_weights:
        raise CliError("--arch-kwargs is for --random-weights only: a checkpoint's config "
                       'holds its own builder options')
    output_file(args.output, '-o')
    try:
        model, arch, config = _load_model(args)
        report = _export_loaded(args, model, arch, config)
    except (ValueError, OSError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    print(report.summary())
    return 0


def _load_model(args):
    from depthdet_ros.nets import registry

    if args.authors_hybrid:
        if args.arch not in (None, 'hybrid_resnet50'):
            raise ValueError('--authors-hybrid is a hybrid_resnet50 checkpoint')
        return _load_authors(args.authors_hybrid), 'hybrid_resnet50', {
            'canonical_focal': AUTHORS_CANONICAL_FOCAL}
    if args.weights:
        checkpoint = _load_checkpoint(args.weights, '--weights')
        try:
            model, config = registry.model_from_checkpoint(checkpoint)
        except ValueError as exc:
            raise ValueError(f'--weights {args.weights}: {exc}') from None
        except RuntimeError as exc:  # load_state_dict's, listing every key that differs
            raise ValueError(f'--weights {args.weights}: {_first_mismatch(exc)}; the weights '
                             f"are not of arch {checkpoint['config']['arch']}") from None
        if args.arch not in (None, config['arch']):
            raise ValueError(f"--arch {args.arch} but the checkpoint holds {config['arch']}")
        return model, config['arch'], config
    if not args.arch:
        raise ValueError('--random-weights needs --arch')
    try:
        kwargs = json.loads(args.arch_kwargs) if args.arch_kwargs else {}
    except ValueError as exc:
        raise ValueError(f'--arch-kwargs is not JSON ({exc})') from None
    if not isinstance(kwargs, dict):
        raise ValueError('--arch-kwargs must be a JSON object')
    num_classes = None
    if registry.task_of(args.arch) != metadata.TASK_DEPTH:
        num_classes = len(_read_names(args.names)) if args.names else args.num_classes
    model = registry.build_model(args.arch, num_classes, **kwargs).eval()
    return model, args.arch, {'arch_kwargs': kwargs}


def _load_checkpoint(path, option):
    """Return torch.load(path) of plain types; CliError naming `option` when it fails."""
    import pickle

    import torch

    from depthdet_ros.cli import CliError

    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except OSError as exc:
        raise CliError(f'{option} {path}: {exc.strerror or exc}') from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, RuntimeError) as exc:
        # What torch.load raises on text, empty, truncated or arbitrary pickled files.
        raise CliError(f'{option} {path}: not a PyTorch checkpoint of plain tensors, dicts, '
                       f'lists, numbers and strings ({type(exc).__name__} from torch.load '
                       'with weights_only=True)') from None


def _load_authors(path):
    """Return the authors' hybrid_resnet50; CliError naming --authors-hybrid on a wrong file."""
    import pickle

    from depthdet_ros.cli import CliError
    from depthdet_ros.nets.hybrid import load_authors_checkpoint

    try:
        return load_authors_checkpoint(path)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, RuntimeError,
            OSError) as exc:
        error = exc
    # Read again only to explain the failure, so that a good file is read once.
    checkpoint = _load_checkpoint(path, '--authors-hybrid')
    if isinstance(checkpoint, dict) and {'model', 'config'} <= set(checkpoint):
        raise CliError(f'--authors-hybrid {path}: this is a depthdet training checkpoint; '
                       'use --weights')
    if not isinstance(error, RuntimeError):  # not a state_dict; the message names the path
        raise CliError(f'--authors-hybrid {error}')
    raise CliError(f'--authors-hybrid {path}: {_first_mismatch(error)}; the weights are not '
                   'of arch hybrid_resnet50')


def _first_mismatch(error):
    """First problem of a load_state_dict error (the whole can list hundreds of keys)."""
    lines = str(error).splitlines()
    if len(lines) < 2 or not lines[0].startswith('Error(s) in loading state_dict'):
        return lines[0] if lines else type(error).__name__
    problem, _, keys = lines[1].strip().partition(': ')
    names = keys.split(', ')
    if problem.startswith('size mismatch') or len(names) == 1:
        return lines[1].strip().rstrip('.')
    return f'{problem}: {names[0]} and {len(names) - 1} more'


def _read_names(path):
    from depthdet_ros.core.detector import load_class_names
    names = load_class_names(path, 0)
    if not names:
        raise ValueError(f'{path}: no class names')
    return names


def _export_loaded(args, model, arch, config):
    from depthdet_ros.nets import registry

    task = registry.task_of(arch)
    if args.kind and args.kind != task:
        raise ValueError(f'{arch} is a {task} network, not --kind {args.kind}')
    input_size = args.input_size or config.get('input_size') \
        or registry.DEFAULT_INPUT_SIZE[task]
    common = dict(input_size=tuple(input_size), opset=args.opset,
                  dynamic_batch=args.dynamic_batch, fp16=args.fp16)
    if task == metadata.TASK_DEPTH:
        if args.names or args.num_classes is not None:
            raise ValueError('--names and --num-classes apply to detectors only')
        focal = args.canonical_focal or config.get('canonical_focal')
        return export_depth(model, args.output, arch, arch_kwargs=config.get('arch_kwargs'),
                            canonical_focal=focal, **common)
    if args.names:
        names = _read_names(args.names)
    elif config.get('names'):
        names = config['names']
    else:
        names = [f'class_{i}' for i in range(model.num_classes)]
    if args.num_classes is not None and args.num_classes != model.num_classes:
        raise ValueError(f'--num-classes {args.num_classes} but the model has '
                         f'{model.num_classes}')
    if args.canonical_focal is not None and task != metadata.TASK_JOINT:
        raise ValueError(f'--canonical-focal applies to depth and joint nets, not to the '
                         f'{task} network {arch}')
    if task == metadata.TASK_JOINT:
        return export_joint(model, args.output, names, arch=model.arch,
                            arch_kwargs=config.get('arch_kwargs'),
                            canonical_focal=args.canonical_focal or config.get('canonical_focal'),
                            **common)
    return export_detector(model, args.output, names, arch=model.arch, **common)
