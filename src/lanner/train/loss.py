"""The YOLOX training loss: SimOTA label assignment, IoU loss, objectness BCE and class BCE (Ge et al. 2021).

For each image, anchor points whose centre lies inside a ground-truth box or within
``center_radius * stride`` of its centre are candidates (centre sampling). SimOTA then gives each GT
its ``k`` cheapest candidates, ``k = max(1, int(sum of the top-10 IoUs))`` (dynamic k), with
``cost = class BCE + 3 * (-log IoU) + 1e5 * (outside box and centre region)``; an anchor claimed by
several GTs keeps the cheapest. Losses: ``5 * (1 - IoU^2)`` on the matched boxes, BCE of objectness
against the foreground mask on all anchors, and BCE of class logits against ``one_hot * IoU`` on the
foreground; the sum is divided by the number of foreground anchors (over all processes under DDP,
see ``fg_normaliser``). Computed in float32 even under AMP.

Example:
    >>> import torch
    >>> from lanner.models import create_model
    >>> model = create_model("yolox_nano", num_classes=2).train()
    >>> targets = torch.tensor([[[0, 10, 10, 60, 50]]], dtype=torch.float32)  # [class, x1, y1, x2, y2]
    >>> parts = YOLOXLoss(num_classes=2)(model(torch.zeros(1, 3, 64, 64)), targets)
    >>> sorted(parts)
    ['cls', 'iou', 'num_fg', 'obj', 'total']
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lanner.models.nms import box_iou
from lanner.models.yolox import STRIDES, flatten_levels
from lanner.train.data import IGNORE_CLASS

_EPS = 1e-7


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` centre/size boxes → corners."""
    half = boxes[..., 2:4] / 2
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of row ``i`` of ``a`` with row ``i`` of ``b`` (both ``(N, 4)`` xyxy)."""
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    return inter / (area_a + area_b - inter + _EPS)


class YOLOXLoss:
    """Callable ``(raw outputs, targets (B, M, 5) [class, x1, y1, x2, y2], class -1 = padding) -> parts``.

    Rows of class ``IGNORE_CLASS`` (-2) or below (crowd boxes) are ignore regions: no anchor is assigned to
    them, and background anchor points inside one add no objectness loss (a detector is not taught that
    unlabelled cars there are background).

    ``fg_normaliser`` maps this process's foreground count to the divisor (DDP: the mean over ranks),
    so N processes produce the gradients one process would on the whole global batch.
    """

    def __init__(
        self,
        num_classes: int,
        strides: tuple[int, ...] = STRIDES,
        center_radius: float = 2.5,
        iou_weight: float = 5.0,
        fg_normaliser: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.num_classes, self.strides = num_classes, strides
        self.center_radius, self.iou_weight = center_radius, iou_weight
        self.fg_normaliser = fg_normaliser

    def __call__(self, raw: list[torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        # read on the host before the copy (the trainer passes host targets): no device sync per step
        regions = bool((targets[..., 0] <= IGNORE_CLASS).any())
        with torch.autocast(device_type=raw[0].device.type, enabled=False):
            return self._loss([r.float() for r in raw], targets.float().to(raw[0].device), regions)

    def _loss(self, raw: list[torch.Tensor], targets: torch.Tensor, regions: bool = False) -> dict[str, torch.Tensor]:
        preds, grids, strides = flatten_levels(raw, self.strides)
        valid = targets[..., 0] >= 0
        gt_class = targets[..., 0].long().clamp(min=0)
        gt_xyxy = targets[..., 1:5]
        with torch.no_grad():
            fg_mask, gt_index, iou = self.assign(
                preds.detach(), (grids + 0.5) * strides, strides[:, 0], gt_xyxy, gt_class, valid
            )
        num_fg = fg_mask.sum().float()
        divisor = self.fg_normaliser(num_fg) if self.fg_normaliser is not None else num_fg
        divisor = divisor.clamp(min=1.0)
        batch_index, anchor = fg_mask.nonzero(as_tuple=True)  # the loss's one host sync
        matched = gt_index[batch_index, anchor]
        box_targets = gt_xyxy[batch_index, matched]
        cls_targets = F.one_hot(gt_class[batch_index, matched], self.num_classes).float()
        cls_targets = cls_targets * iou[batch_index, anchor][:, None]
        fg_preds = preds[batch_index, anchor]
        iou_loss = (1 - aligned_iou(cxcywh_to_xyxy(fg_preds[:, :4]), box_targets) ** 2).sum()
        obj_weight = self._outside_ignore(targets, (grids + 0.5) * strides, fg_mask) if regions else None
        obj_loss = F.binary_cross_entropy_with_logits(preds[..., 4], fg_mask.float(), obj_weight, reduction="sum")
        cls_loss = F.binary_cross_entropy_with_logits(fg_preds[:, 5:], cls_targets, reduction="sum")
        total = (self.iou_weight * iou_loss + obj_loss + cls_loss) / divisor
        return {
            "total": total,
            "iou": iou_loss.detach() / divisor,
            "obj": obj_loss.detach() / divisor,
            "cls": cls_loss.detach() / divisor,
            "num_fg": num_fg,
        }

    @staticmethod
    def _outside_ignore(targets: torch.Tensor, centres: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
        """Objectness weight ``(B, N)``: 0 for a background anchor point inside an ignore region (KITTI DontCare,
        COCO crowd; class ``IGNORE_CLASS``), whose objects are unlabelled, else 1."""
        regions = targets[..., 0] <= IGNORE_CLASS  # (B, M): DontCare and crowd rows
        box = targets[..., 1:5]
        x, y = centres[None, None, :, 0], centres[None, None, :, 1]  # (1, 1, N)
        inside = (x >= box[..., 0:1]) & (x <= box[..., 2:3]) & (y >= box[..., 1:2]) & (y <= box[..., 3:4])
        hidden = (inside & regions[..., None]).any(dim=1) & ~fg_mask  # (B, N)
        return (~hidden).float()

    def assign(
        self,
        preds: torch.Tensor,
        centres: torch.Tensor,
        strides: torch.Tensor,
        gt_xyxy: torch.Tensor,
        gt_class: torch.Tensor,
        valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SimOTA for a batch, without a per-image loop (GTs padded to ``G``, ``valid`` marks real ones).

        ``preds (B, N, 5 + C)``, ``centres (N, 2)``, ``strides (N,)``, ``gt_xyxy (B, G, 4)``, ``gt_class``
        and ``valid (B, G)``. Returns ``fg (B, N)``, the matched GT index ``(B, N)`` and its IoU ``(B, N)``
        (both meaningful where ``fg``).
        """
        x, y = centres[:, 0][None, None], centres[:, 1][None, None]  # (1, 1, N)
        g = gt_xyxy[..., None]  # (B, G, 4, 1)
        in_box = (x > g[:, :, 0]) & (x < g[:, :, 2]) & (y > g[:, :, 1]) & (y < g[:, :, 3])  # (B, G, N)
        gt_centre = (gt_xyxy[..., :2] + gt_xyxy[..., 2:]) / 2
        radius = self.center_radius * strides[None, None]
        in_centre = ((x - gt_centre[..., 0:1]).abs() < radius) & ((y - gt_centre[..., 1:2]).abs() < radius)
        in_box, in_centre = in_box & valid[..., None], in_centre & valid[..., None]
        candidate = (in_box | in_centre).any(1)  # (B, N)
        pair = candidate[:, None, :] & valid[..., None]  # (B, G, N) pairs that may match
        ious = torch.vmap(box_iou)(gt_xyxy, cxcywh_to_xyxy(preds[..., :4])) * pair  # (B, G, N)
        scores = (torch.sigmoid(preds[..., 5:]) * torch.sigmoid(preds[..., 4:5])).sqrt().clamp(_EPS, 1 - _EPS)
        one_hot = F.one_hot(gt_class, self.num_classes).float()  # (B, G, C)
        cls_cost = -(one_hot @ scores.log().transpose(1, 2) + (1 - one_hot) @ (1 - scores).log().transpose(1, 2))
        outside = ~(in_box & in_centre)
        cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * outside.float() + 1e9 * (~pair).float()
        top = min(10, ious.shape[2])
        dynamic_k = torch.topk(ious, top, dim=2).values.sum(2).int().clamp(min=1)  # (B, G)
        cheapest = torch.topk(cost, top, dim=2, largest=False)
        take = (torch.arange(top, device=preds.device) < dynamic_k[..., None]) & (cheapest.values < 1e8)
        matching = torch.zeros_like(pair).scatter_(2, cheapest.indices, take)  # (B, G, N)
        contested = matching.sum(1) > 1  # (B, N): an anchor claimed by several GTs keeps the cheapest
        best = F.one_hot(cost.argmin(1), cost.shape[1]).transpose(1, 2).bool()  # (B, G, N)
        matching = torch.where(contested[:, None, :], best, matching)  # no `if contested.any()`: no host sync
        fg = matching.any(1)
        gt_index = matching.float().argmax(1)  # (B, N)
        iou = ious.gather(1, gt_index[:, None, :])[:, 0]
        return fg, gt_index, iou
