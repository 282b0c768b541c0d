"""ONNX metadata keys shared by the exporter (nets.export) and the runtime (core).

Detectors use the same keys as ultralytics' export (`names`, `stride`) so official
YOLOv5 exports load without configuration; the `depthdet_*` keys are ours.
"""
import ast
import json

# YOLOv5 conventions: `names` is a Python dict literal {0: 'person', ...}.
NAMES = 'names'
STRIDE = 'stride'
# Ours.
TASK = 'depthdet_task'            # 'detector' | 'depth' | 'joint'
ARCH = 'depthdet_arch'            # e.g. 'yolov5n', 'hybrid_resnet50'
ARCH_KWARGS = 'depthdet_arch_kwargs'  # JSON builder options, e.g. {"decoder_width": 0.5}
INPUT_SIZE = 'depthdet_input_size'  # JSON [height, width]
DEPTH_UNITS = 'depthdet_depth_units'  # 'metres'
PREPROCESS = 'depthdet_preprocess'  # JSON, see DepthPreprocess in core.depth
QUANTIZATION = 'depthdet_quantization'  # JSON recipe of an INT8 model (nets.quantize)
# Focal length (pixels of the network input) the depth net predicts metres for; the
# runtime rescales by the camera's effective focal length over it (core.depth).
CANONICAL_FOCAL = 'depthdet_canonical_focal'
# Joint models (nets.joint): number of prototype masks k (the last k columns of each
# detection row are mask coefficients) and the outputs' strides over the input.
MASK_PROTOTYPES = 'depthdet_mask_prototypes'
PROTO_STRIDE = 'depthdet_proto_stride'
DEPTH_STRIDE = 'depthdet_depth_stride'

TASK_DETECTOR = 'detector'
TASK_DEPTH = 'depth'
TASK_JOINT = 'joint'


def parse_names(text):
    """Parse class names from metadata: a dict literal, a JSON list or a JSON dict.

    Returns a list indexed by class id. Raises ValueError on anything else.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'cannot parse class names {text[:60]!r}') from exc
    if isinstance(value, dict):
        ids = sorted(int(k) for k in value)
        if ids != list(range(len(ids))):
            raise ValueError('class ids in names must be 0..N-1')
        return [str(value[k] if k in value else value[str(k)]) for k in ids]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise ValueError(f'class names must be a dict or list, got {type(value).__name__}')


def format_names(names):
    """Format class names the way YOLOv5's exporter does (a dict literal)."""
    return str({i: str(n) for i, n in enumerate(names)})


# The depth preprocessing record stored under PREPROCESS (JSON object):
#   color: 'rgb' | 'bgr'          channel order the network expects
#   resize: 'cover_crop'          scale by max(W/w, H/h) to ceil sizes, centre crop to HxW
#           | 'fit_pad'           scale by min(W/w, H/h), centre, pad with the mean colour
#           | 'stretch'           resize straight to HxW (aspect not kept)
#   interpolation: 'nearest' | 'linear'
#   scale: float                  multiply uint8 pixels by this (1/255)
#   mean, std: [3] floats         per-channel normalisation after scaling
# Depth outputs are [1,1,h,w] (or [1,h,w]) metres on a grid covering the HxW crop.
HYBRID_PREPROCESS = {
    'color': 'rgb',
    'resize': 'cover_crop',
    'interpolation': 'nearest',
    'scale': 1.0 / 255.0,
    'mean': [0.485, 0.456, 0.406],
    'std': [0.229, 0.224, 0.225],
}
