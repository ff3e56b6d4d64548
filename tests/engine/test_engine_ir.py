"""The IR: Graph helpers and the verifier's errors (each names the node or value at fault)."""

from __future__ import annotations

import numpy as np
import pytest

from lanner.engine.ir import Graph, InvalidGraphError, Node, Value, verify

F32 = np.dtype("float32")


def chain_graph(nodes: list[Node] | None = None, outputs: tuple[str, ...] = ("z",)) -> Graph:
    values = {n: Value(n, F32, ("N", 3)) for n in ("x", "y", "z")}
    values["k"] = Value.constant("k", np.ones(3, np.float32))
    nodes = nodes or [Node("Relu", "relu", ("x",), ("y",)), Node("Add", "add", ("y", "k"), ("z",))]
    return Graph(nodes=tuple(nodes), inputs=("x",), outputs=outputs, values=values, opset=17)


def test_producers_consumers_and_constants() -> None:
    graph = chain_graph()
    assert graph.producers()["z"].name == "add"
    assert [n.name for n in graph.consumers()["y"]] == ["add"]
    assert set(graph.constants) == {"k"}
    assert graph.op_counts() == {"Relu": 1, "Add": 1}
    assert verify(graph, require_types=True) is graph


def test_constants_are_read_only_and_describe_themselves() -> None:
    value = Value.constant("k", np.arange(6, dtype=np.int64).reshape(2, 3))
    with pytest.raises(ValueError):
        value.data[0, 0] = 5  # type: ignore[index]
    assert value.describe() == "int64 [2,3]" and value.is_static and value.is_constant
    assert Value("x", F32, ("N", 3, 224, 224)).describe() == "float32 [N,3,224,224]"


def test_toposorted_restores_order_and_detects_cycles() -> None:
    graph = chain_graph()
    shuffled = graph.replace(nodes=graph.nodes[::-1])
    with pytest.raises(InvalidGraphError, match=r"node 'add' \(Add\).*used before it is defined"):
        verify(shuffled)
    assert [n.name for n in shuffled.toposorted().nodes] == ["relu", "add"]
    branches = chain_graph([Node("Relu", "b", ("x",), ("y",)), Node("Relu", "a", ("x",), ("z",))], outputs=("y", "z"))
    assert [n.name for n in branches.toposorted().nodes] == ["b", "a"]  # a valid order is kept (stable)
    cyclic = chain_graph([Node("Relu", "a", ("z",), ("y",)), Node("Add", "b", ("y", "k"), ("z",))])
    with pytest.raises(ValueError, match="cycle"):
        cyclic.toposorted()


def test_verify_rejects_two_producers() -> None:
    graph = chain_graph(
        [Node("Relu", "r1", ("x",), ("y",)), Node("Relu", "r2", ("x",), ("y",)), Node("Add", "add", ("y", "k"), ("z",))]
    )
    with pytest.raises(InvalidGraphError, match=r"node 'r2' \(Relu\).*already has a producer"):
        verify(graph)


def test_verify_rejects_duplicate_node_names() -> None:
    graph = chain_graph([Node("Relu", "same", ("x",), ("y",)), Node("Add", "same", ("y", "k"), ("z",))])
    with pytest.raises(InvalidGraphError, match=r"node 'same' \(Add\): two nodes share this name"):
        verify(graph)


def test_verify_rejects_unproduced_outputs_and_missing_types() -> None:
    with pytest.raises(InvalidGraphError, match="graph output 'y' is never produced"):
        verify(chain_graph([Node("Add", "add", ("x", "k"), ("z",))], outputs=("z", "y")))
    graph = chain_graph()
    untyped = graph.replace(values={**graph.values, "y": Value("y")})
    verify(untyped)
    with pytest.raises(InvalidGraphError, match="node 'relu' \\(Relu\\): value 'y' has no dtype/shape"):
        verify(untyped, require_types=True)


def test_with_nodes_prunes_values_and_graphs_are_not_mutated() -> None:
    graph = chain_graph()
    smaller = graph.with_nodes([Node("Relu", "relu", ("x",), ("z",))])
    assert set(smaller.values) == {"x", "z"} and "k" in graph.values and len(graph.nodes) == 2
    assert graph.unique_name("k") == "k_1" and graph.unique_name("fresh") == "fresh"
    copy = graph.copy()
    assert copy.nodes == graph.nodes and dict(copy.values) == dict(graph.values) and copy.values is not graph.values


def test_node_helpers() -> None:
    node = Node("Conv", "c", ("x", "w", ""), ("y",), {"group": 2})
    assert node.attr("group") == 2 and node.attr("strides", [1, 1]) == [1, 1]
    assert node.input(2) == "" and node.input(5) == ""
    assert node.evolve(name="d").name == "d" and node.key == ("", "Conv")


def test_engine_imports_neither_torch_nor_onnx_eagerly() -> None:
    """The engine is numpy-only at import; onnx is imported lazily by the importer, torch never."""
    import subprocess
    import sys

    code = "import sys, lanner.engine; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
