"""The ``cpu`` backend (torch kernels): every test network and every one-op model vs ONNX Runtime, every tactic,
the reference fallback for ops/attributes without a torch kernel, output aliasing and kernel errors."""

from __future__ import annotations

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, export_torch, make_model, run_ort, run_reference
from onnx import helper
from test_engine_networks import NETWORKS, randomize
from test_onnx_ops import CASES, Case, _materialize

from lanner.engine import get_backend, load_onnx, optimize
from lanner.engine.backends.cpu import _guard
from lanner.engine.backends.cpu_conv import TACTICS
from lanner.engine.backends.cpu_kernels import KERNELS
from lanner.engine.backends.reference import KernelError
from lanner.engine.ops import OPS

torch = pytest.importorskip("torch")
CONV_TACTICS = TACTICS[("", "Conv")]


# every network with the fast path (oneDNN fused convs); three of them with every other conv tactic too
NETWORK_TACTICS = {name: ("onednn.fused",) for name in NETWORKS}
NETWORK_TACTICS.update({name: CONV_TACTICS for name in ("resnet18_like", "mobilenetv3_like", "yolo_like")})


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_matches_onnxruntime_with_conv_tactics(name: str) -> None:
    module = randomize(NETWORKS[name](), seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model = export_torch(module, torch.from_numpy(x[:1]), raw=True, dynamic_batch=True)
    expected = run_ort(model, {"images": x})
    graph = optimize(load_onnx(model))
    for tactic in NETWORK_TACTICS[name]:
        gemm = "aten.addmm" if tactic == "onednn.fused" else "aten.linear"
        choices = {n.name: tactic if "Conv" in n.op_type else gemm for n in graph.nodes}
        exe = get_backend("cpu").prepare(graph, choices)
        assert_outputs_close(exe.run({"images": x}), expected)
        assert exe.fallback_nodes == []  # incl. the runtime Shape → Reshape of the dynamic-batch YOLO head


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_op_matches_onnxruntime(case: Case) -> None:
    feeds, inits, names = _materialize(case)
    outputs = [f"out{i}" for i in range(case.outputs)]
    attrs = {
        k: helper.make_tensor("value", 1, [1], v) if isinstance(v, np.ndarray) else v for k, v in case.attrs.items()
    }
    node = helper.make_node(case.op, names, outputs, **attrs)
    model = make_model([node], {k: (v.dtype, v.shape) for k, v in feeds.items()}, outputs, inits, opset=case.opset)
    graph = load_onnx(model)
    assert_outputs_close(get_backend("cpu").prepare(graph).run(feeds), run_ort(model, feeds))


def test_torch_kernels_cover_the_network_ops_and_only_known_ops() -> None:
    assert set(KERNELS) <= set(OPS)
    for op in ("Conv", "Relu", "Add", "Concat", "Resize", "MaxPool", "Gemm", "Reshape", "Split", "Slice", "Softmax"):
        assert ("", op) in KERNELS
    assert ("ai.lanner", "FusedConv") in KERNELS and ("ai.lanner", "Pointwise") in KERNELS


def _topk_model():
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("TopK", ["r", "k"], ["values", "indices"], axis=1),
        helper.make_node("Resize", ["r4", "", "scales"], ["big"], mode="cubic"),
        helper.make_node("Reshape", ["r", "shape4"], ["r4"]),
    ]
    nodes = [nodes[0], nodes[3], nodes[1], nodes[2]]
    inits = {
        "k": np.array([3], np.int64),
        "shape4": np.array([2, 1, 4, 4], np.int64),
        "scales": np.array([1, 1, 2, 2], np.float32),
    }
    return make_model(nodes, {"x": (np.float32, (2, 16))}, ["values", "indices", "big"], inits), {"x": x}


def test_ops_without_torch_kernels_fall_back_to_the_reference_kernel() -> None:
    model, feeds = _topk_model()
    graph = load_onnx(model)
    exe = get_backend("cpu").prepare(graph)
    fallback = {graph.nodes[i].op_type for i, (n, _) in enumerate(exe.names) if n in exe.fallback_nodes}
    assert fallback == {"TopK", "Resize"}  # TopK has no torch kernel; cubic Resize is refused by the factory
    assert exe.torch_nodes == 2
    result = exe.run(feeds)
    assert_outputs_close(result, run_reference(graph, feeds))
    assert_outputs_close(result, run_ort(model, feeds))


def test_outputs_never_alias_inputs_or_weights() -> None:
    w = np.ones((2, 3), np.float32)
    nodes = [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["w"], ["z"])]
    model = make_model(nodes, {"x": (np.float32, (2, 3))}, ["y", "z"], {"w": w})
    exe = get_backend("cpu").prepare(load_onnx(model))
    x = np.zeros((2, 3), np.float32)
    out = exe.run({"x": x})
    out["y"][:] = 5
    out["z"][:] = 7
    assert x.max() == 0 and exe.run({"x": x})["z"].max() == 1
    flipped = np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::-1]  # negative strides, read-only feeds work
    flipped.flags.writeable = False
    np.testing.assert_array_equal(exe.run({"x": flipped})["y"], flipped)


def test_kernel_failure_names_the_node() -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    model = make_model(nodes, {"x": (np.float32, ("N", 3))}, ["y"], {"w": np.ones((3, 2), np.float32)})
    graph = load_onnx(model)
    exe = get_backend("cpu").prepare(graph)
    broken = _guard(lambda *xs: torch.ones(2) @ torch.ones(3), graph.nodes[0])  # a kernel that raises inside torch
    exe.steps[0] = (broken, *exe.steps[0][1:])
    with pytest.raises(KernelError, match=r"node 'mm' \(MatMul\): kernel failed on inputs"):
        exe.run({"x": np.ones((4, 3), np.float32)})


def test_bad_feeds_are_clear_errors() -> None:
    from lanner.core.errors import DataError

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    exe = get_backend("cpu").prepare(load_onnx(make_model(nodes, {"x": (np.float32, ("N", 3))}, ["y"])))
    with pytest.raises(DataError, match=r"input 'x' expects float32 \[N,3\], got float64 \[2,3\]"):
        exe.run({"x": np.zeros((2, 3))})
    with pytest.raises(DataError, match="missing"):
        exe.run({})


def test_run_all_and_profile_cover_every_layer() -> None:
    module = randomize(NETWORKS["unet_like"](), seed=1)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    graph = optimize(load_onnx(export_torch(module, torch.from_numpy(x))))
    exe = get_backend("cpu").prepare(graph)
    every = exe.run_all({"images": x})
    assert set(every) == {o for n in graph.nodes for o in n.outputs if o}
    assert_outputs_close(every, get_backend("reference").prepare(graph).run_all({"images": x}))
    profile = exe.profile({"images": x})
    assert [name for name, _, _ in profile] == [n.name for n in graph.nodes] and all(ms >= 0 for *_, ms in profile)
