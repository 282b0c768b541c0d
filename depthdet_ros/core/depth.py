"""Monocular depth network on onnxruntime: preprocessing, focal scaling, inverse mapping.

The network sees a resized view of the input: by default the whole image, scaled to fit
the network input and padded with the mean colour ('full' coverage), or the model's own
training view (usually a centre crop, NaN outside it). `DepthView` records that geometry
so the metre map it predicts is warped back onto the input image's pixel grid.

A model whose metadata names a canonical focal length f_c (network-input pixels) predicts
depth as a camera with that focal length would see it; an object's apparent size is f H / Z,
so the same pixels seen through a camera of effective focal length f_e (the camera's fx, fy
carried through the resize) are at Z = Z_c f_e / f_c (the canonical camera of Metric3D).
"""
import json
import logging
import math
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from depthdet_ros.core import metadata
from depthdet_ros.core.session import device_binding, ModelLoadError, open_image_model, \
    SessionOptions, SingleInputModel

_INTERPOLATION = {'nearest': cv2.INTER_NEAREST, 'linear': cv2.INTER_LINEAR}
RESIZE_MODES = ('cover_crop', 'fit_pad', 'stretch')
# 'full': every pixel gets depth (fit and pad); 'crop': the model's own training view.
COVERAGE_MODES = ('full', 'crop')
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthPreprocess:
    """How an image becomes the network input (see metadata.HYBRID_PREPROCESS)."""

    color: str = 'rgb'
    resize: str = 'cover_crop'
    interpolation: str = 'nearest'
    scale: float = 1.0 / 255.0
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)

    @classmethod
    def from_json(cls, text):
        """Parse the PREPROCESS metadata record; raises ValueError when malformed."""
        data = json.loads(text)
        record = cls(color=data.get('color', 'rgb'), resize=data.get('resize', 'cover_crop'),
                     interpolation=data.get('interpolation', 'nearest'),
                     scale=float(data.get('scale', 1.0 / 255.0)),
                     mean=tuple(float(v) for v in data.get('mean', cls.mean)),
                     std=tuple(float(v) for v in data.get('std', cls.std)))
        if record.color not in ('rgb', 'bgr') or record.resize not in RESIZE_MODES \
                or record.interpolation not in _INTERPOLATION or len(record.mean) != 3 \
                or len(record.std) != 3 or min(record.std) <= 0:
            raise ValueError(f'unsupported depth preprocessing {data}')
        return record


