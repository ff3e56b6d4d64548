"""Ultralytics YOLO ONNX models (YOLOv5, YOLOv8, YOLO11 and later), read as lanner reads its own exports.

Ultralytics' exporter writes ``metadata_props`` as ``str()`` of Python values: ``names`` (``"{0: 'person',
...}"``), ``stride`` (``"32"``), and from YOLOv8 on ``task`` (``"detect"``), ``imgsz`` (``"[640, 640]"``) and,
in newer versions, ``end2end``. Its preprocessing is fixed: letterbox with grey 114 padding, RGB, pixels / 255.
``lanner_metadata`` translates that into the keys ``lanner export`` writes (``input_size``, ``resize``,
``color_order``, ``mean``, ``std``, ``pad_value``, ``labels``, ``postprocess: ultralytics``), so the pipeline,
``lanner evaluate``/``infer`` and calibration take such a model as it is. A classifier (``task: classify``,
``yolov8n-cls``) outputs probabilities and is preprocessed by scaling the shortest side to ``imgsz`` and a
centre crop: ``resize: center_crop``, ``postprocess: probabilities``.

``decode_ultralytics`` reads the detection output, in network-input pixels, in the three layouts the exporter
writes:

- YOLOv8 / YOLO11 (``task`` present): ``(B, 4 + C, A)``, rows ``cx, cy, w, h`` then the class scores;
- YOLOv5 (``names`` and ``stride`` only): ``(B, A, 5 + C)``, ``cx, cy, w, h, objectness`` then class scores
  (score = objectness x class);
- end-to-end (``end2end: True``, or exported with ``nms=True``): ``(B, N, 6)`` ``x1, y1, x2, y2, score, class``.

Example:
    >>> meta = lanner_metadata({"names": "{0: 'car', 1: 'bus'}", "stride": "32", "task": "detect",
    ...                         "imgsz": "[320, 640]"}, input_shape=(1, 3, 320, 640))
    >>> meta["postprocess"], meta["input_size"], meta["labels"], meta["std"]
    ('ultralytics', '[320, 640]', '["car", "bus"]', '[255.0, 255.0, 255.0]')
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.core.nms import NmsParams, select_detections

POSTPROCESS = "ultralytics"
PROBABILITIES = "probabilities"  # a classifier whose output is already softmaxed (``postprocess`` for -cls models)


def is_ultralytics(meta: Mapping[str, str]) -> bool:
    """True for an Ultralytics export that lanner has not annotated itself (no ``postprocess`` key)."""
    return "postprocess" not in meta and "names" in meta and "stride" in meta


def lanner_metadata(
    meta: Mapping[str, str], input_shape: Sequence[int | str | None] = (), where: str = ""
) -> dict[str, str]:
    """``meta`` with lanner's preprocessing and decoding keys added when it is an Ultralytics export (see the
    module docstring); any other model's metadata is returned unchanged. ``input_shape`` (NCHW) gives the size
    when the metadata has no ``imgsz`` (YOLOv5); ``where`` (the model's path) goes into errors."""
    if not is_ultralytics(meta):
        return dict(meta)
    task = meta.get("task", "detect")
    if task not in ("detect", "classify"):
        raise DataError(
            f"an Ultralytics {task} model: lanner reads Ultralytics detect and classify models only",
            where=where,
            fix="export a detection model (yolo export model=yolov8n.pt format=onnx) or a classifier (-cls)",
        )
    out = dict(meta)
    imgsz = _literal(meta, "imgsz", where) if "imgsz" in meta else None
    dims = list(input_shape)[2:4]
    size: list[int] | None = None
    if isinstance(imgsz, int):
        size = [imgsz, imgsz]
    elif isinstance(imgsz, list | tuple) and len(imgsz) == 2:
        size = [int(v) for v in imgsz]
    elif len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims):
        size = [int(d) for d in dims]  # type: ignore[arg-type]
    if size is not None:
        out["input_size"] = json.dumps(size)
    out |= {"color_order": "RGB", "mean": "[0.0, 0.0, 0.0]", "std": "[255.0, 255.0, 255.0]",
            "labels": json.dumps(class_names(meta, where))}  # fmt: skip
    if task == "classify":  # softmax already applied; shortest side to imgsz, then a centre crop
        return out | {"task": "classification", "postprocess": PROBABILITIES, "resize": "center_crop"}
    return out | {"task": "detection", "postprocess": POSTPROCESS, "resize": "letterbox", "pad_value": "114",
                  "ultralytics_layout": _layout(meta)}  # fmt: skip


