"""Ultralytics YOLO ONNX exports run as they are: the pipeline's detector, a plan built from one, ``lanner
evaluate``/``infer``'s model loader and INT8 calibration's preprocessing all read their metadata.

The models are made here: constant-output graphs in each of Ultralytics' three output layouts, with the
metadata its exporter writes (``str()`` of Python values), so the decoded boxes are known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lanner.core.errors import ConfigError, DataError
from lanner.pipeline.infer import Detector, DetectorConfig

SIZE = (64, 96)  # network input HxW
XYXY = np.array([[10, 8, 40, 30], [50, 20, 90, 60]], np.float32)  # network pixels
SCORES = np.array([[0.9, 0.05], [0.1, 0.8]], np.float32)  # (person, car)
META = {"names": "{0: 'person', 1: 'car'}", "stride": "32", "task": "detect", "imgsz": str(list(SIZE)),
        "batch": "1", "author": "Ultralytics"}  # fmt: skip


def layout_output(layout: str) -> np.ndarray:
    """The model's constant output for one image, in ``layout``."""
    cxcywh = np.concatenate([(XYXY[:, :2] + XYXY[:, 2:]) / 2, XYXY[:, 2:] - XYXY[:, :2]], axis=1)
    if layout == "v8":
        return np.concatenate([cxcywh, SCORES], axis=1).T  # (4 + C, A)
    if layout == "v5":
        return np.concatenate([cxcywh, np.ones((2, 1), np.float32), SCORES], axis=1)  # (A, 5 + C)
    best = SCORES.max(1, keepdims=True)
    return np.concatenate([XYXY, best, SCORES.argmax(1)[:, None].astype(np.float32)], axis=1)  # (N, 6)


def ultralytics_onnx(
    path: Path, layout: str = "v8", meta: dict[str, str] | None = None, dynamic_hw: bool = False
) -> Path:
    """A constant 'detector' (output tiled over a dynamic batch) with an Ultralytics export's metadata;
    ``dynamic_hw``: height and width symbolic too, as ``yolo export ... dynamic=True`` writes them."""
    out = layout_output(layout)[None]
    nodes = [
        helper.make_node("Shape", ["images"], ["shape"], start=0, end=1),
        helper.make_node("Constant", [], ["one2"], value=helper.make_tensor("o2", TensorProto.INT64, [2], [1, 1])),
        helper.make_node("Concat", ["shape", "one2"], ["reps"], axis=0),
        helper.make_node("Constant", [], ["o0"], value=numpy_helper.from_array(out.astype(np.float32), "o")),
        helper.make_node("Tile", ["o0", "reps"], ["output0"]),
    ]  # fmt: skip
    hw = ["height", "width"] if dynamic_hw else list(SIZE)
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, *hw])
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", *out.shape[1:]])
    model = helper.make_model(helper.make_graph(nodes, "g", [images], [output]),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    meta = dict(META if meta is None else meta)
    if layout == "end2end":
        meta["end2end"] = "True"
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return path


def expected_in_image(image_hw: tuple[int, int]) -> np.ndarray:
    """XYXY mapped back through lanner's letterbox (scale only, padding right/bottom) into the image."""
    scale = min(SIZE[0] / image_hw[0], SIZE[1] / image_hw[1])
    return np.clip(XYXY / scale, 0, [image_hw[1], image_hw[0]] * 2)


@pytest.mark.parametrize("layout", ["v8", "v5", "end2end"])
def test_the_pipeline_detector_reads_each_layout(tmp_path: Path, layout: str) -> None:
    meta = META if layout != "v5" else {"names": "['person', 'car']", "stride": "32"}  # YOLOv5 writes only these
    detector = Detector(DetectorConfig(model=str(ultralytics_onnx(tmp_path / "y.onnx", layout, meta))))
    assert detector.class_names == ["person", "car"] and tuple(detector.input_spec.size_hw) == SIZE
    assert detector.input_spec.resize == "letterbox" and detector.input_spec.std == (255.0, 255.0, 255.0)
    images = [np.zeros((128, 192, 3), np.uint8), np.zeros((96, 96, 3), np.uint8)]
    for dets, image in zip(detector.detect(images), images, strict=True):
        order = np.argsort(dets.class_id)
        assert dets.class_id[order].tolist() == [0, 1]
        np.testing.assert_allclose(dets.confidence[order], [0.9, 0.8], atol=1e-6)
        np.testing.assert_allclose(dets.xyxy[order], expected_in_image(image.shape[:2]), atol=1e-3)


def test_a_plan_built_from_an_ultralytics_export_keeps_its_metadata(tmp_path: Path) -> None:
    build = pytest.importorskip("lanner.engine.build")
    from lanner.engine.plan import write_plan

    source = ultralytics_onnx(tmp_path / "y.onnx")
    built = build.build_engine(str(source), build.BuildConfig(tune=False, batch=["1:2:2"]))
    plan = write_plan(built, tmp_path / "y.plan")
    images = [np.zeros((64, 96, 3), np.uint8)] * 3
    want = Detector(DetectorConfig(model=str(source))).detect(images)
    assert Detector(DetectorConfig(model=str(plan))).detect(images) == want


def test_runtime_lanner_builds_a_dynamic_size_export_at_its_imgsz(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("lanner.engine.build")
    from lanner.pipeline.infer.plan_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "plans"))
    source = str(ultralytics_onnx(tmp_path / "dyn.onnx", dynamic_hw=True))
    detector = Detector(DetectorConfig(model=source, runtime="lanner", plan_batch=2))
    assert type(detector.runtime).__name__ == "PlanRuntime"
    assert detector.runtime.engine.inputs[0].shape[2:] == SIZE  # pinned to imgsz before the build
    images = [np.zeros((64, 96, 3), np.uint8)] * 3
    assert detector.detect(images) == Detector(DetectorConfig(model=source)).detect(images)