@dataclass(frozen=True)
class DepthView:
    """Geometry of the network's view: input image -> resized -> cropped -> output grid.

    A negative crop offset is padding: the resized image sits inside the network input.
    """

    image_h: int
    image_w: int
    resized_h: int
    resized_w: int
    crop_y: int
    crop_x: int
    input_h: int
    input_w: int
    output_h: int
    output_w: int

    @classmethod
    def for_image(cls, image_h, image_w, input_h, input_w, output_h, output_w, resize):
        if resize == 'stretch':
            rh, rw = input_h, input_w
        elif resize == 'fit_pad':
            s = min(input_w / image_w, input_h / image_h)
            rh, rw = max(1, round(image_h * s)), max(1, round(image_w * s))
            return cls(image_h, image_w, rh, rw, -((input_h - rh) // 2),
                       -((input_w - rw) // 2), input_h, input_w, output_h, output_w)
        else:
            s = max(input_w / image_w, input_h / image_h)
            rh, rw = math.ceil(image_h * s), math.ceil(image_w * s)
        return cls(image_h, image_w, rh, rw, (rh - input_h) // 2, (rw - input_w) // 2,
                   input_h, input_w, output_h, output_w)

    @property
    def scale_x(self) -> float:
        """Horizontal resize factor from the image to the network input."""
        return self.resized_w / self.image_w

    @property
    def scale_y(self) -> float:
        """Vertical resize factor from the image to the network input."""
        return self.resized_h / self.image_h

    def output_coords(self, axis):
        """Output-grid coordinate of every input pixel centre along axis 'x' or 'y'.

        Pixel centres map as c' + 0.5 = scale (c + 0.5) through each resize.
        """
        if axis == 'x':
            n, resized, crop, size, out = (self.image_w, self.resized_w, self.crop_x,
                                           self.input_w, self.output_w)
        else:
            n, resized, crop, size, out = (self.image_h, self.resized_h, self.crop_y,
                                           self.input_h, self.output_h)
        a = (resized / n) * (out / size)
        b = (0.5 * resized / n - crop) * (out / size) - 0.5
        return a, b, a * np.arange(n) + b


class DepthEstimator(SingleInputModel):
    """A depth network whose output is metric depth (metres) on a grid over its input."""

    def __init__(self, path, options=SessionOptions(), input_size=None, coverage='full'):
        model = open_image_model(path, options, 'depth model', metadata.TASK_DETECTOR,
                                 input_size, default_size=(256, 320))
        self.session, self.provider, meta = model.session, model.provider, model.metadata
        self.input_name, self.input_h, self.input_w = model.input_name, model.input_h, \
            model.input_w
        self.path = path
        name = os.path.basename(path)
        try:
            self.preprocessing = DepthPreprocess.from_json(meta[metadata.PREPROCESS]) \
                if metadata.PREPROCESS in meta else DepthPreprocess()
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f'{name}: {exc}') from None
        if coverage not in COVERAGE_MODES:
            raise ValueError(f'depth coverage {coverage!r} is not one of '
                             f'{", ".join(COVERAGE_MODES)}')
        self.resize = 'fit_pad' if coverage == 'full' and \
            self.preprocessing.resize != 'stretch' else self.preprocessing.resize
        self.input_dtype = model.input_dtype
        self._blob = model.input_buffer()
        self._mean = np.array(self.preprocessing.mean, np.float32)
        self._inv_std = 1.0 / np.array(self.preprocessing.std, np.float32)
        out = model.first_run(self._blob)
        if out.ndim not in (3, 4) or (out.ndim == 4 and out.shape[1] != 1) or out.shape[0] != 1:
            raise ModelLoadError(f'{name} output shape {list(out.shape)} is not a depth map '
                                 '[1,1,h,w] or [1,h,w]')
        # After the checks that refuse the model: a refusal is one line, not a warning first.
        self.canonical_focal = _canonical_focal(meta, name)
        self.output_h, self.output_w = out.shape[-2:]
        self._views = {}
        self._binding = device_binding(model, self._blob, options)

    def view_for(self, image_h, image_w):
        """Return the (cached) DepthView for an input image size."""
        key = (image_h, image_w)
        if key not in self._views:
            self._views[key] = DepthView.for_image(
                image_h, image_w, self.input_h, self.input_w, self.output_h, self.output_w,
                self.resize)
        return self._views[key]

    @property
    def canonical_hfov_deg(self):
        """Horizontal field of view of the model's canonical camera over the network input."""
        return canonical_hfov_deg(self.input_w, self.canonical_focal)

    def focal_scale(self, image_h, image_w, camera=None, assumed_hfov_deg=None) -> float:
        """Factor from the network's canonical-camera depth to this camera's metres.

        `camera` is a CameraModel for this image size; without one, `assumed_hfov_deg`
        (over the image width) stands in for it, and without that the camera is taken to
        be the model's own (factor 1). Models without a canonical focal length: 1.
        """
        if self.canonical_focal is None:
            return 1.0
        return focal_scale(self.view_for(image_h, image_w), self.canonical_focal, camera,
                           assumed_hfov_deg)

    def preprocess(self, rgb):
        """Fill the reused input buffer from an RGB uint8 image; returns its DepthView."""
        h, w = rgb.shape[:2]
        view = self.view_for(h, w)
        p = self.preprocessing
        resized = cv2.resize(rgb, (view.resized_w, view.resized_h),
                             interpolation=_INTERPOLATION[p.interpolation])
        # Crop (positive offsets) or place inside padding (negative offsets).
        src_y, src_x = max(view.crop_y, 0), max(view.crop_x, 0)
        dst_y, dst_x = max(-view.crop_y, 0), max(-view.crop_x, 0)
        h = min(view.resized_h - src_y, self.input_h - dst_y)
        w = min(view.resized_w - src_x, self.input_w - dst_x)
        crop = resized[src_y:src_y + h, src_x:src_x + w]
        if p.color == 'bgr':
            crop = crop[..., ::-1]
        normalized = (crop.astype(np.float32) * np.float32(p.scale) - self._mean) * self._inv_std
        if (h, w) != (self.input_h, self.input_w):
            self._blob.fill(0.0)  # zero after normalisation: the mean colour
        self._blob[0, :, dst_y:dst_y + h, dst_x:dst_x + w] = normalized.transpose(2, 0, 1)
        return view

    def infer(self, rgb, timings=None, scale=1.0):
        """Metric depth aligned to `rgb`'s pixel grid: HxW float32, NaN where unknown.

        `scale` multiplies the network's output (see focal_scale).
        """
        t0 = time.perf_counter()
        view = self.preprocess(rgb)
        t1 = time.perf_counter()
        raw = self._run()
        t2 = time.perf_counter()
        output = raw.reshape(self.output_h, self.output_w)
        if scale != 1.0:
            output = output * np.float32(scale)
        depth = self.to_image(output, view)
        if timings is not None:
            timings['depth_pre'] = (t1 - t0) * 1e3
            timings['depth'] = (t2 - t1) * 1e3
            timings['depth_post'] = (time.perf_counter() - t2) * 1e3
        return depth

    @staticmethod
    def to_image(output, view):
        """Warp an output-grid depth map onto the input image grid (bilinear).

        Input pixels outside the network's crop and non-finite or non-positive
        predictions become NaN.
        """
        depth = warp_to_image(output, view)
        ax, _, xs = view.output_coords('x')
        ay, _, ys = view.output_coords('y')
        # A pixel is valid when its area overlaps the network's view: its centre may
        # lie up to half an input pixel (a/2 output pixels) beyond the outer edge.
        outside_x = (xs < -0.5 - ax / 2) | (xs > view.output_w - 0.5 + ax / 2)
        outside_y = (ys < -0.5 - ay / 2) | (ys > view.output_h - 0.5 + ay / 2)
        depth[:, outside_x] = np.nan
        depth[outside_y, :] = np.nan
        depth[~(depth > 0) | ~np.isfinite(depth)] = np.nan
        return depth


def canonical_hfov_deg(input_w, canonical_focal):
    """Horizontal field of view (degrees) of a canonical camera over an input `input_w` wide.

    None without a canonical focal length.
    """
    if canonical_focal is None:
        return None
    return math.degrees(2.0 * math.atan(0.5 * input_w / canonical_focal))


def focal_scale(view, canonical_focal, camera=None, assumed_hfov_deg=None) -> float:
    """Return the factor from canonical-camera depth on `view` to this camera's metres.

    See DepthEstimator.focal_scale; 1 without a camera or an assumed field of view.
    """
    if camera is not None:
        fx, fy = camera.fx, camera.fy
    elif assumed_hfov_deg:
        fx = fy = 0.5 * view.image_w / math.tan(math.radians(assumed_hfov_deg) / 2.0)
    else:
        return 1.0
    effective = math.sqrt(fx * view.scale_x * fy * view.scale_y)
    return effective / canonical_focal


def warp_to_image(grid, view, window=None):
    """Bilinear warp of an output-grid map onto the input image's pixel grid.

    `window` (x, y, width, height) in image pixels warps that part only (an object's box);
    pixels beyond the grid's edge take its nearest value.
    """
    ax, bx, _ = view.output_coords('x')
    ay, by, _ = view.output_coords('y')
    x, y, width, height = window or (0, 0, view.image_w, view.image_h)
    # Destination pixel (u, v) of the window is image pixel (x + u, y + v).
    M = np.array([[ax, 0.0, bx + ax * x], [0.0, ay, by + ay * y]], dtype=np.float64)
    return cv2.warpAffine(np.asarray(grid, dtype=np.float32), M, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _canonical_focal(meta, name):
    """Read the canonical focal length from model metadata; None (one warning) if absent."""
    text = meta.get(metadata.CANONICAL_FOCAL)
    if text is None:
        _log.warning('%s has no %s metadata: its depth is used as predicted, without '
                     'correcting for the camera\'s focal length', name, metadata.CANONICAL_FOCAL)
        return None
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (math.isfinite(value) and value > 0):
        raise ModelLoadError(f'{name}: {metadata.CANONICAL_FOCAL} must be a positive number of '
                             f'pixels, got {text!r}')
    return value
