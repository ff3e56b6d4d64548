"""Resize (opsets 13–19) and the deprecated Upsample, as separable 1-D interpolation per axis.

Spec: https://onnx.ai/onnx/operators/onnx__Resize.html. For each output index ``x_resized`` the
source coordinate ``x_original`` comes from ``coordinate_transformation_mode``; ``nearest`` rounds it
with ``nearest_mode``; ``linear`` blends the two neighbours (indices clamped to the edge, as the ONNX
reference implementation does). ``scale`` is the *given* scale when ``scales`` is an input, else
output/input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lanner.engine.ir.graph import Dim, Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import normalize_axis, symbol

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]

_COORD_MODES = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"}
_NEAREST_MODES = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}


def _check(node: Node, opset: int) -> None:
    mode = node.attr("mode", "nearest")
    coord = node.attr("coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear", "cubic"):
        raise unsupported(node, opset, f"mode '{mode}'")
    if node.op_type == "Resize" and coord not in _COORD_MODES:
        raise unsupported(node, opset, f"coordinate_transformation_mode '{coord}'")
    if node.attr("nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
        raise unsupported(node, opset, f"nearest_mode '{node.attr('nearest_mode')}'")
    if node.attr("antialias", 0) and mode != "nearest":  # antialias only changes downscaling filters
        raise unsupported(node, opset, "antialias=1")
    if node.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise unsupported(node, opset, "keep_aspect_ratio_policy other than 'stretch'")


def _sizes_and_scales(
    node: Node, in_shape: Sequence[int], scales: Array | None, sizes: Array | None
) -> tuple[list[int], list[float]]:
    """Per-axis output sizes and the scales used in the coordinate transform (Resize-18 ``axes``)."""
    rank = len(in_shape)
    axes = [normalize_axis(a, rank) for a in node.attr("axes", range(rank))]
    out = list(in_shape)
    factors = [1.0] * rank
    if sizes is not None and sizes.size:
        for a, s in zip(axes, sizes.reshape(-1), strict=True):
            out[a], factors[a] = int(s), float(np.float32(int(s)) / np.float32(in_shape[a]))
    elif scales is not None and scales.size:
        for a, s in zip(axes, scales.reshape(-1), strict=True):
            out[a], factors[a] = int(np.floor(in_shape[a] * float(s))), float(np.float32(s))
    return out, factors


def _source_coords(node: Node, n_in: int, n_out: int, scale: float) -> Array:
    """x_original for every output index, computed in float32 in the order ONNX Runtime uses
    (a float64 result differs at exact .0/.5 ties, e.g. (1 + 0.5) / 0.6 - 0.5 with nearest_mode=floor)."""
    f32 = np.float32
    x, s, half = np.arange(n_out, dtype=f32), f32(scale), f32(0.5)
    mode = node.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "asymmetric":
        return x / s
    if mode == "align_corners":
        return x * f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else np.zeros_like(x)
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if n_out > 1 else np.zeros_like(x)
    if mode == "half_pixel_symmetric":
        adjustment = f32(n_out) / (s * f32(n_in))
        offset = f32(n_in) / f32(2) * (f32(1) - adjustment)
        return offset + (x + half) / s - half
    return (x + half) / s - half


def _round(node: Node, coords: Array) -> Array:
    mode = node.attr("nearest_mode", "round_prefer_floor")
    if mode == "floor":
        return np.floor(coords)
    if mode == "ceil":
        return np.ceil(coords)
    if mode == "round_prefer_ceil":
        return np.floor(coords + 0.5)
    return np.ceil(coords - 0.5)


def _resize_axis(node: Node, x: Array, axis: int, n_out: int, scale: float) -> Array:
    n_in = x.shape[axis]
    coords = _source_coords(node, n_in, n_out, scale)
    if node.attr("mode", "nearest") == "nearest":
        index = np.clip(_round(node, coords), 0, n_in - 1).astype(np.int64)
        return np.take(x, index, axis=axis)
    if node.attr("mode", "nearest") == "cubic":
        return _cubic_axis(node, x, axis, coords)
    low = np.floor(coords)
    frac = coords - low
    i0 = np.clip(low, 0, n_in - 1).astype(np.int64)
    i1 = np.clip(low + 1, 0, n_in - 1).astype(np.int64)
    shape = [1] * x.ndim
    shape[axis] = n_out
    w = frac.reshape(shape)
    y = np.take(x, i0, axis=axis) * (1.0 - w) + np.take(x, i1, axis=axis) * w
    return y.astype(x.dtype)


def _cubic_weights(t: Array, a: float) -> Array:
    """Keys' cubic convolution weights for the taps at offsets -1, 0, 1, 2 (``cubic_coeff_a`` = a)."""
    d = np.stack([1 + t, t, 1 - t, 2 - t], axis=-1).astype(np.float64)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _cubic_axis(node: Node, x: Array, axis: int, coords: Array) -> Array:
    """Cubic interpolation: 4 taps, edge-clamped; ``exclude_outside`` zeroes and renormalizes taps
    that fall outside the input."""
    n_in = x.shape[axis]
    low = np.floor(coords).astype(np.int64)
    weights = _cubic_weights(coords - low, float(node.attr("cubic_coeff_a", -0.75)))
    taps = low[:, None] + np.arange(-1, 3)[None, :]
    if node.attr("exclude_outside", 0):
        weights = np.where((taps >= 0) & (taps < n_in), weights, 0.0)
        weights = weights / weights.sum(axis=1, keepdims=True)
    taps = np.clip(taps, 0, n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = len(coords)
    y = sum(np.take(x, taps[:, k], axis=axis) * weights[:, k].reshape(shape) for k in range(4))
    return np.asarray(y).astype(x.dtype)


def _resize(node: Node, x: Array, scales: Array | None, sizes: Array | None) -> Array:
    out, factors = _sizes_and_scales(node, x.shape, scales, sizes)
    if tuple(out) == x.shape:
        # ONNX Runtime copies the input when no size changes, whatever the scales (the spec's formula
        # with e.g. scale 1.25 and size 2 → 2 would shift pixels); we match the de facto behaviour.
        return x.copy()
    for axis in range(x.ndim):
        if out[axis] != x.shape[axis] or factors[axis] != 1.0:
            x = _resize_axis(node, x, axis, out[axis], factors[axis])
    return x


def _infer(node: Node, ins: Ins, scales: Value | None, sizes: Value | None) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    known = (scales is not None and scales.data is not None) or (sizes is not None and sizes.data is not None)
    if not known:
        return [(x.dtype, tuple(symbol(node, i) for i in range(len(x.shape))))]
    static = [d if isinstance(d, int) else 1 for d in x.shape]
    out, _ = _sizes_and_scales(
        node, static, None if scales is None else scales.data, None if sizes is None else sizes.data
    )
    dims: list[Dim] = [
        o if isinstance(d, int) else (d if o == 1 else symbol(node, i))
        for i, (d, o) in enumerate(zip(x.shape, out, strict=True))
    ]
    return [(x.dtype, tuple(dims))]


def _opt(ins: Sequence[Any], i: int) -> Any:
    return ins[i] if len(ins) > i and ins[i] is not None else None


def _resize_infer(node: Node, ins: Ins) -> list[TensorType]:
    return _infer(node, ins, _opt(ins, 2), _opt(ins, 3))


@onnx_op("Resize", infer=_resize_infer, check=_check)
def resize(node: Node, xs: Inputs) -> Array:
    """Resize-19 with inputs (X, roi, scales, sizes); ``roi`` only matters for tf_crop_and_resize."""
    return _resize(node, np.asarray(xs[0]), _opt(xs, 2), _opt(xs, 3))


def _upsample_node(node: Node) -> Node:
    """Upsample-9 ≡ Resize with 'asymmetric' coordinates (its only behaviour)."""
    return node.evolve(attrs={**node.attrs, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"})


@onnx_op("Upsample", infer=lambda node, ins: _infer(node, ins, _opt(ins, 1), None), check=_check)
def upsample(node: Node, xs: Inputs) -> Array:
    return _resize(_upsample_node(node), np.asarray(xs[0]), _opt(xs, 1), None)
