"""The inference stages: box decoding and mapping, NMS, class filter, interval, secondary classifiers.

Box mapping is checked with hand-made ONNX graphs whose outputs are known exactly; real detectors are
random-weight YOLOX models exported small (no trained model needed).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lanner.core.detections import Detections
from lanner.core.errors import ConfigError, LannerError
from lanner.core.frame import Batch, Frame
from lanner.data.preprocess import InputSpec, to_network_input
from lanner.pipeline.infer import (
    Detector,
    DetectorConfig,
    GapFiller,
    SecondaryClassifier,
    SecondaryConfig,
    batched_nms,
    nms,
)

# Boxes in network pixels (64x64 input), scores for 2 classes.
KNOWN_BOXES = [[10, 10, 30, 40], [11, 10, 30, 40], [40, 5, 60, 20], [0, 0, 5, 5]]
KNOWN_SCORES = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.6], [0.1, 0.05]]


def write_model(path: Path, nodes: list, outputs: list, inputs: list, meta: dict[str, str]) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def detector_meta(size_hw: tuple[int, int] = (64, 64), **extra: str) -> dict[str, str]:
    meta = {
        "task": "detection",
        "labels": json.dumps(["car", "person"]),
        "input_name": "images",
        "input_size": json.dumps(list(size_hw)),
        "resize": "letterbox",
        "color_order": "BGR",
        "mean": "[0, 0, 0]",
        "std": "[1, 1, 1]",
        "pad_value": "114",
        "postprocess": "yolox_decoded",
        "outputs": '["boxes", "scores"]',
    }
    return meta | extra


def known_detector_onnx(path: Path, batch: int | str = 1, **meta: str) -> Path:
    """A 'detector' whose outputs are constants (tiled over the batch): KNOWN_BOXES / KNOWN_SCORES."""
    boxes = np.asarray(KNOWN_BOXES, np.float32)[None]
    scores = np.asarray(KNOWN_SCORES, np.float32)[None]
    nodes = [
        helper.make_node("Shape", ["images"], ["shape"], start=0, end=1),
        helper.make_node("Constant", [], ["one2"], value=helper.make_tensor("o2", TensorProto.INT64, [2], [1, 1])),
        helper.make_node("Concat", ["shape", "one2"], ["reps"], axis=0),
        helper.make_node("Constant", [], ["b0"], value=numpy_helper.from_array(boxes, "b")),
        helper.make_node("Constant", [], ["s0"], value=numpy_helper.from_array(scores, "s")),
        helper.make_node("Tile", ["b0", "reps"], ["boxes"]),
        helper.make_node("Tile", ["s0", "reps"], ["scores"]),
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 64, 64])]
    outputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, 4, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 4, 2]),
    ]
    return write_model(path, nodes, outputs, inputs, detector_meta(**meta))


def colour_classifier_onnx(path: Path, batch: int | str = "batch") -> Path:
    """A 'classifier': logits = 0.1 * mean of each BGR channel, so the dominant channel is the class."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [], [0.1])),
        helper.make_node("Mul", ["m", "k"], ["logits"]),
    ]
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 8, 8])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])]
    meta = {
        "task": "classification",
        "labels": json.dumps(["blue", "green", "red"]),
        "input_size": "[8, 8]",
        "resize": "stretch",
        "color_order": "BGR",
        "postprocess": "softmax",
        "outputs": '["logits"]',
    }
    return write_model(path, nodes, outputs, inputs, meta)


def frame(source_id: int, idx: int, h: int = 100, w: int = 200) -> Frame:
    return Frame(source_id=source_id, frame_idx=idx, pts_ns=idx * 33_000_000, image=np.zeros((h, w, 3), np.uint8))


def test_known_outputs_map_back_to_image_pixels(tmp_path: Path) -> None:
    detector = Detector(DetectorConfig(model=str(known_detector_onnx(tmp_path / "d.onnx")), conf_threshold=0.3))
    # 100x200 image -> letterbox scale min(64/100, 64/200) = 0.32: box / 0.32; NMS drops the 0.8 duplicate
    (dets,) = detector.detect([np.zeros((100, 200, 3), np.uint8)])
    assert dets.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(dets.confidence, [0.9, 0.6], rtol=1e-6)
    np.testing.assert_allclose(dets.xyxy, [[31.25, 31.25, 93.75, 100.0], [125.0, 15.625, 187.5, 62.5]], rtol=1e-5)
    assert detector.class_names == ["car", "person"]


