"""Joint model on onnxruntime: one run gives detections, instance masks and metric depth.

The model (nets.joint, exported by nets.export.export_joint) takes the detector's
letterboxed input and gives `output0` (YOLOv5 rows whose last k columns are mask
coefficients), `protos` (k prototype masks over the letterboxed input) and `depth`
(canonical-camera metres over it). Boxes are decoded by core.detector's decoder; an
object's mask is sigmoid(coefficients . prototypes) warped onto the image inside its box
and thresholded at 0.5; depth is warped back onto the image grid (the letterbox is
core.depth's 'fit_pad' view, so every image pixel has a prediction) and scaled to the
camera's focal length as core.depth does.
"""
import math
import os
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from depthdet_ros.core import metadata
from depthdet_ros.core.depth import _canonical_focal, canonical_hfov_deg, DepthEstimator, \
    DepthView, focal_scale, warp_to_image
from depthdet_ros.core.detector import decode_indexed, DetectorConfig, detect_layout, \
    LAYOUT_YOLOV5, letterbox, model_class_names, to_detections
from depthdet_ros.core.session import device_binding, ModelLoadError, open_image_model, \
    SessionOptions
from depthdet_ros.core.types import Box, Detection2D, InstanceMask

OUTPUT_NAMES = ('output0', 'protos', 'depth')
MASK_THRESHOLD = 0.5


@dataclass
class JointOutput:
    """One frame through the joint model, in input-image pixels."""

    detections: List[Detection2D]
    masks: List[Optional[InstanceMask]]  # one per detection
    depth: np.ndarray                    # HxW float32 metres, NaN where non-positive


def box_window(box: Box, height: int, width: int):
    """(x, y, w, h) of the whole pixels a box touches, clipped to the image (>= 1 pixel)."""
    x1 = min(max(int(math.floor(box.x1)), 0), width - 1)
    y1 = min(max(int(math.floor(box.y1)), 0), height - 1)
    x2 = min(max(int(math.ceil(box.x2)), x1 + 1), width)
    y2 = min(max(int(math.ceil(box.y2)), y1 + 1), height)
    return x1, y1, x2 - x1, y2 - y1


class JointDecoder:
    """Raw joint outputs of one letterboxed image -> JointOutput in image pixels.

    Shared by the runtime (JointModel) and training validation (train.joint), so both
    read a network's outputs the same way.
    """

    def __init__(self, class_names, num_masks, input_hw, proto_hw, depth_hw, config=None):
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.num_masks = int(num_masks)
        self.input_h, self.input_w = (int(v) for v in input_hw)
        self.proto_h, self.proto_w = (int(v) for v in proto_hw)
        self.output_h, self.output_w = (int(v) for v in depth_hw)
        self.config = config or DetectorConfig()
        self._views = {}

    def views(self, image_h, image_w):
        """(depth view, prototype view) of an image size: the letterbox as a 'fit_pad' view."""
        key = (image_h, image_w)
        if key not in self._views:
            self._views[key] = tuple(
                DepthView.for_image(image_h, image_w, self.input_h, self.input_w, out_h, out_w,
                                    'fit_pad')
                for out_h, out_w in ((self.output_h, self.output_w),
                                     (self.proto_h, self.proto_w)))
        return self._views[key]

    def __call__(self, rows, protos, depth, lb, scale=1.0) -> JointOutput:
        """Raw outputs of one image ([N, 5 + C + k], [k, h, w], [h, w]) -> JointOutput."""
        rows = np.asarray(rows, dtype=np.float32)
        xyxy, scores, class_ids, index = decode_indexed(rows, LAYOUT_YOLOV5, self.config,
                                                        self.num_classes, self.class_names)
        detections, positions = to_detections(xyxy, scores, class_ids, lb, self.class_names)
        depth_view, proto_view = self.views(lb.height, lb.width)
        coefficients = rows[index[positions], 5 + self.num_classes:]
        masks = self.masks(coefficients, protos, detections, proto_view)
        output = np.asarray(depth, dtype=np.float32)
        if scale != 1.0:
            output = output * np.float32(scale)
        return JointOutput(detections, masks, DepthEstimator.to_image(output, depth_view))

    @staticmethod
    def masks(coefficients, protos, detections, view) -> List[InstanceMask]:
        """Return each detection's mask: sigmoid(coefficients . prototypes) > 0.5 in its box."""
        if not detections:
            return []
        k, h, w = protos.shape
        logits = coefficients.astype(np.float32) @ np.asarray(protos, np.float32).reshape(k, -1)
        probability = (1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))).reshape(-1, h, w)
        out = []
        for detection, grid in zip(detections, probability):
            window = box_window(detection.box, view.image_h, view.image_w)
            pixels = warp_to_image(grid, view, window) > MASK_THRESHOLD
            out.append(InstanceMask(window[0], window[1], pixels))
        return out


class LazyOutput:
    """The first image of a bound output, copied to the host only when read (then once)."""

    def __init__(self, binding, index):
        self._binding, self._index, self._host = binding, index, None

    def _fetch(self):
        if self._host is None:
            self._host = self._binding.output(self._index)[0]
        return self._host

    @property
    def shape(self):
        """Shape of the image's output (reading it fetches the output)."""
        return self._fetch().shape

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._fetch(), dtype)


