"""lanner.core.ultralytics: Ultralytics YOLO export metadata translated, its three output layouts decoded."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from lanner.core import ultralytics
from lanner.core.errors import DataError
from lanner.core.nms import NmsParams
from lanner.core.ultralytics import decode_ultralytics, lanner_metadata

# what Ultralytics' exporter writes: str() of Python values
V8_META = {"names": "{0: 'person', 1: 'car'}", "stride": "32", "task": "detect", "imgsz": "[320, 480]",
           "batch": "1", "author": "Ultralytics"}  # fmt: skip
V5_META = {"names": "['person', 'car']", "stride": "32"}
XYXY = np.array([[10, 20, 50, 60], [12, 21, 50, 60], [100, 100, 140, 180]], np.float32)
CLASS_SCORES = np.array([[0.9, 0.1], [0.8, 0.0], [0.05, 0.7]], np.float32)


def cxcywh(xyxy: np.ndarray) -> np.ndarray:
    return np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)


@pytest.mark.parametrize(
    ("meta", "shape", "size", "layout"),
    [
        (V8_META, (1, 3, "h", "w"), [320, 480], "v8"),
        ({**V8_META, "imgsz": "640"}, (1, 3, 640, 640), [640, 640], "v8"),
        (V5_META, (1, 3, 384, 640), [384, 640], "v5"),  # YOLOv5 has no imgsz: the input's shape
        ({**V8_META, "end2end": "True"}, (), [320, 480], "end2end"),
        ({**V8_META, "args": "{'batch': 1, 'nms': True}"}, (), [320, 480], "end2end"),
    ],
)
def test_metadata_is_translated_to_lanners_keys(meta, shape, size, layout) -> None:
    out = lanner_metadata(meta, shape)
    assert json.loads(out["input_size"]) == size and out["ultralytics_layout"] == layout
    assert (out["postprocess"], out["task"], out["resize"], out["color_order"]) == (
        "ultralytics", "detection", "letterbox", "RGB")  # fmt: skip
    assert json.loads(out["std"]) == [255.0] * 3 and json.loads(out["labels"]) == ["person", "car"]
    assert out["stride"] == "32" and out.get("author", "Ultralytics") == "Ultralytics"  # the rest is kept


def test_other_models_pass_unchanged_and_other_tasks_are_refused() -> None:
    lanner_own = {"postprocess": "yolox_decoded", "names": "x", "stride": "8", "input_size": "[64, 64]"}
    assert lanner_metadata(lanner_own) == lanner_own and lanner_metadata({}) == {}
    with pytest.raises(DataError, match="an Ultralytics segment model: lanner reads Ultralytics detect and classify"):
        lanner_metadata({**V8_META, "task": "segment"})
    with pytest.raises(DataError, match="metadata 'names' is not a Python literal"):
        lanner_metadata({**V8_META, "names": "{0: person}"})
    # 'args' (the export's settings, e.g. "{'device': device(type='cpu')}") is only searched for nms=True
    assert lanner_metadata({**V8_META, "args": "{'device': device(type='cpu')}"})["ultralytics_layout"] == "v8"


def test_the_three_layouts_decode_to_the_same_boxes() -> None:
    params = NmsParams(conf_threshold=0.3, iou_threshold=0.5)
    v8 = np.concatenate([cxcywh(XYXY), CLASS_SCORES], axis=1).T[None]  # (1, 4 + C, A)
    obj = np.array([[1.0], [1.0], [1.0]], np.float32)
    v5 = np.concatenate([cxcywh(XYXY), obj, CLASS_SCORES], axis=1)[None]  # (1, A, 5 + C)
    kept = [0, 2]  # box 1 overlaps box 0 (same class, lower score)
    end2end = np.concatenate([XYXY[kept], CLASS_SCORES[kept].max(1, keepdims=True),
                              CLASS_SCORES[kept].argmax(1)[:, None].astype(np.float32)], axis=1)[None]  # fmt: skip
    results = {layout: decode_ultralytics(out, layout, 2, params)[0]
               for layout, out in (("v8", v8), ("v5", v5), ("end2end", end2end))}  # fmt: skip
    for dets in results.values():
        order = np.argsort(dets.class_id)
        np.testing.assert_allclose(dets.xyxy[order], XYXY[kept], atol=1e-4)
        assert dets.class_id[order].tolist() == [0, 1]
        np.testing.assert_allclose(dets.confidence[order], [0.9, 0.7], atol=1e-6)


def test_objectness_scales_yolov5_scores_and_end2end_keeps_only_asked_classes() -> None:
    v5 = np.concatenate([cxcywh(XYXY[:1]), [[0.5]], CLASS_SCORES[:1]], axis=1).astype(np.float32)[None]
    (dets,) = decode_ultralytics(v5, "v5", 2, NmsParams(conf_threshold=0.3))
    np.testing.assert_allclose(dets.confidence, [0.45])  # 0.5 x 0.9
    rows = np.array([[[0, 0, 5, 5, 0.9, 0], [5, 5, 9, 9, 0.8, 1], [1, 1, 2, 2, 0.1, 1]]], np.float32)
    (dets,) = decode_ultralytics(rows, "end2end", 2, NmsParams(conf_threshold=0.3, classes=(1,)))
    assert dets.class_id.tolist() == [1] and dets.xyxy.tolist() == [[5, 5, 9, 9]]


def test_a_wrong_output_shape_names_the_expected_one() -> None:
    with pytest.raises(DataError, match=r"output should be \(B, 6, anchors\) for 2 classes, got \(1, 84, 8400\)"):
        decode_ultralytics(np.zeros((1, 84, 8400), np.float32), "v8", 2, NmsParams())


def test_doctest() -> None:
    assert doctest.testmod(ultralytics).failed == 0


def test_a_classifier_export_is_read_as_probabilities_with_a_centre_crop() -> None:
    meta = {"names": "{0: 'sedan', 1: 'truck'}", "stride": "1", "task": "classify", "imgsz": "[224, 224]"}
    out = lanner_metadata(meta)
    assert (out["task"], out["postprocess"], out["resize"], out["input_size"]) == (
        "classification", "probabilities", "center_crop", "[224, 224]")  # fmt: skip
    assert json.loads(out["labels"]) == ["sedan", "truck"] and "ultralytics_layout" not in out
