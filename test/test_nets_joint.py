"""Joint network (nets.joint): shapes, ONNX export parity and metadata, the runtime on it."""
import json

import numpy as np
import pytest

torch = pytest.importorskip('torch')
onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from depthdet_ros.cli import main as depthdet  # noqa: E402
from depthdet_ros.core import metadata  # noqa: E402
from depthdet_ros.core.joint import JointModel  # noqa: E402
from depthdet_ros.nets import export  # noqa: E402
from depthdet_ros.nets.registry import build_model, checkpoint_config, \
    model_from_checkpoint  # noqa: E402
from test_nets_export import randomise, read_back  # noqa: E402

pytestmark = pytest.mark.torch

NAMES = ['cup', 'chair', 'person']


def tiny_joint(num_masks=4):
    """Build a 3-class joint net at an eighth of n's width with random O(1) weights."""
    model = randomise(build_model('joint_yolov5n', len(NAMES), width_multiple=0.125,
                                  num_masks=num_masks))
    with torch.no_grad():
        model.depth_decoder.head.bias.fill_(2.0)  # mostly positive depth
    return model


def test_outputs_and_shared_backbone():
    """Eval: rows with k coefficients, prototypes at 1/4, depth at 1/2; one backbone."""
    model = tiny_joint()
    with torch.no_grad():
        rows, protos, depth = model(torch.rand(2, 3, 64, 96))
    assert rows.shape == (2, 3 * (8 * 12 + 4 * 6 + 2 * 3), 5 + 3 + 4)
    assert protos.shape == (2, 4, 16, 24) and depth.shape == (2, 1, 32, 48)
    assert (rows[..., 4:8] >= 0).all() and (rows[..., 4:8] <= 1).all()
    assert (rows[..., 8:] < 0).any()  # coefficients stay linear
    model.train()
    raw, _, _ = model(torch.rand(2, 3, 64, 96))
    assert [tuple(x.shape) for x in raw] == [(2, 3, 8, 12, 12), (2, 3, 4, 6, 12),
                                             (2, 3, 2, 3, 12)]
    # Every head's loss reaches the shared stem.
    (raw[0].sum() + model(torch.rand(2, 3, 64, 96))[2].sum()).backward()
    assert model.model[0].conv.weight.grad.abs().sum() > 0


def test_export_parity_metadata_and_runtime(tmp_path):
    """FP32: all three outputs within tolerance; the metadata the runtime reads."""
    path = tmp_path / 'joint.onnx'
    report = export.export_joint(tiny_joint(), str(path), NAMES, (64, 96),
                                 arch_kwargs={'width_multiple': 0.125, 'num_masks': 4},
                                 canonical_focal=120.0)
    assert set(report.max_abs_diff) == {'boxes (px)', 'objectness/class', 'mask coefficients',
                                        'prototypes', 'depth (m)'}
    assert max(report.fraction_used.values()) <= 1.0
    assert report.max_abs_diff['depth (m)'] <= 1e-4
    props, session = read_back(path)
    assert props[metadata.TASK] == metadata.TASK_JOINT
    assert metadata.parse_names(props[metadata.NAMES]) == NAMES
    assert props[metadata.STRIDE] == '32' and props[metadata.MASK_PROTOTYPES] == '4'
    assert (props[metadata.PROTO_STRIDE], props[metadata.DEPTH_STRIDE]) == ('4', '2')
    assert float(props[metadata.CANONICAL_FOCAL]) == 120.0
    assert json.loads(props[metadata.INPUT_SIZE]) == [64, 96]
    assert [o.name for o in session.get_outputs()] == ['output0', 'protos', 'depth']
    model = JointModel(str(path))
    assert (model.num_classes, model.num_masks, model.canonical_focal) == (3, 4, 120.0)
    result = model.infer(np.random.default_rng(0).integers(0, 255, (90, 70, 3), np.uint8))
    assert result.depth.shape == (90, 70) and len(result.masks) == len(result.detections)


