"""Typed records passed between the core's stages, the ROS nodes and offline tools."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in input-image pixels (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self):
        return (0.5 * (self.x1 + self.x2), 0.5 * (self.y1 + self.y2))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the NxM IoU of every box in `a` (Nx4 xyxy) with every box in `b` (Mx4)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    # Few numpy calls on (N, M) arrays: trackers call this on small arrays every frame.
    ax1, ay1, ax2, ay2 = a.T[:, :, None]
    bx1, by1, bx2, by2 = b.T
    width = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    height = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(width, 0.0, out=width)
    inter *= np.maximum(height, 0.0, out=height)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass(frozen=True)
class Detection2D:
    """One detector output mapped back to input-image pixels."""

    box: Box
    score: float
    class_id: int
    class_name: str


@dataclass(frozen=True, eq=False)
class InstanceMask:
    """One object's pixels: a boolean window of the input image at (x, y), inside its box."""

    x: int
    y: int
    pixels: np.ndarray  # h x w bool

    @property
    def area(self) -> int:
        """Number of object pixels."""
        return int(np.count_nonzero(self.pixels))

    def full(self, height: int, width: int) -> np.ndarray:
        """Return the mask on the whole HxW image (bool)."""
        out = np.zeros((height, width), bool)
        h, w = self.pixels.shape
        y2, x2 = min(self.y + h, height), min(self.x + w, width)
        out[self.y:y2, self.x:x2] = self.pixels[:y2 - self.y, :x2 - self.x]
        return out


@dataclass(frozen=True)
class ObjectDepth:
    """Depth statistic of one object: metres, spread (1-sigma, metres), support.

    `depth` is NaN when the box holds too few valid depth pixels; `valid` says so.
    `fraction` is the share of the box's valid pixels that support the estimate.
    """

    depth: float
    spread: float
    fraction: float

    @property
    def valid(self) -> bool:
        return bool(np.isfinite(self.depth))


@dataclass(frozen=True)
class Point3D:
    """A point in the camera optical frame (x right, y down, z forward), metres."""

    x: float
    y: float
    z: float


@dataclass(frozen=True)
class ObjectEstimate:
    """A detection with its depth and, when camera intrinsics are known, 3D geometry."""

    detection: Detection2D
    depth: ObjectDepth
    position: Optional[Point3D]
    size: Optional[Point3D]  # metric width, height, depth extent
    covariance: Optional[np.ndarray]  # 3x3 position covariance, m^2
    alert: bool
    mask: Optional[InstanceMask] = None  # instance mask, from joint models only


def instance_image(objects: List[ObjectEstimate], height: int, width: int,
                   labels: Optional[List[int]] = None) -> np.ndarray:
    """Paint the objects' masks into an HxW uint16 image: 0 background, else a label.

    Labels are `labels[i]` (e.g. track IDs, 1..65535) or the object's index + 1. Where
    masks overlap the nearer object (smaller depth; unranged ones count as farthest) wins.
    """
    image = np.zeros((height, width), np.uint16)
    order = sorted(range(len(objects)), key=lambda i: -objects[i].depth.depth
                   if objects[i].depth.valid else -np.inf)
    for i in order:
        mask = objects[i].mask
        if mask is None:
            continue
        label = labels[i] if labels is not None else i + 1
        h, w = mask.pixels.shape
        window = image[mask.y:mask.y + h, mask.x:mask.x + w]
        window[mask.pixels[:window.shape[0], :window.shape[1]]] = label
    return image


@dataclass
class FrameResult:
    """Everything the pipeline computes for one frame."""

    objects: List[ObjectEstimate]
    depth_map: Optional[np.ndarray]  # HxW float32 metres aligned to the input, NaN invalid
    timings_ms: Dict[str, float] = field(default_factory=dict)
    depth_scale: float = 1.0  # focal-length factor applied to the depth net's output
    depth_strategy: str = ''  # per-object depth statistic of `objects`

    @property
    def depth_measured(self) -> Tuple[str, float]:
        """How this frame's object depths were measured: (statistic, focal scale)."""
        return self.depth_strategy, self.depth_scale
