"""Non-maximum suppression in numpy: the one implementation behind evaluation, prediction and the pipeline.

``select_detections`` turns one image's candidate boxes and per-class scores into ``Detections``:
every (box, class) pair above ``conf_threshold`` is a candidate (multi-label, like
``lanner.models.multiclass_nms`` in torch), the best ``pre_nms_topk`` are kept, then greedy class-aware
NMS keeps at most ``max_det``.

Example:
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    >>> d = select_detections(boxes, np.array([[0.9], [0.8], [0.7]], np.float32), NmsParams())
    >>> d.xyxy.tolist()
    [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lanner.core.detections import Detections


@dataclass(frozen=True)
class NmsParams:
    """Thresholds for decoding detections; ``classes`` keeps only those class ids (None: all)."""

    conf_threshold: float = 0.3
    iou_threshold: float = 0.45
    max_det: int = 300
    pre_nms_topk: int = 1000
    class_agnostic: bool = False
    classes: tuple[int, ...] | None = None


def box_iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy ``box (4,)`` with ``boxes (M, 4)``; empty boxes give 0."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    area = np.clip(box[2:] - box[:2], 0, None).prod()
    areas = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)
    return inter / np.maximum(area + areas - inter, np.finfo(np.float32).tiny)


MATRIX_NMS_MAX = 1024
"""Up to this many candidates (``pre_nms_topk``'s default is 1000), NMS computes one IoU matrix instead of
one IoU row per kept box: several times faster at a detector's usual counts (``bench/nms.py``); beyond it
the matrix's memory grows with the square, so the row path takes over."""


def box_iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy ``boxes (N, 4)``: ``(N, N)``, each entry computed as ``box_iou_one`` does."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))  # width and height apart: a reduce over an axis of 2 is slow
    widths = np.clip(np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :]), 0, None)
    heights = np.clip(np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :]), 0, None)
    inter = widths * heights
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / np.maximum(areas[:, None] + areas[None, :] - inter, np.finfo(np.float32).tiny)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, highest score first (torchvision's ``nms`` contract)."""
    order = np.argsort(-scores, kind="stable")
    if order.size <= MATRIX_NMS_MAX:
        return _nms_matrix(boxes[order], iou_threshold, order)
    return _nms_rows(boxes, order, iou_threshold)


def _nms_matrix(sorted_boxes: np.ndarray, iou_threshold: float, order: np.ndarray) -> np.ndarray:
    """Greedy NMS over boxes already in score order, from their IoU matrix; returns ``order``'s kept entries."""
    over = ~(box_iou_matrix(sorted_boxes) <= iou_threshold)  # as the row path: NaN IoU suppresses too
    removed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not removed[i]:
            keep.append(i)
            removed |= over[i]  # marks earlier rows too, but they are decided already
    return order[np.asarray(keep, np.int64)]


def _nms_rows(boxes: np.ndarray, order: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS one kept box at a time (IoU of that box with the rest): for candidate sets too large for
    a matrix."""
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-aware NMS: each class is shifted to its own region so classes never suppress each other."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    span = float(boxes.max() - boxes.min()) + 1.0
    shifted = boxes - boxes.min() + class_ids.astype(np.float32)[:, None] * span
    return nms(shifted, scores, iou_threshold)


def select_detections(boxes: np.ndarray, scores: np.ndarray, params: NmsParams) -> Detections:
    """One image: ``boxes (N, 4)``, ``scores (N, C)`` -> NMS-filtered ``Detections`` (network pixels)."""
    if params.classes is not None:
        allowed = np.zeros(scores.shape[1], bool)
        allowed[[c for c in params.classes if 0 <= c < scores.shape[1]]] = True
        scores = np.where(allowed[None, :], scores, 0.0)
    rows, cols = np.nonzero(scores > params.conf_threshold)
    conf = scores[rows, cols]
    if conf.size > params.pre_nms_topk:
        top = np.argpartition(-conf, params.pre_nms_topk - 1)[: params.pre_nms_topk]
        rows, cols, conf = rows[top], cols[top], conf[top]
    cand = boxes[rows].astype(np.float32)
    if params.class_agnostic:
        keep = nms(cand, conf, params.iou_threshold)
    else:
        keep = batched_nms(cand, conf, cols, params.iou_threshold)
    keep = keep[: params.max_det]
    return Detections(xyxy=cand[keep], confidence=conf[keep].astype(np.float32), class_id=cols[keep])
