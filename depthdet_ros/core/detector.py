"""YOLO-family ONNX detector: letterbox, output-layout detection, decoding, NMS."""
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import FrozenSet, List, Optional, Sequence

import cv2
import numpy as np

from depthdet_ros.core import metadata
from depthdet_ros.core.session import device_binding, ModelLoadError, open_image_model, \
    SessionOptions, SingleInputModel
from depthdet_ros.core.types import Box, Detection2D

LAYOUT_YOLOV5 = 'yolov5'      # [1, N, 5 + C]: cx, cy, w, h, objectness, class probs
LAYOUT_YOLOV8 = 'yolov8'      # [1, 4 + C, N]: cx, cy, w, h, class scores
LAYOUT_NMS = 'nms'            # [1, k, 6]: x1, y1, x2, y2, score, class (NMS inside)

PAD_VALUE = 114
MAX_NMS_CANDIDATES = 30000
# Offsetting boxes by class keeps NMS class-aware in one call, as YOLOv5 does.
CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class Letterbox:
    """Mapping between input-image pixels and the letterboxed network input."""

    gain: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    def to_image(self, xyxy):
        """Map Nx4 letterboxed boxes back to input pixels, clipped to the image."""
        out = np.empty_like(xyxy, dtype=np.float64)
        out[:, [0, 2]] = np.clip((xyxy[:, [0, 2]] - self.pad_x) / self.gain, 0, self.width)
        out[:, [1, 3]] = np.clip((xyxy[:, [1, 3]] - self.pad_y) / self.gain, 0, self.height)
        return out


def letterbox_geometry(height, width, input_h, input_w):
    """YOLOv5's letterbox: (resized w, h, top, bottom, left, right, gain)."""
    gain = min(input_h / height, input_w / width)
    # At least one pixel, for extreme aspect ratios (a 1x128 image).
    new_w, new_h = max(1, int(round(width * gain))), max(1, int(round(height * gain)))
    dw, dh = (input_w - new_w) / 2.0, (input_h - new_h) / 2.0
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return new_w, new_h, top, bottom, left, right, gain


def letterbox(rgb, input_h, input_w):
    """Letterbox an RGB image exactly as YOLOv5 does; returns (image, Letterbox)."""
    h, w = rgb.shape[:2]
    new_w, new_h, top, bottom, left, right, gain = letterbox_geometry(h, w, input_h, input_w)
    resized = rgb if (new_w, new_h) == (w, h) else cv2.resize(
        rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    boxed = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return boxed, Letterbox(gain=gain, pad_x=float(left), pad_y=float(top), width=w, height=h)


@dataclass
class DetectorConfig:
    """Run-time decoding settings (changeable between frames)."""

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 300
    agnostic_nms: bool = False
    class_filter: FrozenSet[str] = field(default_factory=frozenset)  # empty: keep all


def _grid_cells(input_h, input_w, strides=(8, 16, 32)):
    return sum(math.ceil(input_h / s) * math.ceil(input_w / s) for s in strides)


def detect_layout(shape, input_h, input_w):
    """Name the output layout of a detector from its output shape.

    Returns (layout, number of classes). Raises ModelLoadError for shapes that
    match no supported layout.
    """
    if len(shape) != 3:
        raise ModelLoadError(f'detector output has rank {len(shape)}, expected 3')
    _, a, b = shape
    cells = _grid_cells(input_h, input_w)
    if a == 3 * cells and b >= 6:
        return LAYOUT_YOLOV5, b - 5
    if b == cells and a >= 5:
        return LAYOUT_YOLOV8, a - 4
    if b == 6 and a <= 10000:
        return LAYOUT_NMS, None
    raise ModelLoadError(
        f'detector output shape {list(shape)} matches no supported layout for a '
        f'{input_w}x{input_h} input: YOLOv5 [1,{3 * cells},5+C], YOLOv8 [1,4+C,{cells}] '
        'or end-to-end [1,k,6]')


def _nms(xyxy, scores, class_ids, config):
    """Class-aware (or agnostic) NMS with OpenCV; returns kept indices by score."""
    order = np.argsort(-scores)[:MAX_NMS_CANDIDATES]
    xyxy, scores, class_ids = xyxy[order], scores[order], class_ids[order]
    offset = 0.0 if config.agnostic_nms else CLASS_OFFSET
    shifted = xyxy + (class_ids[:, None] * offset)
    xywh = np.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, config.iou_threshold)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)[:config.max_detections]
    return order[keep]


