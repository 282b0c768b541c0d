"""Per-object depth from a depth map and a box, and 3D geometry from intrinsics.

Strategies (seed 000, after Zhou et al. 2019, plus two of ours):
- center_mean: mean over the central 40 % x 40 % of the box (eq. 8);
- box_median: median over the whole box (eq. 9);
- robust: the nearest dominant mode of the box's depth histogram. Hollow objects
  (a chair frame) leave most of their box to the background and occluders cover
  part of it; both shift a median, while the object's own surface still forms a
  distinct, substantial mode at the near end of the histogram;
- near_median (default): the median of the nearest NEAR_FRACTION of the box's depths.
  A depth network's map is blurred: an object's surface runs into the background
  behind it with no distinct mode, so `robust` often falls back to the strongest mode,
  the wall. An object stands in front of what its box shows around it, so the near end
  of the box is the object; the median of that slice, not its minimum, so that a few
  near pixels (floor in front, an occluder's edge) do not decide;
- mask: the median over the object's own instance-mask pixels (joint models), spread
  from their MAD; a hollow object's box holds mostly background, its mask does not.
  Without a mask (or too few valid depths under it) it falls back to `near_median`.
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np

from depthdet_ros.core.types import Box, Detection2D, InstanceMask, ObjectDepth, \
    ObjectEstimate, Point3D

STRATEGIES = ('center_mean', 'box_median', 'robust', 'near_median', 'mask')
DEFAULT_STRATEGY = 'near_median'
CENTER_FRACTION = 0.4
MIN_VALID_PIXELS = 4
MAD_TO_SIGMA = 1.4826
# robust: histogram of log-depth, bins 2 % wide, summed over windows of 5 bins (10 % of
# depth); a window is a surface when it holds at least 10 % of the box's valid pixels.
# Chosen over 3-bin windows at 15 % on the held-out synthetic split with rendered depth
# and true boxes (the oracle rows of `depthdet train evaluate`).
LOG_BIN_WIDTH = math.log(1.02)
MODE_WINDOW_BINS = 5
MIN_MODE_FRACTION = 0.10
# near_median: the nearest 30 % of the box (at least MIN_VALID_PIXELS), i.e. its 15th
# percentile. On the validation split, 20 % is slightly better with our networks' depth
# and 40-50 % with rendered (sharp) depth; 30 % is close to the best of both
# (models/depth.md, `tools/near_fraction_sweep.py data/v2/val models/depth.onnx`).
NEAR_FRACTION = 0.3

INVALID = ObjectDepth(float('nan'), float('nan'), 0.0)


def _window(depth_map, box, fraction=1.0):
    """Pixels of `depth_map` inside the box (scaled about its centre by `fraction`)."""
    h, w = depth_map.shape
    cx, cy = box.center
    half_w, half_h = 0.5 * box.width * fraction, 0.5 * box.height * fraction
    x1, x2 = int(math.floor(cx - half_w)), int(math.ceil(cx + half_w))
    y1, y2 = int(math.floor(cy - half_h)), int(math.ceil(cy + half_h))
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(max(x2, x1 + 1), w), min(max(y2, y1 + 1), h)
    return depth_map[y1:y2, x1:x2]


def _valid(values):
    # One mask: NaN and -inf fail `> 0`, and +inf is the one positive non-finite value.
    return values[(values > 0) & (values < np.inf)]


def _median(values):
    """np.median of a non-empty 1-D array without NaN, without its per-call overhead.

    The same partition and, for an even count, the same mean of the two middle values
    in the array's dtype, so the result is identical.
    """
    half = values.size // 2
    if values.size % 2:
        return np.partition(values, half)[half]
    middle = np.partition(values, (half - 1, half))
    return (float(middle[half - 1]) + float(middle[half])) / 2  # float32 sums can overflow


def center_mean(depth_map, box):
    """Mean of the central 40 % x 40 % window; spread is its standard deviation."""
    values = _valid(_window(depth_map, box, CENTER_FRACTION))
    if values.size < MIN_VALID_PIXELS:
        return INVALID
    # In float64: float32 squares of large (if absurd) depths overflow to an infinite spread.
    return ObjectDepth(float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64)),
                       1.0)


def box_median(depth_map, box):
    """Median over the box; spread is the MAD scaled to a standard deviation."""
    values = _valid(_window(depth_map, box))
    if values.size < MIN_VALID_PIXELS:
        return INVALID
    median = float(_median(values))
    return ObjectDepth(median, MAD_TO_SIGMA * float(_median(np.abs(values - median))), 1.0)


def robust(depth_map, box):
    """Nearest dominant mode of the box's log-depth histogram.

    The histogram is summed over a sliding window of MODE_WINDOW_BINS bins; the first
    window from the near end holding MIN_MODE_FRACTION of the pixels marks the
    object's surface, refined to the window's local maximum. Depth is the median of
    the pixels in that window, spread their scaled MAD; with no such window, the
    strongest mode is used.
    """
    values = _valid(_window(depth_map, box))
    n = values.size
    if n < MIN_VALID_PIXELS:
        return INVALID
    logs = np.log(values)
    lo = logs.min()
    # Non-negative, so truncating is flooring.
    bins = ((logs - lo) / LOG_BIN_WIDTH).astype(np.int64)
    counts = np.bincount(bins)
    window = np.convolve(counts, np.ones(MODE_WINDOW_BINS, np.int64), mode='full')
    window = window[:counts.size]  # window[i] sums bins i-k+1..i
    strong = np.flatnonzero(window >= MIN_MODE_FRACTION * n)
    if strong.size:
        start = strong[0]
        # Climb to the local maximum of the windowed counts from the first strong one.
        end = start
        while end + 1 < window.size and window[end + 1] >= window[end]:
            end += 1
    else:
        end = int(np.argmax(window))
    selected = values[(bins > end - MODE_WINDOW_BINS) & (bins <= end)]
    median = float(_median(selected))
    spread = MAD_TO_SIGMA * float(_median(np.abs(selected - median)))
    return ObjectDepth(median, spread, selected.size / n)


def near_median(depth_map, box):
    """Median of the nearest NEAR_FRACTION (at least MIN_VALID_PIXELS) of the box's depths.

    Only valid depths count. Spread is those depths' scaled MAD; fraction, their share of
    the box's valid pixels.
    """
    values = _valid(_window(depth_map, box))
    n = values.size
    if n < MIN_VALID_PIXELS:
        return INVALID
    count = min(n, max(MIN_VALID_PIXELS, int(math.ceil(NEAR_FRACTION * n))))
    # One partition places the slice's end and its middle value(s) at once: the same
    # median as _median(near), without partitioning the slice again (about 30 % faster on
    # network depth maps, several times on flat ones).
    low, high = (count - 1) // 2, count // 2
    ordered = np.partition(values, sorted({low, high, count - 1}))
    near = ordered[:count]
    median = (float(ordered[low]) + float(ordered[high])) / 2 if count % 2 == 0 \
        else float(ordered[low])
    spread = MAD_TO_SIGMA * float(_median(np.abs(near - median)))
    return ObjectDepth(median, spread, count / n)


def strategy_measuring(strategy: str, masks_given: bool) -> str:
    """Return the strategy that measures depth: 'mask' without masks is near_median's."""
    return 'near_median' if strategy == 'mask' and not masks_given else strategy


