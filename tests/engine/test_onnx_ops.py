"""Every op in the table, one-op models built with onnx.helper: reference backend vs ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from engine_testkit import assert_outputs_close, make_model, run_ort, run_reference
from onnx import TensorProto, helper

F32 = np.float32


def const(*values: Any, dtype: Any = np.int64) -> np.ndarray:
    return np.array(values, dtype=dtype)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


@dataclass
class Case:
    """op with ``inputs``: a shape tuple → random float32 runtime input ("+shape" tuple → positive);
    an ndarray → initializer; None → omitted optional input."""

    id: str
    op: str
    inputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: int = 1
    opset: int = 17


def pos(*shape: int) -> tuple[str, tuple[int, ...]]:
    return ("pos", shape)


CASES = [
    # -- nn
    Case("conv3x3_pad", "Conv", [(2, 3, 9, 9), rand(4, 3, 3, 3), rand(4)], {"pads": [1, 1, 1, 1]}),
    Case(
        "conv_stride_dil_group",
        "Conv",
        [(1, 4, 12, 11), rand(6, 2, 3, 3)],
        {"strides": [2, 1], "dilations": [2, 1], "group": 2, "pads": [1, 0, 2, 1]},
    ),
    Case(
        "conv_depthwise",
        "Conv",
        [(1, 8, 10, 10), rand(8, 1, 3, 3), rand(8)],
        {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]},
    ),
    Case("conv_same_upper", "Conv", [(1, 3, 10, 9), rand(5, 3, 4, 4)], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    Case("conv_1d", "Conv", [(2, 3, 16), rand(4, 3, 5)], {"pads": [2, 2]}),
    Case(
        "convtranspose_s2",
        "ConvTranspose",
        [(1, 4, 5, 5), rand(4, 3, 3, 3), rand(3)],
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
    ),
    Case("convtranspose_group_k2", "ConvTranspose", [(1, 4, 4, 6), rand(4, 2, 2, 2)], {"strides": [2, 2], "group": 2}),
    Case(
        "batchnorm",
        "BatchNormalization",
        [(2, 4, 5, 5), rand(4), rand(4, seed=1), rand(4, seed=2), np.abs(rand(4, seed=3)) + 0.5],
        {"epsilon": 1e-3},
    ),
    Case(
        "maxpool_k3s2p1", "MaxPool", [(1, 3, 11, 11)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    ),
    Case("maxpool_ceil", "MaxPool", [(1, 2, 10, 10)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    Case(
        "avgpool_exclude_pad",
        "AveragePool",
        [(1, 3, 9, 9)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    Case(
        "avgpool_include_pad_ceil",
        "AveragePool",
        [(1, 2, 10, 10)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1, "ceil_mode": 1},
    ),
    Case("global_avgpool", "GlobalAveragePool", [(2, 5, 7, 6)]),
    Case("global_maxpool", "GlobalMaxPool", [(2, 5, 7, 6)]),
    Case("gemm_transB", "Gemm", [(4, 6), rand(5, 6), rand(5)], {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    Case("gemm_transA", "Gemm", [(6, 4), rand(6, 5)], {"transA": 1}),
    Case("matmul_batched", "MatMul", [(2, 3, 4, 5), rand(5, 6)]),
    Case("layernorm", "LayerNormalization", [(2, 5, 8), rand(8), rand(8, seed=1)], {"axis": -1}),
    Case("instancenorm", "InstanceNormalization", [(2, 3, 5, 5), rand(3), rand(3, seed=1)]),
    # -- resize
    Case(
        "resize_nearest_x2",
        "Resize",
        [(1, 2, 4, 5), None, const(1, 1, 2, 2, dtype=F32)],
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    ),
    Case(
        "resize_nearest_half_pixel_down",
        "Resize",
        [(1, 2, 9, 8), None, const(1, 1, 0.5, 0.75, dtype=F32)],
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
    ),
    Case("resize_linear_half_pixel", "Resize", [(1, 2, 4, 5), None, const(1, 1, 2, 3, dtype=F32)], {"mode": "linear"}),
    Case(
        "resize_linear_align_corners_sizes",
        "Resize",
        [(1, 2, 4, 5), None, None, const(1, 2, 7, 9)],
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
    ),
    Case(
        "resize_linear_pytorch_down",
        "Resize",
        [(1, 2, 9, 8), None, const(1, 1, 0.5, 0.5, dtype=F32)],
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
    ),
    Case(
        "resize_linear_symmetric_19",
        "Resize",
        [(1, 1, 5, 5), None, const(1, 1, 1.7, 2.3, dtype=F32)],
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
        opset=19,
    ),
    Case(
        "resize_axes_18",
        "Resize",
        [(1, 2, 4, 5), None, None, const(8, 10)],
        {"mode": "nearest", "axes": [2, 3]},
        opset=18,
    ),
    # -- elementwise
    Case("relu", "Relu", [(2, 3, 4)]),
    Case("leakyrelu", "LeakyRelu", [(2, 3, 4)], {"alpha": 0.1}),
    Case("sigmoid", "Sigmoid", [(2, 3, 4)]),
    Case("hardsigmoid", "HardSigmoid", [(2, 3, 4)], {"alpha": 0.3, "beta": 0.4}),
    Case("hardswish", "HardSwish", [(2, 3, 4)]),
    Case("clip", "Clip", [(2, 3, 4), const(-0.5, dtype=F32).reshape(()), const(0.7, dtype=F32).reshape(())]),
    Case("clip_min_only", "Clip", [(2, 3, 4), const(0.0, dtype=F32).reshape(())]),
    Case("gelu_20", "Gelu", [(2, 3, 4)], opset=20),
    Case("gelu_tanh_20", "Gelu", [(2, 3, 4)], {"approximate": "tanh"}, opset=20),
    Case("erf", "Erf", [(3, 7)]),
    Case("tanh", "Tanh", [(3, 7)]),
    Case("elu", "Elu", [(3, 7)], {"alpha": 0.7}),
    Case("softplus", "Softplus", [(3, 7)]),
    Case("mish_18", "Mish", [(3, 7)], opset=18),
    Case("prelu", "PRelu", [(2, 3, 4, 4), rand(3, 1, 1)]),
    Case("add_broadcast", "Add", [(2, 3, 4, 5), (3, 1, 5)]),
    Case("sub", "Sub", [(2, 3), rand(3)]),
    Case("mul", "Mul", [(2, 3, 4), (1, 4)]),
    Case("div", "Div", [(2, 3), pos(2, 3)]),
    Case("pow", "Pow", [pos(2, 3), const(2.5, dtype=F32).reshape(())]),
    Case("sqrt", "Sqrt", [pos(4, 5)]),
    Case("exp", "Exp", [(4, 5)]),
    Case("log", "Log", [pos(4, 5)]),
    Case("max_variadic", "Max", [(2, 3), (3,), (2, 1)]),
    Case("min", "Min", [(2, 3), (2, 3)]),
    Case("identity", "Identity", [(2, 3)]),
    Case("abs", "Abs", [(3, 4)]),
    Case("neg", "Neg", [(3, 4)]),
    Case("reciprocal", "Reciprocal", [pos(3, 4)]),
    Case("floor", "Floor", [(3, 4)]),
    Case("ceil", "Ceil", [(3, 4)]),
    Case("round_half_even", "Round", [const(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.7, dtype=F32)]),
    Case("sign", "Sign", [(3, 4)]),
    Case("sin", "Sin", [(3, 4)]),
    Case("cos", "Cos", [(3, 4)]),
    Case("selu", "Selu", [(3, 4)]),
    Case("softsign", "Softsign", [(3, 4)]),
    Case("sum_variadic", "Sum", [(2, 3), (3,), (2, 3)]),
    Case("mean_variadic", "Mean", [(2, 3), (2, 3)]),
    Case("mod_fmod_float", "Mod", [(3, 4), pos(3, 4)], {"fmod": 1}),
    Case("mod_int", "Mod", [const(-7, 7, -7, 7), const(3, -3, -3, 3)]),
    Case("div_int_truncates", "Div", [const(-7, 7, -7, 7), const(2, -2, -2, 2)]),
    Case("equal", "Equal", [const(1, 2, 3), const(1, 0, 3)]),
    Case("less", "Less", [(3, 4), (4,)]),
    Case("less_or_equal", "LessOrEqual", [(3, 4), (3, 4)]),
    Case("greater", "Greater", [(3, 4), (3, 1)]),
    Case("greater_or_equal", "GreaterOrEqual", [(3, 4), (3, 4)]),
    Case("and", "And", [const(1, 0, 1, 0, dtype=bool), const(1, 1, 0, 0, dtype=bool)]),
    Case("or", "Or", [const(1, 0, 1, 0, dtype=bool), const(1, 1, 0, 0, dtype=bool)]),
    Case("xor", "Xor", [const(1, 0, 1, 0, dtype=bool), const(1, 1, 0, 0, dtype=bool)]),
    Case("not", "Not", [const(1, 0, dtype=bool)]),
    Case("where", "Where", [const(1, 0, 1, dtype=bool), (2, 3), (2, 1)]),
    Case("dropout_inference", "Dropout", [(3, 4)]),
    Case("cast_like", "CastLike", [(3, 4), const(1, dtype=np.float16)]),
    Case("argmin_last", "ArgMin", [const(3, 1, 1, 2, dtype=F32)], {"keepdims": 1, "select_last_index": 1}),
    Case("reducemin", "ReduceMin", [(2, 3, 4)], {"axes": [1]}),
    Case("reduceprod", "ReduceProd", [(2, 3, 4)], {"axes": [2], "keepdims": 0}),
    Case("reducel1_18", "ReduceL1", [(2, 3, 4), const(1)], opset=18),
    Case("reducesumsquare", "ReduceSumSquare", [(2, 3, 4)], {"axes": [0, 2]}),
    Case("reducelogsumexp", "ReduceLogSumExp", [(2, 3, 4)], {"axes": [-1]}),
    Case("reducesum_noop_empty_axes", "ReduceSum", [(2, 3), const()], {"noop_with_empty_axes": 1}),
    # -- shape / data movement
    Case("size", "Size", [(2, 3, 4)]),
    Case(
        "constant_of_shape",
        "ConstantOfShape",
        [const(2, 3)],
        {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5])},
    ),
    Case("range_int", "Range", [const(1).reshape(()), const(10).reshape(()), const(3).reshape(())]),
    Case(
        "range_float_negative",
        "Range",
        [const(1.0, dtype=F32).reshape(()), const(-2.0, dtype=F32).reshape(()), const(-0.7, dtype=F32).reshape(())],
    ),
    Case("concat", "Concat", [(1, 2, 3), (1, 4, 3), (1, 1, 3)], {"axis": 1}),
    Case("split_input", "Split", [(2, 6, 3), const(1, 2, 3)], {"axis": 1}, outputs=3),
    Case("split_num_outputs_18", "Split", [(2, 7)], {"axis": 1, "num_outputs": 3}, outputs=3, opset=18),
    Case("slice_steps", "Slice", [(5, 6, 7), const(4, 1), const(-100, 6), const(0, 2), const(-2, 2)]),
    Case("slice_onnx_clamping", "Slice", [(6, 7), const(-7), const(-7), const(0), const(-3)]),  # ≠ Python's
    Case("slice_int_max", "Slice", [(5, 6), const(2), const(2**63 - 1), const(1)]),
    Case("reshape", "Reshape", [(2, 3, 4), const(0, -1, 2)]),
    Case("flatten", "Flatten", [(2, 3, 4, 5)], {"axis": 2}),
    Case("transpose", "Transpose", [(2, 3, 4)], {"perm": [2, 0, 1]}),
    Case("transpose_default", "Transpose", [(2, 3, 4)]),
    Case("squeeze", "Squeeze", [(2, 1, 3, 1), const(1, -1)]),
    Case("squeeze_all", "Squeeze", [(1, 3, 1)]),
    Case("unsqueeze", "Unsqueeze", [(2, 3), const(0, -1)]),
    Case("gather_axis1", "Gather", [(3, 5, 2), const(4, 0, -1)], {"axis": 1}),
    Case("expand", "Expand", [(3, 1), const(2, 3, 4)]),
    Case("tile", "Tile", [(2, 3), const(2, 1)]),
    Case("pad_constant", "Pad", [(1, 2, 3, 3), const(0, 0, 1, 2, 0, 0, 2, 1), const(1.5, dtype=F32).reshape(())]),
    Case("pad_reflect", "Pad", [(1, 2, 4, 4), const(0, 0, 1, 2, 0, 0, 2, 1)], {"mode": "reflect"}),
    Case("pad_edge_axes_18", "Pad", [(1, 2, 4, 4), const(1, 2, 2, 1), None, const(2, 3)], {"mode": "edge"}, opset=18),
    Case("shape", "Shape", [(2, 3, 4)]),
    Case("shape_start_end", "Shape", [(2, 3, 4, 5)], {"start": 1, "end": -1}),
    Case("cast_f16", "Cast", [(3, 4)], {"to": 10}),
    Case("cast_int64", "Cast", [(3, 4)], {"to": 7}),
    # -- reduce
    Case("reducemean_attr", "ReduceMean", [(2, 3, 4, 5)], {"axes": [2, 3], "keepdims": 1}),
    Case("reducemean_input_18", "ReduceMean", [(2, 3, 4, 5), const(1)], {"keepdims": 0}, opset=18),
    Case("reducemax_all", "ReduceMax", [(2, 3, 4)], {"keepdims": 0}),
    Case("reducesum_13", "ReduceSum", [(2, 3, 4), const(-1)], opset=13),
    Case("reducel2_18", "ReduceL2", [(2, 3, 4), const(0, 2)], opset=18),
    Case("softmax", "Softmax", [(2, 3, 4)], {"axis": 1}),
    Case("logsoftmax", "LogSoftmax", [(2, 3, 4)]),
    Case("argmax", "ArgMax", [(2, 3, 4)], {"axis": 1, "keepdims": 0}),
    Case("topk", "TopK", [(2, 10), const(4)], {"axis": -1}, outputs=2),
    Case("topk_smallest", "TopK", [(3, 6, 2), const(2)], {"axis": 1, "largest": 0}, outputs=2),
    # -- indexing / rearranging / detection
    Case(
        "gather_elements",
        "GatherElements",
        [(3, 4), const(0, 2, -1, 1, 3, 0, 1, 1, 2, 0, 0, 3).reshape(3, 4)],
        {"axis": 1},
    ),
    Case("gather_nd_batch", "GatherND", [(2, 3, 4), const(1, 0, 2, 3, 0, 1, 2, 2).reshape(2, 2, 2)], {"batch_dims": 1}),
    Case("scatter_elements", "ScatterElements", [(3, 4), const(1, 0, 3, 2).reshape(2, 2), rand(2, 2)], {"axis": 1}),
    Case("scatter_nd", "ScatterND", [(4, 3), const(2, 0).reshape(2, 1), rand(2, 3)]),
    Case("cumsum_exclusive_reverse", "CumSum", [(3, 5), const(1)], {"exclusive": 1, "reverse": 1}),
    Case("depth_to_space_dcr", "DepthToSpace", [(1, 8, 3, 2)], {"blocksize": 2}),
    Case("depth_to_space_crd", "DepthToSpace", [(1, 8, 3, 2)], {"blocksize": 2, "mode": "CRD"}),
    Case("space_to_depth", "SpaceToDepth", [(1, 2, 4, 6)], {"blocksize": 2}),
    Case("einsum_bmm", "Einsum", [(2, 3, 4), (2, 4, 5)], {"equation": "bij,bjk->bik"}),
    Case("einsum_implicit", "Einsum", [(3, 4), (4, 5)], {"equation": "ij,jk"}),
    Case("nonzero", "NonZero", [const(0, 1, 0, 2, 3, 0, dtype=F32).reshape(2, 3)]),
    # -- quantization
    Case(
        "quantize_u8",
        "QuantizeLinear",
        [(2, 3, 4), const(0.02, dtype=F32).reshape(()), const(128, dtype=np.uint8).reshape(())],
    ),
    Case(
        "quantize_i8_per_axis",
        "QuantizeLinear",
        [(2, 3, 4), const(0.01, 0.02, 0.03, dtype=F32), const(0, 1, -2, dtype=np.int8)],
        {"axis": 1},
    ),
    Case(
        "quantize_output_dtype_21",
        "QuantizeLinear",
        [(2, 3), const(0.05, dtype=F32).reshape(())],
        {"output_dtype": 3},
        opset=21,
    ),
    Case(
        "dequantize_per_axis",
        "DequantizeLinear",
        [np.arange(24, dtype=np.int8).reshape(2, 3, 4), const(0.1, 0.2, 0.3, dtype=F32), const(1, 0, 2, dtype=np.int8)],
        {"axis": 1},
    ),
]


def _materialize(case: Case) -> tuple[dict, dict, list[str]]:
    rng = np.random.default_rng(42)
    feeds, inits, names = {}, {}, []
    for i, spec in enumerate(case.inputs):
        name = f"in{i}"
        if spec is None:
            names.append("")
            continue
        names.append(name)
        if isinstance(spec, np.ndarray):
            inits[name] = spec
        elif spec[0] == "pos":
            feeds[name] = (np.abs(rng.standard_normal(spec[1])) + 0.1).astype(F32)
        else:
            feeds[name] = rng.standard_normal(spec).astype(F32)
    return feeds, inits, names


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_op_matches_onnxruntime(case: Case) -> None:
    feeds, inits, names = _materialize(case)
    outputs = [f"out{i}" for i in range(case.outputs)]
    attrs = {
        k: helper.make_tensor("value", 1, [1], v) if isinstance(v, np.ndarray) else v for k, v in case.attrs.items()
    }
    node = helper.make_node(case.op, names, outputs, **attrs)
    model = make_model([node], {k: (v.dtype, v.shape) for k, v in feeds.items()}, outputs, inits, opset=case.opset)
    assert_outputs_close(run_reference(model, feeds), run_ort(model, feeds))


def _boxes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (1, n, 2))
    wh = rng.uniform(5, 30, (1, n, 2))
    return np.concatenate([xy, xy + wh], axis=2).astype(F32)


@pytest.mark.parametrize("center_point_box", [0, 1])
@pytest.mark.parametrize("score_threshold", [None, 0.3])
def test_non_max_suppression_matches_onnxruntime(center_point_box: int, score_threshold: float | None) -> None:
    inputs = ["boxes", "scores", "max_out", "iou"] + (["score_thr"] if score_threshold is not None else [])
    inits = {"max_out": np.array([5], np.int64), "iou": np.array([0.4], F32)}
    if score_threshold is not None:
        inits["score_thr"] = np.array([score_threshold], F32)
    node = helper.make_node("NonMaxSuppression", inputs, ["selected"], center_point_box=center_point_box)
    feeds = {"boxes": _boxes(40, 1), "scores": np.random.default_rng(2).uniform(0, 1, (1, 3, 40)).astype(F32)}
    model = make_model([node], {k: (v.dtype, v.shape) for k, v in feeds.items()}, ["selected"], inits, opset=17)
    expected = run_ort(model, feeds)
    assert 3 < len(expected["selected"]) <= 15
    assert_outputs_close(run_reference(model, feeds), expected)


def test_at_least_25_distinct_ops_are_covered() -> None:
    assert len({c.op for c in CASES}) >= 25


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_behaves_as_resize_asymmetric(mode: str) -> None:
    """Upsample is deprecated (ORT refuses it at opset ≥ 10); we run it as Upsample-9 did, i.e. a
    Resize with 'asymmetric' coordinates (and floor rounding for nearest), checked against ORT's Resize."""
    x = rand(1, 2, 3, 4)
    scales = {"s": np.array([1, 1, 2, 1.5], F32)}
    upsample = make_model(
        [helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)], {"x": (F32, x.shape)}, ["y"], scales
    )
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    resize = make_model(
        [helper.make_node("Resize", ["x", "", "s"], ["y"], **attrs)], {"x": (F32, x.shape)}, ["y"], scales
    )
    assert_outputs_close(run_reference(upsample, {"x": x}), run_ort(resize, {"x": x}))
