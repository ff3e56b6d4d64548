"""Convolution, pooling, normalization and dense ops (NCHW, any number of spatial dims).

Conv is im2col as a strided *view* (``sliding_window_view``) followed by one batched matmul per
group: fast enough to run a ResNet-18 at 224x224 in a few seconds with numpy.
Spec: https://onnx.ai/onnx/operators/onnx__Conv.html (auto_pad, pads = [x1_begin, x2_begin, ..., x1_end, ...]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lanner.engine.ir.graph import Dim, Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import broadcast_shapes, normalize_axis, same_as_input, symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]


# -- geometry shared by Conv and pools -------------------------------------------------------------
def window_pads(
    node: Node, in_dims: Sequence[int], kernel: Sequence[int], ceil_mode: bool = False
) -> tuple[list[tuple[int, int]], list[int]]:
    """(begin, end) pads and output sizes per spatial dim, honoring ``auto_pad`` and ``ceil_mode``.

    SAME_UPPER/SAME_LOWER: output = ceil(in / stride), the odd pad goes at the end/beginning.
    ``ceil_mode`` (pools): a last window that would start in the end padding is dropped (as ONNX
    Runtime and PyTorch do).
    """
    rank = len(in_dims)
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        outs = [-(-n // s) for n, s in zip(in_dims, strides, strict=True)]
        pads = []
        for n, s, e, o in zip(in_dims, strides, eff, outs, strict=True):
            total = max((o - 1) * s + e - n, 0)
            small = total // 2
            pads.append((small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small))
        return pads, outs
    flat = [0] * (2 * rank) if auto_pad == "VALID" else list(node.attr("pads", [0] * (2 * rank)))
    pads = [(flat[i], flat[rank + i]) for i in range(rank)]
    outs = []
    for n, s, e, (b, f) in zip(in_dims, strides, eff, pads, strict=True):
        span = n + b + f - e
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= n + b:
            out -= 1
        outs.append(out)
    return pads, outs


def _windows(xp: Array, kernel: Sequence[int], node: Node, outs: Sequence[int]) -> Array:
    """(N, C, *out, *kernel) strided view of the padded input ``xp``."""
    rank = len(kernel)
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    view = sliding_window_view(xp, eff, axis=tuple(range(2, 2 + rank)))
    index = [slice(None), slice(None)]
    index += [slice(0, (o - 1) * s + 1, s) for o, s in zip(outs, strides, strict=True)]
    index += [slice(None, None, d) for d in dilations]
    return view[tuple(index)]


def _pad_spatial(x: Array, pads: Sequence[tuple[int, int]], value: float = 0.0, extra: Sequence[int] = ()) -> Array:
    widths = [(0, 0), (0, 0)] + [(b, e + (extra[i] if extra else 0)) for i, (b, e) in enumerate(pads)]
    if not any(b or e for b, e in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=value)


def _spatial_infer(node: Node, x: Value, channels: Dim, kernel: Sequence[int], ceil_mode: bool = False) -> TensorType:
    assert x.shape is not None and x.dtype is not None
    spatial = x.shape[2:]
    if all(isinstance(d, int) for d in spatial):
        _, outs = window_pads(node, spatial, kernel, ceil_mode)  # type: ignore[arg-type]
        if min(outs, default=1) <= 0:
            raise ValueError(f"computed output size {outs} <= 0: the kernel is larger than the padded input")
        out_dims: list[Dim] = list(outs)
    else:
        out_dims = [symbol(node, 2 + i) for i in range(len(spatial))]
    return x.dtype, (x.shape[0], channels, *out_dims)


# -- Conv ------------------------------------------------------------------------------------------
def _conv_infer(node: Node, ins: Ins) -> list[TensorType]:
    x, w = ins[0], ins[1]
    assert x is not None and w is not None and w.shape is not None
    kernel = [int(k) for k in (node.attr("kernel_shape") or w.shape[2:])]
    return [_spatial_infer(node, x, w.shape[0], kernel)]


def conv2col(node: Node, x: Array, w: Array, b: Array | None) -> Array:
    """ONNX Conv-11 for any spatial rank: grouped im2col + matmul, plus bias."""
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    group = int(node.attr("group", 1))
    pads, outs = window_pads(node, x.shape[2:], kernel)
    cols = _windows(_pad_spatial(x, pads), kernel, node, outs)  # (N, C, *out, *k)
    rank = len(kernel)
    cols = cols.reshape(n, group, c // group, *outs, *kernel)
    order = [0, 1, *range(3, 3 + rank), 2, *range(3 + rank, 3 + 2 * rank)]
    positions = int(np.prod(outs))
    cols = cols.transpose(order).reshape(n, group, positions, cg * int(np.prod(kernel)))
    wmat = w.reshape(group, m // group, -1).transpose(0, 2, 1)  # (G, Cg*k, Mg)
    y = np.matmul(cols, wmat)  # (N, G, P, Mg)
    y = y.transpose(0, 1, 3, 2).reshape(n, m, *outs)
    if b is not None:
        y = y + b.reshape(1, m, *([1] * rank))
    return y.astype(x.dtype, copy=False)


@onnx_op("Conv", infer=_conv_infer)
def conv(node: Node, xs: Inputs) -> Array:
    x, w = xs[0], xs[1]
    assert x is not None and w is not None
    return conv2col(node, x, w, xs[2] if len(xs) > 2 else None)


# -- ConvTranspose -------------------------------------------------------------------------------
def _convtranspose_geometry(
    node: Node, in_dims: Sequence[int], kernel: Sequence[int]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Output sizes and (begin, end) crops, per ConvTranspose-11's formulas.

    full = stride*(in-1) + output_padding + (k-1)*dilation + 1; ``output_shape`` given → pads derived
    (SAME_UPPER puts the odd crop at the end, as the spec and ONNX Runtime do).
    """
    rank = len(in_dims)
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    out_pad = list(node.attr("output_padding", [0] * rank))
    full = [
        s * (n - 1) + op + (k - 1) * d + 1
        for n, s, op, k, d in zip(in_dims, strides, out_pad, kernel, dilations, strict=True)
    ]
    output_shape = node.attr("output_shape")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (
            list(output_shape)[-rank:]
            if output_shape is not None
            else [n * s for n, s in zip(in_dims, strides, strict=True)]
        )
        crops = []
        for f, t in zip(full, target, strict=True):
            total = f - t
            small = total // 2
            crops.append((small, total - small) if auto_pad != "SAME_LOWER" else (total - small, small))
        return target, crops
    flat = [0] * (2 * rank) if auto_pad == "VALID" else list(node.attr("pads", [0] * (2 * rank)))
    crops = [(flat[i], flat[rank + i]) for i in range(rank)]
    return [f - b - e for f, (b, e) in zip(full, crops, strict=True)], crops


