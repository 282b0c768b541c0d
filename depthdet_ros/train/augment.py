"""Training-time image transforms for the depth net and the detector (numpy + OpenCV).

Depth (seed 003): the frame is first scaled onto the network input exactly as the
runtime does (core.depth.DepthView: 'cover_crop', or 'fit_pad' with mean-colour padding,
chosen at random in training so the net learns both), then scaled by s in [1, 1.5] with
depth divided by s (a zoom looks like moving closer), rotated by up to 5 degrees, cropped
at random to the input size, its RGB channels multiplied by gains in [0.8, 1.2] and
flipped left-right with p = 0.5. All geometry is one affine warp per map:
nearest-neighbour for depth, which is sampled straight onto the half-resolution output
grid (pixel centres mapped the way core.depth maps them back). Without randomness
(validation) the result is the runtime's own preprocessing.

With a canonical focal length f_c, depth targets are those of a camera with focal length
f_c at the network input: metres x f_c / f_e, f_e being the frame's focal length after the
resize (and zoom). The runtime multiplies by f_e / f_c again (core.depth.focal_scale).

Detector (YOLOv5): letterbox exactly like core.detector; mosaic of four frames with a
random affine (scale, translation), HSV jitter and left-right flips for training.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from depthdet_ros.core.depth import DepthView
from depthdet_ros.core.metadata import HYBRID_PREPROCESS
from depthdet_ros.core.detector import letterbox, letterbox_geometry, PAD_VALUE

# ---- depth --------------------------------------------------------------------------------

# Borders and padding take the normalisation mean: zero at the network input, as the
# runtime pads (core.depth).
_MEAN_RGB = tuple(round(255 * m) for m in HYBRID_PREPROCESS['mean'])


@dataclass(frozen=True)
class DepthAugmentConfig:
    """Seed 003's online augmentation ranges."""

    scale: Tuple[float, float] = (1.0, 1.5)
    rotate_deg: float = 5.0
    color_gain: Tuple[float, float] = (0.8, 1.2)
    flip_prob: float = 0.5
    pad_prob: float = 0.0  # chance of the 'fit_pad' view instead of the given one


@dataclass
class DepthSample:
    """Network input (HxWx3 uint8 RGB) and target at half resolution (0 invalid).

    The target is metres x `canonical_factor` (1 without a canonical focal length).
    """

    rgb: np.ndarray
    depth: np.ndarray
    canonical_factor: float = 1.0


def _view_transform(image_h: int, image_w: int, input_h: int, input_w: int,
                    resize: str) -> np.ndarray:
    """3x3 affine from image pixels to the runtime's network input (pixel centres exact)."""
    view = DepthView.for_image(image_h, image_w, input_h, input_w, input_h // 2, input_w // 2,
                               resize)
    sx, sy = view.scale_x, view.scale_y
    # c' + 0.5 = s (c + 0.5), then subtract the crop offset (negative: padding).
    return np.array([[sx, 0.0, 0.5 * sx - 0.5 - view.crop_x],
                     [0.0, sy, 0.5 * sy - 0.5 - view.crop_y],
                     [0.0, 0.0, 1.0]])


def _half_grid() -> np.ndarray:
    """Affine from input pixels to the half-resolution output grid: u = (x - 0.5) / 2."""
    return np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]])


