"""Fine-tuning starts from an exported ONNX file: its weights load back into PyTorch."""
import numpy as np
import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.nets import export  # noqa: E402
from depthdet_ros.nets.onnx_weights import (freeze_batchnorm, load_onnx_weights,  # noqa: E402
                                            OnnxWeightsError)
from depthdet_ros.nets.registry import build_model  # noqa: E402
from test_nets_export import NAMES, tiny_depth, tiny_detector  # noqa: E402


def first_output(model, sample):
    """Return the model's (first) output on `sample` in eval mode, as numpy."""
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(sample))
    return (out[0] if isinstance(out, (tuple, list)) else out).numpy()


def assert_reproduces(fresh, exported, untrained, path, input_hw, atol):
    """Check that the loaded model computes what the exported one and the ONNX file do.

    Checked here apart from load_onnx_weights' own comparison (which a wrong copy of the
    weights could pass if the comparison were wrong too: test audit), on an image-like
    input of its own.
    """
    import onnxruntime as ort

    sample = np.random.default_rng(5).uniform(0, 1, (1, 3, *input_hw)).astype(np.float32)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    onnx_out = session.run(None, {session.get_inputs()[0].name: sample})[0]
    loaded = first_output(fresh, sample)
    np.testing.assert_allclose(loaded, onnx_out, atol=atol)
    np.testing.assert_allclose(loaded, first_output(exported, sample), atol=atol)
    # The sample tells weights apart: a freshly built (`untrained`) model differs.
    assert np.abs(first_output(untrained, sample) - onnx_out).max() > 100 * atol


def test_depth_net_weights_round_trip_through_onnx(tmp_path):
    path = str(tmp_path / 'depth.onnx')
    exported = tiny_depth()
    export.export_depth(exported, path, 'hybrid_mobilenetv2', (64, 96))
    fresh = build_model('hybrid_mobilenetv2', width=0.35, decoder_width=0.25)
    # Folded Conv+BatchNorm pairs and by-name tensors together reproduce the export.
    assert load_onnx_weights(fresh, path, (64, 96)) < 1e-4
    assert_reproduces(fresh, exported,
                      build_model('hybrid_mobilenetv2', width=0.35, decoder_width=0.25), path,
                      (64, 96), atol=1e-4)
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
    exported = tiny_detector()
    export.export_detector(exported, path, NAMES, (64, 64))
    fresh = build_model('yolov5n', len(NAMES), width_multiple=0.125)
    assert load_onnx_weights(fresh, path, (64, 64)) < 1e-2  # pixels, boxes up to 64
    assert_reproduces(fresh, exported, build_model('yolov5n', len(NAMES), width_multiple=0.125),
                      path, (64, 64), atol=1e-2)


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
