"""Non-maximum suppression in pure torch (torchvision is not a dependency).

``nms`` is exact greedy NMS (the result of torchvision's ``nms``) computed without a per-box Python
loop: with boxes sorted by score, box ``j`` is kept iff no *kept* box ``i < j`` overlaps it above the
threshold. That recursive definition has one solution, reached by iterating
``keep = ~any(over & keep[:, None], dim=0)`` to a fixed point (at most the length of the longest
suppression chain, usually a handful of steps; each step is one O(N²) tensor op, so it runs on GPU).

Example:
    >>> import torch
    >>> boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5).tolist()
    [0, 2]
"""

from __future__ import annotations

import torch

from lanner.core.detections import Detections


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(N, M)`` of ``xyxy`` boxes ``a (N, 4)`` and ``b (M, 4)``; empty boxes give 0."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=torch.finfo(inter.dtype).tiny)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes greedy NMS keeps, highest score first (torchvision's ``nms`` contract)."""
    order = torch.argsort(scores, descending=True, stable=True)
    n = order.numel()
    if n == 0:
        return order
    sorted_boxes = boxes[order].float()
    over = (box_iou(sorted_boxes, sorted_boxes) > iou_threshold).triu(diagonal=1)  # over[i, j]: i beats j
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for _ in range(n):  # converges after at most n steps; usually a few
        new_keep = ~(over & keep[:, None]).any(dim=0)
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other (torchvision's contract).

    Implemented by shifting each class's boxes to its own disjoint region, then one ``nms``.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    shifted = boxes - boxes.min() + class_ids.to(boxes.dtype)[:, None] * span
    return nms(shifted, scores, iou_threshold)


def multiclass_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    pre_nms_topk: int = 3000,
    class_agnostic: bool = False,
) -> list[Detections]:
    """Turn a batch of decoded detector outputs into one ``Detections`` per image.

    ``boxes (B, N, 4)`` xyxy and ``scores (B, N, C)`` (e.g. a YOLOX model in eval mode). Every
    (box, class) pair above ``conf_threshold`` is a candidate (multi-label); the best ``pre_nms_topk``
    go through class-aware NMS (or class-agnostic), and at most ``max_det`` per image are returned.

    Example:
        >>> dets = multiclass_nms(torch.tensor([[[0.0, 0, 4, 4]]]), torch.tensor([[[0.1, 0.9]]]))
        >>> dets[0].class_id.tolist(), round(float(dets[0].confidence[0]), 2)
        ([1], 0.9)
    """
    results = []
    for image_boxes, image_scores in zip(boxes, scores):
        candidate_scores = image_scores.flatten()
        top = torch.topk(candidate_scores, min(pre_nms_topk, candidate_scores.numel())).indices
        top = top[candidate_scores[top] > conf_threshold]
        box_idx, class_idx = top // image_scores.shape[1], top % image_scores.shape[1]
        kept_boxes, kept_scores = image_boxes[box_idx], candidate_scores[top]
        group = torch.zeros_like(class_idx) if class_agnostic else class_idx
        keep = batched_nms(kept_boxes, kept_scores, group, iou_threshold)[:max_det]
        results.append(
            Detections(
                xyxy=kept_boxes[keep].detach().cpu().numpy(),
                confidence=kept_scores[keep].detach().cpu().numpy(),
                class_id=class_idx[keep].cpu().numpy(),
            )
        )
    return results
