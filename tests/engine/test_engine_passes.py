"""Each pass alone: graph before/after, verifier, and numerics unchanged (reference backend)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, make_model, run_ort, run_reference
from onnx import helper

from lanner.engine import load_onnx, optimize, summarize_layers, verify
from lanner.engine.ir import Graph
from lanner.engine.passes import (
    PASSES,
    cancel_transposes,
    eliminate_dead_nodes,
    eliminate_identity,
    fold_batchnorm,
    fold_constants,
    fuse_conv_activation,
    fuse_pad_into_conv,
    fuse_pointwise_chains,
    fuse_residual_add,
    merge_reshapes,
)

F32 = np.float32
RNG = np.random.default_rng(7)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(F32)


def apply(pass_fn, model, feeds) -> tuple[Graph, Graph]:  # type: ignore[no-untyped-def]
    """Run one pass; check the result verifies and computes the same outputs as before (and as ORT)."""
    before = load_onnx(model)
    after = verify(pass_fn(before), require_types=True)
    expected = run_reference(before, feeds)
    assert_outputs_close(run_reference(after, feeds), expected, tol=1e-5)
    assert_outputs_close(expected, run_ort(model, feeds))
    return before, after


def ops(graph: Graph) -> list[str]:
    return [n.op_type for n in graph.nodes]


def conv_model(
    after: list, extra_inputs: dict | None = None, extra_inits: dict | None = None, out: str = "y", bias: bool = True
):
    """x → Conv(3→4, 3x3, pad 1) → ``after`` nodes; conv output is named 'c'."""
    inits = {"w": rand(4, 3, 3, 3), **({"b": rand(4)} if bias else {}), **(extra_inits or {})}
    conv = helper.make_node("Conv", ["x", "w", "b"] if bias else ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])
    inputs = {"x": (F32, (1, 3, 6, 6)), **(extra_inputs or {})}
    return make_model([conv, *after], inputs, [out], inits)


FEEDS = {"x": rand(1, 3, 6, 6)}


# -- cleanup --------------------------------------------------------------------------------------
def test_fold_constants_resolves_a_shape_subgraph() -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1d"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "zero1d": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    model = make_model(nodes, {"x": (F32, (2, 3, 4))}, ["y"], inits)
    before, after = apply(fold_constants, model, {"x": rand(2, 3, 4)})
    assert ops(before) == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]
    assert ops(after) == ["Reshape"]
    np.testing.assert_array_equal(after.constant(after.nodes[0].inputs[1]), [2, -1])


def test_fold_constants_dequantizes_constant_weights() -> None:
    """QDQ weights (DequantizeLinear of a constant) become float constants feeding the Conv."""
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"]),
    ]
    inits = {
        "wq": RNG.integers(-100, 100, (4, 3, 1, 1)).astype(np.int8),
        "ws": np.full(4, 0.01, F32),
        "wz": np.zeros(4, np.int8),
    }
    model = make_model(nodes, {"x": (F32, (1, 3, 6, 6))}, ["y"], inits)
    _, after = apply(fold_constants, model, FEEDS)
    assert ops(after) == ["Conv"] and after.constant(after.nodes[0].inputs[1]).dtype == F32


def test_fold_constants_keeps_symbolic_shapes() -> None:
    model = make_model([helper.make_node("Shape", ["x"], ["y"])], {"x": (F32, ("N", 3))}, ["y"])
    graph = load_onnx(model)
    assert ops(fold_constants(graph)) == ["Shape"]


def test_eliminate_dead_nodes_drops_unused_branches() -> None:
    model = conv_model([helper.make_node("Relu", ["c"], ["y"]), helper.make_node("Sigmoid", ["c"], ["unused"])])
    before, after = apply(eliminate_dead_nodes, model, FEEDS)
    assert ops(before) == ["Conv", "Relu", "Sigmoid"] and ops(after) == ["Conv", "Relu"]
    assert "unused" not in after.values


def test_eliminate_identity_rewires_readers_but_keeps_graph_outputs() -> None:
    nodes = [
        helper.make_node("Identity", ["c"], ["i1"]),
        helper.make_node("Relu", ["i1"], ["r"]),
        helper.make_node("Identity", ["r"], ["y"]),
    ]
    _, after = apply(eliminate_identity, conv_model(nodes), FEEDS)
    assert ops(after) == ["Conv", "Relu", "Identity"]
    assert after.nodes[1].inputs == ("c",)


# -- fold_batchnorm -------------------------------------------------------------------------------
def _bn_inits(channels: int) -> dict:
    return {"g": rand(channels), "be": rand(channels), "m": rand(channels), "v": np.abs(rand(channels)) + 0.5}


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv(bias: bool) -> None:
    bn = helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"], name="bn", epsilon=1e-3)
    before, after = apply(fold_batchnorm, conv_model([bn], extra_inits=_bn_inits(4), bias=bias), FEEDS)
    assert ops(before) == ["Conv", "BatchNormalization"] and ops(after) == ["Conv"]
    assert after.nodes[0].name == "conv + bn"


@pytest.mark.parametrize("trans_b", [0, 1])
def test_fold_batchnorm_into_gemm(trans_b: int) -> None:
    w = rand(5, 6) if trans_b else rand(6, 5)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=trans_b, alpha=0.7, beta=1.3),
        helper.make_node("BatchNormalization", ["h", "g", "be", "m", "v"], ["y"]),
    ]
    model = make_model(nodes, {"x": (F32, (3, 6))}, ["y"], {"w": w, "c": rand(5), **_bn_inits(5)})
    _, after = apply(fold_batchnorm, model, {"x": rand(3, 6)})
    assert ops(after) == ["Gemm"]


def test_fold_batchnorm_skips_a_conv_output_read_elsewhere() -> None:
    nodes = [
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"]),
        helper.make_node("Add", ["bn", "c"], ["y"]),
    ]
    _, after = apply(fold_batchnorm, conv_model(nodes, extra_inits=_bn_inits(4)), FEEDS)
    assert ops(after) == ["Conv", "BatchNormalization", "Add"]


# -- conv epilogue fusion -------------------------------------------------------------------------
ACTIVATIONS = [
    ("Relu", {}, []),
    ("LeakyRelu", {"alpha": 0.2}, []),
    ("Sigmoid", {}, []),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, []),
    ("HardSwish", {}, []),
    ("Clip", {}, ["lo", "hi"]),
    ("Tanh", {}, []),
]


@pytest.mark.parametrize(("op", "attrs", "extra"), ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_fuse_conv_activation(op: str, attrs: dict, extra: list) -> None:
    node = helper.make_node(op, ["c", *extra], ["y"], name="act", **attrs)
    inits = {"lo": np.array(0.0, F32), "hi": np.array(6.0, F32)} if extra else {}
    _, after = apply(fuse_conv_activation, conv_model([node], extra_inits=inits), FEEDS)
    assert ops(after) == ["FusedConv"]
    fused = after.nodes[0]
    assert fused.domain == "ai.lanner" and fused.attrs["activation"] == op and fused.name == "conv + act"


def test_fuse_conv_activation_recognizes_silu() -> None:
    nodes = [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["s", "c"], ["y"])]
    _, after = apply(fuse_conv_activation, conv_model(nodes), FEEDS)
    assert ops(after) == ["FusedConv"] and after.nodes[0].attrs["activation"] == "Silu"


def test_fuse_conv_activation_respects_graph_outputs_and_runtime_bounds() -> None:
    nodes = [helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"]), *nodes],
        {"x": (F32, (1, 3, 6, 6))},
        ["y", "c"],
        {"w": rand(4, 3, 3, 3)},
    )
    _, after = apply(fuse_conv_activation, model, FEEDS)
    assert ops(after) == ["Conv", "Relu"]  # 'c' is a graph output: it must stay materialized
    clip = helper.make_node("Clip", ["c", "lo"], ["y"])
    model = conv_model([clip], extra_inputs={"lo": (F32, ())})
    _, after = apply(fuse_conv_activation, model, {**FEEDS, "lo": np.array(0.1, F32)})
    assert ops(after) == ["Conv", "Clip"]


def test_fuse_residual_add_then_activation_as_in_resnet() -> None:
    nodes = [
        helper.make_node("Add", ["skip", "c"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu"),
    ]
    model = conv_model(nodes, extra_inputs={"skip": (F32, (1, 4, 6, 6))})
    feeds = {**FEEDS, "skip": rand(1, 4, 6, 6)}
    _, after = apply(fuse_residual_add, model, feeds)
    assert ops(after) == ["FusedConv", "Relu"] and after.nodes[0].attrs["residual"] == "before_activation"
    final = verify(fuse_conv_activation(after), require_types=True)
    assert ops(final) == ["FusedConv"] and final.nodes[0].name == "conv + add + relu"
    assert_outputs_close(run_reference(final, feeds), run_ort(model, feeds))


def test_fuse_residual_add_after_activation_as_in_yolo() -> None:
    nodes = [helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Add", ["r", "skip"], ["y"])]
    model = conv_model(nodes, extra_inputs={"skip": (F32, (1, 4, 6, 6))})
    feeds = {**FEEDS, "skip": rand(1, 4, 6, 6)}
    graph = fuse_conv_activation(load_onnx(model))
    fused = verify(fuse_residual_add(graph), require_types=True)
    assert ops(fused) == ["FusedConv"] and fused.nodes[0].attrs["residual"] == "after_activation"
    assert_outputs_close(run_reference(fused, feeds), run_ort(model, feeds))


def test_fuse_residual_add_skips_broadcasting_adds() -> None:
    model = conv_model([helper.make_node("Add", ["c", "skip"], ["y"])], extra_inputs={"skip": (F32, (1, 4, 1, 1))})
    _, after = apply(fuse_residual_add, model, {**FEEDS, "skip": rand(1, 4, 1, 1)})
    assert ops(after) == ["Conv", "Add"]


# -- pad into conv -------------------------------------------------------------------------------
@pytest.mark.parametrize("with_axes", [False, True])
def test_fuse_pad_into_conv(with_axes: bool) -> None:
    pads = np.array([1, 2, 0, 3] if with_axes else [0, 0, 1, 2, 0, 0, 0, 3], np.int64)
    inputs = ["x", "pads", "", "axes"] if with_axes else ["x", "pads"]
    nodes = [
        helper.make_node("Pad", inputs, ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["y"], name="conv", pads=[1, 0, 1, 1]),
    ]
    inits = {"pads": pads, "w": rand(4, 3, 3, 3), **({"axes": np.array([2, 3], np.int64)} if with_axes else {})}
    model = make_model(nodes, {"x": (F32, (1, 3, 6, 6))}, ["y"], inits, opset=18)
    _, after = apply(fuse_pad_into_conv, model, FEEDS)
    assert ops(after) == ["Conv"] and after.nodes[0].attrs["pads"] == [2, 2, 1, 4]


@pytest.mark.parametrize(("mode", "value"), [("reflect", None), ("constant", 1.0)])
def test_fuse_pad_into_conv_skips_non_zero_padding(mode: str, value: float | None) -> None:
    inputs = ["x", "pads", "v"] if value is not None else ["x", "pads"]
    nodes = [helper.make_node("Pad", inputs, ["p"], mode=mode), helper.make_node("Conv", ["p", "w"], ["y"])]
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": rand(4, 3, 3, 3)}
    if value is not None:
        inits["v"] = np.array(value, F32)
    model = make_model(nodes, {"x": (F32, (1, 3, 6, 6))}, ["y"], inits)
    _, after = apply(fuse_pad_into_conv, model, FEEDS)
    assert ops(after) == ["Pad", "Conv"]


# -- transpose / reshape cancellation ------------------------------------------------------------
def test_cancel_transposes_removes_inverse_pairs_and_composes_others() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t2"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t3"], perm=[1, 0, 2, 3]),
        helper.make_node("Transpose", ["t3"], ["y"], perm=[0, 1, 3, 2]),
    ]
    model = make_model(nodes, {"x": (F32, (1, 3, 6, 5))}, ["y"])
    _, after = apply(cancel_transposes, model, {"x": rand(1, 3, 6, 5)})
    assert ops(after) == ["Relu", "Transpose"]
    assert after.nodes[0].inputs == ("x",) and after.nodes[1].attrs["perm"] == [1, 0, 3, 2]


def test_merge_reshapes_collapses_chains() -> None:
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Unsqueeze", ["f", "ax"], ["u"]),
        helper.make_node("Reshape", ["u", "s"], ["y"]),
    ]
    inits = {"ax": np.array([0], np.int64), "s": np.array([0, 0, 5, -1], np.int64)}
    model = make_model(nodes, {"x": (F32, (2, 3, 5, 2))}, ["y"], inits)
    _, after = apply(merge_reshapes, model, {"x": rand(2, 3, 5, 2)})
    assert ops(after) == ["Reshape"]
    np.testing.assert_array_equal(after.constant(after.nodes[0].inputs[1]), [1, 2, 5, 6])


# -- the pipeline ----------------------------------------------------------------------------------
def test_pipeline_is_a_named_list_and_logs_layer_counts(caplog: pytest.LogCaptureFixture) -> None:
    names = [name for name, _ in PASSES]
    assert names[0] == "fold_constants" and names.index("fold_batchnorm") < names.index("fuse_conv_activation")
    bn = helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"])
    model = conv_model([bn, helper.make_node("Relu", ["n"], ["y"])], extra_inits=_bn_inits(4))
    graph = load_onnx(model)
    with caplog.at_level(logging.INFO, logger="lanner.engine"):
        optimized = optimize(graph)
    assert ops(optimized) == ["FusedConv"]
    assert "Original: 3 layers → after fusion: 1" in caplog.text
    assert summarize_layers(graph, optimized) == "Original: 3 layers → after fusion: 1"
    assert_outputs_close(run_reference(optimized, FEEDS), run_ort(model, FEEDS))


def test_passes_are_pure_the_input_graph_is_unchanged() -> None:
    bn = helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"])
    graph = load_onnx(conv_model([bn, helper.make_node("Relu", ["n"], ["y"])], extra_inits=_bn_inits(4)))
    nodes, values = graph.nodes, dict(graph.values)
    weights = {k: v.copy() for k, v in graph.constants.items()}
    optimize(graph)
    assert graph.nodes == nodes and dict(graph.values) == values
    for name, data in weights.items():
        np.testing.assert_array_equal(graph.constant(name), data)


@pytest.mark.parametrize("with_bias", [True, False])
def test_gemm_epilogue_fusion(with_bias: bool) -> None:
    """Gemm + residual Add + LeakyRelu becomes one FusedGemm (classifier heads, MLPs)."""
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"] if with_bias else ["x", "w"], ["g"], name="fc", transB=1, alpha=0.5),
        helper.make_node("Add", ["g", "skip"], ["a"], name="add"),
        helper.make_node("LeakyRelu", ["a"], ["y"], name="act", alpha=0.1),
    ]
    inits = {"w": rand(5, 6), **({"b": rand(5)} if with_bias else {})}
    model = make_model(nodes, {"x": (F32, (3, 6)), "skip": (F32, (3, 5))}, ["y"], inits)
    feeds = {"x": rand(3, 6), "skip": rand(3, 5)}
    graph = load_onnx(model)
    fused = verify(fuse_conv_activation(fuse_residual_add(graph)), require_types=True)
    assert ops(fused) == ["FusedGemm"] and fused.nodes[0].name == "fc + add + act"
    assert fused.nodes[0].attrs["residual"] == "before_activation"
    assert_outputs_close(run_reference(fused, feeds), run_ort(model, feeds))


def test_qdq_model_matches_onnxruntime_and_weight_dequantize_folds() -> None:
    """The INT8 contract is QDQ ONNX: activations fake-quantized (Q→DQ), weights int8 + DequantizeLinear."""
    scales = {
        "xs": np.array(0.02, F32),
        "xz": np.array(0, np.int8),
        "ws": np.full(4, 0.01, F32),
        "wz": np.zeros(4, np.int8),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("Conv", ["xd", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    inits = {**scales, "wq": RNG.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), "b": rand(4)}
    model = make_model(nodes, {"x": (F32, (1, 3, 6, 6))}, ["y"], inits)
    expected = run_ort(model, FEEDS)
    optimized = optimize(load_onnx(model))
    assert ops(optimized) == ["QuantizeLinear", "QConv"]  # fold_qdq: DQ → conv + relu is one INT8 conv
    assert_outputs_close(run_reference(optimized, FEEDS), expected)


# -- pointwise chains ------------------------------------------------------------------------------
def test_fuse_pointwise_chains_builds_one_node_per_tree() -> None:
    """A YOLO-style decode: (x * 2 + b).exp() * s and a separate sigmoid branch that is reused."""
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["m"], name="mul"),
        helper.make_node("Add", ["m", "b"], ["a"], name="add"),
        helper.make_node("Exp", ["a"], ["e"], name="exp"),
        helper.make_node("Mul", ["e", "x"], ["y"], name="scale"),
        helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
        helper.make_node("Add", ["s", "s"], ["z"], name="twice"),  # 's' read twice by one node: still sole reader
        helper.make_node("Neg", ["z"], ["w"], name="neg"),
    ]
    inits = {"two": np.array(2.0, F32), "b": rand(4)}
    model = make_model(nodes, {"x": (F32, (2, 3, 4))}, ["y", "w", "z"], inits)
    _, after = apply(fuse_pointwise_chains, model, {"x": rand(2, 3, 4)})
    assert ops(after) == ["Pointwise", "Sigmoid", "Add", "Neg"]  # 'z' is a graph output: the chain breaks there
    fused = after.nodes[0]
    assert fused.name == "mul + add + exp + scale" and fused.inputs == ("x", "two", "b")


def test_fuse_pointwise_chains_leaves_shared_intermediates_and_ints_alone() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["r"], ["n1"]),
        helper.make_node("Abs", ["r"], ["n2"]),  # 'r' has two readers: Relu stays on its own
        helper.make_node("Add", ["n1", "n2"], ["y"]),
        helper.make_node("Add", ["i", "i"], ["j"]),
        helper.make_node("Mul", ["j", "i"], ["k"]),
    ]
    model = make_model(nodes, {"x": (F32, (3,)), "i": (np.int64, (3,))}, ["y", "k"])
    _, after = apply(fuse_pointwise_chains, model, {"x": rand(3), "i": np.arange(3, dtype=np.int64)})
    assert ops(after) == ["Relu", "Abs", "Pointwise", "Add", "Mul"]  # Neg + Add fused; int Add/Mul untouched
    assert after.nodes[2].inputs == ("r", "n2")