def test_fp16_export_and_wrong_output_fails(tmp_path, monkeypatch):
    """FP16 passes its looser limits; a prototype output off by 0.01 fails the FP32 check."""
    model = tiny_joint()
    report = export.export_joint(model, str(tmp_path / 'half.onnx'), NAMES, (64, 64),
                                 fp16=True)
    assert report.fp16 and max(report.fraction_used.values()) <= 1.0
    run = export._run_onnxruntime

    def shifted_protos(*args):
        rows, protos, depth = run(*args)
        return [rows, protos + 0.01, depth]

    monkeypatch.setattr(export, '_run_onnxruntime', shifted_protos)
    with pytest.raises(export.ExportVerificationError, match='prototypes'):
        export.export_joint(model, str(tmp_path / 'bad.onnx'), NAMES, (64, 64))
    assert not (tmp_path / 'bad.onnx').exists()


def test_cli_exports_a_joint_checkpoint(tmp_path, capsys):
    """`depthdet export --weights` on a joint checkpoint: rebuilt, exported, focal recorded."""
    model = tiny_joint(num_masks=2)
    kwargs = {'width_multiple': 0.125, 'num_masks': 2}
    config = checkpoint_config('joint_yolov5n', kwargs, NAMES, (64, 64))
    config['canonical_focal'] = 80.0
    weights = tmp_path / 'final.pt'
    torch.save({'model': model.state_dict(), 'config': config}, weights)
    rebuilt, _ = model_from_checkpoint(torch.load(weights, weights_only=True))
    assert rebuilt.num_masks == 2
    out = tmp_path / 'joint.onnx'
    assert depthdet(['export', '--weights', str(weights), '-o', str(out)]) == 0
    assert 'prototypes' in capsys.readouterr().out
    props, _ = read_back(out)
    assert props[metadata.TASK] == 'joint' and float(props[metadata.CANONICAL_FOCAL]) == 80.0
    assert json.loads(props[metadata.ARCH_KWARGS]) == kwargs


def test_mobilenet_variant_shares_its_features_and_exports(tmp_path):
    """joint_mobilenetv2: the same outputs, every head trains the MobileNetV2 stem, export."""
    model = randomise(build_model('joint_mobilenetv2', len(NAMES), width_multiple=0.25,
                                  num_masks=4, depth_stride=4, decoder_width=0.5))
    assert model.arch == 'joint_mobilenetv2-w0.25'
    with torch.no_grad():
        model.depth_decoder.head.bias.fill_(2.0)
        rows, protos, depth = model(torch.rand(1, 3, 64, 96))
    assert rows.shape == (1, 3 * (8 * 12 + 4 * 6 + 2 * 3), 5 + 3 + 4)
    assert protos.shape == (1, 4, 16, 24) and depth.shape == (1, 1, 16, 24)
    model.train()
    raw, protos, depth = model(torch.rand(2, 3, 64, 96))
    stem = model.features[0][0].weight
    for output in (raw[2].sum(), protos.sum(), depth.sum()):
        stem.grad = None
        output.backward(retain_graph=True)
        assert stem.grad.abs().sum() > 0
    model.eval()
    path = tmp_path / 'mobile.onnx'
    kwargs = {'width_multiple': 0.25, 'num_masks': 4, 'depth_stride': 4, 'decoder_width': 0.5}
    report = export.export_joint(model, str(path), NAMES, (64, 96), arch='joint_mobilenetv2',
                                 arch_kwargs=kwargs, canonical_focal=120.0)
    assert max(report.fraction_used.values()) <= 1.0
    props, _ = read_back(path)
    assert props[metadata.ARCH] == 'joint_mobilenetv2'
    assert props[metadata.DEPTH_STRIDE] == '4'
    result = JointModel(str(path)).infer(
        np.random.default_rng(1).integers(0, 255, (90, 70, 3), np.uint8))
    assert result.depth.shape == (90, 70)
    # A checkpoint names it by registry name and builder options.
    rebuilt, _ = model_from_checkpoint({'model': model.state_dict(), 'config': checkpoint_config(
        'joint_mobilenetv2', kwargs, names=NAMES)})
    assert type(rebuilt) is type(model)
    with pytest.raises(ValueError, match='takes no depth_multiple'):
        build_model('joint_mobilenetv2', 3, depth_multiple=0.5)