def test_batch_from_mux_tensor_and_from_images_agree(tmp_path: Path) -> None:
    detector = Detector(DetectorConfig(model=str(known_detector_onnx(tmp_path / "d.onnx", batch="n"))))
    frames = [frame(0, 0), frame(1, 0, h=64, w=320), frame(2, 0, h=300, w=100)]
    tensor, scales = to_network_input([f.image for f in frames], detector.input_spec)
    assert detector.process(Batch(frames=frames, tensor_nchw=tensor, meta={"scales": scales})) == [True] * 3
    from_mux = [f.detections.xyxy.copy() for f in frames]
    again = [frame(0, 0), frame(1, 0, h=64, w=320), frame(2, 0, h=300, w=100)]
    detector.reset_source(0), detector.reset_source(1), detector.reset_source(2)
    detector.process(Batch(frames=again))
    for a, f in zip(from_mux, again):
        np.testing.assert_allclose(a, f.detections.xyxy)
    # 64x320: scale 0.2, box x2 = 60 / 0.2 = 300; 300x100: scale 64/300, clipped to width 100
    np.testing.assert_allclose(frames[1].detections.xyxy[1], [200, 25, 300, 64])
    assert frames[2].detections.xyxy[:, [0, 2]].max() <= 100


def test_fixed_batch_model_is_run_in_chunks(tmp_path: Path) -> None:
    detector = Detector(DetectorConfig(model=str(known_detector_onnx(tmp_path / "d.onnx", batch=1))))
    assert detector.runtime.fixed_batch == 1
    out = detector.detect([np.zeros((64, 64, 3), np.uint8)] * 3)
    assert [len(d) for d in out] == [2, 2, 2]


def test_class_filter_and_thresholds(tmp_path: Path) -> None:
    path = str(known_detector_onnx(tmp_path / "d.onnx"))
    image = [np.zeros((64, 64, 3), np.uint8)]
    assert Detector(DetectorConfig(model=path, classes=[1])).detect(image)[0].class_id.tolist() == [1]
    assert len(Detector(DetectorConfig(model=path, conf_threshold=0.95)).detect(image)[0]) == 0
    agnostic = Detector(DetectorConfig(model=path, iou_threshold=0.99)).detect(image)[0]
    assert len(agnostic) == 3  # the duplicate survives a 0.99 IoU threshold (IoU 0.95)


def test_interval_skips_frames_per_source(tmp_path: Path) -> None:
    detector = Detector(DetectorConfig(model=str(known_detector_onnx(tmp_path / "d.onnx", batch="n")), interval=2))
    due = []
    for idx in range(7):
        batch = Batch(frames=[frame(0, idx), frame(1, idx)])
        due.append(detector.process(batch))
        assert all(len(f.detections) == (2 if d else 0) for f, d in zip(batch.frames, due[-1]))
    assert [d[0] for d in due] == [True, False, False, True, False, False, True]
    assert [d[1] for d in due] == [d[0] for d in due]
    detector.reset_source(0)
    assert detector.process(Batch(frames=[frame(0, 7), frame(1, 7)])) == [True, False]


def test_gap_filler_extrapolates_tracks() -> None:
    gaps = GapFiller()
    assert len(gaps.fill(0, 0, (100, 100))) == 0
    gaps.observe(0, 0, Detections.from_arrays([[0, 0, 10, 10], [50, 50, 60, 60]], class_id=[0, 1], tracker_id=[1, 2]))
    gaps.observe(0, 3, Detections.from_arrays([[6, 3, 16, 13], [90, 50, 99, 60]], class_id=[0, 1], tracker_id=[1, 3]))
    filled = gaps.fill(0, 4, (100, 100))
    np.testing.assert_allclose(filled.xyxy, [[8, 4, 18, 14], [90, 50, 99, 60]])  # track 3 is new: held
    assert filled.tracker_id.tolist() == [1, 3]
    gaps.remove(0)
    assert len(gaps.fill(0, 5, (100, 100))) == 0


def test_numpy_nms_matches_torch_nms() -> None:
    torch = pytest.importorskip("torch")
    torch_nms = importlib.import_module("lanner.models.nms")  # the package re-exports a function named nms

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (200, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (200, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    classes = rng.integers(0, 3, 200)
    expected = torch_nms.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), expected)
    expected = torch_nms.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), 0.5)
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.5), expected.numpy())


