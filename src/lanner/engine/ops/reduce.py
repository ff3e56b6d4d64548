"""Reductions (ReduceMean/Max/Min/Sum/Prod/L1/L2/SumSquare/LogSumExp), Softmax, ArgMax/ArgMin, TopK.

``axes`` moved from attribute to input in ReduceSum-13 and in the other reductions at opset 18;
both forms are read. ``noop_with_empty_axes`` (13/18+) makes empty axes an identity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lanner.engine.ir.graph import Dim, Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op
from lanner.engine.ops.shapes import const_ints, input_or_attr_ints, normalize_axis, same_as_input, symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]


def _axes(node: Node, axes: list[int] | None, rank: int) -> tuple[int, ...] | None:
    """Normalized axes; ``None`` means identity (noop_with_empty_axes), ``()`` handled as all axes."""
    if not axes:
        return None if node.attr("noop_with_empty_axes", 0) else tuple(range(rank))
    return tuple(sorted(normalize_axis(a, rank) for a in axes))


def _reduce_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    if len(ins) > 1 and ins[1] is not None and ins[1].data is None:
        return [(x.dtype, tuple(symbol(node, i) for i in range(len(x.shape))))]
    axes = _axes(node, input_or_attr_ints(node, ins, 1, "axes"), len(x.shape))
    if axes is None:
        return [(x.dtype, x.shape)]
    keep = node.attr("keepdims", 1)
    dims: list[Dim] = [1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes]
    return [(x.dtype, tuple(dims))]


def _reduction(op_type: str, fn: Callable[[Array, tuple[int, ...], bool], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        x = np.asarray(xs[0])
        given = xs[1] if len(xs) > 1 else None
        raw = [int(a) for a in given] if given is not None else node.attr("axes")
        axes = _axes(node, None if raw is None else list(raw), x.ndim)
        if axes is None:
            return x
        return np.asarray(fn(x, axes, bool(node.attr("keepdims", 1)))).astype(x.dtype)

    onnx_op(op_type, infer=_reduce_infer)(run)


def _f64(x: Array) -> Array:
    return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x


_reduction("ReduceMean", lambda x, a, k: _f64(x).mean(axis=a, keepdims=k))
_reduction("ReduceMax", lambda x, a, k: x.max(axis=a, keepdims=k))
_reduction("ReduceMin", lambda x, a, k: x.min(axis=a, keepdims=k))
_reduction("ReduceSum", lambda x, a, k: _f64(x).sum(axis=a, keepdims=k))
_reduction("ReduceProd", lambda x, a, k: _f64(x).prod(axis=a, keepdims=k))
_reduction("ReduceL1", lambda x, a, k: np.abs(_f64(x)).sum(axis=a, keepdims=k))
_reduction("ReduceL2", lambda x, a, k: np.sqrt((_f64(x) ** 2).sum(axis=a, keepdims=k)))
_reduction("ReduceSumSquare", lambda x, a, k: (_f64(x) ** 2).sum(axis=a, keepdims=k))
_reduction("ReduceLogSumExp", lambda x, a, k: np.log(np.exp(_f64(x)).sum(axis=a, keepdims=k)))


def softmax_array(x: Array, axis: int) -> Array:
    """Softmax-13 along one axis (subtracting the max for stability)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@onnx_op("Softmax", infer=same_as_input)
def softmax(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    return softmax_array(x, normalize_axis(node.attr("axis", -1), x.ndim)).astype(x.dtype)


@onnx_op("LogSoftmax", infer=same_as_input)
def log_softmax(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axis = normalize_axis(node.attr("axis", -1), x.ndim)
    shifted = x - x.max(axis=axis, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(x.dtype)


def _arg_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None
    axis = normalize_axis(node.attr("axis", 0), len(x.shape))
    keep = node.attr("keepdims", 1)
    dims = [1 if i == axis else d for i, d in enumerate(x.shape) if keep or i != axis]
    return [(np.dtype("int64"), tuple(dims))]


def _arg(op_type: str, fn: Callable[[Array, int], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        """ArgMax/ArgMin-13: first occurrence, or last with ``select_last_index=1``."""
        x = np.asarray(xs[0])
        axis = normalize_axis(node.attr("axis", 0), x.ndim)
        if node.attr("select_last_index", 0):
            idx = x.shape[axis] - 1 - fn(np.flip(x, axis=axis), axis)
        else:
            idx = fn(x, axis)
        return np.expand_dims(idx, axis).astype(np.int64) if node.attr("keepdims", 1) else idx.astype(np.int64)

    onnx_op(op_type, infer=_arg_infer)(run)


_arg("ArgMax", lambda x, axis: np.argmax(x, axis=axis))
_arg("ArgMin", lambda x, axis: np.argmin(x, axis=axis))


def _topk_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    axis = normalize_axis(node.attr("axis", -1), len(x.shape))
    k = const_ints(ins[1])
    dims = list(x.shape)
    dims[axis] = k[0] if k is not None else symbol(node, axis)
    return [(x.dtype, tuple(dims)), (np.dtype("int64"), tuple(dims))]


@onnx_op("TopK", infer=_topk_infer)
def topk(node: Node, xs: Inputs) -> tuple[Array, Array]:
    """TopK-11: ties keep the lower index first (stable sort), as ONNX Runtime does."""
    x = np.asarray(xs[0])
    k = int(np.asarray(xs[1]).reshape(-1)[0])
    axis = normalize_axis(node.attr("axis", -1), x.ndim)
    keys = -x if node.attr("largest", 1) else x
    order = np.argsort(keys, axis=axis, kind="stable")
    index = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, index, axis=axis), index.astype(np.int64)
