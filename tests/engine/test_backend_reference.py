"""The reference backend: protocol, input validation messages, build-time and run-time errors."""

from __future__ import annotations

import numpy as np
import pytest
from engine_testkit import make_model
from onnx import helper

from lanner.core.errors import ConfigError, DataError, UnsupportedOpError
from lanner.engine import get_backend, load_onnx
from lanner.engine.backends.reference import KernelError
from lanner.engine.ir import Graph, Node, Value

F32 = np.float32


@pytest.fixture
def executable():  # type: ignore[no-untyped-def]
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "bias"], ["y"]),
    ]
    model = make_model(
        nodes,
        {"images": (F32, ("N", 3, 8, 8)), "bias": (F32, ("N", 2, 8, 8))},
        ["y"],
        {"w": np.ones((2, 3, 3, 3), F32)},
    )
    return get_backend("reference").prepare(load_onnx(model))


def test_runs_with_any_batch(executable) -> None:  # type: ignore[no-untyped-def]
    out = executable.run({"images": np.ones((2, 3, 8, 8), F32), "bias": np.zeros((2, 2, 8, 8), F32)})
    assert out["y"].shape == (2, 2, 8, 8) and out["y"][0, 0, 4, 4] == 27.0


def test_wrong_input_shape_and_dtype_message(executable) -> None:  # type: ignore[no-untyped-def]
    feeds = {"images": np.ones((1, 3, 8, 9), np.float64), "bias": np.zeros((1, 2, 8, 8), F32)}
    with pytest.raises(DataError, match=r"input 'images' expects float32 \[N,3,8,8\], got float64 \[1,3,8,9\]"):
        executable.run(feeds)


def test_symbolic_dims_must_agree(executable) -> None:  # type: ignore[no-untyped-def]
    feeds = {"images": np.ones((2, 3, 8, 8), F32), "bias": np.zeros((3, 2, 8, 8), F32)}
    with pytest.raises(DataError, match=r"input 'bias' expects float32 \[N,2,8,8\], got float32 \[3,2,8,8\]"):
        executable.run(feeds)


def test_missing_and_unexpected_inputs(executable) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=r"missing \['bias'\], unexpected \['img'\].*feed exactly \['images', 'bias'\]"):
        executable.run({"images": np.ones((1, 3, 8, 8), F32), "img": np.ones(1)})


def test_unknown_backend_and_unsupported_node_at_build_time() -> None:
    with pytest.raises(ConfigError, match="unknown engine backend 'tensorrt'"):
        get_backend("tensorrt")
    values = {"x": Value("x", np.dtype(F32), (1,)), "y": Value("y", np.dtype(F32), (1,))}
    graph = Graph((Node("Foo", "foo", ("x",), ("y",)),), ("x",), ("y",), values, opset=18)
    backend = get_backend("reference")
    assert not backend.supports(graph.nodes[0]) and backend.supports(Node("Relu", "r", ("x",), ("y",)))
    with pytest.raises(UnsupportedOpError, match="op 'Foo' \\(opset 18\\) at node 'foo'"):
        backend.prepare(graph)


def test_kernel_failure_names_the_node() -> None:
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape_bad")]
    model = make_model(nodes, {"x": (F32, ("N", 6)), "s": (np.int64, (2,))}, ["y"])
    exe = get_backend("reference").prepare(load_onnx(model))
    with pytest.raises(
        KernelError, match=r"node 'reshape_bad' \(Reshape\): kernel failed on inputs \(float32 \[2, 6\], int64 \[2\]\)"
    ):
        exe.run({"x": np.ones((2, 6), F32), "s": np.array([5, 5], np.int64)})


def test_run_all_exposes_intermediates_and_outputs_do_not_alias_feeds() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["x"], ["same"])]
    model = make_model(nodes, {"x": (F32, (2, 3))}, ["r", "same"])
    exe = get_backend("reference").prepare(load_onnx(model))
    x = np.array([[-1, 2, -3], [4, -5, 6]], F32)
    out = exe.run({"x": x})
    out["same"][0, 0] = 100.0
    assert x[0, 0] == -1  # the caller's input is untouched
    everything = exe.run_all({"x": x})
    assert set(everything) == {"r", "same"} and everything["r"].min() == 0


def test_graph_summary_lists_nodes_and_shapes() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="act")], {"x": (F32, ("N", 3))}, ["y"])
    text = load_onnx(model).summary()
    assert "input x: float32 [N,3]" in text and "act: Relu(x) -> y float32 [N,3]" in text