def small_yolox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight YOLOX-Nano (3 classes) exported at 64x96, dynamic batch; made once per session."""
    torch = pytest.importorskip("torch")
    from lanner.models import create_model, export_onnx

    path = tmp_path_factory.getbasetemp() / "yolox_nano_64x96.onnx"
    if not path.is_file():
        torch.manual_seed(0)
        model = create_model("yolox_nano", num_classes=3)
        with torch.no_grad():  # the head starts at a constant prior: spread the scores so they do not tie
            for param in model.parameters():
                param.add_(0.05 * torch.randn_like(param))
        export_onnx(model, path, batch="dynamic", input_size=(64, 96))
    return path


@pytest.fixture(scope="module")
def yolox_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_yolox(tmp_path_factory)


@pytest.mark.slow
def test_random_weight_yolox_matches_torch_predict(yolox_onnx: Path) -> None:
    import torch

    from lanner.models import multiclass_nms
    from lanner.models.export import run_onnx

    detector = Detector(DetectorConfig(model=str(yolox_onnx), conf_threshold=1e-5, max_det=50))
    assert detector.input_spec == InputSpec(size_hw=(64, 96), resize="letterbox", color_order="BGR")
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (128, 192, 3), np.uint8) for _ in range(2)]  # scale exactly 0.5
    got = detector.detect(images)
    tensor, _ = to_network_input(images, detector.input_spec)
    raw = run_onnx(yolox_onnx, tensor)
    ref = multiclass_nms(torch.from_numpy(raw["boxes"]), torch.from_numpy(raw["scores"]), 1e-5, 0.45, 50, 1000)
    for d, r in zip(got, ref):
        keep = (r.wh > 1).all(axis=1)  # boxes thinner than min_box_size (2 px in the image) are dropped
        want = np.column_stack([np.clip(r.xyxy[keep] * 2, 0, [192, 128, 192, 128]), r.class_id[keep]])
        have = np.column_stack([d.xyxy, d.class_id])
        assert len(have) > 0
        np.testing.assert_allclose(have[np.lexsort(have.T)], want[np.lexsort(want.T)], atol=1e-3)  # score ties


def test_secondary_classifies_crops_with_cache(tmp_path: Path) -> None:
    sgie = SecondaryClassifier(
        SecondaryConfig(model=str(colour_classifier_onnx(tmp_path / "colour.onnx")), operate_on_class_ids=[0],
                        min_width=10, min_height=10, reinfer_interval=5)
    )  # fmt: skip
    assert sgie.name == "colour" and sgie.class_names == ["blue", "green", "red"]
    image = np.zeros((100, 200, 3), np.uint8)
    image[10:40, 10:60] = (0, 0, 255)  # red
    image[50:90, 100:150] = (255, 0, 0)  # blue
    boxes = [[10, 10, 60, 40], [100, 50, 150, 90], [100, 50, 150, 90], [0, 0, 5, 5]]
    dets = Detections.from_arrays(boxes, class_id=[0, 0, 1, 0], confidence=[0.9] * 4, tracker_id=[1, 2, 3, 4])
    f = Frame(source_id=0, frame_idx=0, pts_ns=0, image=image, detections=dets)
    sgie.process(f)
    assert f.detections.data["colour_class_id"].tolist() == [2, 0, -1, -1]  # class 1 and the tiny box skipped
    assert (f.detections.data["colour_confidence"][:2] > 0.5).all()
    assert sgie.crops_classified == 2
    for idx in range(1, 5):  # cached per track until reinfer_interval frames passed
        f = Frame(source_id=0, frame_idx=idx, pts_ns=0, image=image, detections=dets[:2])
        sgie.process(f)
        assert f.detections.data["colour_class_id"].tolist() == [2, 0]
    assert sgie.crops_classified == 2
    sgie.process(Frame(source_id=0, frame_idx=5, pts_ns=0, image=image, detections=dets[:2]))
    assert sgie.crops_classified == 4


def test_lanner_plan_runtime_gives_the_same_boxes(tmp_path: Path) -> None:
    build = pytest.importorskip("lanner.engine.build")
    plan_module = pytest.importorskip("lanner.engine.plan")
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    plan = build.build_engine(str(onnx_path), build.BuildConfig(tune=False, batch=["1:2:4"]))
    plan_path = plan_module.write_plan(plan, tmp_path / "d.plan")
    detector = Detector(DetectorConfig(model=str(plan_path)))
    assert type(detector.runtime).__name__ == "PlanRuntime" and detector.class_names == ["car", "person"]
    images = [np.zeros((100, 200, 3), np.uint8)] * 6  # more than the profile's max batch: split in two
    reference = Detector(DetectorConfig(model=str(onnx_path))).detect(images)
    for got, want in zip(detector.detect(images), reference):
        assert got == want


@pytest.mark.parametrize("count", [3, 6])  # the mux's partial last batch; a split whose second part is short
def test_a_plan_built_at_one_batch_runs_partial_batches_padded(tmp_path: Path, count: int) -> None:
    build = pytest.importorskip("lanner.engine.build")
    plan_module = pytest.importorskip("lanner.engine.plan")
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    plan = build.build_engine(str(onnx_path), build.BuildConfig(tune=False, batch=["4:4:4"]))  # `--batch 4`
    detector = Detector(DetectorConfig(model=str(plan_module.write_plan(plan, tmp_path / "d.plan"))))
    images = [np.full((100, 200, 3), 10 * i, np.uint8) for i in range(count)]
    got = detector.detect(images)
    assert len(got) == count
    assert got == Detector(DetectorConfig(model=str(onnx_path))).detect(images)


def test_secondary_batches_crops_across_frames(tmp_path: Path) -> None:
    model = str(colour_classifier_onnx(tmp_path / "colour.onnx"))
    image = np.zeros((60, 60, 3), np.uint8)
    image[:, :30] = (0, 255, 0)  # left half green, right half black
    boxes = Detections.from_arrays([[0, 0, 30, 30], [30, 30, 60, 60]], class_id=[0, 0], tracker_id=[1, 2])
    for batch_size, calls_expected in ((16, 1), (3, 2)):
        sgie = SecondaryClassifier(SecondaryConfig(model=model, min_width=1, min_height=1, batch_size=batch_size))
        calls = []
        run = sgie.runtime.run
        sgie.runtime.run = lambda x, run=run, calls=calls: calls.append(len(x)) or run(x)
        frames = [Frame(source_id=s, frame_idx=0, pts_ns=0, image=image, detections=boxes[:]) for s in (0, 1)]
        sgie.process_batch(frames)
        assert len(calls) == calls_expected and sum(calls) == 4
        for f in frames:
            assert f.detections.data["colour_class_id"][0] == 1  # green
            assert f.detections.data["colour_confidence"][1] == pytest.approx(1 / 3, abs=1e-6)  # black: a tie


def test_a_missing_onnxruntime_is_one_line_with_the_install_command(tmp_path: Path, monkeypatch) -> None:
    model = known_detector_onnx(tmp_path / "d.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without it looks like to import
    with pytest.raises(ConfigError, match=r"d\.onnx: ONNX Runtime is not installed.*pip install 'lanner\[pipeline\]'"):
        Detector(DetectorConfig(model=str(model)))


def test_bad_models_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model file not found"):
        Detector(DetectorConfig(model=str(tmp_path / "missing.onnx")))
    with pytest.raises(ConfigError, match=r"is a folder, not a model file; pass the \.onnx or \.plan file inside it"):
        Detector(DetectorConfig(model=str(tmp_path)))
    classifier = str(colour_classifier_onnx(tmp_path / "c.onnx"))
    with pytest.raises(ConfigError, match="postprocess is 'softmax'"):
        Detector(DetectorConfig(model=classifier))
    with pytest.raises(ConfigError, match="needs a classifier"):
        SecondaryClassifier(SecondaryConfig(model=str(known_detector_onnx(tmp_path / "d.onnx"))))
    with pytest.raises(ConfigError, match="unknown runtime"):
        Detector(DetectorConfig(model=classifier, runtime="tensorrt"))
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"not a plan")
    with pytest.raises(LannerError, match="plan"):
        Detector(DetectorConfig(model=str(plan)))


@pytest.mark.parametrize(
    "name",
    ["lanner.pipeline.infer.postprocess", "lanner.pipeline.infer.gaps", "lanner.pipeline.telemetry",
     "lanner.pipeline.config"],
)  # fmt: skip
def test_docstring_examples(name: str) -> None:
    import doctest

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_ort_threads_do_not_spin_unless_asked(tmp_path: Path) -> None:
    from lanner.pipeline.infer.runtime import open_runtime

    path = known_detector_onnx(tmp_path / "d.onnx")
    for spin, expected in ((False, "0"), (True, "1")):
        options = open_runtime(path, threads=2, spin=spin).session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    config = DetectorConfig(model=str(path))
    assert (config.workers, config.threads, config.spin) == (2, 1, False)  # 2 batches at once, 1 ORT thread each