def test_evaluate_and_infer_load_an_ultralytics_export(tmp_path: Path) -> None:
    from lanner.train.predict import load_model, predict_detections

    model = load_model(ultralytics_onnx(tmp_path / "y.onnx"))
    assert (model.task, model.class_names, model.postprocess) == ("detection", ("person", "car"), "ultralytics")
    (dets,) = predict_detections(model, [np.zeros((64, 96, 3), np.uint8)], conf=0.3)
    order = np.argsort(dets.class_id)
    np.testing.assert_allclose(dets.xyxy[order], XYXY, atol=1e-3)


def test_calibration_preprocesses_like_ultralytics(tmp_path: Path) -> None:
    pytest.importorskip("lanner.engine")
    from lanner.engine.calibrate.images import Preprocess
    from lanner.engine.onnx_import import load_onnx

    prep = Preprocess.from_graph(load_onnx(ultralytics_onnx(tmp_path / "y.onnx")))
    assert (prep.height, prep.width, prep.resize, prep.color_order) == (*SIZE, "letterbox", "RGB")
    image = np.full((32, 96, 3), (0, 0, 255), np.uint8)  # red in BGR
    x = prep(image)
    assert x.shape == (3, *SIZE) and x[0, 0, 0] == 1.0 and x[2, 0, 0] == 0.0  # RGB, / 255
    np.testing.assert_allclose(x[:, -1, -1], 114 / 255)  # the letterbox's grey padding


def test_a_segment_model_is_one_clear_error(tmp_path: Path) -> None:
    path = ultralytics_onnx(tmp_path / "seg.onnx", meta={**META, "task": "segment"})
    with pytest.raises(DataError, match=r"seg.onnx: an Ultralytics segment model: .* detect and classify models"):
        Detector(DetectorConfig(model=str(path)))


def test_a_model_without_known_metadata_still_says_what_the_detector_reads(tmp_path: Path) -> None:
    path = ultralytics_onnx(tmp_path / "plain.onnx", meta={"input_size": "[64, 96]"})
    with pytest.raises(ConfigError, match=r"the detector supports \['ultralytics', 'yolox_decoded'\]"):
        Detector(DetectorConfig(model=str(path)))


