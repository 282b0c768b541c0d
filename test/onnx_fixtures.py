"""Small ONNX models with known outputs, built with onnx.helper (no torch)."""
import json

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

from depthdet_ros.core import metadata

MEAN = np.array(metadata.HYBRID_PREPROCESS['mean'], np.float32)
STD = np.array(metadata.HYBRID_PREPROCESS['std'], np.float32)


def _save(graph, path, meta, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 8
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def constant_detector(path, rows, input_hw=(640, 640), names=('chair', 'bottle'),
                      layout='yolov5'):
    """Build a detector that returns `rows` whatever the image.

    rows: list of (cx, cy, w, h, objectness, class_probs...) in letterboxed pixels for
    'yolov5' (padded with zero rows to the full 3 x grid count); for 'yolov8' rows are
    (cx, cy, w, h, class_scores...) and the output is transposed to [1, 4+C, N].
    """
    h, w = input_hw
    cells = sum((h // s) * (w // s) for s in (8, 16, 32))
    width = len(rows[0])
    n = 3 * cells if layout == 'yolov5' else cells
    table = np.zeros((n, width), np.float32)
    table[:len(rows)] = np.asarray(rows, np.float32)
    if layout == 'yolov8':
        table = table.T.copy()
    const = numpy_helper.from_array(table[None], name='table')
    nodes = [
        helper.make_node('ReduceMean', ['images'], ['mean'], keepdims=0),
        helper.make_node('Mul', ['mean', 'zero'], ['nothing']),
        helper.make_node('Add', ['table', 'nothing'], ['output0']),
    ]
    graph = helper.make_graph(
        nodes, 'constant_detector',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, list(table[None].shape))],
        initializer=[const, numpy_helper.from_array(np.array(0.0, np.float32), 'zero')])
    meta = {metadata.NAMES: metadata.format_names(names), metadata.STRIDE: '32',
            metadata.TASK: metadata.TASK_DETECTOR}
    return _save(graph, path, meta)


def _depth_from_red(path, name, input_hw, pre, red_to_depth, constants, pool, meta):
    """Build a depth net: red recovered from the normalised input, mapped, pooled 2x2.

    `red_to_depth` are the nodes from 'red' (in [0, 1]) to 'full'; `constants` their
    float initialisers; `pool` the ONNX pooling op making the half-resolution output.
    """
    h, w = input_hw
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (
        ('std_r', float(pre['std'][0])), ('mean_r', float(pre['mean'][0])), *constants)]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (
        ('start', [0]), ('end', [1]), ('axis', [1]))]
    nodes = [
        helper.make_node('Slice', ['image', 'start', 'end', 'axis'], ['red_norm']),
        helper.make_node('Mul', ['red_norm', 'std_r'], ['red_scaled']),
        helper.make_node('Add', ['red_scaled', 'mean_r'], ['red']),
        *red_to_depth,
        helper.make_node(pool, ['full'], ['depth'], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info('depth', TensorProto.FLOAT, [1, 1, h // 2, w // 2])],
        initializer=inits)
    return _save(graph, path, {metadata.TASK: metadata.TASK_DEPTH,
                               metadata.PREPROCESS: json.dumps(pre), **meta})


def red_depth(path, input_hw=(256, 320), near=0.5, far=10.5, preprocess=None,
              canonical_focal=None):
    """Build a depth net whose output is near + (far - near) * red, red in [0, 1].

    The red channel is recovered from the normalised input (x * std + mean), then
    2x2 average pooling gives the half-resolution output of the hybrid CNN, so a
    uniformly coloured region reads back exactly as its depth.
    """
    pre = preprocess or metadata.HYBRID_PREPROCESS
    return _depth_from_red(
        path, 'red_depth', input_hw, pre,
        [helper.make_node('Mul', ['red', 'span'], ['red_span']),
         helper.make_node('Add', ['red_span', 'near'], ['full'])],
        [('span', far - near), ('near', near)], 'AveragePool',
        {metadata.DEPTH_UNITS: 'metres', metadata.INPUT_SIZE: json.dumps(list(input_hw)),
         **({metadata.CANONICAL_FOCAL: str(canonical_focal)} if canonical_focal else {})})


def red_for_depth(depth, near=0.5, far=10.5):
    """Return the red value (0-255) that red_depth maps to `depth` metres (rounded)."""
    return int(round((depth - near) / (far - near) * 255.0))


def depth_for_red(red, near=0.5, far=10.5):
    """Return the depth red_depth predicts for a uint8 red value."""
    return near + (far - near) * (np.float32(red) / np.float32(255.0))


def sqrt_depth(path, input_hw=(64, 80)):
    """Build a depth net predicting sqrt(red - 0.5) metres: NaN where red < 0.5, 0 at 0.5."""
    return _depth_from_red(
        path, 'sqrt_depth', input_hw, metadata.HYBRID_PREPROCESS,
        [helper.make_node('Sub', ['red', 'half'], ['shifted']),
         helper.make_node('Sqrt', ['shifted'], ['full'])],
        [('half', 0.5)], 'MaxPool', {})


def float16_io(source, path):
    """Convert a model to float16 throughout, inputs and outputs included.

    This is what YOLOv5's `export.py --half` writes: a float16 input and output. Metadata
    is kept.
    """
    from onnxconverter_common import float16
    model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=False)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def uint8_input_detector(path, input_hw=(64, 64)):
    """Build a detector-shaped model that takes uint8 pixels (no float input)."""
    h, w = input_hw
    rows = 3 * sum((h // s) * (w // s) for s in (8, 16, 32))
    nodes = [helper.make_node('Cast', ['images'], ['pixels'], to=TensorProto.FLOAT),
             helper.make_node('ReduceMean', ['pixels'], ['mean'], keepdims=0),
             helper.make_node('Expand', ['mean', 'shape'], ['output0'])]
    graph = helper.make_graph(
        nodes, 'uint8_detector',
        [helper.make_tensor_value_info('images', TensorProto.UINT8, [1, 3, h, w])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, [1, rows, 7])],
        initializer=[numpy_helper.from_array(np.array([1, rows, 7], np.int64), 'shape')])
    return _save(graph, path, {metadata.TASK: metadata.TASK_DETECTOR})


def failing_depth(path, input_hw=(64, 64)):
    """Build a depth net that loads but fails on every run (a reshape that cannot fit).

    Its input height and width are symbolic, so onnxruntime cannot see the failure before
    running it; the size comes from metadata.
    """
    nodes = [helper.make_node('Reshape', ['image', 'shape'], ['depth'])]
    graph = helper.make_graph(
        nodes, 'failing_depth',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 'h', 'w'])],
        [helper.make_tensor_value_info('depth', TensorProto.FLOAT, [1, 1, 5, None])],
        initializer=[numpy_helper.from_array(np.array([1, 1, 5, -1], np.int64), 'shape')])
    return _save(graph, path, {metadata.TASK: metadata.TASK_DEPTH,
                               metadata.INPUT_SIZE: json.dumps(list(input_hw))})
