"""YOLOv5 v7.0 architecture: sizes, output layout and the box decode, by hand."""
import math

import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.nets.yolov5 import DEFAULT_ANCHORS, build_yolov5  # noqa: E402

pytestmark = pytest.mark.torch


def _param_count(variant, num_classes=80, **kwargs):
    with torch.device('meta'):
        model = build_yolov5(variant, num_classes, **kwargs)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('variant, published', [('n', 1.9e6), ('s', 7.2e6)])
def test_parameter_count_matches_published(variant, published):
    """YOLOv5n and s at 80 classes are within 2 % of the published 1.9 M and 7.2 M."""
    assert abs(_param_count(variant) / published - 1) < 0.02


def test_parameter_count_is_exactly_ultralytics():
    """The unfused counts ultralytics' v7.0 model summary prints for n, s, m."""
    assert [_param_count(v) for v in 'nsm'] == [1872157, 7235389, 21190557]


def test_custom_multiples_give_a_smaller_named_model():
    """A width below n's shrinks the model and is recorded in its name."""
    with torch.device('meta'):
        model = build_yolov5('n', 3, width_multiple=0.125)
    assert model.arch == 'yolov5n-d0.33-w0.125'
    assert sum(p.numel() for p in model.parameters()) < _param_count('n', 3) / 2


def test_unknown_variant_is_rejected():
    """Only n, s, m (optionally prefixed yolov5) exist."""
    with pytest.raises(ValueError, match='unknown YOLOv5 variant'):
        build_yolov5('x9', 80)


def test_layout_names_anchors_and_strides():
    """Ultralytics key names, anchors kept as a grid-unit buffer, strides 8/16/32."""
    model = build_yolov5('yolov5n', 80)
    keys = model.state_dict().keys()
    assert 'model.0.conv.weight' in keys and 'model.24.anchors' in keys
    assert 'model.24.m.2.bias' in keys
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    anchors_px = model.detect.anchors * model.stride.view(3, 1, 1)
    assert anchors_px.tolist() == [[list(map(float, a)) for a in level]
                                   for level in DEFAULT_ANCHORS]
    bn = model.model[0].bn
    assert (bn.eps, bn.momentum) == (1e-3, 0.03)


def _tiny(num_classes=2):
    return build_yolov5('n', num_classes, width_multiple=0.125)


def test_output_shapes_eval_and_train():
    """Eval rows 3 * sum(ny * nx) x (5 + C); training keeps per-level raw maps."""
    model = _tiny(num_classes=2).eval()
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        rows = model(images)
    assert rows.shape == (2, 3 * (8 * 12 + 4 * 6 + 2 * 3), 7)
    model.train()
    maps = model(images)
    assert [tuple(m.shape) for m in maps] == [(2, 3, 8, 12, 7), (2, 3, 4, 6, 7), (2, 3, 2, 3, 7)]


def _logit(p):
    return math.log(p / (1 - p))


def test_decode_by_hand():
    """Zero head weights make every logit its bias; check the decoded rows by hand.

    Biases per anchor: tx -> sigma 0.5, ty -> 0.75, tw -> 0.5, th -> 0.75, obj -> 0.25,
    classes -> 0.5 and 0.9. So cx = (2*0.5 - 0.5 + x) * s = (x + 0.5) * s,
    cy = (2*0.75 - 0.5 + y) * s = (y + 1) * s, w = (2*0.5)^2 * aw = aw,
    h = (2*0.75)^2 * ah = 2.25 * ah.
    """
    model = _tiny(num_classes=2).eval()
    logits = torch.tensor([0.0, _logit(0.75), 0.0, _logit(0.75), _logit(0.25), 0.0,
                           _logit(0.9)])
    with torch.no_grad():
        for conv in model.detect.m:
            conv.weight.zero_()
            conv.bias.copy_(logits.repeat(3))
        rows = model(torch.rand(1, 3, 64, 96))[0]
    # First row: P3, anchor 0, y 0, x 0. Last row: P5, anchor 2, y 1, x 2.
    expected_first = [4.0, 8.0, 10.0, 2.25 * 13, 0.25, 0.5, 0.9]
    expected_last = [2.5 * 32, 2 * 32, 373.0, 2.25 * 326, 0.25, 0.5, 0.9]
    torch.testing.assert_close(rows[0], torch.tensor(expected_first))
    torch.testing.assert_close(rows[-1], torch.tensor(expected_last))
    # P4 block: rows 288.. ordered by anchor, then y (4), then x (6).
    p4 = rows[3 * 8 * 12:3 * 8 * 12 + 3 * 4 * 6].view(3, 4, 6, 7)
    xs = (torch.arange(6) + 0.5) * 16
    ys = (torch.arange(4) + 1.0) * 16
    for anchor, (aw, ah) in enumerate(DEFAULT_ANCHORS[1]):
        torch.testing.assert_close(p4[anchor, :, :, 0], xs.expand(4, 6))
        torch.testing.assert_close(p4[anchor, :, :, 1], ys.view(4, 1).expand(4, 6))
        torch.testing.assert_close(p4[anchor, :, :, 2], torch.full((4, 6), float(aw)))
        torch.testing.assert_close(p4[anchor, :, :, 3], torch.full((4, 6), 2.25 * ah))
    assert torch.equal(rows[345], p4[2, 1, 3])  # anchor 2, y 1, x 3


def test_bias_prior():
    """Objectness bias starts at log(8 / (640 / s)^2), class bias at log(0.6 / (C - 1))."""
    model = build_yolov5('n', 80)
    bias = model.detect.m[2].bias.detach().view(3, 85)
    torch.testing.assert_close(bias[:, 4].mean(), torch.tensor(math.log(8 / 20 ** 2)),
                               atol=0.1, rtol=0)
    torch.testing.assert_close(bias[:, 5:].mean(), torch.tensor(math.log(0.6 / 79)),
                               atol=0.1, rtol=0)