def _finite(values):
    """Return `values` with NaN and +-inf replaced by 0."""
    return np.where(np.isfinite(values), values, values.dtype.type(0))


def decode(output, layout, config, class_names=None):
    """Decode one image's raw output into (xyxy letterboxed, score, class_id) arrays.

    Non-finite values count as 0. Rows are screened on their score column before
    that cleaning, so only the few candidate rows are cleaned (a NaN or infinite
    score fails the screen or becomes 0 and fails the threshold after it).
    """
    return decode_indexed(output, layout, config, class_names=class_names)[:3]


def _kept_classes(class_ids, config, class_names):
    """Mask of the class ids config.class_filter keeps (all when it is empty)."""
    if not config.class_filter:
        return np.ones(len(class_ids), dtype=bool)
    if class_names is None:
        raise ValueError('a class_filter needs the class names to decode with')
    allowed = np.array([name in config.class_filter for name in class_names] + [False])
    return allowed[np.clip(class_ids, -1, len(class_names))]


def decode_indexed(output, layout, config, num_classes=None, class_names=None):
    """Decode like decode(), adding each result's row in `output` (column for YOLOv8).

    `num_classes` limits the class columns of a YOLOv5 layout whose rows carry more after
    them (a joint model's mask coefficients, nets.joint). Classes outside
    config.class_filter (names from `class_names`) are dropped before NMS and the
    max_detections cap, so other classes never crowd out the kept ones.
    """
    thr = config.score_threshold
    if layout == LAYOUT_NMS:
        index = np.flatnonzero(output[:, 4] > thr)
        rows = _finite(output[index])
        classes = rows[:, 5].astype(np.int64)
        keep = (rows[:, 4] > thr) & _kept_classes(classes, config, class_names)
        index, rows = index[keep], rows[keep]
        order = np.argsort(-rows[:, 4])[:config.max_detections]
        rows, index = rows[order], index[order]
        return rows[:, :4].astype(np.float64), rows[:, 4], rows[:, 5].astype(np.int64), index
    if layout == LAYOUT_YOLOV5:
        index = np.flatnonzero(output[:, 4] > thr)
        rows = _finite(output[index])
        end = None if num_classes is None else 5 + num_classes
        with np.errstate(over='ignore', invalid='ignore'):
            class_scores = rows[:, 5:end] * rows[:, 4:5]
    else:
        # No single score column to screen on: clean every candidate.
        rows = _finite(output).T
        index = np.arange(len(rows))
        class_scores = rows[:, 4:]
    class_ids = np.argmax(class_scores, axis=1) if len(rows) else np.zeros(0, np.int64)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = (scores > thr) & _kept_classes(class_ids, config, class_names)
    rows, scores, class_ids, index = rows[keep], scores[keep], class_ids[keep], index[keep]
    cxcy, half = rows[:, :2].astype(np.float64), rows[:, 2:4].astype(np.float64) / 2.0
    xyxy = np.concatenate([cxcy - half, cxcy + half], axis=1)
    if not len(xyxy):
        return xyxy, scores, class_ids, index
    kept = _nms(xyxy, scores, class_ids, config)
    return xyxy[kept], scores[kept], class_ids[kept], index[kept]


def to_detections(xyxy, scores, class_ids, lb, class_names):
    """Map decoded letterboxed boxes to (Detection2D list in input pixels, their positions).

    Drops unknown class ids and empty boxes after clipping (decode has applied
    config.class_filter); `positions` index the decoded arrays of the kept ones.
    """
    boxes = lb.to_image(xyxy) if len(xyxy) else xyxy
    out, positions = [], []
    for position, ((x1, y1, x2, y2), score, cls) in enumerate(zip(boxes, scores, class_ids)):
        if not 0 <= cls < len(class_names) or x2 <= x1 or y2 <= y1:
            continue
        name = class_names[cls]
        out.append(Detection2D(Box(float(x1), float(y1), float(x2), float(y2)),
                               float(score), int(cls), name))
        positions.append(position)
    return out, positions


