"""Training losses against hand-computed values; YOLOv5 target assignment by hand."""
import math

import pytest

torch = pytest.importorskip('torch')

from depthdet_ros.train.losses import (  # noqa: E402
    bbox_ciou, berhu_loss, build_targets, gradient_l1, l1_grad_ssim_loss, L1GradSsimWeights,
    silog_grad_loss, SilogGradWeights, YoloLossConfig, YoloV5Loss)

pytestmark = pytest.mark.torch


def as_map(values):
    """Return the values as a [1, 1, 1, N] tensor."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def test_berhu_is_l1_below_c_and_scaled_l2_above():
    # Residuals 0, 1, 2, 9: c = 0.2 * 9 = 1.8; 0 and 1 stay L1, 2 and 9 go (r^2 + c^2) / 2c.
    pred, target = as_map([1, 2, 3, 10]), as_map([1, 1, 1, 1])
    mask = torch.ones_like(pred, dtype=torch.bool)
    expected = (0 + 1 + (4 + 1.8 ** 2) / 3.6 + (81 + 1.8 ** 2) / 3.6) / 4
    assert berhu_loss(pred, target, mask).item() == pytest.approx(expected, rel=1e-6)


def test_berhu_threshold_comes_from_valid_pixels_only():
    # Masking the 9 m residual makes c = 0.2 * 2 = 0.4: 1 and 2 are now above c.
    pred, target = as_map([1, 2, 3, 10]), as_map([1, 1, 1, 1])
    mask = torch.tensor([True, True, True, False]).view(1, 1, 1, -1)
    expected = (0 + (1 + 0.16) / 0.8 + (4 + 0.16) / 0.8) / 3
    assert berhu_loss(pred, target, mask).item() == pytest.approx(expected, rel=1e-6)


def test_berhu_gradient_is_zero_on_masked_pixels():
    # The one valid residual is -1, c = 0.2 (held constant): d/dp (r^2 + c^2) / 2c = r / c.
    pred = as_map([1.0, 5.0]).requires_grad_()
    berhu_loss(pred, as_map([2.0, 1.0]), torch.tensor([True, False]).view(1, 1, 1, 2)).backward()
    assert pred.grad.view(-1).tolist() == pytest.approx([-5.0, 0.0])


def test_gradient_l1_counts_only_pairs_of_valid_pixels():
    pred = as_map([0, 1, 2, 3, 4])
    target = as_map([0, 0, 2, 6, 10])
    mask = torch.tensor([True, True, False, True, True]).view(1, 1, 1, -1)
    # valid pairs (0,1): pred 1 vs target 0 -> 1; (3,4): 1 vs 4 -> 3. No y pairs (1 row).
    assert gradient_l1(pred, target, mask).item() == pytest.approx(2.0)


def test_l1_grad_ssim_of_a_perfect_prediction_is_zero_and_masks_invalid():
    target = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 5 + 1
    mask = torch.ones_like(target, dtype=torch.bool)
    assert l1_grad_ssim_loss(target.clone(), target, mask).item() == pytest.approx(0, abs=1e-6)
    # Garbage in invalid target pixels changes nothing.
    corrupted = target.clone()
    corrupted[0, 0, 2, 3] = 100.0
    mask[0, 0, 2, 3] = False
    pred = target + 0.5
    assert l1_grad_ssim_loss(pred, corrupted, mask).item() == pytest.approx(
        l1_grad_ssim_loss(pred, torch.where(mask, corrupted, pred), mask).item(), rel=1e-6)


def test_l1_grad_ssim_weights_a_constant_offset_by_l1_only():
    # A constant offset has equal gradients; SSIM of two flat maps offset by a is
    # (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1) (variances 0).
    weights = L1GradSsimWeights(depth_scale=10.0)
    target = torch.full((1, 1, 4, 4), 2.0)
    pred = target + 1.0
    mask = torch.ones_like(target, dtype=torch.bool)
    mx, my, c1 = 0.3, 0.2, 0.01 ** 2
    ssim = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    expected = 0.1 * 0.1 + 0.9 * (1 - ssim) / 2
    value = l1_grad_ssim_loss(pred, target, mask, weights).item()
    assert value == pytest.approx(expected, rel=1e-3)  # float32 variances are not exactly 0


def test_silog_is_blind_to_half_the_scale_with_lambda_one_half():
    # d = log 2 everywhere: mean(d^2) - 0.5 mean(d)^2 = 0.5 log(2)^2, no gradient term.
    target = torch.full((1, 1, 4, 4), 3.0)
    mask = torch.ones_like(target, dtype=torch.bool)
    value = silog_grad_loss(target * 2, target, mask, SilogGradWeights())
    assert value.item() == pytest.approx(0.5 * math.log(2) ** 2, rel=1e-6)
    # lambda = 1 is fully scale invariant.
    full = silog_grad_loss(target * 2, target, mask, SilogGradWeights(variance_focus=1.0))
    assert full.item() == pytest.approx(0.0, abs=1e-7)


def test_silog_ignores_masked_pixels_and_empty_batches():
    target = torch.full((2, 1, 2, 2), 2.0)
    pred = target.clone()
    pred[0, 0, 0, 0] = 50.0
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[0, 0, 0, 0] = False
    mask[1] = False
    assert silog_grad_loss(pred, target, mask).item() == pytest.approx(0.0, abs=1e-7)


def test_ciou_of_identical_boxes_is_one_and_penalises_centre_distance():
    box = torch.tensor([[5.0, 5.0, 2.0, 2.0]])
    assert bbox_ciou(box, box).item() == pytest.approx(1.0, abs=1e-5)
    # Same size, centres 2 apart horizontally: IoU 0, enclosing box 4 x 2 -> rho^2/c^2 = 4/20.
    shifted = torch.tensor([[7.0, 5.0, 2.0, 2.0]])
    assert bbox_ciou(box, shifted).item() == pytest.approx(-4 / 20, abs=1e-5)


def test_build_targets_matches_anchors_by_ratio_and_adds_nearest_neighbours():
    # One 8x8 grid level, anchors (1, 1) and (8, 8) cells. A target 2x2 cells centred at
    # (3.3, 4.8) cells: ratio to (1, 1) is 2 < 4 (match), to (8, 8) is 4, not < 4 (no match).
    # Fractions x 0.3 (< 0.5: left neighbour), y 0.8 (> 0.5: lower neighbour).
    anchors = torch.tensor([[[1.0, 1.0], [8.0, 8.0]]])
    targets = torch.tensor([[0, 2, 3.3 / 8, 4.8 / 8, 2 / 8, 2 / 8]])
    (level,) = build_targets(targets, anchors, [(8, 8)], anchor_t=4.0)
    cells = sorted(zip(level.cell_x.tolist(), level.cell_y.tolist()))
    assert cells == [(2, 4), (3, 4), (3, 5)]
    assert level.anchor.tolist() == [0, 0, 0]
    assert level.cls.tolist() == [2, 2, 2]
    for x, y, box in zip(level.cell_x.tolist(), level.cell_y.tolist(), level.box.tolist()):
        # Offsets are relative to the assigned cell: in (-0.5, 1.5), the range 2 sigma - 0.5
        # can reach.
        assert box[0] == pytest.approx(3.3 - x, abs=1e-5)
        assert box[1] == pytest.approx(4.8 - y, abs=1e-5)
        assert box[2:] == pytest.approx([2.0, 2.0])


def test_build_targets_skips_neighbours_beyond_the_image_border():
    # Centre within the first cell: no left / upper neighbour (x, y > 1 fails).
    anchors = torch.tensor([[[1.0, 1.0]]])
    targets = torch.tensor([[0, 0, 0.3 / 4, 0.2 / 4, 1 / 4, 1 / 4]])
    (level,) = build_targets(targets, anchors, [(4, 4)], anchor_t=4.0)
    assert list(zip(level.cell_x.tolist(), level.cell_y.tolist())) == [(0, 0)]


def test_yolo_loss_gains_and_perfect_objectness_target():
    from depthdet_ros.nets.yolov5 import build_yolov5
    model = build_yolov5('n', 3, width_multiple=0.125).train()
    loss_fn = YoloV5Loss(model.detect, YoloLossConfig(image_size=64))
    assert loss_fn.obj_gain == pytest.approx((64 / 640) ** 2)
    assert loss_fn.cls_gain == pytest.approx(0.5 * 3 / 80)
    raw = model(torch.zeros(2, 3, 64, 64))
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.4], [1, 2, 0.25, 0.3, 0.1, 0.1]])
    loss, parts = loss_fn(raw, targets)
    assert loss.item() == pytest.approx(parts.sum().item() * 2, rel=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in model.detect.m.parameters())
