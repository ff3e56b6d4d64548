"""Data-movement ops: Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Concat, Split, Slice, Gather,
Expand, Tile, Pad (tensor-creating ops such as Shape and Range are in ``creation.py``).

Opsets 13–21 take ``axes``/``split``/``pads``/``shape`` as *inputs*; inference reads them from
constant inputs (``Value.data``) and falls back to fresh symbols when they are only known at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Dim, Node, Shape, Value
from lanner.engine.ops.registry import TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import (
    broadcast_shapes,
    const_dims,
    const_ints,
    dims_product,
    divide_dims,
    input_or_attr_ints,
    normalize_axis,
    symbol,
)

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]


def _x(ins: Ins) -> tuple[np.dtype, Shape]:
    x = ins[0]
    assert x is not None and x.dtype is not None and x.shape is not None
    return x.dtype, x.shape


# -- Reshape / Flatten --------------------------------------------------------------------------
def _reshape_target(in_shape: Sequence[Dim], target: Sequence[Dim], allowzero: int) -> list[Dim]:
    """Reshape-14: ``0`` copies the input dim (unless ``allowzero``), one ``-1`` is inferred."""
    out: list[Dim] = [in_shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(target)]
    if -1 in out:
        out[out.index(-1)] = divide_dims(in_shape, [d for d in out if d != -1])
    return out


def _reshape_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    target = const_dims(ins[1])
    if target is None:
        rank = ins[1].shape[0]  # type: ignore[union-attr, index]
        return [(dtype, tuple(symbol(node, i) for i in range(int(rank))))]
    return [(dtype, tuple(_reshape_target(shape, target, node.attr("allowzero", 0))))]


@onnx_op("Reshape", infer=_reshape_infer)
def reshape(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    target = _reshape_target(x.shape, [int(v) for v in np.asarray(xs[1]).reshape(-1)], node.attr("allowzero", 0))
    return x.reshape([int(d) for d in target])


def _flatten_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axis = normalize_axis(node.attr("axis", 1), len(shape))
    return [(dtype, (dims_product(shape[:axis]), dims_product(shape[axis:])))]


@onnx_op("Flatten", infer=_flatten_infer)
def flatten(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axis = normalize_axis(node.attr("axis", 1), x.ndim)
    return x.reshape(int(np.prod(x.shape[:axis])), -1) if x.size else x.reshape(int(np.prod(x.shape[:axis])), 0)


# -- Transpose / Squeeze / Unsqueeze ------------------------------------------------------------
def _perm(node: Node, rank: int) -> list[int]:
    perm = node.attr("perm")
    return list(range(rank))[::-1] if perm is None else [int(p) for p in perm]


def _transpose_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    return [(dtype, tuple(shape[p] for p in _perm(node, len(shape))))]


@onnx_op("Transpose", infer=_transpose_infer)
def transpose(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    return np.transpose(x, _perm(node, x.ndim))


def _squeeze_axes(node: Node, ins: Ins, shape: Shape) -> list[int]:
    axes = input_or_attr_ints(node, ins, 1, "axes")
    if axes is None:  # no axes: drop every dim of size 1 (symbolic dims are kept)
        return [i for i, d in enumerate(shape) if d == 1]
    return sorted(normalize_axis(a, len(shape)) for a in axes)


def _squeeze_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axes = _squeeze_axes(node, ins, shape)
    return [(dtype, tuple(d for i, d in enumerate(shape) if i not in axes))]


@onnx_op("Squeeze", infer=_squeeze_infer)
def squeeze(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axes = [int(a) for a in xs[1]] if len(xs) > 1 and xs[1] is not None else node.attr("axes")
    return np.squeeze(x, axis=None if axes is None else tuple(normalize_axis(int(a), x.ndim) for a in axes))


def _unsqueeze_shape(shape: Sequence[Dim], axes: list[int]) -> tuple[Dim, ...]:
    """Unsqueeze-13: axes index the *output*, so normalize them against the output rank."""
    rank = len(shape) + len(axes)
    positions = sorted(normalize_axis(a, rank) for a in axes)
    out: list[Dim] = list(shape)
    for p in positions:
        out.insert(p, 1)
    return tuple(out)


def _unsqueeze_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axes = input_or_attr_ints(node, ins, 1, "axes")
    assert axes is not None, "Unsqueeze needs constant axes"
    return [(dtype, _unsqueeze_shape(shape, axes))]


@onnx_op("Unsqueeze", infer=_unsqueeze_infer)
def unsqueeze(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    axes = [int(a) for a in xs[1]] if len(xs) > 1 and xs[1] is not None else list(node.attr("axes"))
    return x.reshape([int(d) for d in _unsqueeze_shape(x.shape, axes)])


# -- Concat / Split -----------------------------------------------------------------------------
def _concat_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axis = normalize_axis(node.attr("axis"), len(shape))
    out = list(shape)
    sizes = [v.shape[axis] for v in ins if v is not None]  # type: ignore[index]
    out[axis] = sum(sizes) if all(isinstance(s, int) for s in sizes) else "+".join(map(str, sizes))  # type: ignore[arg-type]
    return [(dtype, tuple(out))]


@onnx_op("Concat", infer=_concat_infer)
def concat(node: Node, xs: Inputs) -> Array:
    arrays = [np.asarray(x) for x in xs if x is not None]
    return np.concatenate(arrays, axis=normalize_axis(node.attr("axis"), arrays[0].ndim))


def _split_sizes(node: Node, split: list[int] | None, dim: int) -> list[int]:
    """Split-18: explicit ``split`` input, else ``num_outputs`` (last chunk may be smaller),
    else equal parts for each output."""
    if split is not None:
        return split
    parts = int(node.attr("num_outputs", len(node.outputs)))
    chunk = -(-dim // parts)
    return [min(chunk, dim - i * chunk) for i in range(parts)]


def _split_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axis = normalize_axis(node.attr("axis", 0), len(shape))
    split = input_or_attr_ints(node, ins, 1, "split")
    dim = shape[axis]
    if split is None and not isinstance(dim, int):
        return [
            (dtype, tuple(symbol(node, i, k) if i == axis else d for i, d in enumerate(shape)))
            for k in range(len(node.outputs))
        ]
    sizes = _split_sizes(node, split, dim)  # type: ignore[arg-type]
    return [(dtype, tuple(s if i == axis else d for i, d in enumerate(shape))) for s in sizes]


@onnx_op("Split", infer=_split_infer)
def split(node: Node, xs: Inputs) -> tuple[Array, ...]:
    x = np.asarray(xs[0])
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    given = xs[1] if len(xs) > 1 else None
    split_list = [int(s) for s in given] if given is not None else node.attr("split")
    sizes = _split_sizes(node, None if split_list is None else list(split_list), x.shape[axis])
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


# -- Slice ---------------------------------------------------------------------------------------
def _slice_params(starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None, rank: int):
    axes = list(range(len(starts))) if axes is None else [normalize_axis(a, rank) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    return list(zip(axes, starts, ends, steps, strict=True))


def onnx_slice(dim: int, start: int, end: int, step: int) -> slice:
    """Slice-13 bounds as a Python slice. ONNX adds ``dim`` to negative starts/ends, then clamps to
    [0, dim] (step > 0) or start to [0, dim-1] and end to [-1, dim-1] (step < 0); Python's own
    clamping differs, e.g. start=-7, end=-7, step=-3 on dim 6 selects index 0 in ONNX, nothing in Python."""
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _slice_len(dim: int, start: int, end: int, step: int) -> int:
    return len(range(dim)[onnx_slice(dim, start, end, step)])


def _slice_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    starts, ends = const_ints(ins[1]), const_ints(ins[2])
    axes = const_ints(ins[3]) if len(ins) > 3 else None
    steps = const_ints(ins[4]) if len(ins) > 4 else None
    out = list(shape)
    if starts is None or ends is None:
        return [(dtype, tuple(symbol(node, i) for i in range(len(shape))))]
    for axis, start, end, step in _slice_params(starts, ends, axes, steps, len(shape)):
        dim = shape[axis]
        out[axis] = _slice_len(dim, start, end, step) if isinstance(dim, int) else symbol(node, axis)
    return [(dtype, tuple(out))]


@onnx_op("Slice", infer=_slice_infer)
def slice_(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])

    def ints(i: int) -> list[int] | None:
        return [int(v) for v in xs[i]] if len(xs) > i and xs[i] is not None else None  # type: ignore[union-attr]

    index = [slice(None)] * x.ndim
    for axis, start, end, step in _slice_params(ints(1), ints(2), ints(3), ints(4), x.ndim):  # type: ignore[arg-type]
        index[axis] = onnx_slice(x.shape[axis], start, end, step)
    return x[tuple(index)]


# -- Gather --------------------------------------------------------------------------------------
def _gather_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    axis = normalize_axis(node.attr("axis", 0), len(shape))
    indices = ins[1].shape  # type: ignore[union-attr]
    return [(dtype, tuple(shape[:axis]) + tuple(indices) + tuple(shape[axis + 1 :]))]  # type: ignore[arg-type]


@onnx_op("Gather", infer=_gather_infer)
def gather(node: Node, xs: Inputs) -> Array:
    """Gather-13: negative indices count from the end of ``axis``."""
    x = np.asarray(xs[0])
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    return np.take(x, np.asarray(xs[1]).astype(np.int64), axis=axis)


# -- Expand / Tile / Pad -------------------------------------------------------------------------
def _expand_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    target = const_ints(ins[1])
    if target is None:
        return [(dtype, tuple(symbol(node, i) for i in range(int(ins[1].shape[0]))))]  # type: ignore[union-attr, index]
    return [(dtype, broadcast_shapes(shape, tuple(target)))]


@onnx_op("Expand", infer=_expand_infer)
def expand(node: Node, xs: Inputs) -> Array:
    """Expand-13 broadcasts both ways: a target dim of 1 keeps the input's dim."""
    x = np.asarray(xs[0])
    target = tuple(int(d) for d in np.asarray(xs[1]))
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, target)).copy()


