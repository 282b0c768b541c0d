"""`depthdet train calibrate-focal`: give a depth model its canonical focal length.

A depth net trained without a canonical camera (plain metres from whatever cameras it saw,
such as our first bundled model, or a third-party export) has no `depthdet_canonical_focal`
metadata, so the runtime cannot rescale it for the camera in use. This finds the focal
length, in network-input pixels, that makes the model's depth right on average over RGB-D
frames with intrinsics (a `depthdet synth dataset` split, or a recording turned into one
by `depthdet train from-bag`): for each frame, the focal length at which its median
depth ratio would be 1 (f_effective / median(gt / predicted)), and the median over frames.
The ONNX file is copied with that metadata added; the weights are untouched.
"""
import argparse
import math
from typing import Optional

import numpy as np

from depthdet_ros.arg_types import non_negative_int, output_file


def calibrate(depth_path: str, frames, coverage: str = 'full', max_depth: float = 12.0):
    """Return (canonical focal, per-frame focal lengths) for a model on RGB-D frames."""
    from depthdet_ros.core.depth import DepthEstimator

    estimator = DepthEstimator(depth_path, coverage=coverage)
    estimator.canonical_focal = None  # calibrate the raw output, whatever the metadata says
    per_frame = []
    for index in range(len(frames)):
        rgb, truth = frames.load(index)
        K = frames.camera_matrix(index)
        predicted = estimator.infer(rgb)
        valid = np.isfinite(predicted) & np.isfinite(truth) & (truth > 0) & (truth <= max_depth)
        if valid.sum() < 100:
            continue
        view = estimator.view_for(*truth.shape)
        effective = math.sqrt(K[0, 0] * view.scale_x * K[1, 1] * view.scale_y)
        ratio = float(np.median(np.log(truth[valid] / predicted[valid])))
        per_frame.append(effective / math.exp(ratio))
    if not per_frame:
        raise ValueError('no frame with enough valid depth to calibrate on')
    return float(np.exp(np.median(np.log(per_frame)))), per_frame


def write_with_focal(source: str, target: str, focal: float) -> Optional[str]:
    """Copy an ONNX model, setting its canonical focal length metadata.

    Returns the canonical focal length the source named (replaced), or None.
    """
    import onnx

    from depthdet_ros.core import metadata
    model = onnx.load(source)
    props = {p.key: p.value for p in model.metadata_props}
    replaced = props.get(metadata.CANONICAL_FOCAL)
    props[metadata.CANONICAL_FOCAL] = f'{focal:.1f}'
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, target)
    return replaced


def add_parser(commands):
    """Register `depthdet train calibrate-focal`."""
    parser = commands.add_parser(
        'calibrate-focal', help='find and write a depth model\'s canonical focal length',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--depth', required=True, help='depth ONNX to calibrate')
    parser.add_argument('--data', required=True, metavar='SPLIT_DIR',
                        help='RGB-D frames with intrinsics (a dataset split)')
    parser.add_argument('-o', '--output', required=True, help='ONNX file to write')
    parser.add_argument('--coverage', choices=('full', 'crop'), default='full',
                        help='the view the node will run the model with (default full)')
    parser.add_argument('--max-frames', type=non_negative_int, default=0, help='0: all')
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run `depthdet train calibrate-focal`."""
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.train.data import SimDataset, Subset
    output_file(args.output, '--output')
    try:
        frames = Subset(SimDataset(args.data), args.max_frames)
        focal, per_frame = calibrate(args.depth, frames, args.coverage)
        replaced = write_with_focal(args.depth, args.output, focal)
    except (ModelLoadError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    low, high = np.percentile(per_frame, [25, 75])
    print(f'{args.output}: canonical focal {focal:.1f} px at the network input '
          f'(per-frame interquartile range {low:.1f} .. {high:.1f}, {len(per_frame)} frames)'
          + (f'; replaces the {replaced} px {args.depth} named' if replaced else ''))
    return 0
