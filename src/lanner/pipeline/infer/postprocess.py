"""Turn raw model outputs into boxes and labels, in numpy (no torch in the pipeline's hot path).

A decoder is chosen by the ``postprocess`` key of the model's ONNX ``metadata_props``:

- ``yolox_decoded``: outputs ``boxes (B, N, 4)`` xyxy in network-input pixels and ``scores (B, N, C)``
  (objectness x class probability), as ``lanner.models.export_onnx`` writes YOLOX detectors. Every
  (box, class) pair above the threshold is a candidate (multi-label, like ``lanner.models.multiclass_nms``),
  then greedy class-aware NMS keeps at most ``max_det`` per image.
- ``softmax``: a classifier's ``logits (B, C)``.

Example:
    >>> boxes = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]], np.float32)
    >>> scores = np.array([[[0.9], [0.8], [0.7]]], np.float32)
    >>> [d.xyxy.tolist() for d in decode_yolox_decoded({"boxes": boxes, "scores": scores}, NmsParams())]
    [[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError


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


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, highest score first (torchvision's ``nms`` contract)."""
    order = np.argsort(-scores, kind="stable")
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


def decode_yolox_decoded(outputs: Mapping[str, np.ndarray], params: NmsParams) -> list[Detections]:
    """``boxes (B, N, 4)`` + ``scores (B, N, C)`` -> one ``Detections`` per image, in network pixels."""
    boxes, scores = _require(outputs, "boxes"), _require(outputs, "scores")
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.ndim != 3 or scores.shape[:2] != boxes.shape[:2]:
        raise DataError(
            f"yolox_decoded expects boxes (B, N, 4) and scores (B, N, C), got {boxes.shape} and {scores.shape}",
            fix="export the detector with lanner.models.export_onnx (eval mode)",
        )
    return [select_detections(boxes[i], scores[i], params) for i in range(boxes.shape[0])]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(B, C)`` logits (numerically stable)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def decode_softmax(outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A classifier's ``logits (B, C)`` -> ``(class_id (B,), probability (B,))``."""
    logits = _require(outputs, "logits")
    probs = softmax(logits.reshape(logits.shape[0], -1).astype(np.float32))
    class_id = probs.argmax(axis=1)
    return class_id.astype(np.int64), probs[np.arange(len(class_id)), class_id]


DetectionDecoder = Callable[[Mapping[str, np.ndarray], NmsParams], list[Detections]]
DETECTION_DECODERS: dict[str, DetectionDecoder] = {"yolox_decoded": decode_yolox_decoded}


def _require(outputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise DataError(f"the model has no output {name!r} (it has {sorted(outputs)})", fix="re-export the model")
    return np.asarray(outputs[name])


def to_image_pixels(
    dets: Detections, scale_xy: Sequence[float], image_hw: tuple[int, int], min_size: float = 0.0
) -> Detections:
    """Map boxes from network-input pixels back to the original image (clipped); drop degenerate boxes."""
    from lanner.data.preprocess import boxes_to_image

    xyxy = boxes_to_image(dets.xyxy, (float(scale_xy[0]), float(scale_xy[1])), image_hw)
    out = Detections(xyxy=xyxy, confidence=dets.confidence, class_id=dets.class_id, data=dets.data)
    wh = out.wh
    return out[(wh[:, 0] > min_size) & (wh[:, 1] > min_size)]