def load_class_names(source, count):
    """Class names from a names file (one per line), or defaults for `count` classes."""
    if source:
        path = os.path.expanduser(source)
        if not os.path.isfile(path):
            raise ModelLoadError(f'class names file not found: {source!r}')
        try:
            with open(path, encoding='utf-8') as f:
                return [line.strip() for line in f if line.strip()]
        except UnicodeDecodeError as exc:
            raise ModelLoadError(f'class names file {source!r} is not UTF-8 text with one '
                                 f'name per line: byte {exc.start} cannot be decoded (a model '
                                 'file given as the names file?)') from None
        except OSError as exc:
            raise ModelLoadError(f'cannot read class names file {source!r}: '
                                 f'{exc.strerror}') from None
    return [f'class_{i}' for i in range(count or 0)]


def model_class_names(name, meta, names_file, num_classes):
    """Return a model's class names: from `names_file`, its metadata, or class_0, class_1 ...

    `name` names the model in errors; `num_classes` is what its output predicts (None:
    any number, 80 by default). ModelLoadError when the names do not fit.
    """
    if names_file:
        names = load_class_names(names_file, num_classes)
    elif metadata.NAMES in meta:
        try:
            names = metadata.parse_names(meta[metadata.NAMES])
        except ValueError as exc:
            raise ModelLoadError(f'{name}: {exc}') from None
    else:
        names = load_class_names('', num_classes or 80)
        logging.getLogger(__name__).warning(
            '%s has no class names in its metadata and no class names file was given: its '
            'classes are called %s ... %s', name, names[0], names[-1])
    if num_classes is not None and len(names) != num_classes:
        given = f'the class names file {names_file!r} gives' if names_file else \
            'its metadata names'
        raise ModelLoadError(f'{name} predicts {num_classes} classes but {given} {len(names)}')
    return names


class Detector(SingleInputModel):
    """A YOLOv5 / YOLOv8 / end-to-end ONNX detector on onnxruntime."""

    def __init__(self, path, options=SessionOptions(), names_file='',
                 input_size: Optional[Sequence[int]] = None, config=None):
        model = open_image_model(path, options, 'detector', metadata.TASK_DEPTH, input_size,
                                 default_size=(640, 640))
        self.session, self.provider, meta = model.session, model.provider, model.metadata
        self.input_name, self.input_h, self.input_w = model.input_name, model.input_h, \
            model.input_w
        self.input_dtype = model.input_dtype
        self.path = path
        self.config = config or DetectorConfig()
        self._blob = model.input_buffer()
        raw = model.first_run(self._blob)
        self._binding = device_binding(model, self._blob, options)
        try:
            self.layout, num_classes = detect_layout(raw.shape, self.input_h, self.input_w)
        except ModelLoadError as exc:
            raise ModelLoadError(f'{os.path.basename(path)} is not a detector: {exc}') from None
        self.class_names = model_class_names(os.path.basename(path), meta, names_file,
                                             num_classes)

    def preprocess(self, rgb):
        """Letterbox `rgb` into the reused input buffer; returns the Letterbox."""
        boxed, lb = letterbox(rgb, self.input_h, self.input_w)
        np.multiply(boxed.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=self._blob[0])
        return lb

    def infer(self, rgb, timings=None):
        """Detect objects in an RGB uint8 image; returns a list of Detection2D."""
        t0 = time.perf_counter()
        lb = self.preprocess(rgb)
        t1 = time.perf_counter()
        raw = self._run()[0]
        t2 = time.perf_counter()
        detections = self.postprocess(raw, lb)
        if timings is not None:
            timings['detector_pre'] = (t1 - t0) * 1e3
            timings['detector'] = (t2 - t1) * 1e3
            timings['detector_post'] = (time.perf_counter() - t2) * 1e3
        return detections

    def postprocess(self, raw, lb) -> List[Detection2D]:
        """Decode a raw output for one image and map boxes to input pixels."""
        xyxy, scores, class_ids = decode(np.asarray(raw, dtype=np.float32), self.layout,
                                         self.config, self.class_names)
        return to_detections(xyxy, scores, class_ids, lb, self.class_names)[0]
