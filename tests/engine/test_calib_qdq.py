"""QDQ insertion: structure, per-channel weights, FP32 pinning, and the QDQ ONNX against FP32."""

from __future__ import annotations

import numpy as np
import pytest
from test_calib_kit import rel_l2, run_ort, tiny_classifier

from lanner.core.errors import ConfigError, DataError
from lanner.engine import get_backend, load_onnx, to_onnx
from lanner.engine.calibrate import calibrate_ranges, insert_qdq, prepare_graph, quantize_weight
from lanner.engine.calibrate.qdq import activations_to_quantize, scale_from_amax


@pytest.fixture(scope="module")
def graph():
    return prepare_graph(load_onnx(tiny_classifier()))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.standard_normal((48, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def amax(graph, images):
    # minmax: 32 images give only 256 values at the classifier input, too sparse for entropy's histogram
    return calibrate_ranges(graph, [images[i : i + 8] for i in range(0, 32, 8)], method="minmax", backend="reference")


def by_name(graph):
    return {node.name: node for node in graph.nodes}


def producer_op(graph, value):
    return graph.producers()[value].op_type if value in graph.producers() else None


def test_qdq_placement(graph, amax):
    qgraph, weights = insert_qdq(graph, amax)
    counts = qgraph.op_counts()
    # activations: images, r1 (read by conv2), flat (read by fc) — each one Q + one DQ
    assert activations_to_quantize(graph) == ["images", "r1", "flat"]
    assert counts["QuantizeLinear"] == 3
    assert counts["DequantizeLinear"] == 3 + 3  # plus one per weight (w1, w2, fc_w)
    nodes = by_name(qgraph)
    for name in ("conv1", "conv2", "fc"):
        assert producer_op(qgraph, nodes[name].inputs[0]) == "DequantizeLinear"
        assert producer_op(qgraph, nodes[name].inputs[1]) == "DequantizeLinear"
        assert qgraph.values[nodes[name].inputs[2]].is_constant  # the bias stays FP32
    assert nodes["add"].inputs == ("r1", "r2")  # the residual add reads the FP32 tensors
    assert {w.name: w.axis for w in weights} == {"w1": 0, "w2": 0, "fc_w": 0}  # Gemm transB=1: rows
    q = qgraph.producers()[qgraph.producers()[nodes["conv2"].inputs[0]].inputs[0]]
    assert q.op_type == "QuantizeLinear" and q.inputs[0] == "r1"
    assert qgraph.constant(q.inputs[1]) == scale_from_amax(amax["r1"])
    assert qgraph.constant(q.inputs[2]).dtype == np.int8 and qgraph.constant(q.inputs[2]) == 0


def test_qdq_onnx_runs_in_onnxruntime_close_to_fp32(graph, amax, images):
    qgraph, _ = insert_qdq(graph, amax)
    x = images[32:]
    fp32 = run_ort(to_onnx(graph), x)
    int8 = run_ort(to_onnx(qgraph), x)
    assert rel_l2(int8, fp32) < 0.05
    assert np.mean(int8.argmax(1) == fp32.argmax(1)) >= 0.9


def test_reference_backend_runs_the_qdq_graph_like_onnxruntime(graph, amax, images):
    qgraph, _ = insert_qdq(graph, amax)
    x = images[32:40]
    ours = get_backend("reference").prepare(qgraph).run({"images": x})["logits"]
    assert rel_l2(ours, run_ort(to_onnx(qgraph), x)) < 1e-3
    fp32 = get_backend("reference").prepare(graph).run({"images": x})["logits"]
    assert rel_l2(ours, fp32) > 1e-6  # it really quantized something


def test_quantize_weight_per_channel_symmetric():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * np.arange(1, 7, dtype=np.float32)[:, None, None, None]
    w[2] = 0.0
    q, scale = quantize_weight(w, 0)
    assert q.dtype == np.int8 and scale.shape == (6,)
    assert q.min() >= -127 and q.max() <= 127
    assert np.all(np.abs(q[[0, 1, 3, 4, 5]]).reshape(5, -1).max(1) == 127)  # each channel uses its full range
    assert np.all(q[2] == 0) and scale[2] > 0
    assert np.all(np.abs(q * scale[:, None, None, None] - w) <= scale[:, None, None, None] / 2 + 1e-7)
    _q1, scale1 = quantize_weight(w.reshape(6, -1).T.copy(), 1)  # MatMul-style (K, N): channels on the last axis
    np.testing.assert_array_equal(scale1, scale)


def test_exclude_by_name_and_by_op_type(graph, amax):
    qgraph, weights = insert_qdq(graph, amax, exclude=["conv2"])
    conv2 = by_name(qgraph)["conv2"]
    assert conv2.inputs == ("r1", "w2", "b2")  # pinned to FP32: untouched
    assert {w.name for w in weights} == {"w1", "fc_w"}
    qgraph, weights = insert_qdq(graph, amax, exclude=["Gemm", "Conv"])
    assert "QuantizeLinear" not in qgraph.op_counts() and weights == []


def test_unknown_exclude_suggests_names(graph, amax):
    with pytest.raises(ConfigError, match=r"--exclude 'conv3' is neither.*did you mean 'conv2', 'conv1'"):
        insert_qdq(graph, amax, exclude=["conv3"])


def test_missing_range_is_a_clear_error(graph, amax):
    partial = {k: v for k, v in amax.items() if k != "r1"}
    with pytest.raises(DataError, match=r"no calibration range for 1 tensor\(s\): \['r1'\]"):
        insert_qdq(graph, partial)


def test_a_tensor_read_by_two_convs_gets_one_pair():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
        helper.make_node("Conv", ["x", "w"], ["b"], name="c2"),
        helper.make_node("Add", ["a", "b"], ["y"], name="add"),
    ]
    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [w],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    # x: one pair for both convs; b: the skip of the residual add that c1 fuses (c1's own output stays float)
    qgraph, weights = insert_qdq(load_onnx(model), {"x": 1.0, "b": 3.0})
    assert qgraph.op_counts() == {"QuantizeLinear": 2, "DequantizeLinear": 3, "Conv": 2, "Add": 1}
    add = next(n for n in qgraph.nodes if n.op_type == "Add")
    assert add.inputs[0] == "a" and add.inputs[1] != "b"
    assert len(weights) == 1
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run_ort(to_onnx(qgraph), x), run_ort(model, x), atol=0.05)