def mask_depth(depth_map, box, mask: Optional[InstanceMask]):
    """Median over the mask's valid depth pixels; spread is their scaled MAD.

    `fraction` is the share of the box's valid pixels under the mask. No mask, or fewer
    than MIN_VALID_PIXELS valid depths under it: `near_median` on the box.
    """
    if mask is None:
        return near_median(depth_map, box)
    h, w = depth_map.shape
    mh, mw = mask.pixels.shape
    y2, x2 = min(mask.y + mh, h), min(mask.x + mw, w)
    window = depth_map[mask.y:y2, mask.x:x2][mask.pixels[:y2 - mask.y, :x2 - mask.x]]
    values = _valid(window)
    if values.size < MIN_VALID_PIXELS:
        return near_median(depth_map, box)
    median = float(_median(values))
    spread = MAD_TO_SIGMA * float(_median(np.abs(values - median)))
    in_box = _valid(_window(depth_map, box)).size
    return ObjectDepth(median, spread, min(1.0, values.size / max(in_box, 1)))


_STRATEGY_FUNCTIONS = {'center_mean': center_mean, 'box_median': box_median, 'robust': robust,
                       'near_median': near_median}


def object_depth(depth_map, box: Box, strategy: str,
                 mask: Optional[InstanceMask] = None) -> ObjectDepth:
    """Depth of the object in `box` by the named strategy (see STRATEGIES).

    `mask` is used by the 'mask' strategy only.
    """
    if strategy == 'mask':
        return mask_depth(depth_map, box, mask)
    try:
        function = _STRATEGY_FUNCTIONS[strategy]
    except KeyError:
        raise ValueError(f'unknown depth strategy {strategy!r}; '
                         f'choose one of {", ".join(STRATEGIES)}') from None
    return function(depth_map, box)


