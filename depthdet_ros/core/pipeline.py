"""Both networks (or one joint network) plus fusion: one call per frame for every tool."""
import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from depthdet_ros.core.detector import Detector, DetectorConfig
from depthdet_ros.core.depth import DepthEstimator
from depthdet_ros.core.joint import JointModel
from depthdet_ros.core.object_depth import (DEFAULT_STRATEGY, estimate_objects, STRATEGIES,
                                            strategy_measuring)
from depthdet_ros.core.session import SessionOptions
from depthdet_ros.core.types import FrameResult

# Relative change of the depth's focal scale from one frame to the next that counts as
# depth measured otherwise (one camera's intrinsics give one scale, to rounding).
DEPTH_SCALE_TOLERANCE = 1e-3


@dataclass
class FusionConfig:
    """How detections become ranged objects (changeable between frames)."""

    strategy: str = DEFAULT_STRATEGY
    max_depth: float = 1.0
    class_max_depth: Dict[str, float] = field(default_factory=dict)
    # Field of view (degrees, over the image width) assumed for frames without camera
    # intrinsics when scaling depth to the camera; None: the depth model's own camera.
    assumed_hfov_deg: Optional[float] = None

    def validate(self):
        """Raise ValueError naming the first invalid setting."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f'depth_strategy {self.strategy!r} is not one of '
                             f'{", ".join(STRATEGIES)}')
        if not self.max_depth > 0:
            raise ValueError(f'max_depth must be > 0 metres, got {self.max_depth}')
        for name, value in self.class_max_depth.items():
            if not value > 0:
                raise ValueError(f'class_max_depth[{name}] must be > 0, got {value}')
        if self.assumed_hfov_deg is not None and not 1.0 <= self.assumed_hfov_deg <= 179.0:
            raise ValueError(f'assumed_hfov_deg must be within 1 .. 179 degrees, got '
                             f'{self.assumed_hfov_deg}')


def depth_measured_otherwise(before: Optional[Tuple[str, float]],
                             now: Tuple[str, float]) -> str:
    """Say how depth is measured otherwise now (FrameResult.depth_measured); '' if not.

    The tracker starts over then: its tracks would take the step in every depth for
    motion (a false closing speed and time to contact). The statistic changes when
    depth_strategy is set at run time; the focal scale when the first camera_info comes
    after frames scaled for an assumed field of view, or the intrinsics change.
    """
    if before is None:
        return ''
    changes = []
    if before[0] != now[0]:
        changes.append(f'depth_strategy {before[0]} -> {now[0]}')
    if not math.isclose(before[1], now[1], rel_tol=DEPTH_SCALE_TOLERANCE):
        changes.append(f'focal scale {before[1]:.3f} -> {now[1]:.3f}')
    return ', '.join(changes)


@dataclass(frozen=True)
class PipelineModels:
    """Where the models are and how to run them.

    With `joint_path` one joint model (core.joint) replaces the detector and depth pair
    (their paths are then ignored; detector_input_size sizes its input, and its depth
    always covers the whole image).
    """

    detector_path: str = ''
    depth_path: str = ''
    session: SessionOptions = SessionOptions()
    class_names_file: str = ''
    detector_input_size: Optional[tuple] = None
    depth_input_size: Optional[tuple] = None
    depth_coverage: str = 'full'
    joint_path: str = ''


class Pipeline:
    """Detector and depth network run concurrently, then fused per object.

    onnxruntime releases the GIL while a model runs, so the depth network runs on a
    worker thread while the detector runs on the caller's thread.

    Unless the session options say otherwise, idle onnxruntime threads do not spin:
    each session has its own thread pool, and threads busy-waiting in one pool take
    the cores the other pool (or another process) is computing on. On 2 loaded cores
    that made frames 1.5-2.3x slower, concurrent or sequential (docs/performance.md).
    """

    def __init__(self, models: PipelineModels, detector_config=None, fusion_config=None,
                 concurrent=True):
        self.models = models
        self.concurrent = concurrent
        # The options each session runs with.
        self.session_options = models.session
        if models.session.allow_spinning is None:
            self.session_options = dataclasses.replace(models.session, allow_spinning=False)
        self.joint = None
        if models.joint_path:
            # One model in both roles: `detector.config`, `class_names`, `provider` and
            # `depth.focal_scale` read the same as with the pair.
            self.joint = self.detector = self.depth = JointModel(
                models.joint_path, self.session_options, models.class_names_file,
                models.detector_input_size, detector_config or DetectorConfig())
        else:
            self.detector = Detector(models.detector_path, self.session_options,
                                     models.class_names_file, models.detector_input_size,
                                     detector_config or DetectorConfig())
            self.depth = DepthEstimator(models.depth_path, self.session_options,
                                        models.depth_input_size, models.depth_coverage)
        self.fusion = fusion_config or FusionConfig()
        self.fusion.validate()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix='depth') \
            if concurrent and self.joint is None else None

    @property
    def providers(self):
        """Active execution provider of each model."""
        return {'detector': self.detector.provider, 'depth': self.depth.provider}

    def process(self, rgb, camera=None, depth_camera=None) -> FrameResult:
        """Detect and range the objects in an RGB uint8 image.

        `camera` is a validated CameraModel for this image size, or None for depth
        without 3D positions. Depth is scaled to the camera's focal length: `camera`'s,
        else `depth_camera`'s (the same camera's intrinsics from another frame, when
        this frame's did not come), else the fusion config's assumed field of view.
        """
        timings = {}
        t0 = time.perf_counter()
        fusion = self.fusion
        scale = self.depth.focal_scale(rgb.shape[0], rgb.shape[1], camera or depth_camera,
                                       fusion.assumed_hfov_deg)
        masks = None
        if self.joint is not None:
            joint = self.joint.infer(rgb, timings, scale)
            detections, masks, depth_map = joint.detections, joint.masks, joint.depth
        elif self._executor is not None:
            depth_timings = {}
            future = self._executor.submit(self.depth.infer, rgb, depth_timings, scale)
            detections = self.detector.infer(rgb, timings)
            depth_map = future.result()
            timings.update(depth_timings)
        else:
            detections = self.detector.infer(rgb, timings)
            depth_map = self.depth.infer(rgb, timings, scale)
        t1 = time.perf_counter()
        objects = estimate_objects(detections, depth_map, camera, fusion.strategy,
                                   fusion.max_depth, fusion.class_max_depth, masks)
        t2 = time.perf_counter()
        timings['inference'] = (t1 - t0) * 1e3
        timings['fusion'] = (t2 - t1) * 1e3
        return FrameResult(objects=objects, depth_map=depth_map, timings_ms=timings,
                           depth_scale=scale,
                           depth_strategy=strategy_measuring(fusion.strategy,
                                                             masks is not None))

    def close(self):
        """Stop the worker thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
