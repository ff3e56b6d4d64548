"""NonMaxSuppression-11 (the op detector exports append for end-to-end models).

Per (batch, class): candidates with ``score > score_threshold`` in descending score order (ties: lower
box index first); a box is kept when its IoU with every kept box is ``<= iou_threshold``; at most
``max_output_boxes_per_class`` are kept. Output: int64 ``[K, 3]`` rows ``(batch, class, box)``.
Boxes are ``[y1, x1, y2, x2]`` (any corner order) or ``[x_center, y_center, w, h]`` with
``center_point_box=1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op
from lanner.engine.ops.shapes import symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]


def _corners(boxes: Array, center_point_box: int) -> Array:
    """[N, 4] → (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2."""
    b = boxes.astype(np.float64)
    if center_point_box:
        xc, yc, w, h = b.T
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)
    return np.stack(
        [
            np.minimum(b[:, 0], b[:, 2]),
            np.minimum(b[:, 1], b[:, 3]),
            np.maximum(b[:, 0], b[:, 2]),
            np.maximum(b[:, 1], b[:, 3]),
        ],
        axis=1,
    )


def _iou(box: Array, others: Array) -> Array:
    y1, x1 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    y2, x2 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _select(
    corners: Array, scores: Array, limit: int, iou_threshold: float, score_threshold: float | None
) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    kept: list[int] = []
    for index in order:
        if len(kept) >= limit:
            break
        if not kept or np.all(_iou(corners[index], corners[kept]) <= iou_threshold):
            kept.append(int(index))
    return kept


def _scalar(xs: Inputs, i: int) -> float | None:
    """An optional scalar input (absent or empty → None)."""
    value = xs[i] if len(xs) > i else None
    if value is None or value.size == 0:
        return None
    return float(np.asarray(value).reshape(-1)[0])


def _nms_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    return [(np.dtype("int64"), (symbol(node, 0), 3))]


@onnx_op("NonMaxSuppression", infer=_nms_infer)
def non_max_suppression(node: Node, xs: Inputs) -> Array:
    boxes, scores = np.asarray(xs[0]), np.asarray(xs[1])
    limit = int(_scalar(xs, 2) or 0)
    iou_threshold = _scalar(xs, 3) or 0.0
    score_threshold = _scalar(xs, 4)
    rows: list[tuple[int, int, int]] = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], int(node.attr("center_point_box", 0)))
        for c in range(scores.shape[1]):
            kept = _select(corners, scores[b, c].astype(np.float64), limit, iou_threshold, score_threshold)
            rows.extend((b, c, k) for k in kept)
    return np.array(rows, dtype=np.int64).reshape(-1, 3)