def estimate_objects(detections: Sequence[Detection2D], depth_map, camera, strategy: str,
                     max_depth: float, class_max_depth: Optional[Dict[str, float]] = None,
                     masks: Optional[Sequence[Optional[InstanceMask]]] = None):
    """Join detections with depth: depth, 3D centre/size/covariance, proximity alert.

    `camera` (CameraModel for the image size, or None) enables 3D output. An object
    alerts when its depth is valid and below its class's threshold (class_max_depth,
    else max_depth). `masks` (one per detection, or None) go to the 'mask' strategy
    and into each ObjectEstimate.
    """
    class_max_depth = class_max_depth or {}
    masks = list(masks) if masks is not None else [None] * len(detections)
    if len(masks) != len(detections):
        raise ValueError(f'{len(masks)} masks for {len(detections)} detections')
    estimates = [object_depth(depth_map, det.box, strategy, mask) if depth_map is not None
                 else INVALID for det, mask in zip(detections, masks)]
    ranged = [i for i, est in enumerate(estimates) if est.valid]
    points = {}
    if ranged and camera is not None:
        # The box centre and its four edge midpoints at the object's depth, in one
        # back-projection for all objects: width and height follow the lens (a fisheye
        # box is wider in metres than box px x z / f off the axis).
        uv = []
        for i in ranged:
            box = detections[i].box
            (u, v) = box.center
            uv += [(u, v), (box.x1, v), (box.x2, v), (u, box.y1), (u, box.y2)]
        depths = np.repeat([estimates[i].depth for i in ranged], 5)
        xyz = camera.back_project(np.array(uv), depths).reshape(-1, 5, 3)
        for i, (centre, left, right, top, bottom) in zip(ranged, xyz):
            # No 3D where the lens gives no ray (a fisheye pixel beyond MAX_RAY_ANGLE).
            if np.isfinite([centre, left, right, top, bottom]).all():
                points[i] = (centre, right[0] - left[0], bottom[1] - top[1])
    results = []
    for i, (det, est) in enumerate(zip(detections, estimates)):
        position = size = covariance = None
        if i in points:
            (x, y, z), width, height = points[i]
            position = Point3D(float(x), float(y), float(z))
            size = Point3D(float(width), float(height), float(max(2.0 * est.spread, 0.0)))
            covariance = position_covariance(x, y, z, est.spread, camera)
        limit = class_max_depth.get(det.class_name, max_depth)
        alert = bool(est.valid and est.depth < limit)
        results.append(ObjectEstimate(det, est, position, size, covariance, alert, masks[i]))
    return results


def position_covariance(x, y, z, depth_sigma, camera, pixel_sigma=0.5):
    """3x3 covariance of a back-projected point: depth error along the ray + pixel noise.

    The depth error moves the point along its ray (x/z, y/z, 1); half a pixel of
    image noise adds (z * 0.5 / f)^2 across it.
    """
    ray = np.array([x / z, y / z, 1.0])
    cov = (depth_sigma ** 2) * np.outer(ray, ray)
    cov[0, 0] += (pixel_sigma * z / camera.fx) ** 2
    cov[1, 1] += (pixel_sigma * z / camera.fy) ** 2
    return cov
