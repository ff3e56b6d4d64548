"""Turn raw model outputs into boxes and labels, in numpy (no torch in the pipeline's hot path).

A decoder is chosen by the ``postprocess`` key of the model's ONNX ``metadata_props``:

- ``yolox_decoded``: outputs ``boxes (B, N, 4)`` xyxy in network-input pixels and ``scores (B, N, C)``
  (objectness x class probability), as ``lanner.models.export_onnx`` writes YOLOX detectors. Every
  (box, class) pair above the threshold is a candidate (multi-label, like ``lanner.models.multiclass_nms``),
  then greedy class-aware NMS keeps at most ``max_det`` per image.
- ``ultralytics``: an Ultralytics YOLO export (``lanner.core.ultralytics``, which also fills in its metadata).
- ``softmax``: a classifier's ``logits (B, C)``; ``probabilities``: a classifier that applies its own softmax.

Example:
    >>> boxes = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]], np.float32)
    >>> scores = np.array([[[0.9], [0.8], [0.7]]], np.float32)
    >>> [d.xyxy.tolist() for d in decode_yolox_decoded({"boxes": boxes, "scores": scores}, NmsParams())]
    [[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.core.nms import NmsParams, batched_nms, nms, select_detections
from lanner.core.ultralytics import POSTPROCESS as ULTRALYTICS
from lanner.core.ultralytics import PROBABILITIES, ultralytics_decoder


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


def decode_probabilities(outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A classifier whose first output is already probabilities ``(B, C)`` (``postprocess: probabilities``, an
    Ultralytics ``-cls`` export) -> ``(class_id (B,), probability (B,))``."""
    probs = np.asarray(next(iter(outputs.values())), np.float32)
    probs = probs.reshape(probs.shape[0], -1)
    class_id = probs.argmax(axis=1)
    return class_id.astype(np.int64), probs[np.arange(len(class_id)), class_id]


CLASSIFIER_DECODERS = {"softmax": decode_softmax, PROBABILITIES: decode_probabilities}

DetectionDecoder = Callable[[Mapping[str, np.ndarray], NmsParams], list[Detections]]
DETECTION_DECODERS: dict[str, DetectionDecoder] = {"yolox_decoded": decode_yolox_decoded}
FOREIGN_DECODERS = (ULTRALYTICS,)  # decoders that need the model's metadata: ``detection_decoder``


def detection_decoder(meta: Mapping[str, str]) -> DetectionDecoder | None:
    """The decoder for a model with these (``lanner_metadata``-translated) ``metadata_props``, or None."""
    kind = meta.get("postprocess")
    if kind == ULTRALYTICS:
        decode = ultralytics_decoder(meta)
        return lambda outputs, params: decode(next(iter(outputs.values())), params)
    return DETECTION_DECODERS.get(str(kind))


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


def merge_scales(parts: Sequence[Detections], params: NmsParams) -> Detections:
    """One image's detections from several network input sizes (image pixels) -> one set, by NMS across sizes.

    The same object found at two sizes keeps its most confident box; ``params`` gives the IoU threshold,
    class-aware or not, and ``max_det``.
    """
    merged = Detections.merge(parts)
    if len(parts) == 1 or not len(merged):
        return merged
    boxes, conf = merged.xyxy.astype(np.float32), merged.confidence.astype(np.float32)
    if params.class_agnostic:
        keep = nms(boxes, conf, params.iou_threshold)
    else:
        keep = batched_nms(boxes, conf, merged.class_id, params.iou_threshold)
    return merged[keep[: params.max_det]]
