"""Fine-tuning starts from an exported ONNX file: its weights load back into PyTorch."""
import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.nets import export  # noqa: E402
from depthdet_ros.nets.onnx_weights import (freeze_batchnorm, load_onnx_weights,  # noqa: E402
                                            OnnxWeightsError)
from depthdet_ros.nets.registry import build_model  # noqa: E402
from test_nets_export import NAMES, tiny_depth, tiny_detector  # noqa: E402


def test_depth_net_weights_round_trip_through_onnx(tmp_path):
    path = str(tmp_path / 'depth.onnx')
    export.export_depth(tiny_depth(), path, 'hybrid_mobilenetv2', (64, 96))
    fresh = build_model('hybrid_mobilenetv2', width=0.35, decoder_width=0.25)
    # Folded Conv+BatchNorm pairs and by-name tensors together reproduce the export.
    assert load_onnx_weights(fresh, path, (64, 96)) < 1e-4
    sample = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = fresh.eval()(sample)
        fresh.train()
        fresh.dropout.eval()  # the decoder's dropout aside, training computes the same
        freeze_batchnorm(fresh)  # batch statistics would undo the folding
        assert torch.allclose(fresh(sample), expected, atol=1e-5)
        fresh.train()
        fresh.dropout.eval()
        assert not torch.allclose(fresh(sample), expected, atol=1e-2)


def test_detector_weights_round_trip_through_onnx(tmp_path):
    path = str(tmp_path / 'det.onnx')
    export.export_detector(tiny_detector(), path, NAMES, (64, 64))
    fresh = build_model('yolov5n', len(NAMES), width_multiple=0.125)
    assert load_onnx_weights(fresh, path, (64, 64)) < 1e-2  # pixels, boxes up to 64


def test_another_architecture_is_refused(tmp_path):
    path = str(tmp_path / 'depth.onnx')
    export.export_depth(tiny_depth(), path, 'hybrid_mobilenetv2', (64, 96),
                        arch_kwargs={'width': 0.35, 'decoder_width': 0.25})
    wider = build_model('hybrid_mobilenetv2', width=0.5, decoder_width=0.25)
    # The message names what the file was built with (an outsider tried `train joint
    # --init-from models/joint.onnx` without the bundled model's half-width options).
    with pytest.raises(OnnxWeightsError, match='exported as hybrid_mobilenetv2 with builder '
                       r'options \{"width": 0.35, "decoder_width": 0.25\} \(its metadata\)'):
        load_onnx_weights(wider, path, (64, 96))


def test_the_files_own_input_size_is_used_for_the_check(tmp_path):
    # A training image size other than the export's was an onnxruntime traceback.
    path = str(tmp_path / 'det.onnx')
    export.export_detector(tiny_detector(), path, NAMES, (64, 64))
    fresh = build_model('yolov5n', len(NAMES), width_multiple=0.125)
    assert load_onnx_weights(fresh, path, (32, 32)) < 1e-2
