"""ONNX export: metadata_props, static and dynamic batch, argument errors, the ORT check."""

import json

import numpy as np
import onnx
import pytest
import torch

from lanner.core.errors import ConfigError, DataError, LannerError
from lanner.models import create_model, export_onnx, run_onnx


@pytest.fixture(scope="module")
def detector():
    return create_model("yolox_nano", class_names=["person", "car"])


def props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_detector_metadata_props(detector, tmp_path) -> None:
    report = export_onnx(detector, tmp_path / "det.onnx", input_size=(96, 128))
    meta = props(report.path)
    assert meta == report.metadata
    assert meta["task"] == "detection"
    assert json.loads(meta["labels"]) == ["person", "car"]
    assert meta["input_name"] == "images" and meta["input_layout"] == "NCHW"
    assert json.loads(meta["input_size"]) == [96, 128]
    assert json.loads(meta["mean"]) == [0, 0, 0] and json.loads(meta["std"]) == [1, 1, 1]
    assert meta["color_order"] == "BGR"
    assert meta["resize"] == "letterbox" and json.loads(meta["pad_value"]) == 114
    assert meta["postprocess"] == "yolox_decoded" and meta["box_format"] == "xyxy"
    assert json.loads(meta["strides"]) == [8, 16, 32]
    assert json.loads(meta["outputs"]) == ["boxes", "scores"]
    model = onnx.load(str(report.path))
    assert [o.name for o in model.graph.output] == ["boxes", "scores"]
    assert model.opset_import[0].version >= 17


def test_classifier_metadata_props(tmp_path) -> None:
    model = create_model("resnet10", class_names=["a", "b", "c"])
    meta = export_onnx(model, tmp_path / "cls.onnx", input_size=64, opset=18).metadata
    assert meta["task"] == "classification" and meta["postprocess"] == "softmax"
    assert meta["color_order"] == "RGB" and meta["resize"] == "stretch"
    np.testing.assert_allclose(json.loads(meta["mean"]), [123.675, 116.28, 103.53])
    assert json.loads(meta["outputs"]) == ["logits"]
    assert "strides" not in meta
    assert onnx.load(str(tmp_path / "cls.onnx")).opset_import[0].version == 18


def test_static_batch_is_fixed_to_one(detector, tmp_path) -> None:
    report = export_onnx(detector, tmp_path / "s.onnx", input_size=(64, 64))
    dims = onnx.load(str(report.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 64, 64]


@pytest.mark.parametrize("name", ["yolox_nano", "mobilenet_v2_050"])
def test_dynamic_batch_runs_at_batch_1_and_3(name, tmp_path) -> None:
    model = create_model(name, num_classes=2)
    size = (64, 96)
    report = export_onnx(model, tmp_path / "d.onnx", batch="dynamic", input_size=size)
    assert report.metadata["batch"] == "dynamic"
    graph = onnx.load(str(report.path)).graph
    for output in graph.output:  # batch symbolic, every other axis a number
        dims = output.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and all(d.dim_value > 0 for d in dims[1:])
    assert not [n for n in graph.node if n.op_type in ("Identity", "Loop")]
    model.eval()
    for batch in (1, 3):
        images = torch.randn(batch, 3, *size)
        with torch.no_grad():
            expected = model(images)
        expected = [expected] if isinstance(expected, torch.Tensor) else expected
        got = run_onnx(report.path, images.numpy())
        for out_name, ref in zip(model.info.outputs, expected):
            assert got[out_name].shape[0] == batch
            np.testing.assert_allclose(got[out_name], ref.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": "auto"}, "batch must be 'static' or 'dynamic'"),
        ({"opset": 13}, "use opset >= 17"),
        ({"opset": 99}, r"opset 99 is newer than this torch's ONNX exporter writes \(\d+\); use an opset from 17 to"),
        ({"input_size": (100, 128)}, "not a multiple of the largest stride 32"),
    ],
)
def test_bad_arguments_fail_before_export(detector, tmp_path, kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        export_onnx(detector, tmp_path / "x.onnx", **kwargs)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda tmp: tmp, "the output is a folder; pass a file path"),
        (lambda tmp: tmp / "notes.txt" / "x.onnx", "notes.txt is a file, not a folder"),
        (lambda tmp: tmp / "notes.txt" / "sub" / "x.onnx", "cannot write the output file"),
    ],
    ids=["folder", "parent_is_a_file", "ancestor_is_a_file"],
)
def test_an_unwritable_output_is_one_data_error_and_writes_nothing(detector, tmp_path, target, message) -> None:
    (tmp_path / "notes.txt").write_text("x")
    path = target(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        export_onnx(detector, path, input_size=(64, 64))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_difference_above_tolerance_fails(tmp_path) -> None:
    model = create_model("resnet10", num_classes=2)
    with pytest.raises(LannerError, match="ONNX Runtime differs from torch on 'logits'"):
        export_onnx(model, tmp_path / "x.onnx", input_size=32, rtol=0.0, atol=-1.0)


def test_a_failed_export_keeps_the_old_file_and_names_the_real_path(tmp_path) -> None:
    model = create_model("resnet10", num_classes=2)
    target = tmp_path / "x.onnx"
    target.write_bytes(b"yesterday's good model")
    with pytest.raises(LannerError) as info:  # the ORT check fails: the new file never replaces the old one
        export_onnx(model, target, input_size=32, rtol=0.0, atol=-1.0)
    assert str(info.value).startswith(f"{target}: ONNX Runtime differs")
    assert target.read_bytes() == b"yesterday's good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.onnx"]  # no partial file left beside it
    export_onnx(model, target, input_size=32)
    assert onnx.load(str(target)).graph.input[0].name  # and a good export does replace it
