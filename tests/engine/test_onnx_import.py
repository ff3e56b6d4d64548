"""ONNX import: what is kept, and the clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from engine_testkit import make_model
from onnx import helper

from lanner.core.errors import DataError, UnsupportedOpError
from lanner.engine import check_coverage, load_onnx

F32 = np.float32


def relu_model(opset: int = 17) -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (F32, ("N", 3))}, ["y"], opset=opset)


def test_import_keeps_names_metadata_and_symbolic_dims() -> None:
    model = make_model(
        [
            helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0, 3.0]),
            helper.make_node("Add", ["x", "k"], ["y"]),
        ],
        {"x": (F32, ("N", 3))},
        ["y"],
    )
    helper.set_model_props(model, {"task": "classify", "labels": '["a","b","c"]'})
    graph = load_onnx(model.SerializeToString())
    assert graph.metadata_props == {"task": "classify", "labels": '["a","b","c"]'}
    assert [n.op_type for n in graph.nodes] == ["Add"]  # Constant became a constant value
    assert graph.nodes[0].name == "Add_1"  # unnamed nodes get stable names
    np.testing.assert_array_equal(graph.constant("k"), [1, 2, 3])
    assert graph.values["y"].shape == ("N", 3) and graph.values["y"].dtype == np.float32
    assert graph.opset == 17 and graph.inputs == ("x",)


def test_import_from_path(tmp_path: Path) -> None:
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), str(path))
    assert load_onnx(path).outputs == ("y",)


@pytest.mark.parametrize("content", [b"\x00\xffnot onnx at all\x13\x37" * 3, b"hello, I am a text file\n"])
def test_corrupt_file_is_a_clear_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"broken\.onnx: not a valid ONNX model \(.*\); re-export it"):
        load_onnx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such ONNX file"):
        load_onnx(tmp_path / "nope.onnx")


def test_unsupported_op_names_op_opset_and_node() -> None:
    model = make_model([helper.make_node("Foo", ["x"], ["y"], name="bar")], {"x": (F32, (1, 3))}, ["y"])
    with pytest.raises(UnsupportedOpError, match="op 'Foo' \\(opset 17\\) at node 'bar' is not supported"):
        load_onnx(model)


def test_several_unsupported_ops_are_reported_together() -> None:
    nodes = [
        helper.make_node("Foo", ["x"], ["a"], name="n1"),
        helper.make_node("GridSample", ["a", "a"], ["y"], name="n2"),
    ]
    model = make_model(nodes, {"x": (F32, (1, 3))}, ["y"])
    with pytest.raises(
        UnsupportedOpError, match=r"2 unsupported nodes: op 'Foo'.*op 'GridSample' \(opset 17\) at node 'n2'"
    ):
        load_onnx(model)


def test_unsupported_attribute_value_is_named() -> None:
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", mode="area")
    model = make_model([node], {"x": (F32, (1, 1, 4, 4))}, ["y"], {"s": np.array([1, 1, 2, 2], F32)})
    with pytest.raises(
        UnsupportedOpError, match="op 'Resize' \\(opset 17\\) at node 'up': mode 'area' is not supported"
    ):
        load_onnx(model)


@pytest.mark.parametrize("opset", [11, 22])
def test_opset_outside_13_to_21_is_refused(opset: int) -> None:
    with pytest.raises(
        UnsupportedOpError, match=f"opset {opset} is not supported \\(supported: 13-21\\).*convert_version"
    ):
        load_onnx(relu_model(opset))


def test_external_data_is_refused(tmp_path: Path) -> None:
    weights = {"w": np.ones((64, 64), F32)}
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": (F32, (1, 64))}, ["y"], weights)
    path = tmp_path / "big.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, size_threshold=0, location="big.data")
    with pytest.raises(
        DataError, match=r"big\.onnx: tensor 'w' is stored as external data.*save_as_external_data=False"
    ):
        load_onnx(path)


def test_coverage_lists_every_op_without_raising(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Foo", ["b"], ["c"], name="foo"),
        helper.make_node("MaxPool", ["c"], ["y", "idx"], name="mp", kernel_shape=[2, 2]),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, {"x": (F32, (1, 1, 4, 4))}, ["y", "idx"]), str(path))
    report = check_coverage(path)
    assert not report.ok
    by_op = {op.op_type: op for op in report.ops}
    assert by_op["Relu"].supported and by_op["Relu"].count == 2
    assert not by_op["Foo"].supported and "op 'Foo' (opset 17) at node 'foo' is not supported" in by_op["Foo"].reason
    assert not by_op["MaxPool"].supported and "Indices" in by_op["MaxPool"].reason
    assert [op.op_type for op in report.unsupported] == ["Foo", "MaxPool"]
    text = report.format()
    assert text.splitlines()[0] == "opset 17: 3 ops, 2 unsupported" and "FAIL  Foo" in text
    assert check_coverage(relu_model()).ok