@pytest.mark.slow
def test_resnet10_int8_top1_agreement_on_synthetic_images(tmp_path):
    """A lanner classifier with random weights: INT8 (entropy) vs FP32 top-1 on 64 unseen images."""
    pytest.importorskip("torch")
    from lanner.models import create_model, export_onnx

    export_onnx(create_model("resnet10", 10), tmp_path / "r10.onnx", input_size=(32, 32), batch="dynamic")
    graph = prepare_graph(load_onnx(tmp_path / "r10.onnx"))
    rng = np.random.default_rng(0)
    images = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
    amax = calibrate_ranges(graph, [images[i : i + 16] for i in range(0, 64, 16)], method="entropy")
    qgraph, _ = insert_qdq(graph, amax)
    fp32, int8 = run_ort(to_onnx(graph), images[64:]), run_ort(to_onnx(qgraph), images[64:])
    agreement = float(np.mean(fp32.argmax(1) == int8.argmax(1)))
    assert agreement >= 0.9, agreement
    assert rel_l2(int8, fp32) < 0.1


def _model(nodes: list, x_shape: list[int], outputs: list, weight):
    """An opset-13 model of ``nodes`` reading float input ``x`` of ``x_shape`` and initializer ``weight``."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    model = helper.make_model(
        helper.make_graph(nodes, "t", [x], outputs, [weight]), opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 7
    return model


def _residual_block(extra_reader: bool):
    """x → Conv(c1) → a; Add(x, a) → y (MobileNetV2's order: the skip first); optionally a Relu reads a too."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((3, 3, 1, 1), 0.1, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
        helper.make_node("Add", ["x", "a"], ["y"], name="add"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["a"], ["r"], name="relu"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 3, 4, 4]))
    return _model(nodes, [1, 3, 4, 4], outputs, w)


@pytest.mark.parametrize(("extra_reader", "slots"), [(False, {"add": 0}), (True, {})])
def test_the_skip_input_of_a_residual_add_is_quantized_only_when_the_conv_feeds_the_add_alone(extra_reader, slots):
    from lanner.engine.calibrate.qdq import activations_to_quantize, residual_slots

    graph = load_onnx(_residual_block(extra_reader))
    assert residual_slots(graph) == slots
    assert residual_slots(graph, {"add"}) == {}  # a pinned Add keeps its float inputs
    assert activations_to_quantize(graph) == ["x"]  # x is both the conv's input and the skip: one pair
    qgraph, _ = insert_qdq(graph, {"x": 1.0})
    add = next(n for n in qgraph.nodes if n.op_type == "Add")
    conv = next(n for n in qgraph.nodes if n.op_type == "Conv")
    assert (add.inputs[0] == conv.inputs[0]) is (not extra_reader)  # the skip reads the conv's DQ output
    assert add.inputs[1] == "a"


def _conv_relu_pool(extra_reader: bool):
    """x → Conv → Relu → r → MaxPool → GlobalAveragePool → y (optionally r is also a graph output)."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["y"], name="gap"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])]
    if extra_reader:
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 4, 8, 8]))
    return _model(nodes, [1, 3, 8, 8], outputs, w)


@pytest.mark.parametrize(
    ("extra_reader", "pinned", "expected"), [(False, set(), ["pool"]), (True, set(), []), (False, {"pool"}, [])]
)
def test_a_pool_input_is_quantized_only_behind_a_quantized_conv_that_feeds_it_alone(extra_reader, pinned, expected):
    from lanner.engine.calibrate.qdq import pooled_inputs

    graph = load_onnx(_conv_relu_pool(extra_reader))
    # the MaxPool reads conv → relu; the GlobalAveragePool reads the MaxPool, which is no conv: never quantized
    assert pooled_inputs(graph, pinned) == expected
    assert activations_to_quantize(graph, pinned) == ["x", *(["r"] if expected else [])]