def depth_sample(rgb: np.ndarray, depth: np.ndarray, input_size: Tuple[int, int],
                 rng: Optional[np.random.Generator] = None,
                 config: DepthAugmentConfig = DepthAugmentConfig(),
                 resize: str = 'cover_crop', focal: Optional[Tuple[float, float]] = None,
                 canonical_focal: Optional[float] = None) -> DepthSample:
    """Make one training (rng given) or validation (rng None) pair from a full frame.

    `rgb` HxWx3 uint8, `depth` HxW float metres (NaN / <= 0 invalid); `input_size`
    (height, width); `resize` the runtime's view ('cover_crop' or 'fit_pad'); `focal`
    the frame's (fx, fy) in its pixels, needed with `canonical_focal`. Returns the
    network input and its target at (height/2, width/2).
    """
    input_h, input_w = input_size
    image_h, image_w = depth.shape
    if rng is not None and config.pad_prob > 0 and rng.random() < config.pad_prob:
        resize = 'fit_pad'
    transform = _view_transform(image_h, image_w, input_h, input_w, resize)
    canonical_factor = 1.0
    if canonical_focal:
        if focal is None:
            raise ValueError('a canonical focal length needs the frame\'s focal length')
        effective = np.sqrt(focal[0] * transform[0, 0] * focal[1] * transform[1, 1])
        canonical_factor = float(canonical_focal / effective)
    depth_factor = canonical_factor
    gains = None
    flip = False
    if rng is not None:
        scale = rng.uniform(*config.scale)
        angle = rng.uniform(-config.rotate_deg, config.rotate_deg)
        # Scale and rotate about the crop centre, then shift the crop anywhere the scaled
        # view still covers it.
        centre = ((input_w - 1) / 2.0, (input_h - 1) / 2.0)
        rotation = np.vstack([cv2.getRotationMatrix2D(centre, angle, scale), [0, 0, 1]])
        spare_x = (scale - 1.0) * input_w / 2.0
        spare_y = (scale - 1.0) * input_h / 2.0
        shift = np.array([[1.0, 0.0, rng.uniform(-spare_x, spare_x)],
                          [0.0, 1.0, rng.uniform(-spare_y, spare_y)], [0.0, 0.0, 1.0]])
        transform = shift @ rotation @ transform
        depth_factor /= scale
        gains = rng.uniform(*config.color_gain, size=3)
        flip = rng.random() < config.flip_prob
    if flip:
        mirror = np.array([[-1.0, 0.0, input_w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        transform = mirror @ transform
    out_rgb = cv2.warpAffine(rgb, transform[:2], (input_w, input_h), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=_MEAN_RGB)
    clean = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    out_depth = cv2.warpAffine(clean, (_half_grid() @ transform)[:2],
                               (input_w // 2, input_h // 2), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out_depth *= depth_factor
    if gains is not None:
        out_rgb = np.clip(out_rgb.astype(np.float32) * gains.astype(np.float32), 0, 255)
        out_rgb = out_rgb.astype(np.uint8)
    return DepthSample(out_rgb, out_depth, canonical_factor)


# ---- detection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectAugmentConfig:
    """YOLOv5 hyp.scratch-low values (mosaic, affine scale/translate, HSV, flip)."""

    mosaic_prob: float = 1.0
    scale: float = 0.5
    translate: float = 0.1
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    flip_prob: float = 0.5
    min_box_px: float = 2.0
    min_area_kept: float = 0.1
    max_aspect: float = 20.0


@dataclass
class BoxSample:
    """Image (HxWx3 uint8 RGB) with boxes Nx4 xyxy in its pixels and N class ids."""

    rgb: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray


def letterbox_sample(sample: BoxSample, size: int) -> BoxSample:
    """Letterbox to size x size as the runtime detector does; boxes follow."""
    image, lb = letterbox(sample.rgb, size, size)
    boxes = sample.boxes * lb.gain + np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y])
    return BoxSample(image, boxes, sample.classes.copy())


def fit_longer_side(sample: BoxSample, size: int) -> BoxSample:
    """Resize so the longer side is `size`, bilinear like the runtime letterbox; boxes follow.

    For a frame then letterboxed to size x size this is exactly the runtime's resize.
    """
    h, w = sample.rgb.shape[:2]
    _, _, _, _, _, _, ratio = letterbox_geometry(h, w, size, size)
    if ratio == 1:
        return sample
    new_w, new_h, *_ = letterbox_geometry(h, w, size, size)
    image = cv2.resize(sample.rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return BoxSample(image, sample.boxes * ratio, sample.classes)


def mosaic(samples: Sequence[BoxSample], size: int, rng: np.random.Generator) -> BoxSample:
    """Tile four frames around a random centre of a 2size x 2size canvas (YOLOv5 mosaic).

    Each frame, resized to a longer side of `size`, fills the quadrant touching the centre
    from its corner: top-left frame's bottom-right corner at the centre, and so on.
    """
    if len(samples) != 4:
        raise ValueError('a mosaic needs four samples')
    canvas = np.full((2 * size, 2 * size, 3), PAD_VALUE, np.uint8)
    xc, yc = (int(rng.uniform(0.5 * size, 1.5 * size)) for _ in range(2))
    boxes, classes = [], []
    for quadrant, sample in enumerate(samples):
        sample = fit_longer_side(sample, size)
        h, w = sample.rgb.shape[:2]
        left = quadrant in (0, 2)
        top = quadrant in (0, 1)
        # Canvas region (x1, y1, x2, y2) and the matching region of the frame.
        x1, x2 = (max(xc - w, 0), xc) if left else (xc, min(xc + w, 2 * size))
        y1, y2 = (max(yc - h, 0), yc) if top else (yc, min(yc + h, 2 * size))
        fx1 = w - (x2 - x1) if left else 0
        fy1 = h - (y2 - y1) if top else 0
        canvas[y1:y2, x1:x2] = sample.rgb[fy1:fy1 + (y2 - y1), fx1:fx1 + (x2 - x1)]
        shift = np.array([x1 - fx1, y1 - fy1, x1 - fx1, y1 - fy1], dtype=np.float64)
        boxes.append(sample.boxes + shift)
        classes.append(sample.classes)
    # Parts of a frame cropped off at the canvas edge must not carry boxes into the padding
    # a later affine may expose.
    boxes = np.concatenate(boxes).reshape(-1, 4).clip(0, 2 * size)
    classes = np.concatenate(classes)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return BoxSample(canvas, boxes[keep], classes[keep])


def random_affine(sample: BoxSample, size: int, rng: np.random.Generator,
                  config: DetectAugmentConfig, centred_from: Optional[int] = None) -> BoxSample:
    """Scale by U(1 - scale, 1 + scale) and translate by up to `translate` of the output.

    `centred_from` is the source's side when it is a mosaic canvas (its centre maps to the
    output's centre); otherwise the source centre does. Boxes are transformed by their
    corners, clipped to the output and filtered like YOLOv5's box_candidates.
    """
    h, w = sample.rgb.shape[:2]
    src_cx, src_cy = (centred_from / 2.0, centred_from / 2.0) if centred_from \
        else (w / 2.0, h / 2.0)
    scale = rng.uniform(1 - config.scale, 1 + config.scale)
    tx = rng.uniform(0.5 - config.translate, 0.5 + config.translate) * size
    ty = rng.uniform(0.5 - config.translate, 0.5 + config.translate) * size
    matrix = np.array([[scale, 0.0, tx - scale * src_cx], [0.0, scale, ty - scale * src_cy]])
    image = cv2.warpAffine(sample.rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    boxes = sample.boxes * scale + np.array([matrix[0, 2], matrix[1, 2]] * 2)
    return _filter_boxes(BoxSample(image, boxes, sample.classes), sample.boxes * scale, config)


def _filter_boxes(sample: BoxSample, unclipped: np.ndarray,
                  config: DetectAugmentConfig) -> BoxSample:
    h, w = sample.rgb.shape[:2]
    boxes = sample.boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ow, oh = unclipped[:, 2] - unclipped[:, 0], unclipped[:, 3] - unclipped[:, 1]
    aspect = np.maximum(bw / (bh + 1e-16), bh / (bw + 1e-16))
    keep = (bw > config.min_box_px) & (bh > config.min_box_px) & \
        (bw * bh / (ow * oh + 1e-16) > config.min_area_kept) & (aspect < config.max_aspect)
    return BoxSample(sample.rgb, boxes[keep], sample.classes[keep])


def hsv_jitter(rgb: np.ndarray, rng: np.random.Generator,
               config: DetectAugmentConfig) -> np.ndarray:
    """YOLOv5's HSV gains: hue, saturation and value multiplied by 1 + U(-g, g)."""
    gains = rng.uniform(-1, 1, 3) * (config.hsv_h, config.hsv_s, config.hsv_v) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def flip_lr(sample: BoxSample) -> BoxSample:
    """Mirror left-right; box x1, x2 become W - x2, W - x1."""
    w = sample.rgb.shape[1]
    boxes = sample.boxes.copy()
    boxes[:, [0, 2]] = w - sample.boxes[:, [2, 0]]
    return BoxSample(np.ascontiguousarray(sample.rgb[:, ::-1]), boxes, sample.classes)


def detection_train_sample(samples: List[BoxSample], size: int, rng: np.random.Generator,
                           config: DetectAugmentConfig, use_mosaic: bool) -> BoxSample:
    """Make one training image: a mosaic of the four `samples` (or the first, letterboxed).

    Then a random affine, HSV jitter and a flip.
    """
    if use_mosaic:
        sample = random_affine(mosaic(samples, size, rng), size, rng, config,
                               centred_from=2 * size)
    else:
        boxed = letterbox_sample(samples[0], size)
        sample = random_affine(boxed, size, rng, config)
    sample = BoxSample(hsv_jitter(sample.rgb, rng, config), sample.boxes, sample.classes)
    if rng.random() < config.flip_prob:
        sample = flip_lr(sample)
    return sample


def boxes_to_targets(boxes: np.ndarray, classes: np.ndarray, image_index: int,
                     size: int) -> np.ndarray:
    """Rows (image index, class, cx, cy, w, h) normalised by `size`, for the YOLOv5 loss."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cxcy = (boxes[:, :2] + boxes[:, 2:]) / 2.0 / size
    wh = (boxes[:, 2:] - boxes[:, :2]) / size
    index = np.full((len(boxes), 1), image_index, dtype=np.float64)
    return np.concatenate([index, np.asarray(classes, np.float64).reshape(-1, 1), cxcy, wh],
                          axis=1).astype(np.float32)