class JointModel:
    """A joint detection / instance-mask / depth ONNX model (metadata task 'joint')."""

    def __init__(self, path, options=SessionOptions(), names_file='', input_size=None,
                 config=None):
        name = os.path.basename(path)
        model = open_image_model(path, options, 'joint model', metadata.TASK_DEPTH, input_size,
                                 default_size=(320, 320))
        self.session, self.provider, meta = model.session, model.provider, model.metadata
        if meta.get(metadata.TASK) != metadata.TASK_JOINT:
            raise ModelLoadError(f'{name} is not a joint model (metadata {metadata.TASK} is '
                                 f'{meta.get(metadata.TASK)!r}, expected '
                                 f'{metadata.TASK_JOINT!r}); export one with `depthdet '
                                 'export --arch joint_yolov5n ...`')
        outputs = [o.name for o in self.session.get_outputs()]
        if sorted(outputs) != sorted(OUTPUT_NAMES):
            raise ModelLoadError(f'{name}: a joint model has outputs {list(OUTPUT_NAMES)}, '
                                 f'this one {outputs}')
        self._order = [outputs.index(n) for n in OUTPUT_NAMES]
        self.input_name, self.input_h, self.input_w = model.input_name, model.input_h, \
            model.input_w
        self.input_dtype = model.input_dtype
        self.path = path
        try:
            self.num_masks = int(meta[metadata.MASK_PROTOTYPES])
        except (KeyError, ValueError):
            raise ModelLoadError(f'{name}: metadata {metadata.MASK_PROTOTYPES} (number of '
                                 'prototype masks) missing or not an integer') from None
        self.canonical_focal = _canonical_focal(meta, name)
        self._blob = model.input_buffer()
        rows, protos, depth = self._ordered(model.first_run(self._blob, all_outputs=True))
        try:
            layout, columns = detect_layout(rows.shape, self.input_h, self.input_w)
        except ModelLoadError as exc:
            raise ModelLoadError(f'{name}: output0 is not YOLOv5 rows: {exc}') from None
        num_classes = columns - self.num_masks
        if layout != LAYOUT_YOLOV5 or num_classes < 1 or protos.ndim != 4 \
                or protos.shape[:2] != (1, self.num_masks) or depth.ndim != 4 \
                or depth.shape[:2] != (1, 1):
            raise ModelLoadError(f'{name}: outputs {list(rows.shape)}, {list(protos.shape)}, '
                                 f'{list(depth.shape)} do not fit a joint model with '
                                 f'{self.num_masks} prototypes')
        class_names = model_class_names(name, meta, names_file, num_classes)
        self.decoder = JointDecoder(class_names, self.num_masks, (self.input_h, self.input_w),
                                    protos.shape[2:], depth.shape[2:], config)
        self._binding = device_binding(model, self._blob, options)

    def _ordered(self, outputs):
        return [outputs[i] for i in self._order]

    def _outputs(self):
        """Run on the filled input buffer; returns one image's (rows, prototypes, depth).

        With a device binding the prototypes stay on the device unless a detection needs
        them (LazyOutput).
        """
        if self._binding is None:
            rows, protos, depth = self._ordered(
                self.session.run(None, {self.input_name: self._blob}))
            return rows[0], protos[0], depth[0, 0]
        self._binding.run()
        rows_at, protos_at, depth_at = self._order
        return (self._binding.output(rows_at)[0], LazyOutput(self._binding, protos_at),
                self._binding.output(depth_at)[0, 0])

    @property
    def config(self) -> DetectorConfig:
        """Decoding settings (changeable between frames, as Detector.config)."""
        return self.decoder.config

    @config.setter
    def config(self, value: DetectorConfig):
        self.decoder.config = value

    @property
    def class_names(self):
        """Class names, indexed by class id."""
        return self.decoder.class_names

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return self.decoder.num_classes

    def views(self, image_h, image_w):
        """(depth view, prototype view) of an image size (JointDecoder.views)."""
        return self.decoder.views(image_h, image_w)

    @property
    def canonical_hfov_deg(self):
        """Horizontal field of view of the model's canonical camera over the network input."""
        return canonical_hfov_deg(self.input_w, self.canonical_focal)

    def focal_scale(self, image_h, image_w, camera=None, assumed_hfov_deg=None) -> float:
        """Factor from the model's canonical-camera depth to this camera's metres."""
        if self.canonical_focal is None:
            return 1.0
        return focal_scale(self.views(image_h, image_w)[0], self.canonical_focal, camera,
                           assumed_hfov_deg)

    def preprocess(self, rgb):
        """Letterbox `rgb` into the reused input buffer; returns the Letterbox."""
        boxed, lb = letterbox(rgb, self.input_h, self.input_w)
        np.multiply(boxed.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=self._blob[0])
        return lb

    def infer(self, rgb, timings=None, scale=1.0) -> JointOutput:
        """Return detections, their masks and the depth map (x `scale`) of an RGB image."""
        t0 = time.perf_counter()
        lb = self.preprocess(rgb)
        t1 = time.perf_counter()
        rows, protos, depth = self._outputs()
        t2 = time.perf_counter()
        result = self.decoder(rows, protos, depth, lb, scale)
        if timings is not None:
            timings['joint_pre'] = (t1 - t0) * 1e3
            timings['joint'] = (t2 - t1) * 1e3
            timings['joint_post'] = (time.perf_counter() - t2) * 1e3
        return result
