"""FLOP and parameter counting."""
import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.nets.summary import count_flops, format_table, measure  # noqa: E402

pytestmark = pytest.mark.torch


def test_flops_of_one_conv_by_hand():
    """A 3->8 3x3 conv on 10x12 output pixels costs 2 * 8 * 3 * 9 * 120 FLOPs."""
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (10, 12)) == 2 * 8 * 3 * 9 * 10 * 12


@pytest.mark.parametrize('arch, size, params_m, gflops', [
    ('hybrid_resnet50', (256, 320), 64.6, 38.4),  # models.md: ~64.6 M, ~19 GMACs
    ('yolov5n', (640, 640), 1.87, 4.5),           # ultralytics: 1.9 M, 4.5 GFLOPs
    ('yolov5s', (640, 640), 7.24, 16.5),          # ultralytics: 7.2 M, 16.5 GFLOPs
])
def test_published_sizes(arch, size, params_m, gflops):
    """Counts on the meta device match the published figures."""
    cost = measure(arch, size)
    assert cost.params / 1e6 == pytest.approx(params_m, rel=0.01)
    assert cost.flops / 1e9 == pytest.approx(gflops, rel=0.02)
    assert arch in format_table([cost])
