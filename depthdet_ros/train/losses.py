"""Training losses: three depth losses from the seeds and YOLOv5's detection loss.

Depth losses take prediction, target and a validity mask, all [B, 1, h, w]; invalid
pixels never contribute. They return a scalar tensor.

- berhu (seed 003): reverse Huber on |p - y| with c = 0.2 * max |p - y| over the batch.
- l1_grad_ssim (seeds 000, 002): 0.1 * L1 + 1 * gradient L1 + 0.9 * (1 - SSIM) / 2 on depth
  divided by `depth_scale` (so SSIM's constants see a [0, 1] range).
- silog_grad (seed 004): scale-invariant log loss (Eigen et al., lambda 0.5) plus
  multi-scale gradient matching of the log-depth difference (Li and Snavely).

`YoloV5Loss` follows ultralytics YOLOv5 v7.0: targets matched to anchors by width/height
ratio below `anchor_t`, each also assigned to the two neighbouring cells its centre lies
closest to, CIoU box loss, BCE objectness with IoU targets balanced [4.0, 1.0, 0.4] over
P3-P5, BCE classes; gains box 0.05, obj 1.0 * (imgsz / 640)^2, cls 0.5 * C / 80 (each times
3 / levels).
"""
from dataclasses import dataclass
import math
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

BERHU_C_FRACTION = 0.2
EPS = 1e-7


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum()
    if count == 0:
        return values.sum() * 0.0  # keeps the graph: a batch with no valid pixel adds nothing
    return (values * mask).sum() / count


def berhu_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reverse Huber: |r| below c, (r^2 + c^2) / (2c) above; c = 0.2 * max |r| (valid only)."""
    mask = mask.to(pred.dtype)
    residual = (pred - target).abs() * mask
    c = BERHU_C_FRACTION * residual.detach().max()
    if c <= 0:
        return _masked_mean(residual, mask)
    squared = (residual * residual + c * c) / (2 * c)
    return _masked_mean(torch.where(residual <= c, residual, squared), mask)


def _gradients(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _pair_masks(mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return mask[..., :, 1:] * mask[..., :, :-1], mask[..., 1:, :] * mask[..., :-1, :]


def gradient_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |d/dx p - d/dx y| + mean |d/dy p - d/dy y| over pixel pairs both valid."""
    mask = mask.to(pred.dtype)
    pdx, pdy = _gradients(pred)
    tdx, tdy = _gradients(target)
    mdx, mdy = _pair_masks(mask)
    return _masked_mean((pdx - tdx).abs(), mdx) + _masked_mean((pdy - tdy).abs(), mdy)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 3,
             c1: float = 0.01 ** 2, c2: float = 0.03 ** 2) -> torch.Tensor:
    """SSIM per pixel with a window x window box filter (reflect-padded), same size as x."""
    pad = window // 2
    x = F.pad(x, (pad,) * 4, mode='reflect')
    y = F.pad(y, (pad,) * 4, mode='reflect')
    mu_x, mu_y = F.avg_pool2d(x, window, 1), F.avg_pool2d(y, window, 1)
    var_x = F.avg_pool2d(x * x, window, 1) - mu_x * mu_x
    var_y = F.avg_pool2d(y * y, window, 1) - mu_y * mu_y
    cov = F.avg_pool2d(x * y, window, 1) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / \
        ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


@dataclass(frozen=True)
class L1GradSsimWeights:
    """Term weights of l1_grad_ssim (seed 000) and the depth normaliser in metres."""

    l1: float = 0.1
    grad: float = 1.0
    ssim: float = 0.9
    depth_scale: float = 10.0


def l1_grad_ssim_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      weights: L1GradSsimWeights = L1GradSsimWeights()) -> torch.Tensor:
    """0.1 L1 + 1 gradient L1 + 0.9 (1 - SSIM) / 2 on depth / depth_scale.

    Invalid target pixels take the (detached) prediction's value before SSIM, so they
    add no structure of their own; SSIM is then averaged over valid pixels only.
    """
    mask_f = mask.to(pred.dtype)
    p = pred / weights.depth_scale
    y = torch.where(mask, target / weights.depth_scale, p.detach())
    l1 = _masked_mean((p - y).abs(), mask_f)
    grad = gradient_l1(p, y, mask)
    ssim = _masked_mean(((1 - ssim_map(p, y)) / 2).clamp(0, 1), mask_f)
    return weights.l1 * l1 + weights.grad * grad + weights.ssim * ssim


@dataclass(frozen=True)
class SilogGradWeights:
    """silog_grad options: Eigen's lambda, gradient-matching weight and scales."""

    variance_focus: float = 0.5
    grad: float = 0.5
    scales: int = 4
    min_depth: float = 1e-3