def _tile_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    reps = const_ints(ins[1])
    if reps is None:
        return [(dtype, tuple(symbol(node, i) for i in range(len(shape))))]
    out = [d * r if isinstance(d, int) else (d if r == 1 else f"{d}*{r}") for d, r in zip(shape, reps, strict=True)]
    return [(dtype, tuple(out))]


@onnx_op("Tile", infer=_tile_infer)
def tile(node: Node, xs: Inputs) -> Array:
    return np.tile(np.asarray(xs[0]), [int(r) for r in np.asarray(xs[1])])


def _pads(node: Node, xs_or_ins: Sequence, rank: int, ints: list[int]) -> list[tuple[int, int]]:
    """Pad-18: ``pads`` is [x1_begin, x2_begin, ..., x1_end, ...] over ``axes`` (default: all)."""
    axes_src = xs_or_ins[3] if len(xs_or_ins) > 3 else None
    if isinstance(axes_src, Value):
        axes = const_ints(axes_src)
    else:
        axes = None if axes_src is None else [int(a) for a in np.asarray(axes_src)]
    axes = list(range(rank)) if axes is None else [normalize_axis(a, rank) for a in axes]
    result = [(0, 0)] * rank
    half = len(ints) // 2
    for k, axis in enumerate(axes):
        result[axis] = (ints[k], ints[half + k])
    return result