def class_names(meta: Mapping[str, str], where: str = "") -> list[str]:
    """The class names of ``names`` (a dict of id -> name, or a list), in id order."""
    names = _literal(meta, "names", where)
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list | tuple):
        return [str(n) for n in names]
    raise DataError(
        f"metadata 'names' is neither a dict nor a list: {meta['names'][:60]!r}", where=where, fix="re-export it"
    )


def decode_ultralytics(output: np.ndarray, layout: str, num_classes: int, params: NmsParams) -> list[Detections]:
    """One ``Detections`` per image from the model's first output (network-input pixels); ``layout`` is the
    ``ultralytics_layout`` key ``lanner_metadata`` wrote (``v8``, ``v5`` or ``end2end``)."""
    out = np.asarray(output, np.float32)
    if layout == "end2end" and out.ndim == 3 and out.shape[2] == 6:
        return [_end2end(image, params) for image in out]
    if layout == "v8" and out.ndim == 3 and out.shape[1] == 4 + num_classes:
        rows = out.transpose(0, 2, 1)  # (B, A, 4 + C)
        return [select_detections(_xyxy(r[:, :4]), r[:, 4:], params) for r in rows]
    if layout == "v5" and out.ndim == 3 and out.shape[2] == 5 + num_classes:
        return [select_detections(_xyxy(r[:, :4]), r[:, 5:] * r[:, 4:5], params) for r in out]
    expected = {"v8": f"(B, {4 + num_classes}, anchors)", "v5": f"(B, anchors, {5 + num_classes})",
                "end2end": "(B, N, 6)"}[layout]  # fmt: skip
    raise DataError(
        f"an Ultralytics {layout} detector's output should be {expected} for {num_classes} classes, "
        f"got {tuple(out.shape)}",
        fix="export the model with Ultralytics' `yolo export format=onnx` (a detect task; segment/pose are not read)",
    )


def ultralytics_decoder(meta: Mapping[str, str]) -> Callable[[np.ndarray, NmsParams], list[Detections]]:
    """``decode_ultralytics`` bound to a model's (``lanner_metadata``-translated) layout and class count: call it
    with the model's first output and the NMS settings."""
    layout, classes = meta["ultralytics_layout"], len(json.loads(meta["labels"]))
    return lambda output, params: decode_ultralytics(output, layout, classes, params)


def _xyxy(cxcywh: np.ndarray) -> np.ndarray:
    half = cxcywh[:, 2:4] / 2
    return np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)


def _end2end(rows: np.ndarray, params: NmsParams) -> Detections:
    """``(N, 6)`` rows already past NMS: keep those above the threshold (and in ``params.classes``)."""
    keep = rows[:, 4] >= params.conf_threshold
    if params.classes is not None:
        keep &= np.isin(rows[:, 5].astype(np.int64), params.classes)
    rows = rows[keep][: params.max_det]
    return Detections.from_arrays(rows[:, :4], rows[:, 5].astype(np.int64), confidence=rows[:, 4])


def _layout(meta: Mapping[str, str]) -> str:
    if str(meta.get("end2end", "")).strip() == "True" or _exported_with_nms(meta):
        return "end2end"
    return "v8" if "task" in meta else "v5"


def _exported_with_nms(meta: Mapping[str, str]) -> bool:
    """``args`` holds the export's settings; an unreadable ``args`` only means no NMS flag to find."""
    try:
        args = _literal(meta, "args") if "args" in meta else None
    except DataError:
        return False
    return isinstance(args, dict) and bool(args.get("nms"))


def _literal(meta: Mapping[str, str], key: str, where: str = "") -> object:
    """A metadata value written as ``str()`` of a Python literal, read back safely."""
    try:
        return ast.literal_eval(meta[key])
    except (ValueError, SyntaxError):
        raise DataError(
            f"metadata {key!r} is not a Python literal: {meta[key][:60]!r}", where=where, fix="re-export it"
        ) from None