def silog_grad_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                    weights: SilogGradWeights = SilogGradWeights()) -> torch.Tensor:
    """Scale-invariant log loss + multi-scale gradient matching of log p - log y.

    silog = mean(d^2) - lambda * mean(d)^2 with d = log p - log y per image over its valid
    pixels, averaged over the batch; gradient term: sum over scales (2x subsampling) of the
    mean |grad d| over valid pixel pairs.
    """
    mask_f = mask.to(pred.dtype)
    diff = (torch.log(pred.clamp_min(weights.min_depth))
            - torch.log(target.clamp_min(weights.min_depth))) * mask_f
    count = mask_f.sum(dim=(1, 2, 3))
    has_pixels = count > 0
    safe_count = count.clamp_min(1)
    mean_sq = (diff * diff).sum(dim=(1, 2, 3)) / safe_count
    mean = diff.sum(dim=(1, 2, 3)) / safe_count
    silog = ((mean_sq - weights.variance_focus * mean * mean) * has_pixels).sum() \
        / has_pixels.sum().clamp_min(1)
    grad = pred.sum() * 0.0
    for scale in range(weights.scales):
        step = 2 ** scale
        d, m = diff[..., ::step, ::step], mask_f[..., ::step, ::step]
        ddx, ddy = _gradients(d)
        mdx, mdy = _pair_masks(m)
        grad = grad + _masked_mean(ddx.abs(), mdx) + _masked_mean(ddy.abs(), mdy)
    return silog + weights.grad * grad


DEPTH_LOSSES: Dict[str, Callable[..., torch.Tensor]] = {
    'berhu': berhu_loss,
    'l1_grad_ssim': l1_grad_ssim_loss,
    'silog_grad': silog_grad_loss,
}


# --- YOLOv5 -----------------------------------------------------------------------------

