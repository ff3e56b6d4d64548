"""Tensor-creating ops: Shape, Size, ConstantOfShape, Range, Constant (the sources of shape subgraphs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op
from lanner.engine.ops.shapes import const_ints, symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]
INT64 = np.dtype("int64")


def _x_shape(ins: Ins) -> tuple:
    x = ins[0]
    assert x is not None and x.shape is not None
    return x.shape


# -- Shape / Size / ConstantOfShape / Range -------------------------------------------------------
def _shape_range(node: Node, rank: int) -> tuple[int, int]:
    """Shape-15 ``start``/``end`` are clamped to [0, rank] after adding rank to negatives."""
    start, end = node.attr("start", 0), node.attr("end", rank)
    return slice(start, end).indices(rank)[:2]


def _shape_infer(node: Node, ins: Ins) -> list[TensorType]:
    shape = _x_shape(ins)
    start, end = _shape_range(node, len(shape))
    return [(INT64, (max(end - start, 0),))]


@onnx_op("Shape", infer=_shape_infer)
def shape_(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    start, end = _shape_range(node, x.ndim)
    return np.array(x.shape[start:end], dtype=np.int64)


@onnx_op("Size", infer=lambda node, ins: [(INT64, ())])
def size(node: Node, xs: Inputs) -> Array:
    return np.array(np.asarray(xs[0]).size, dtype=np.int64)


def _const_of_shape_value(node: Node) -> np.ndarray:
    value = node.attr("value")
    return np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)[:1]


def _cos_infer(node: Node, ins: Ins) -> list[TensorType]:
    dims = const_ints(ins[0])
    dtype = _const_of_shape_value(node).dtype
    if dims is None:
        return [(dtype, tuple(symbol(node, i) for i in range(int(ins[0].shape[0]))))]  # type: ignore[union-attr, index]
    return [(dtype, tuple(dims))]


@onnx_op("ConstantOfShape", infer=_cos_infer)
def constant_of_shape(node: Node, xs: Inputs) -> Array:
    value = _const_of_shape_value(node)
    return np.full([int(d) for d in np.asarray(xs[0]).reshape(-1)], value[0], dtype=value.dtype)


def _range_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype = ins[0].dtype  # type: ignore[union-attr]
    # known values only: a shape tracked symbolically (a dynamic image size) carries its symbols as strings
    if all(v is not None and v.data is not None and np.asarray(v.data).dtype.kind in "iuf" for v in ins):
        return [(dtype, range_(node, [v.data for v in ins]).shape)]  # type: ignore[union-attr, list-item]
    return [(dtype, (symbol(node, 0),))]  # type: ignore[list-item]


@onnx_op("Range", infer=_range_infer)
def range_(node: Node, xs: Inputs) -> Array:
    start, limit, delta = (np.asarray(x).item() for x in xs)
    count = max(int(np.ceil((limit - start) / delta)), 0)
    return (start + np.arange(count) * delta).astype(np.asarray(xs[0]).dtype)


def _constant_infer(node: Node, ins: Ins) -> list[TensorType]:
    value = np.asarray(node.attr("value"))
    return [(value.dtype, tuple(int(d) for d in value.shape))]


@onnx_op("Constant", infer=_constant_infer)
def constant(node: Node, xs: Inputs) -> Array:
    """Constant-13; the importer turns these into constants, normalizing every ``value_*`` form to ``value``."""
    return np.asarray(node.attr("value"))
