"""Index-driven ops: GatherElements, GatherND, ScatterElements, ScatterND, NonZero, CumSum,
DepthToSpace/SpaceToDepth, Einsum."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Dim, Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import normalize_axis, same_as_input, symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]


def _wrap(indices: Array, dim: int) -> Array:
    """ONNX index inputs may be negative (counted from the end)."""
    indices = indices.astype(np.int64)
    return np.where(indices < 0, indices + dim, indices)


def _gather_elements_infer(node: Node, ins: Ins) -> list[TensorType]:
    return [(ins[0].dtype, ins[1].shape)]  # type: ignore[union-attr, list-item]


@onnx_op("GatherElements", infer=_gather_elements_infer)
def gather_elements(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    return np.take_along_axis(x, _wrap(np.asarray(xs[1]), x.shape[axis]), axis=axis)


def _scatter_check(node: Node, opset: int) -> None:
    if node.attr("reduction", "none") != "none":
        raise unsupported(node, opset, f"reduction '{node.attr('reduction')}'")


@onnx_op("ScatterElements", infer=same_as_input, check=_scatter_check)
def scatter_elements(node: Node, xs: Inputs) -> Array:
    x = np.array(xs[0], copy=True)
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    indices = np.asarray(xs[1])
    where: list[Array] = list(np.indices(indices.shape))  # indices may be smaller than data on every axis
    where[axis] = _wrap(indices, x.shape[axis])
    x[tuple(where)] = np.asarray(xs[2])
    return x


@onnx_op("ScatterND", infer=same_as_input, check=_scatter_check)
def scatter_nd(node: Node, xs: Inputs) -> Array:
    """ScatterND-18 without reduction: ``out[indices[i]] = updates[i]`` (indices index leading dims)."""
    x = np.array(xs[0], copy=True)
    indices = np.asarray(xs[1]).astype(np.int64)
    updates = np.asarray(xs[2])
    depth = indices.shape[-1]
    flat_idx = indices.reshape(-1, depth)
    flat_upd = updates.reshape(len(flat_idx), *x.shape[depth:])
    for idx, upd in zip(flat_idx, flat_upd, strict=True):
        index: tuple[int, ...] = tuple(int(i) + x.shape[k] if i < 0 else int(i) for k, i in enumerate(idx))
        x[index] = upd
    return x


def _gather_nd_infer(node: Node, ins: Ins) -> list[TensorType]:
    data, idx = ins[0], ins[1]
    assert data is not None and idx is not None and data.shape is not None and idx.shape is not None
    b = int(node.attr("batch_dims", 0))
    depth = idx.shape[-1]
    if not isinstance(depth, int):
        return [(data.dtype, tuple(symbol(node, i) for i in range(len(idx.shape) - 1)))]  # type: ignore[list-item]
    return [(data.dtype, (*idx.shape[:-1], *data.shape[b + depth :]))]  # type: ignore[list-item]


@onnx_op("GatherND", infer=_gather_nd_infer)
def gather_nd(node: Node, xs: Inputs) -> Array:
    """GatherND-13 with ``batch_dims``: leading batch dims are shared by data and indices."""
    data, indices = np.asarray(xs[0]), np.asarray(xs[1]).astype(np.int64)
    b = int(node.attr("batch_dims", 0))
    batch = data.shape[:b]
    data_b = data.reshape(-1, *data.shape[b:])
    idx_b = indices.reshape(data_b.shape[0], -1, indices.shape[-1])
    depth = indices.shape[-1]
    out = []
    for d, idx in zip(data_b, idx_b, strict=True):
        idx = np.where(idx < 0, idx + np.array(d.shape[:depth]), idx)
        out.append(d[tuple(idx.T)])
    return np.stack(out).reshape(*batch, *indices.shape[b:-1], *data.shape[b + depth :])


@onnx_op("NonZero", infer=lambda node, ins: [(np.dtype("int64"), (len(ins[0].shape), symbol(node, 1)))])  # type: ignore[union-attr, arg-type]
def nonzero(node: Node, xs: Inputs) -> Array:
    """NonZero-13: indices of non-zero elements, row-major order, shape [rank, count] (data-dependent)."""
    return np.array(np.nonzero(np.asarray(xs[0])), dtype=np.int64).reshape(np.asarray(xs[0]).ndim, -1)


@onnx_op("CumSum", infer=same_as_input)
def cumsum(node: Node, xs: Inputs) -> Array:
    """CumSum-14 with ``exclusive`` and ``reverse``."""
    x = np.asarray(xs[0])
    axis = normalize_axis(int(np.asarray(xs[1]).reshape(-1)[0]), x.ndim)
    y = np.flip(x, axis) if node.attr("reverse", 0) else x
    out = np.cumsum(y, axis=axis, dtype=x.dtype)
    if node.attr("exclusive", 0):
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=axis)), np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if node.attr("reverse", 0) else out


def _space_infer(node: Node, ins: Ins) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    n, c, h, w = x.shape
    b = int(node.attr("blocksize"))
    if node.op_type == "DepthToSpace":
        dims = (
            n,
            c // b**2 if isinstance(c, int) else symbol(node, 1),
            h * b if isinstance(h, int) else symbol(node, 2),
            w * b if isinstance(w, int) else symbol(node, 3),
        )
    else:
        dims = (
            n,
            c * b**2 if isinstance(c, int) else symbol(node, 1),
            h // b if isinstance(h, int) else symbol(node, 2),
            w // b if isinstance(w, int) else symbol(node, 3),
        )
    return [(x.dtype, dims)]


@onnx_op("DepthToSpace", infer=_space_infer)
def depth_to_space(node: Node, xs: Inputs) -> Array:
    """DepthToSpace-13: ``mode`` DCR (default; depth-column-row) or CRD (PixelShuffle)."""
    x = np.asarray(xs[0])
    n, c, h, w = x.shape
    b = int(node.attr("blocksize"))
    if node.attr("mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, c // b**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // b**2, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // b**2, h * b, w * b)


@onnx_op("SpaceToDepth", infer=_space_infer)
def space_to_depth(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    n, c, h, w = x.shape
    b = int(node.attr("blocksize"))
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _einsum_infer(node: Node, ins: Ins) -> list[TensorType]:
    """Output dims from the equation's letters (no evaluation); ellipsis equations get symbols."""
    equation = str(node.attr("equation")).replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if not rhs and "->" not in equation:  # implicit output: letters used once, alphabetically
        rhs = "".join(sorted(c for c in set(lhs) if c.isalpha() and lhs.count(c) == 1))
    sizes: dict[str, Dim] = {}
    if "." not in equation:
        for term, value in zip(terms, ins, strict=True):
            for letter, dim in zip(term, value.shape or (), strict=False):  # type: ignore[union-attr]
                if sizes.get(letter, 1) == 1:
                    sizes[letter] = dim
    dims = [sizes.get(c, symbol(node, i)) for i, c in enumerate(rhs)]
    return [(ins[0].dtype, tuple(dims))]  # type: ignore[union-attr, list-item]


@onnx_op("Einsum", infer=_einsum_infer)
def einsum(node: Node, xs: Inputs) -> Array:
    """Einsum-12 uses numpy's equation syntax."""
    arrays = [np.asarray(x) for x in xs if x is not None]
    return np.asarray(np.einsum(str(node.attr("equation")), *arrays)).astype(arrays[0].dtype)
