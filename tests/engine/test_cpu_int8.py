"""INT8 in the engine: QDQ folding into ``ai.lanner.QConv``, the cpu backend's int8 kernels, the builder's choice."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lanner.engine import get_backend, load_onnx, optimize, to_onnx
from lanner.engine.backends import cpu_int8
from lanner.engine.build import BuildConfig, build_engine
from lanner.engine.calibrate import calibrate_ranges, insert_qdq, prepare_graph
from lanner.engine.ir.graph import Node
from lanner.engine.ops.quant import quantize_linear
from lanner.engine.passes import fold_qdq
from lanner.engine.plan import read_plan, write_plan
from lanner.engine.runtime import Engine


def block_model() -> onnx.ModelProto:
    """stem conv+relu → 1x1 expand+ReLU6 → 3x3 depthwise+ReLU6 → 1x1 project + residual → 1x1 head+tanh → GAP
    → Gemm (tanh: calibration does not quantize a pool's input behind it, so head keeps a float output)."""
    rng = np.random.default_rng(0)

    def he(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    def bias(n: int) -> np.ndarray:
        return (rng.standard_normal(n) * 0.1).astype(np.float32)

    inits = {"w1": he(16, 3, 3, 3), "b1": bias(16), "w2": he(32, 16, 1, 1), "b2": bias(32), "w3": he(32, 1, 3, 3)}
    inits |= {"b3": bias(32), "w4": he(16, 32, 1, 1), "b4": bias(16), "fc_w": he(5, 16), "fc_b": bias(5)}
    inits |= {"w5": he(16, 16, 1, 1), "b5": bias(16)}
    inits |= {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="stem_relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="expand"),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"], name="expand_relu6"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="dw", pads=[1, 1, 1, 1], group=32),
        helper.make_node("Clip", ["c3", "lo", "hi"], ["r3"], name="dw_relu6"),
        helper.make_node("Conv", ["r3", "w4", "b4"], ["c4"], name="project"),
        helper.make_node("Add", ["c4", "r1"], ["sum"], name="residual"),
        helper.make_node("Conv", ["sum", "w5", "b5"], ["c5"], name="head"),
        helper.make_node("Tanh", ["c5"], ["r5"], name="head_tanh"),
        helper.make_node("GlobalAveragePool", ["r5"], ["pool"], name="gap"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((72, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def fp32_graph():
    return prepare_graph(load_onnx(block_model()))


@pytest.fixture(scope="module")
def qdq_onnx(fp32_graph, images) -> onnx.ModelProto:
    batches = [images[i : i + 16] for i in range(0, 64, 16)]
    amax = calibrate_ranges(fp32_graph, batches, method="minmax", backend="reference")
    return to_onnx(insert_qdq(fp32_graph, amax)[0])


@pytest.fixture(scope="module")
def folded(qdq_onnx):
    return optimize(load_onnx(qdq_onnx))


@pytest.fixture(scope="module")
def feeds(images) -> dict[str, np.ndarray]:
    return {"images": images[64:]}  # not calibrated on: a few values saturate, as in real use


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def qdq_exact(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """ONNX Runtime with its graph optimizations off: Q/DQ as float ops, the QDQ model's exact arithmetic."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options).run(None, feeds)[0]


def kernel_weights(graph, tactics):
    """``graph`` with the weights of the QConvs in ``tactics`` (name → int8 tactic) re-rounded to that kernel's
    precision (``cpu_int8._weight_qmax``: 7-bit per channel without VNNI, and in fbgemm's depthwise kernels): the
    exact arithmetic the int8 kernels compute."""
    from lanner.engine.ir.graph import Value

    values = dict(graph.values)
    for node in graph.nodes:
        tactic = tactics.get(node.name.split(" + ")[0]) if node.op_type == "QConv" else None
        if tactic is None:
            continue
        groups = int(node.attr("group", 1)) if tactic == cpu_int8.INT8_TACTIC else 1
        qmax = cpu_int8._weight_qmax(groups)
        w = graph.constant(node.inputs[1])
        scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1).reshape(-1, 1, 1, 1) / qmax
        rounded = np.clip(np.round(w / scale), -qmax, qmax) * scale
        values[node.inputs[1]] = Value.constant(node.inputs[1], rounded.astype(np.float32))
    return graph.replace(values=values)


def by_name(graph) -> dict:
    return {node.name.split(" + ")[0]: node for node in graph.nodes}


def test_fold_qdq_makes_int8_convs_that_pass_int8_tensors(folded, qdq_onnx) -> None:
    nodes = by_name(folded)
    names = [n.name.split(" + ")[0] for n in folded.nodes if n.op_type == "QConv"]
    assert names == ["stem", "expand", "dw", "project", "head"]
    qdq = load_onnx(qdq_onnx)
    scale = {n.inputs[0]: float(qdq.constant(n.inputs[1])) for n in qdq.nodes if n.op_type == "QuantizeLinear"}
    assert nodes["expand"].attr("x_scale") == pytest.approx(scale["r1"])
    # expand's output was read only by the QuantizeLinear of r2: the requant moved into the conv (int8 out) ...
    assert nodes["expand"].attr("y_scale") == pytest.approx(scale["r2"])
    assert folded.values[nodes["expand"].outputs[0]].dtype == np.int8
    assert nodes["dw"].inputs[0] == nodes["expand"].outputs[0]  # ... which the depthwise conv reads directly
    # the stem's output is also the residual add's skip, which calibration quantizes too (TensorRT's Q/DQ
    # placement): both readers go through r1's Q/DQ, so the stem writes int8 and project reads an int8 skip
    assert nodes["stem"].attr("y_scale") == pytest.approx(scale["r1"])
    assert nodes["project"].attr("residual") == "before_activation"
    assert nodes["project"].inputs[3] == nodes["stem"].outputs[0]
    assert nodes["project"].attr("z_scale") == pytest.approx(scale["r1"])
    assert nodes["project"].attr("y_scale") == pytest.approx(scale["sum"])  # the sum is read only by head's Q
    assert not nodes["head"].attr("y_scale", 0.0)  # head's tanh output goes to GlobalAveragePool: FP32
    ops = folded.op_counts()
    assert ops["DequantizeLinear"] == 1  # only the Gemm's input keeps its Q/DQ pair (not folded)
    assert ops["QuantizeLinear"] == 2  # images and flat; r1's and sum's moved into stem and project


def test_fold_qdq_keeps_the_arithmetic(folded, qdq_onnx, feeds) -> None:
    reference = get_backend("reference")
    unfolded = reference.prepare(load_onnx(qdq_onnx)).run(feeds)["logits"]
    np.testing.assert_allclose(reference.prepare(folded).run(feeds)["logits"], unfolded, rtol=1e-5, atol=1e-6)
    # and that arithmetic is ONNX Runtime's on the QDQ file (an int8 tie may round differently: 1e-4)
    assert rel(unfolded, qdq_exact(qdq_onnx, feeds)) < 1e-4


def test_fold_qdq_leaves_fp32_graphs_and_uint8_alone(fp32_graph) -> None:
    assert fold_qdq(fp32_graph) is fp32_graph
    assert "QConv" not in optimize(load_onnx(block_model())).op_counts()


def test_quantize_kernel_matches_onnx_rounding_and_saturation() -> None:
    import torch

    # ties round to even, and both ends saturate, in the quint8 form (zero point + 128) as in ONNX int8
    x = np.array([-200.0, -1.5, -0.5, 0.5, 1.5, 2.5, 126.6, 127.5, 300.0], np.float32).reshape(1, 1, 3, 3)
    expected = quantize_linear(Node("QuantizeLinear", "q", ("x", "s", "z"), ("q",)), [x, np.float32(1), np.int8(0)])
    q = cpu_int8._quantize(torch, torch.from_numpy(x), 1.0, 0)
    np.testing.assert_array_equal(cpu_int8.to_numpy_int8(q), expected)
    np.testing.assert_array_equal(expected.ravel(), [-128, -2, 0, 0, 2, 2, 127, 127, 127])


def test_cpu_fp32_tactics_match_the_reference(folded, feeds) -> None:
    cpu = get_backend("cpu")
    ctx = cpu.context(folded)
    offered = {n.name: cpu.tactics(n, ctx) for n in folded.nodes if n.op_type == "QConv"}
    expected = get_backend("reference").prepare(folded).run(feeds)["logits"]
    for tactic in sorted({t for ts in offered.values() for t in ts if t.startswith(cpu_int8.FP32_PREFIX)}):
        exe = cpu.prepare(folded, {name: tactic if tactic in ts else ts[-1] for name, ts in offered.items()})
        assert not exe.fallback_nodes
        # same math as the reference; only an int8 tie may round the other way after a different float sum
        assert rel(exe.run(feeds)["logits"], expected) < 1e-4, tactic


def test_cpu_int8_kernels_agree_with_the_qdq_model(folded, qdq_onnx, fp32_graph, feeds) -> None:
    cpu = get_backend("cpu")
    ctx = cpu.context(folded)
    offered = {n.name.split(" + ")[0]: cpu.tactics(n, ctx) for n in folded.nodes if n.op_type == "QConv"}
    # int8 kernels where the output is int8 and the epilogue is Relu/ReLU6; FP32 for float outputs
    first = {name: tactics[0] for name, tactics in offered.items()}
    assert first == {
        "stem": "int8.fbgemm",
        "expand": "int8.fbgemm",
        "dw": "int8.fbgemm",
        "project": "int8.onednn",  # the int8 skip summed in oneDNN's epilogue (fbgemm has no such kernel)
        "head": "fp32:aten.nchw",  # tanh: no int8 kernel fuses it
    }
    assert all(t.startswith("fp32:") for name, tactics in offered.items() for t in tactics if not t.startswith("int8."))
    assert all(cpu_int8.ONEDNN_TACTIC in offered[name] for name in ("stem", "expand", "dw", "project"))
    assert "fp32:aten.nhwc" in offered["expand"]  # every FP32 conv tactic stays a candidate
    exe = cpu.prepare(folded, {n.name: first[n.name.split(" + ")[0]] for n in folded.nodes if n.op_type == "QConv"})
    int8 = exe.run(feeds)["logits"]
    qdq = qdq_exact(qdq_onnx, feeds)
    fp32 = get_backend("reference").prepare(fp32_graph).run(feeds)["logits"]
    # The int8 kernels compute the QDQ arithmetic with the weights re-rounded to their precision (7 bits on CPUs
    # without VNNI, cpu_int8 docstring); against that reference only int32-vs-float sums differ, which can move
    # an int8 requant by one step at a tie.
    on_int8 = {name: tactic for name, tactic in first.items() if tactic.startswith("int8.")}
    exact = get_backend("reference").prepare(kernel_weights(folded, on_int8)).run(feeds)["logits"]
    assert rel(int8, exact) < 5e-3
    assert rel(int8, qdq) < max(4 * rel(qdq, fp32), 0.05)  # and the 7-bit rounding stays quantization noise
    values = exe.run_all(feeds)
    assert values[by_name(folded)["expand"].outputs[0]].dtype == np.int8  # int8 tensors come back as ONNX int8


def _fake_timer(fast: str):
    def timer(node, tactic, call) -> float:
        call()
        return 1.0 if tactic == fast or (node is None and fast in tactic) else 2.0

    return timer


@pytest.mark.parametrize("fast", [cpu_int8.INT8_TACTIC, cpu_int8.FP32_TACTIC])
def test_builder_times_int8_against_fp32_and_the_plan_round_trips(qdq_onnx, feeds, tmp_path, fast) -> None:
    plan = build_engine(qdq_onnx, BuildConfig(batch=["8"]), timer=_fake_timer(fast))
    chosen = {name.split(" + ")[0]: t for name, t in plan.profiles[0].tactics.items()}
    assert chosen["expand"] == fast and chosen["dw"] == fast  # a slower int8 kernel is not kept
    path = write_plan(plan, tmp_path / "block.plan")
    out = Engine(read_plan(path)).infer(feeds)["logits"]
    assert rel(out, qdq_exact(qdq_onnx, feeds)) < 0.05


@pytest.mark.parametrize(
    ("change", "int8"),
    [
        ({}, True),
        ({"z_scale": 0.0}, False),  # a float skip: the int8 add cannot take it
        ({"residual": "after_activation", "activation": "Relu"}, False),  # conv → relu → add: not this kernel
    ],
)
def test_int8_residual_kernel_needs_an_int8_skip_added_before_the_activation(folded, change, int8) -> None:
    cpu = get_backend("cpu")
    node = by_name(folded)["project"]
    node = node.evolve(attrs={**node.attrs, **change})
    graph = folded.with_nodes([node if n.name == node.name else n for n in folded.nodes])
    offered = cpu.tactics(node, cpu.context(graph))
    assert (cpu_int8.ONEDNN_TACTIC in offered) is int8
    assert cpu_int8.INT8_TACTIC not in offered  # fbgemm's conv has no residual epilogue


def _one_conv_output(graph, conv: str, tactic: str, feeds) -> np.ndarray:
    """``conv``'s output (as float32 numbers, int8 or not) with it on ``tactic`` and every other QConv on FP32."""
    cpu = get_backend("cpu")
    ctx = cpu.context(graph)
    tactics = {
        n.name: next(t for t in cpu.tactics(n, ctx) if t.startswith("fp32:"))
        for n in graph.nodes
        if n.op_type == "QConv"
    }
    node = by_name(graph)[conv]
    exe = cpu.prepare(graph, tactics | {node.name: tactic})
    return exe.run_all(feeds)[node.outputs[0]].astype(np.float32)


ACTIVATIONS = [("", 0.0, 0.0), ("Relu", 0.0, 0.0), ("Clip", 0.0, 0.5), ("Silu", 0.0, 0.0), ("HardSwish", 0.0, 0.0)]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("conv", ["head", "dw"])  # head writes float (GAP reads it), dw writes int8 (project's input)
def test_onednn_int8_conv_fuses_float_outputs_and_activations(folded, feeds, activation, conv) -> None:
    name, alpha, beta = activation
    node = by_name(folded)[conv]
    attrs = {**node.attrs, "activation": name, "activation_alpha": alpha, "activation_beta": beta}
    graph = kernel_weights(
        folded.with_nodes([node.evolve(attrs=attrs) if n is node else n for n in folded.nodes]),
        {conv: cpu_int8.ONEDNN_TACTIC},
    )
    assert cpu_int8.ONEDNN_TACTIC in get_backend("cpu").tactics(by_name(graph)[conv], get_backend("cpu").context(graph))
    exact = _one_conv_output(graph, conv, "fp32:aten.nchw", feeds)  # dequantize → FP32 conv + epilogue [→ quantize]
    int8 = _one_conv_output(graph, conv, cpu_int8.ONEDNN_TACTIC, feeds)
    if conv == "dw":  # int8 output: the same int8 numbers, but for a requant tie after int32 vs float sums
        assert np.mean(int8 != exact) < 0.01 and np.abs(int8 - exact).max() <= 1
    else:
        assert rel(int8, exact) < 1e-5


def test_fbgemm_depthwise_keeps_7bit_weights_on_vnni_cpus(folded, feeds, monkeypatch) -> None:
    # fbgemm's depthwise kernel adds u8·s8 pairs in saturating int16 on VNNI CPUs too. With the 8-bit weights a VNNI
    # CPU gives other convs, a MobileNetV2 plan on a Xeon (AVX-512 VNNI) was 0.26-0.28 relative L2 off its QDQ
    # model. This CPU saturates the same way, so the kernel must match its 7-bit reference here with VNNI "on".
    monkeypatch.setattr(cpu_int8, "_has_vnni", lambda: True)
    assert cpu_int8._weight_qmax() == 127 and cpu_int8._weight_qmax(groups=32) == 63
    graph = kernel_weights(folded, {"dw": cpu_int8.INT8_TACTIC})
    exact = _one_conv_output(graph, "dw", "fp32:aten.nchw", feeds)
    int8 = _one_conv_output(graph, "dw", cpu_int8.INT8_TACTIC, feeds)
    assert np.mean(int8 != exact) < 0.01 and np.abs(int8.astype(int) - exact).max() <= 1
