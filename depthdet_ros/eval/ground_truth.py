"""Ground-truth objects of an evaluation bag and the depth each one is scored against.

Ground truth arrives as vision_msgs (rosbags messages): a Detection2DArray (visible-part
box, class name in results[0].hypothesis.class_id, 3D centre in results[0].pose) and,
optionally, a Detection3DArray (centre, orientation, size), paired by Detection `id`
(else by order when the counts agree).

GT object depth ('box3d_pixels'): the median GT depth over the object's own pixels,
i.e. the pixels of its 2D box whose GT surface point, back-projected with the camera
intrinsics, lies inside its 3D box. That is the visible surface, which is what the
per-object strategies estimate. Without a GT depth map, 3D box or camera the centre's
z is used instead ('center_z'); it lies behind the surface by up to half the object's
extent, so the two are reported apart.

Visibility ('estimated'): visible / (visible + occluded) over the rays that hit the 3D
box, where visible pixels are the object's own pixels and occluded ones see a surface in
front of the box. For non-convex objects (a chair) rays through the empty part of the
box also count as occluded when something stands in front, so it reads low there.
"""
import math
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import numpy as np

from depthdet_ros.core.camera import CameraModel
from depthdet_ros.core.types import Box, Point3D
from depthdet_ros.sim.geometry import quat_to_matrix

DEPTH_FROM_BOX3D = 'box3d_pixels'
DEPTH_FROM_CENTER = 'center_z'
# A surface point counts as inside the 3D box within this margin (metres + share of
# depth), for rasterisation and float32 depth rounding.
INSIDE_MARGIN_M = 0.01
INSIDE_MARGIN_REL = 0.002
MIN_OBJECT_PIXELS = 4


@dataclass(frozen=True)
class Box3D:
    """Oriented 3D box in the optical frame: centre, rotation (object -> optical), size."""

    center: np.ndarray   # (3,)
    rotation: np.ndarray  # 3x3
    size: np.ndarray     # (3,) full extents along the box's own axes


@dataclass(frozen=True)
class GroundTruthObject:
    """One ground-truth object of a frame with the depth it is scored against.

    depth_source is DEPTH_FROM_BOX3D or DEPTH_FROM_CENTER (NaN depth: neither known);
    visibility is None when it cannot be estimated.
    """

    class_name: str
    box: Box
    instance_id: str
    center: Optional[Point3D]
    box3d: Optional[Box3D]
    depth: float
    depth_source: str
    visibility: Optional[float]


def _box_from_bbox2d(bbox) -> Box:
    cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
    hw, hh = 0.5 * float(bbox.size_x), 0.5 * float(bbox.size_y)
    return Box(cx - hw, cy - hh, cx + hw, cy + hh)


def _box3d(det3d) -> Optional[Box3D]:
    pose, size = det3d.bbox.center, det3d.bbox.size
    q = pose.orientation
    norm = math.sqrt(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2)
    extents = np.array([size.x, size.y, size.z], dtype=np.float64)
    if not norm > 0 or not np.all(extents > 0):
        return None
    rotation = quat_to_matrix((q.w / norm, q.x / norm, q.y / norm, q.z / norm))
    center = np.array([pose.position.x, pose.position.y, pose.position.z], dtype=np.float64)
    return Box3D(center, rotation, extents)


def _pair_3d(detections_2d, detections_3d) -> List[Optional[object]]:
    """Return the Detection3D of each Detection2D: same non-empty id, else same position."""
    if not detections_3d:
        return [None] * len(detections_2d)
    by_id = {d.id: d for d in detections_3d if d.id}
    if by_id and all(d.id for d in detections_2d):
        return [by_id.get(d.id) for d in detections_2d]
    if len(detections_3d) == len(detections_2d):
        return list(detections_3d)
    return [None] * len(detections_2d)


def parse_ground_truth(detections_2d_msg, detections_3d_msg=None) -> List[GroundTruthObject]:
    """Read GT detections (depth: the centre's z until `with_measured_depth` refines it)."""
    dets_2d = list(detections_2d_msg.detections)
    dets_3d = list(detections_3d_msg.detections) if detections_3d_msg is not None else []
    objects = []
    for det, det3d in zip(dets_2d, _pair_3d(dets_2d, dets_3d)):
        center, class_name, depth = None, '', math.nan
        if len(det.results):
            class_name = str(det.results[0].hypothesis.class_id)
            p = det.results[0].pose.pose.position
            center = Point3D(float(p.x), float(p.y), float(p.z))
            depth = center.z if center.z > 0 else math.nan
        objects.append(GroundTruthObject(
            class_name=class_name, box=_box_from_bbox2d(det.bbox), instance_id=str(det.id),
            center=center, box3d=_box3d(det3d) if det3d is not None else None, depth=depth,
            depth_source=DEPTH_FROM_CENTER, visibility=None))
    return objects


