"""Per-object depth agreement when the same scene is seen through different cameras.

Each synthetic scene is rendered from one camera pose through several cameras (field of
view and image size) with their own CameraInfo. The depth net (or a joint net's depth
output, --joint-model) runs on every view, each
object's depth is read inside its true visible box (the node's default strategy, or
--strategy), and for every
pair of cameras the objects seen by both are compared: |log(depth_a / depth_b)|. A model
whose metres follow its training camera disagrees by about the log of the focal-length
ratio; with the focal correction (core.depth.focal_scale) it should not.
"""
import argparse
from dataclasses import dataclass, replace
from itertools import combinations
import json
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from depthdet_ros.arg_types import non_negative_int, output_file, positive_int
from depthdet_ros.core.object_depth import DEFAULT_STRATEGY, STRATEGIES

# (horizontal field of view in degrees, width, height): the three cameras.
DEFAULT_CAMERAS = ((50.0, 640, 480), (70.0, 1280, 720), (95.0, 960, 960))
MIN_VISIBLE_PIXELS = 400


@dataclass
class PairAgreement:
    """Median |log(depth_a / depth_b)| of the objects two cameras both see."""

    cameras: Tuple[str, str]
    objects: int
    corrected: float
    uncorrected: float


def camera_name(camera) -> str:
    """Label a (hfov, width, height) camera, e.g. '70deg 1280x720'."""
    hfov, width, height = camera
    return f'{hfov:g}deg {width}x{height}'


def _with_camera(layout, hfov_deg: float, width: int, height: int):
    fovy = math.degrees(2.0 * math.atan(math.tan(math.radians(hfov_deg) / 2.0) * height / width))
    return replace(layout, camera=replace(layout.camera, width=width, height=height,
                                          fovy_deg=fovy))


def measure(depth_path: str, scenes: int = 12, seed: int = 910000,
            cameras: Sequence[Tuple[float, int, int]] = DEFAULT_CAMERAS,
            strategy: str = DEFAULT_STRATEGY, joint: bool = False) -> List[PairAgreement]:
    """Render `scenes` room scenes through every camera and compare object depths.

    `depth_path` is a depth model, or with `joint` a joint model (its depth output).
    """
    from depthdet_ros.core.object_depth import object_depth
    from depthdet_ros.sim.world import frame_layout, SimWorld

    if joint:
        from depthdet_ros.core.joint import JointModel
        estimator = JointModel(depth_path)

        def predict(rgb):
            return estimator.infer(rgb).depth
    else:
        from depthdet_ros.core.depth import DepthEstimator
        estimator = DepthEstimator(depth_path)
        predict = estimator.infer
    width = max(c[1] for c in cameras)
    height = max(c[2] for c in cameras)
    # camera index -> object key -> (corrected, uncorrected) depth
    depths: List[Dict[Tuple[int, int], Tuple[float, float]]] = [{} for _ in cameras]
    with SimWorld(width, height, quality='fast') as world:
        for scene in range(scenes):
            base = frame_layout(seed, scene, 'room')
            for k, (hfov, w, h) in enumerate(cameras):
                frame = world.render(_with_camera(base, hfov, w, h), scene)
                raw = predict(frame.rgb)
                scale = estimator.focal_scale(h, w, frame.camera)
                for truth in frame.objects:
                    if truth.visible_pixels < MIN_VISIBLE_PIXELS:
                        continue
                    estimate = object_depth(raw, truth.box, strategy)
                    if estimate.valid:
                        depths[k][(scene, truth.instance_id)] = (scale * estimate.depth,
                                                                 estimate.depth)
    results = []
    for a, b in combinations(range(len(cameras)), 2):
        common = sorted(set(depths[a]) & set(depths[b]))
        corrected = [abs(math.log(depths[a][key][0] / depths[b][key][0])) for key in common]
        plain = [abs(math.log(depths[a][key][1] / depths[b][key][1])) for key in common]
        results.append(PairAgreement(
            (camera_name(cameras[a]), camera_name(cameras[b])), len(common),
            float(np.median(corrected)) if common else math.nan,
            float(np.median(plain)) if common else math.nan))
    return results


def markdown(results: Sequence[PairAgreement]) -> str:
    """Table of the agreement per camera pair."""
    lines = ['| cameras | objects | median abs log ratio, corrected | uncorrected |',
             '|---|---|---|---|']
    lines += [f'| {r.cameras[0]} vs {r.cameras[1]} | {r.objects} | {r.corrected:.3f} | '
              f'{r.uncorrected:.3f} |' for r in results]
    return '\n'.join(lines)


def add_parser(commands):
    """Register `depthdet train cross-camera`."""
    from depthdet_ros.assets import default_model
    from depthdet_ros.tools.options import add_override

    parser = commands.add_parser(
        'cross-camera', help='per-object depth agreement across cameras on the same scenes',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--depth', default=None,
                        help=f'depth ONNX (default: the bundled {default_model("depth")})')
    add_override(parser, 'joint_model', 'joint ONNX whose depth output is measured instead '
                 'of a depth net\'s')
    parser.add_argument('--scenes', type=positive_int, default=12,
                        help='scenes to render (default 12)')
    parser.add_argument('--seed', type=non_negative_int, default=910000,
                        help='scene seed, >= 0 (default 910000, used by no training split)')
    # No masks here: each view is read in its true visible box.
    parser.add_argument('--strategy', default=DEFAULT_STRATEGY,
                        choices=[s for s in STRATEGIES if s != 'mask'],
                        help=f'per-object depth strategy (default {DEFAULT_STRATEGY}, the '
                             'node\'s)')
    parser.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run `depthdet train cross-camera`."""
    from depthdet_ros.cli import CliError
    from depthdet_ros.assets import default_model
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.tools.options import joint_conflict
    if args.joint_model and args.depth:
        raise CliError(joint_conflict('--joint-model', '--depth'))
    if args.json:
        output_file(args.json, '--json')
    try:
        results = measure(args.joint_model or args.depth or default_model('depth'),
                          args.scenes, args.seed, strategy=args.strategy,
                          joint=bool(args.joint_model))
    except (ModelLoadError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(markdown(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([r.__dict__ for r in results], f, indent=2)
    return 0
