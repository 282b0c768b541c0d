"""The naive baseline: seed 000's notebook pipeline, written the way a notebook runs it.

Per frame: a fresh copy of the image; YOLOv5 in eager PyTorch on a PIL-letterboxed
tensor, thresholds and greedy NMS in torch; then the depth net in eager PyTorch on a
PIL-resized, numpy-normalised crop; the prediction stretched back to the image with PIL;
the median depth inside each box (seed 000, eq. 9). One model after the other, no
buffer reuse. The networks are the ONNX models' own architectures rebuilt from
depthdet_ros.nets (ONNX metadata `depthdet_arch`), with random weights: timing only.
"""
import json
import math
import re

# Seed 000 / Zhou et al. use box statistics; an object nearer than this is labelled.
NOTEBOOK_MAX_DEPTH = 1.0
# YOLOv5's NMS limits (utils/general.py: max_nms, max_det), scaled down for an n x n
# IoU matrix.
MAX_NMS_CANDIDATES = 3000
MAX_DETECTIONS = 300
_DETECTOR_ARCH = re.compile(r'^(yolov5[nsm])(?:-d([0-9.]+)-w([0-9.]+))?$')


class BaselineUnavailable(Exception):
    """The baseline cannot be built for these models; the message says why."""


def conv_weight_count_onnx(path):
    """Total elements of every Conv weight in an ONNX file.

    BatchNorm folding at export changes biases, not Conv weight shapes, so this equals
    the PyTorch model's Conv2d weight count exactly when the architectures match.
    """
    import onnx

    model = onnx.load(path)
    sizes = {init.name: math.prod(init.dims) for init in model.graph.initializer}
    # FP16 exports feed weights through Cast nodes; follow them to the initializer.
    cast_source = {node.output[0]: node.input[0] for node in model.graph.node
                   if node.op_type == 'Cast'}
    total = 0
    for node in model.graph.node:
        if node.op_type == 'Conv':
            name = node.input[1]
            total += sizes.get(name, sizes.get(cast_source.get(name, ''), 0))
    return total


def conv_weight_count_torch(model):
    """Total elements of every Conv2d weight in a PyTorch module."""
    from torch import nn
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))


def build_torch_models(detector_arch, depth_arch, num_classes, depth_kwargs=None):
    """Rebuild both networks from their `depthdet_arch` names (random weights, eval mode).

    `depth_kwargs` are the depth builder's options (ONNX metadata depthdet_arch_kwargs).
    """
    from depthdet_ros.nets.registry import build_model

    match = _DETECTOR_ARCH.match(detector_arch or '')
    if not match:
        raise BaselineUnavailable(f'detector depthdet_arch {detector_arch!r} is not a YOLOv5 '
                                  'name the baseline can rebuild')
    variant, depth_multiple, width_multiple = match.groups()
    kwargs = {}
    if depth_multiple:
        kwargs = {'depth_multiple': float(depth_multiple),
                  'width_multiple': float(width_multiple)}
    detector = build_model(variant, num_classes, **kwargs).eval()
    try:
        depth = build_model(depth_arch, **(depth_kwargs or {})).eval()
    except ValueError as exc:
        raise BaselineUnavailable(f'depth depthdet_arch {depth_arch!r}: {exc}') from None
    return detector, depth