def _convtranspose_infer(node: Node, ins: Ins) -> list[TensorType]:
    x, w = ins[0], ins[1]
    assert x is not None and w is not None and w.shape is not None and x.shape is not None and x.dtype is not None
    channels = w.shape[1] * int(node.attr("group", 1)) if isinstance(w.shape[1], int) else symbol(node, 1)
    kernel = node.attr("kernel_shape") or w.shape[2:]
    spatial = x.shape[2:]
    if all(isinstance(d, int) for d in spatial):
        outs, _ = _convtranspose_geometry(node, spatial, kernel)  # type: ignore[arg-type]
        if min(outs, default=1) <= 0:
            raise ValueError(f"computed output size {outs} <= 0: pads remove the whole output")
        return [(x.dtype, (x.shape[0], channels, *outs))]
    return [(x.dtype, (x.shape[0], channels, *(symbol(node, 2 + i) for i in range(len(spatial)))))]


@onnx_op("ConvTranspose", infer=_convtranspose_infer)
def conv_transpose(node: Node, xs: Inputs) -> Array:
    """Scatter formulation: each kernel tap adds ``x @ w[tap]`` into a strided slice of the output."""
    x, w, b = xs[0], xs[1], (xs[2] if len(xs) > 2 else None)
    assert x is not None and w is not None
    n, c = x.shape[:2]
    group = int(node.attr("group", 1))
    mg, kernel = w.shape[1], w.shape[2:]
    rank = len(kernel)
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    outs, crops = _convtranspose_geometry(node, x.shape[2:], kernel)
    full = [o + bc + ec for o, (bc, ec) in zip(outs, crops, strict=True)]
    y = np.zeros((n, group, mg, *full), dtype=np.float64 if x.dtype == np.float64 else np.float32)
    xg = x.reshape(n, group, c // group, *x.shape[2:])
    wg = w.reshape(group, c // group, mg, *kernel)
    for tap in np.ndindex(*kernel):
        contrib = np.einsum("ngc...,gcm->ngm...", xg, wg[(slice(None), slice(None), slice(None), *tap)])
        index = [slice(None)] * 3 + [
            slice(t * d, t * d + s * (i - 1) + 1, s)
            for t, d, s, i in zip(tap, dilations, strides, x.shape[2:], strict=True)
        ]
        y[tuple(index)] += contrib
    y = y.reshape(n, group * mg, *full)[
        (slice(None), slice(None), *(slice(bc, bc + o) for o, (bc, _) in zip(outs, crops, strict=True)))
    ]
    if b is not None:
        y = y + b.reshape(1, -1, *([1] * rank))
    return y.astype(x.dtype)


# -- Pools ---------------------------------------------------------------------------------------
def _pool_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None
    return [_spatial_infer(node, x, x.shape[1], node.attr("kernel_shape"), bool(node.attr("ceil_mode", 0)))]


def _pool_setup(node: Node, x: Array) -> tuple[list[int], list[tuple[int, int]], list[int], list[int]]:
    kernel = list(node.attr("kernel_shape"))
    pads, outs = window_pads(node, x.shape[2:], kernel, bool(node.attr("ceil_mode", 0)))
    strides = list(node.attr("strides", [1] * len(kernel)))
    dilations = list(node.attr("dilations", [1] * len(kernel)))
    # extra end padding so that ceil_mode windows stay inside the padded array
    extra = [
        max((o - 1) * s + (k - 1) * d + 1 - (n + b + e), 0)
        for o, s, k, d, n, (b, e) in zip(outs, strides, kernel, dilations, x.shape[2:], pads, strict=True)
    ]
    return kernel, pads, outs, extra


def _maxpool_check(node: Node, opset: int) -> None:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise unsupported(node, opset, "the Indices output")


@onnx_op("MaxPool", infer=_pool_infer, check=_maxpool_check)
def max_pool(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    kernel, pads, outs, extra = _pool_setup(node, x)
    low = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    windows = _windows(_pad_spatial(x, pads, low, extra), kernel, node, outs)
    return windows.max(axis=tuple(range(-len(kernel), 0)))


@onnx_op("AveragePool", infer=_pool_infer)
def average_pool(node: Node, xs: Inputs) -> Array:
    """AveragePool-19: ``count_include_pad`` counts explicit pads; ceil_mode overhang never counts."""
    x = np.asarray(xs[0])
    kernel, pads, outs, extra = _pool_setup(node, x)
    axes = tuple(range(-len(kernel), 0))
    sums = _windows(_pad_spatial(x, pads, 0.0, extra), kernel, node, outs).sum(axis=axes)
    ones = np.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
    if node.attr("count_include_pad", 0):
        ones = _pad_spatial(ones, pads, 1.0)
        counts = _windows(_pad_spatial(ones, [(0, 0)] * len(kernel), 0.0, extra), kernel, node, outs).sum(axis=axes)
    else:
        counts = _windows(_pad_spatial(ones, pads, 0.0, extra), kernel, node, outs).sum(axis=axes)
    return (sums / counts).astype(x.dtype)


def _global_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    return [(x.dtype, (*x.shape[:2], *([1] * (len(x.shape) - 2))))]


@onnx_op("GlobalAveragePool", infer=_global_infer)
def global_average_pool(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float64).astype(x.dtype)


@onnx_op("GlobalMaxPool", infer=_global_infer)
def global_max_pool(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


# -- Normalization -------------------------------------------------------------------------------
def _bn_check(node: Node, opset: int) -> None:
    if node.attr("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        raise unsupported(node, opset, "training_mode (running statistics outputs)")


def batchnorm_scale_shift(node: Node, xs: Inputs) -> tuple[Array, Array]:
    """Per-channel (scale, shift) with y = x*scale + shift; used by the kernel and by fold_batchnorm."""
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64) for v in xs[1:5])
    scale = gamma / np.sqrt(var + node.attr("epsilon", 1e-5))
    return scale, beta - mean * scale


@onnx_op("BatchNormalization", infer=same_as_input, check=_bn_check)
def batch_normalization(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    scale, shift = batchnorm_scale_shift(node, xs)
    shape = (1, -1, *([1] * (x.ndim - 2)))
    return (x * scale.reshape(shape) + shift.reshape(shape)).astype(x.dtype)


@onnx_op("InstanceNormalization", infer=same_as_input)
def instance_normalization(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = (1, -1, *([1] * (x.ndim - 2)))
    y = (x - mean) / np.sqrt(var + node.attr("epsilon", 1e-5))
    return (y * np.asarray(xs[1]).reshape(shape) + np.asarray(xs[2]).reshape(shape)).astype(x.dtype)


def _layernorm_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    axis = normalize_axis(node.attr("axis", -1), len(x.shape))
    stat = (*x.shape[:axis], *([1] * (len(x.shape) - axis)))
    return [(x.dtype, x.shape), (np.dtype("float32"), stat), (np.dtype("float32"), stat)][: len(node.outputs)]


@onnx_op("LayerNormalization", infer=_layernorm_infer)
def layer_normalization(node: Node, xs: Inputs) -> tuple[Array, ...]:
    """LayerNormalization-17: normalize over axes [axis, rank); outputs Y, Mean, InvStdDev."""
    x = np.asarray(xs[0])
    axes = tuple(range(normalize_axis(node.attr("axis", -1), x.ndim), x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + node.attr("epsilon", 1e-5))
    y = (x - mean) * inv_std * np.asarray(xs[1])
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2]
    return (y.astype(x.dtype), mean.astype(np.float32), inv_std.astype(np.float32))[: len(node.outputs)]


# -- Dense ---------------------------------------------------------------------------------------
def _gemm_infer(node: Node, ins: Ins) -> list[TensorType]:
    a, b = ins[0], ins[1]
    assert a is not None and b is not None and a.shape is not None and b.shape is not None and a.dtype is not None
    rows = a.shape[1] if node.attr("transA", 0) else a.shape[0]
    cols = b.shape[0] if node.attr("transB", 0) else b.shape[1]
    return [(a.dtype, (rows, cols))]


@onnx_op("Gemm", infer=_gemm_infer)
def gemm(node: Node, xs: Inputs) -> Array:
    """Gemm-13: Y = alpha * A' @ B' + beta * C, with C broadcast unidirectionally."""
    a, b = np.asarray(xs[0]), np.asarray(xs[1])
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = node.attr("alpha", 1.0) * (a @ b)
    if len(xs) > 2 and xs[2] is not None:
        y = y + node.attr("beta", 1.0) * xs[2]
    return y.astype(xs[0].dtype, copy=False)  # type: ignore[union-attr]


def _matmul_infer(node: Node, ins: Ins) -> list[TensorType]:
    a, b = ins[0], ins[1]
    assert a is not None and b is not None and a.shape is not None and b.shape is not None and a.dtype is not None
    sa = (1, *a.shape) if len(a.shape) == 1 else a.shape
    sb = (*b.shape, 1) if len(b.shape) == 1 else b.shape
    out = (*broadcast_shapes(sa[:-2], sb[:-2]), sa[-2], sb[-1])
    if len(a.shape) == 1:
        out = out[:-2] + out[-1:]
    if len(b.shape) == 1:
        out = out[:-1]
    return [(a.dtype, tuple(out))]


@onnx_op("MatMul", infer=_matmul_infer)
def matmul(node: Node, xs: Inputs) -> Array:
    """MatMul-13 has numpy.matmul semantics."""
    return np.matmul(xs[0], xs[1])  # type: ignore[arg-type]