def bbox_ciou(box1: torch.Tensor, box2: torch.Tensor) -> torch.Tensor:
    """Complete IoU of paired boxes [N, 4] given as (cx, cy, w, h)."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0) * \
        (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + EPS
    iou = inter / union
    enclose_w = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    enclose_h = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    diagonal_sq = enclose_w ** 2 + enclose_h ** 2 + EPS
    centre_sq = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + EPS)) - torch.atan(w1 / (h1 + EPS))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + EPS))
    return iou - (centre_sq / diagonal_sq + v * alpha)


@dataclass(frozen=True)
class YoloLossConfig:
    """YOLOv5 hyper-parameters of the loss (hyp.scratch-low.yaml values)."""

    box: float = 0.05
    obj: float = 1.0
    cls: float = 0.5
    anchor_t: float = 4.0
    balance: Tuple[float, ...] = (4.0, 1.0, 0.4)
    image_size: int = 640


# Centre cell and its four neighbours, in cells; a target also claims the two neighbours
# its centre is nearest to (offset 0.5 cell), tripling the positives.
_NEIGHBOUR_OFFSETS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]],
                                  dtype=torch.float32)
_NEIGHBOUR_REACH = 0.5


@dataclass
class LevelTargets:
    """Positives of one level: batch, anchor, cell (gy, gx) indices and their targets."""

    image: torch.Tensor       # [M] image index in the batch
    anchor: torch.Tensor      # [M] anchor index 0..2
    cell_y: torch.Tensor      # [M]
    cell_x: torch.Tensor      # [M]
    box: torch.Tensor         # [M, 4] (x, y offset from the cell corner, w, h) in cells
    anchor_wh: torch.Tensor   # [M, 2] the matched anchor in cells
    cls: torch.Tensor         # [M] class id
    target: torch.Tensor      # [M] row of `targets` (its instance mask, train.joint)


def build_targets(targets: torch.Tensor, anchors: torch.Tensor,
                  grid_shapes: Sequence[Tuple[int, int]], anchor_t: float
                  ) -> Sequence[LevelTargets]:
    """Assign ground truth to anchors and cells, per level, as YOLOv5 does.

    `targets` [N, 6]: (image index, class, cx, cy, w, h) with coordinates normalised to
    [0, 1]; `anchors` [levels, A, 2] in grid units of each level; `grid_shapes` (ny, nx) per
    level. A target goes to every anchor whose width and height ratios both lie within
    1/anchor_t..anchor_t, in its own cell and the two nearest neighbours (x and y), unless
    the centre lies within the image's outermost half cell in that direction.
    """
    device = targets.device
    offsets = _NEIGHBOUR_OFFSETS.to(device) * _NEIGHBOUR_REACH
    out = []
    for level, (ny, nx) in enumerate(grid_shapes):
        level_anchors = anchors[level].to(device)
        scale = torch.tensor([nx, ny, nx, ny], dtype=targets.dtype, device=device)
        xywh = targets[:, 2:6] * scale                                     # [N, 4] cells
        # [A, N]: does anchor a fit target n?
        ratio = xywh[None, :, 2:4] / level_anchors[:, None, :]
        fits = torch.max(ratio, 1 / ratio).max(dim=2).values < anchor_t
        anchor_index, target_index = fits.nonzero(as_tuple=True)
        xy = xywh[target_index, :2]
        inverse_xy = scale[:2] - xy
        near_low = (xy % 1 < _NEIGHBOUR_REACH) & (xy > 1)
        near_high = (inverse_xy % 1 < _NEIGHBOUR_REACH) & (inverse_xy > 1)
        # [5, M]: centre always, then left/up neighbours (x-1 / y-1), right/down.
        use = torch.stack((torch.ones_like(near_low[:, 0]), near_low[:, 0], near_low[:, 1],
                           near_high[:, 0], near_high[:, 1]))
        choice, match = use.nonzero(as_tuple=True)
        target_index, anchor_index = target_index[match], anchor_index[match]
        xy = xy[match]
        cell = (xy - offsets[choice]).long()
        cell_x = cell[:, 0].clamp(0, nx - 1)
        cell_y = cell[:, 1].clamp(0, ny - 1)
        box = torch.cat((xy - torch.stack((cell_x, cell_y), dim=1),
                         xywh[target_index, 2:4]), dim=1)
        out.append(LevelTargets(image=targets[target_index, 0].long(), anchor=anchor_index,
                                cell_y=cell_y, cell_x=cell_x, box=box,
                                anchor_wh=level_anchors[anchor_index],
                                cls=targets[target_index, 1].long(), target=target_index))
    return out


class YoloV5Loss(nn.Module):
    """YOLOv5's training loss for a nets.yolov5.YoloV5 in training mode."""

    def __init__(self, detect: nn.Module, config: YoloLossConfig = YoloLossConfig()):
        super().__init__()
        self.detect = detect
        self.config = config
        levels = detect.num_levels
        if len(config.balance) != levels:
            raise ValueError(f'{len(config.balance)} balance weights for {levels} levels')
        level_factor = 3.0 / levels
        self.box_gain = config.box * level_factor
        self.obj_gain = config.obj * (config.image_size / 640) ** 2 * level_factor
        self.cls_gain = config.cls * detect.num_classes / 80 * level_factor

    def forward(self, raw: Sequence[torch.Tensor], targets: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Raw level maps [B, A, ny, nx, 5 + C] and targets [N, 6] -> (loss, parts).

        `loss` is (box + obj + cls) * batch size, as YOLOv5 back-propagates; `parts` is the
        detached [box, obj, cls] per image.
        """
        device = raw[0].device
        batch = raw[0].shape[0]
        grids = [(int(x.shape[2]), int(x.shape[3])) for x in raw]
        assigned = build_targets(targets.to(device), self.detect.anchors, grids,
                                 self.config.anchor_t)
        box_loss = torch.zeros((), device=device)
        obj_loss = torch.zeros((), device=device)
        cls_loss = torch.zeros((), device=device)
        num_classes = self.detect.num_classes
        for level, (pred, tgt) in enumerate(zip(raw, assigned)):
            obj_target = torch.zeros(pred.shape[:4], dtype=pred.dtype, device=device)
            if tgt.image.numel():
                cell = pred[tgt.image, tgt.anchor, tgt.cell_y, tgt.cell_x]        # [M, 5 + C]
                xy = cell[:, :2].sigmoid() * 2 - 0.5
                wh = (cell[:, 2:4].sigmoid() * 2) ** 2 * tgt.anchor_wh
                ciou = bbox_ciou(torch.cat((xy, wh), dim=1), tgt.box)
                box_loss = box_loss + (1.0 - ciou).mean()
                # Where several targets claim one cell the best-fitting one sets the target
                # (YOLOv5's sort_obj_iou): ascending IoU order, so the largest lands last and
                # the result does not depend on scatter order.
                iou = ciou.detach().clamp(0).to(pred.dtype)
                order = iou.argsort()
                obj_target[tgt.image[order], tgt.anchor[order], tgt.cell_y[order],
                           tgt.cell_x[order]] = iou[order]
                if num_classes > 1:
                    cls_target = F.one_hot(tgt.cls, num_classes).to(pred.dtype)
                    cls_loss = cls_loss + F.binary_cross_entropy_with_logits(
                        cell[:, 5:], cls_target)
            obj_loss = obj_loss + self.config.balance[level] * \
                F.binary_cross_entropy_with_logits(pred[..., 4], obj_target)
        box_loss = box_loss * self.box_gain
        obj_loss = obj_loss * self.obj_gain
        cls_loss = cls_loss * self.cls_gain
        total = box_loss + obj_loss + cls_loss
        return total * batch, torch.stack((box_loss, obj_loss, cls_loss)).detach()
