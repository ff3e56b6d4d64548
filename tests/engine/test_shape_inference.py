"""Shape inference: symbolic dims, symbolic shape tensors (Shape → Gather → Concat → Reshape), errors."""

from __future__ import annotations

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, make_model, run_ort, run_reference
from onnx import TensorProto, helper

from lanner.core.errors import DataError
from lanner.engine import InvalidGraphError, load_onnx, optimize
from lanner.engine.passes import eliminate_dead_nodes, fold_constants

F32 = np.float32


def view_batch_minus_one(shape: tuple) -> object:
    """x.view(x.shape[0], -1) as the TorchScript exporter writes it."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1d"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "zero1d": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    return make_model(nodes, {"x": (F32, shape)}, ["y"], inits)


def test_symbolic_shape_tensors_keep_the_batch_symbol() -> None:
    model = view_batch_minus_one(("N", 3, 4))
    graph = load_onnx(model)
    assert graph.values["y"].shape == ("N", 12)
    assert graph.values["s"].data is None  # propagated data never leaks into the graph
    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(F32)
    assert_outputs_close(run_reference(optimize(graph), {"x": x}), run_ort(model, {"x": x}))


def test_static_shape_subgraph_folds_completely() -> None:
    graph = fold_constants(load_onnx(view_batch_minus_one((2, 3, 4))))
    assert [n.op_type for n in graph.nodes] == ["Reshape"] and graph.values["y"].shape == (2, 12)


def test_numeric_parts_of_a_symbolic_shape_fold() -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "one", "big"], ["hw"]),
        helper.make_node(
            "ConstantOfShape", ["hw"], ["y"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0])
        ),
    ]
    inits = {"one": np.array([2], np.int64), "big": np.array([100], np.int64)}
    model = make_model(nodes, {"x": (F32, ("N", 3, 4, 5))}, ["y"], inits)
    graph = eliminate_dead_nodes(fold_constants(load_onnx(model)))
    assert graph.nodes == () and graph.constant("y").shape == (4, 5)


def test_shape_start_end_on_symbolic_input() -> None:
    model = make_model([helper.make_node("Shape", ["x"], ["y"], start=-2)], {"x": (F32, ("N", 3, 7))}, ["y"])
    graph = fold_constants(load_onnx(model))
    np.testing.assert_array_equal(graph.constant("y"), [3, 7])


def test_range_over_a_symbolic_dim_gets_a_symbolic_length() -> None:
    """YOLOv8's anchor grid: Range(0, W) of an image width that is dynamic (an Ultralytics dynamic=True export)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "three"], ["w"], axis=0),
        helper.make_node("Range", ["zero", "w", "one"], ["y"]),
    ]
    inits = {"three": np.array(3, np.int64), "zero": np.array(0, np.int64), "one": np.array(1, np.int64)}
    model = make_model(nodes, {"x": (F32, ("N", 3, "H", "W"))}, ["y"], inits)
    (length,) = load_onnx(model).values["y"].shape
    assert isinstance(length, str)
    x = np.zeros((1, 3, 2, 5), F32)
    assert_outputs_close(run_reference(load_onnx(model), {"x": x}), run_ort(model, {"x": x}))


def test_inference_failure_names_the_node() -> None:
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")], {"a": (F32, (2, 3)), "b": (F32, (4,))}, ["y"]
    )
    with pytest.raises(
        InvalidGraphError,
        match=r"node 'add' \(Add\): shape inference failed for inputs \(float32 \[2,3\], float32 \[4\]\)",
    ):
        load_onnx(model)


def test_input_without_shape_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_empty_tensor_value_info("y")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(DataError, match="input 'x' has no shape"):
        load_onnx(model)


def test_conv_kernel_larger_than_input_is_a_clear_error() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="big_kernel")
    model = make_model([node], {"x": (F32, (1, 1, 4, 4))}, ["y"], {"w": np.ones((1, 1, 5, 5), F32)})
    with pytest.raises(InvalidGraphError, match=r"node 'big_kernel' \(Conv\).*output size \[0, 0\] <= 0"):
        load_onnx(model)