class NaiveBaseline:
    """Seed 000's joint pipeline as a notebook runs it (see module docstring)."""

    def __init__(self, detector_model, depth_model, detector_input_hw, depth_input_hw,
                 score_threshold=0.25, iou_threshold=0.45, device='cpu'):
        import torch

        self.device = device
        # PyTorch's own choice, kept before any benchmark changes it.
        self.default_threads = torch.get_num_threads()
        self.detector_model = detector_model.to(device)
        self.depth_model = depth_model.to(device)
        self.detector_hw = tuple(detector_input_hw)
        self.depth_hw = tuple(depth_input_hw)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def timed(self, image, threads):
        """Process `image` with PyTorch limited to `threads`; returns milliseconds."""
        import time

        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            t0 = time.perf_counter()
            self.process(image)
            return (time.perf_counter() - t0) * 1e3
        finally:
            torch.set_num_threads(previous)

    def process(self, image):
        """Detect and range one HxWx3 RGB uint8 image.

        Returns [(box xyxy, class id, depth m, alert)].
        """
        import numpy as np
        import torch
        from PIL import Image

        frame = np.array(Image.fromarray(image))
        # Random weights leave denormal activations that slow PyTorch's CPU kernels
        # 2-3x (onnxruntime's are unaffected); trained weights do not, so flush them.
        torch.set_flush_denormal(True)
        try:
            with torch.no_grad():
                detections = self._detect(frame, torch, Image)
                depth = self._depth(frame, torch, Image)
        finally:
            torch.set_flush_denormal(False)
        results = []
        for box, class_id in detections:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            values = depth[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)]
            distance = float(np.median(values)) if values.size else float('nan')
            results.append((box, class_id, distance, distance < NOTEBOOK_MAX_DEPTH))
        return results

    def _detect(self, frame, torch, Image):
        import numpy as np

        h, w = frame.shape[:2]
        input_h, input_w = self.detector_hw
        gain = min(input_h / h, input_w / w)
        new_w, new_h = int(round(w * gain)), int(round(h * gain))
        left, top = (input_w - new_w) // 2, (input_h - new_h) // 2
        canvas = Image.new('RGB', (input_w, input_h), (114, 114, 114))
        canvas.paste(Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR), (left, top))
        x = torch.from_numpy(np.array(canvas).transpose(2, 0, 1).copy()).float() / 255.0
        pred = self.detector_model(x.unsqueeze(0).to(self.device))[0].cpu()
        pred = pred[pred[:, 4] > self.score_threshold]
        scores, classes = (pred[:, 5:] * pred[:, 4:5]).max(1)
        keep = scores > self.score_threshold
        pred, scores, classes = pred[keep], scores[keep], classes[keep]
        order = scores.argsort(descending=True)[:MAX_NMS_CANDIDATES]
        pred, classes = pred[order], classes[order]
        boxes = torch.cat([pred[:, :2] - pred[:, 2:4] / 2, pred[:, :2] + pred[:, 2:4] / 2], 1)
        overlapping = (_iou_matrix(boxes) > self.iou_threshold) \
            & (classes[:, None] == classes[None, :])
        suppressed = torch.zeros(len(boxes), dtype=torch.bool)
        kept = []
        for i in range(len(boxes)):
            if not suppressed[i]:
                kept.append(i)
                suppressed |= overlapping[i]
        offset = torch.tensor([left, top, left, top], dtype=boxes.dtype)
        return [(((boxes[i] - offset) / gain).tolist(), int(classes[i]))
                for i in kept[:MAX_DETECTIONS]]

    def _depth(self, frame, torch, Image):
        import numpy as np

        h, w = frame.shape[:2]
        input_h, input_w = self.depth_hw
        scale = max(input_w / w, input_h / h)
        resized_w, resized_h = math.ceil(w * scale), math.ceil(h * scale)
        resized = Image.fromarray(frame).resize((resized_w, resized_h), Image.NEAREST)
        left, top = (resized_w - input_w) // 2, (resized_h - input_h) // 2
        crop = np.asarray(resized.crop((left, top, left + input_w, top + input_h)), np.float32)
        normalised = (crop / 255.0 - np.array([0.485, 0.456, 0.406])) \
            / np.array([0.229, 0.224, 0.225])
        x = torch.from_numpy(normalised.transpose(2, 0, 1).astype(np.float32)).unsqueeze(0)
        pred = self.depth_model(x.to(self.device))[0, 0].cpu().numpy()
        return np.asarray(Image.fromarray(pred).resize((w, h), Image.BILINEAR))


def _iou_matrix(boxes):
    """Pairwise IoU of Nx4 xyxy boxes (torch)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    top_left = boxes[:, None, :2].maximum(boxes[None, :, :2])
    bottom_right = boxes[:, None, 2:].minimum(boxes[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(2)
    return inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-9)


def load_baseline(pipeline, score_threshold):
    """Build the baseline for a Pipeline's two ONNX models.

    Returns (NaiveBaseline, info dict). Raises BaselineUnavailable when torch is missing,
    the models carry no `depthdet_arch`, or the rebuilt networks differ from the files.
    """
    try:
        import onnx  # noqa: F401  (reads the files' conv weights)
        import torch
    except ImportError as exc:
        raise BaselineUnavailable(f'{exc.name} is not installed (requirements/tools.txt)') \
            from None
    from depthdet_ros.core import metadata
    from depthdet_ros.core.session import model_metadata

    detector, depth = pipeline.detector, pipeline.depth
    detector_arch = model_metadata(detector.session).get(metadata.ARCH)
    depth_arch = model_metadata(depth.session).get(metadata.ARCH)
    if not detector_arch or not depth_arch:
        raise BaselineUnavailable('the models carry no depthdet_arch metadata, so their '
                                  'PyTorch architecture is unknown (export them with '
                                  '`depthdet export`)')
    depth_kwargs = json.loads(model_metadata(depth.session).get(metadata.ARCH_KWARGS, '{}'))
    detector_net, depth_net = build_torch_models(detector_arch, depth_arch,
                                                 len(detector.class_names), depth_kwargs)
    for kind, path, net in (('detector', detector.path, detector_net),
                            ('depth', depth.path, depth_net)):
        onnx_count, torch_count = conv_weight_count_onnx(path), conv_weight_count_torch(net)
        if onnx_count != torch_count:
            raise BaselineUnavailable(
                f'the rebuilt {kind} network has {torch_count} conv weights, the ONNX file '
                f'{onnx_count}: its builder options are not recorded in the metadata')
    # A notebook runs on the GPU when there is one, like the pipeline's GPU providers.
    on_gpu = set(pipeline.providers.values()) != {'cpu'} and torch.cuda.is_available()
    device = 'cuda' if on_gpu else 'cpu'
    baseline = NaiveBaseline(detector_net, depth_net, (detector.input_h, detector.input_w),
                             (depth.input_h, depth.input_w), score_threshold,
                             detector.config.iou_threshold, device)
    info = {'detector_arch': detector_arch, 'depth_arch': depth_arch, 'device': device,
            'torch_threads': torch.get_num_threads(), 'torch_version': torch.__version__,
            'architecture_check': 'conv weight counts of ONNX and PyTorch equal'}
    return baseline, info