def test_input_size_resizes_a_dynamic_export_and_refuses_a_fixed_one(tmp_path: Path, monkeypatch) -> None:
    from lanner.pipeline.infer.plan_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "plans"))
    dynamic = str(ultralytics_onnx(tmp_path / "dyn.onnx", dynamic_hw=True))
    for runtime in ("onnxruntime", "lanner"):
        detector = Detector(DetectorConfig(model=dynamic, runtime=runtime, input_size=[32, 64], plan_batch=1))
        assert tuple(detector.input_spec.size_hw) == (32, 64)
        (dets,) = detector.detect([np.zeros((64, 128, 3), np.uint8)])  # the constant boxes, now in a 32x64 input
        assert len(dets) == 2 and dets.xyxy.max() <= 128
    with pytest.raises(ConfigError, match=r"input_size \[30, 64\] does not fit the model.*multiples of 32"):
        Detector(DetectorConfig(model=dynamic, input_size=[30, 64]))
    fixed = str(ultralytics_onnx(tmp_path / "fixed.onnx"))
    with pytest.raises(DataError, match=r"this Ultralytics export has a fixed input size.*dynamic=True"):
        Detector(DetectorConfig(model=fixed, input_size=[32, 64]))


CLS_META = {"names": "{0: 'sedan', 1: 'truck', 2: 'bus'}", "stride": "1", "task": "classify", "imgsz": "[32, 32]",
            "batch": "1"}  # fmt: skip


def ultralytics_classifier_onnx(path: Path) -> Path:
    """A '-cls' export stand-in: probabilities = softmax(10 x the mean of each RGB channel), NCHW 32x32 input."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [], [10.0])),
        helper.make_node("Mul", ["m", "k"], ["z"]),
        helper.make_node("Softmax", ["z"], ["output0"], axis=1),
    ]
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 3])
    model = helper.make_model(helper.make_graph(nodes, "g", [images], [output]),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    helper.set_model_props(model, CLS_META)
    onnx.save(model, str(path))
    return path


def test_an_ultralytics_classifier_runs_as_a_secondary_and_in_predict(tmp_path: Path) -> None:
    from lanner.core.detections import Detections
    from lanner.core.frame import Frame
    from lanner.pipeline.infer import SecondaryClassifier, SecondaryConfig
    from lanner.train.predict import load_model, predict_classes

    path = ultralytics_classifier_onnx(tmp_path / "cls.onnx")
    image = np.zeros((60, 200, 3), np.uint8)
    image[:, :100] = (0, 0, 255)  # red car on the left (BGR), green one on the right
    image[:, 100:] = (0, 255, 0)
    sgie = SecondaryClassifier(SecondaryConfig(model=str(path), min_width=1, min_height=1))
    assert sgie.class_names == ["sedan", "truck", "bus"] and sgie.input_spec.resize == "center_crop"
    frame = Frame(0, 0, 0, image, Detections.from_arrays([[0, 0, 100, 60], [100, 0, 200, 60]], [0, 0]))
    sgie.process(frame)
    id_key, conf_key = sgie.keys
    assert frame.detections.data[id_key].tolist() == [0, 1]  # R -> class 0, G -> class 1 (RGB order)
    want = np.exp(10) / (np.exp(10) + 2)  # softmax(10 * [1, 0, 0]): the model's own probability, not re-softmaxed
    np.testing.assert_allclose(frame.detections.data[conf_key], [want, want], rtol=1e-4)
    model = load_model(path)
    assert (model.task, model.class_names) == ("classification", ("sedan", "truck", "bus"))
    logits = predict_classes(model, [image[:, :100], image[:, 100:]])
    np.testing.assert_allclose(np.exp(logits).sum(axis=1), 1.0, rtol=1e-5)  # log-probabilities
    assert logits.argmax(axis=1).tolist() == [0, 1]


def test_center_crop_matches_between_the_pipeline_and_calibration(tmp_path: Path) -> None:
    pytest.importorskip("lanner.engine")
    from lanner.data.preprocess import center_crop
    from lanner.engine.calibrate.images import Preprocess
    from lanner.engine.onnx_import import load_onnx

    prep = Preprocess.from_graph(load_onnx(ultralytics_classifier_onnx(tmp_path / "cls.onnx")))
    rng = np.random.default_rng(0)
    for shape in ((60, 200), (200, 60), (20, 24)):  # wide, tall, smaller than the input (upscaled)
        image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
        crop, _ = center_crop(image, (32, 32))
        np.testing.assert_array_equal(prep._resize(image), crop)
    wide = np.zeros((60, 200, 3), np.uint8)
    wide[:, 84:116] = 255  # the middle of a wide image is what a centre crop keeps
    assert center_crop(wide, (32, 32))[0].mean() > 100