def _pad_infer(node: Node, ins: Ins) -> list[TensorType]:
    dtype, shape = _x(ins)
    ints = const_ints(ins[1])
    if ints is None:
        return [(dtype, tuple(symbol(node, i) for i in range(len(shape))))]
    pads = _pads(node, ins, len(shape), ints)
    out = [
        d + b + e if isinstance(d, int) else (d if b == e == 0 else symbol(node, i))
        for i, (d, (b, e)) in enumerate(zip(shape, pads, strict=True))
    ]
    return [(dtype, tuple(out))]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad_check(node: Node, opset: int) -> None:
    if node.attr("mode", "constant") not in _PAD_MODES:
        raise unsupported(node, opset, f"mode '{node.attr('mode')}'")


@onnx_op("Pad", infer=_pad_infer, check=_pad_check)
def pad(node: Node, xs: Inputs) -> Array:
    """Pad-19 (modes constant/reflect/edge/wrap); negative pads crop."""
    x = np.asarray(xs[0])
    pads = _pads(node, xs, x.ndim, [int(p) for p in np.asarray(xs[1])])
    crop = tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None) for i, (b, e) in enumerate(pads))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in pads]
    mode = node.attr("mode", "constant")
    if mode == "constant":
        value = xs[2] if len(xs) > 2 and xs[2] is not None else np.zeros((), x.dtype)
        return np.pad(
            x, widths, mode="constant", constant_values=np.asarray(value).reshape(-1)[0] if np.size(value) else 0
        )
    return np.pad(x, widths, mode=_PAD_MODES[mode])  # type: ignore[call-overload]
