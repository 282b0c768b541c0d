"""Start a PyTorch network from the weights of an ONNX file we exported from it.

Fine-tuning a shipped model needs its weights in PyTorch, but a release keeps only the ONNX
file. The exporter folds each BatchNorm that follows a convolution into that convolution
(and renames the folded tensors), so names cannot be matched; the order can: convolutions
and batch norms appear in the ONNX graph in the order PyTorch runs them. A folded pair
becomes the convolution with the folded weights and an identity BatchNorm (its bias takes
the folded bias), which computes the same function in eval mode. Fine-tune such a model
with its BatchNorms frozen (`freeze_batchnorm`): batch statistics would undo the fold.
The result is checked against onnxruntime on a random input.
"""
from typing import List

import numpy as np
import torch
from torch import nn

from depthdet_ros.core import metadata

MAX_ABS_DIFF = 1e-3


class OnnxWeightsError(ValueError):
    """The ONNX file does not hold this network's weights."""


def _execution_order(model: nn.Module, input_hw) -> List[nn.Module]:
    order: List[nn.Module] = []
    hooks = [m.register_forward_hook(lambda module, args, out: order.append(module))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_hw))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _set(param: torch.Tensor, value: np.ndarray, what: str) -> None:
    if tuple(param.shape) != value.shape:
        raise OnnxWeightsError(f'{what}: shape {tuple(param.shape)} in PyTorch, '
                               f'{value.shape} in ONNX')
    with torch.no_grad():
        param.copy_(torch.from_numpy(value.astype(np.float32)))


def _identity_batchnorm(bn: nn.BatchNorm2d, bias) -> None:
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(bias.astype(np.float32)) if bias is not None else 0.0)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(var + eps) = x


def load_onnx_weights(model: nn.Module, path: str, input_hw) -> float:
    """Copy the weights of ONNX file `path` into `model` (built with the same options).

    `input_hw` is a valid input size (the file's own, when its input size is fixed, is
    used instead: convolution weights do not depend on it). Returns the largest
    |ONNX - PyTorch| output difference on a random input; raises OnnxWeightsError when
    the file does not fit, naming the architecture options in its metadata.
    Tensors the exporter kept under their PyTorch names load by name; folded
    convolutions load in order (ONNX graph order against PyTorch execution order).
    """
    import onnx

    proto = onnx.load(path)
    input_hw = _fixed_input_hw(proto.graph) or tuple(input_hw)
    try:
        return _load(model, path, proto.graph, input_hw)
    except OnnxWeightsError as exc:
        built = {p.key: p.value for p in proto.metadata_props}
        if metadata.ARCH in built:
            raise OnnxWeightsError(
                f'{exc}; {path} was exported as {built[metadata.ARCH]} with builder options '
                f'{built.get(metadata.ARCH_KWARGS, "{}")} (its metadata): train with the '
                'same architecture and options') from exc
        raise


def _fixed_input_hw(graph):
    """(height, width) of the graph's image input when both are fixed numbers, else None."""
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) == 4 and all(d.HasField('dim_value') for d in dims[2:]):
        return int(dims[2].dim_value), int(dims[3].dim_value)
    return None


def _load(model, path, graph, input_hw) -> float:
    from onnx import numpy_helper
    import onnxruntime as ort

    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = model.state_dict()
    for name, value in weights.items():
        if name in state:
            _set(state[name], value, name)
    names = {module: name for name, module in model.named_modules()}
    modules = _execution_order(model, input_hw)
    folded_nodes = [n for n in graph.node if n.op_type == 'Conv'
                    and n.input[1] in weights and n.input[1] not in state]
    folded_convs = [m for m in modules if isinstance(m, nn.Conv2d)
                    and names[m] + '.weight' not in weights]
    if len(folded_nodes) != len(folded_convs):
        raise OnnxWeightsError(f'{path}: {len(folded_nodes)} folded convolutions in ONNX, '
                               f'{len(folded_convs)} unmatched ones in PyTorch')
    following = {modules[i]: modules[i + 1] for i in range(len(modules) - 1)}
    for node, conv in zip(folded_nodes, folded_convs):
        what = names[conv]
        _set(conv.weight, weights[node.input[1]], what)
        bias = weights[node.input[2]] if len(node.input) > 2 else None
        bn = following.get(conv)
        if isinstance(bn, nn.BatchNorm2d) and names[bn] + '.weight' not in weights:
            if conv.bias is not None:
                conv.bias.data.zero_()
            _identity_batchnorm(bn, bias)
        elif bias is not None:
            if conv.bias is None:
                raise OnnxWeightsError(f'{what}: ONNX has a bias PyTorch lacks')
            _set(conv.bias, bias, what + ' bias')
    return _compare(model, path, input_hw, ort)


def _compare(model, path, input_hw, ort) -> float:
    sample = np.random.default_rng(0).standard_normal((1, 3, *input_hw)).astype(np.float32)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    expected = session.run(None, {session.get_inputs()[0].name: sample})[0]
    model.eval()
    with torch.no_grad():
        actual = model(torch.from_numpy(sample))
    actual = (actual[0] if isinstance(actual, (tuple, list)) else actual).numpy()
    diff = float(np.max(np.abs(actual - expected)))
    if not diff <= MAX_ABS_DIFF * max(1.0, float(np.max(np.abs(expected)))):
        raise OnnxWeightsError(f'{path}: PyTorch with the loaded weights differs from '
                               f'onnxruntime by {diff:.3g}')
    return diff


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics fixed); call after .train()."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