def _projected_window(box3d: Box3D, camera: CameraModel) -> Optional[Tuple[int, int, int, int]]:
    """Pixel window (x1, y1, x2, y2) holding the projected 3D box; None if not in view."""
    half = 0.5 * box3d.size
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners = (box3d.rotation @ (signs * half).T).T + box3d.center
    if np.any(corners[:, 2] <= 1e-3):
        return 0, 0, camera.width, camera.height  # reaches behind the camera: test all
    u = camera.fx * corners[:, 0] / corners[:, 2] + camera.cx
    v = camera.fy * corners[:, 1] / corners[:, 2] + camera.cy
    x1, y1 = max(int(math.floor(u.min())) - 1, 0), max(int(math.floor(v.min())) - 1, 0)
    x2 = min(int(math.ceil(u.max())) + 2, camera.width)
    y2 = min(int(math.ceil(v.max())) + 2, camera.height)
    if x1 >= x2 or y1 >= y2:
        return None
    return x1, y1, x2, y2


def classify_pixels(gt_depth: np.ndarray, box3d: Box3D, camera: CameraModel):
    """Label the pixels whose rays hit `box3d`: inside it, or occluded in front of it.

    Returns (window, inside, occluded) with boolean masks over window = (x1, y1, x2, y2),
    or None when the box is out of view. Ray-box intersection by the slab method in the
    box's own frame; rays are parameterised by z, so entry/exit compare with depth.
    """
    window = _projected_window(box3d, camera)
    if window is None:
        return None
    x1, y1, x2, y2 = window
    us, vs = np.meshgrid(np.arange(x1, x2, dtype=np.float64),
                         np.arange(y1, y2, dtype=np.float64))
    rays = camera.normalized_rays(np.stack([us.ravel(), vs.ravel()], axis=1))
    directions = np.concatenate([rays, np.ones((rays.shape[0], 1))], axis=1)
    local_dir = directions @ box3d.rotation  # rows: R^T d
    local_origin = box3d.rotation.T @ -box3d.center
    local_dir = np.where(np.abs(local_dir) < 1e-12, 1e-12, local_dir)
    half = 0.5 * box3d.size
    t1 = (-half - local_origin) / local_dir
    t2 = (half - local_origin) / local_dir
    t_enter = np.minimum(t1, t2).max(axis=1)
    t_exit = np.maximum(t1, t2).min(axis=1)
    hits = (t_enter <= t_exit) & (t_exit > 0)
    depth = gt_depth[y1:y2, x1:x2].astype(np.float64).ravel()
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(depth) & (depth > 0)
        margin = INSIDE_MARGIN_M + INSIDE_MARGIN_REL * depth
        inside = hits & valid & (depth >= t_enter - margin) & (depth <= t_exit + margin)
        occluded = hits & valid & (depth < t_enter - margin)
    shape = (y2 - y1, x2 - x1)
    return window, inside.reshape(shape), occluded.reshape(shape)


def with_measured_depth(obj: GroundTruthObject, gt_depth: Optional[np.ndarray],
                        camera: Optional[CameraModel],
                        image_size: Optional[Tuple[int, int]] = None) -> GroundTruthObject:
    """Return `obj` with depth and visibility from its own GT pixels (see the module doc).

    `camera` describes the depth map; `image_size` (width, height), the image the 2D
    box is in when the depth map has another resolution (None: the depth map's).
    Unchanged (centre z, no visibility) without a GT depth map, camera or 3D box, or
    when fewer than MIN_OBJECT_PIXELS of its pixels are found.
    """
    if gt_depth is None or camera is None or obj.box3d is None:
        return obj
    labels = classify_pixels(gt_depth, obj.box3d, camera)
    if labels is None:
        return obj
    (x1, y1, x2, y2), inside, occluded = labels
    box = obj.box
    # The 2D box in the depth map's pixels (edges scale with the image).
    sx, sy = (1.0, 1.0) if image_size is None else (
        gt_depth.shape[1] / image_size[0], gt_depth.shape[0] / image_size[1])
    # The object's pixels lie in its visible 2D box; other surfaces may cross its 3D
    # box elsewhere (the floor under a chair).
    cols = np.arange(x1, x2) + 0.5
    rows = np.arange(y1, y2) + 0.5
    in_box = ((rows >= sy * box.y1) & (rows <= sy * box.y2))[:, None] & \
        ((cols >= sx * box.x1) & (cols <= sx * box.x2))[None, :]
    own = inside & in_box
    n_own = int(np.count_nonzero(own))
    if n_own < MIN_OBJECT_PIXELS:
        return obj
    return replace(obj, depth=float(np.median(gt_depth[y1:y2, x1:x2][own])),
                   depth_source=DEPTH_FROM_BOX3D,
                   visibility=n_own / (n_own + int(np.count_nonzero(occluded))))


def frame_ground_truth(detections_2d_msg, detections_3d_msg, gt_depth, camera,
                       image_size: Optional[Tuple[int, int]] = None
                       ) -> List[GroundTruthObject]:
    """All GT objects of one frame with their scored depth (see with_measured_depth)."""
    return [with_measured_depth(obj, gt_depth, camera, image_size)
            for obj in parse_ground_truth(detections_2d_msg, detections_3d_msg)]
