"""QuantizeLinear / DequantizeLinear (opsets 13–21, per-tensor and per-axis; blocked not supported).

Spec: https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html —
``y = saturate(round_half_to_even(x / y_scale) + y_zero_point)``; the output type is the zero point's
(uint8 when absent). ``x = (y - x_zero_point) * x_scale``.

Also ``ai.lanner.QConv``, the INT8 conv that QDQ folding produces (see ``qconv``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lanner.engine.dtypes import to_numpy_dtype
from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.registry import LANNER_DOMAIN, TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import normalize_axis

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]
Ins = Sequence[Value | None]


def _check(node: Node, opset: int) -> None:
    if node.attr("block_size", 0):
        raise unsupported(node, opset, "blocked quantization (block_size)")


def _per_axis(param: Array, x: Array, node: Node) -> Array:
    """A 1-D scale/zero point applies along ``axis`` (default 1); a scalar applies to all."""
    param = np.asarray(param)
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    shape = [1] * x.ndim
    shape[normalize_axis(node.attr("axis", 1), x.ndim)] = -1
    return param.reshape(shape)


def _output_dtype(node: Node, zero_point_dtype: np.dtype | None) -> np.dtype:
    """The zero point's type, else QuantizeLinear-21's ``output_dtype``, else uint8."""
    if zero_point_dtype is not None:
        return zero_point_dtype
    code = int(node.attr("output_dtype", 0))
    return to_numpy_dtype(code, node.name) if code else np.dtype("uint8")


def _quantize_infer(node: Node, ins: Ins) -> list[TensorType]:
    x, zp = ins[0], (ins[2] if len(ins) > 2 else None)
    assert x is not None and x.shape is not None
    return [(_output_dtype(node, None if zp is None else zp.dtype), x.shape)]


def _to_integer(x: Array, scale: Array | np.floating, zero_point: Array | np.integer) -> Array:
    """``saturate(round_half_to_even(x / scale) + zero_point)`` in the zero point's integer type."""
    info = np.iinfo(zero_point.dtype)
    y = np.round(np.asarray(x, dtype=np.float32) / scale) + zero_point.astype(np.float32)
    return np.clip(y, info.min, info.max).astype(zero_point.dtype)


def _to_real(x: Array, scale: Array | np.floating, zero_point: Array | np.integer) -> Array:
    """``(x - zero_point) * scale`` in float32 (integer subtraction first, as the spec's formula)."""
    return (np.asarray(x).astype(np.int32) - zero_point.astype(np.int32)).astype(np.float32) * scale


def quantize_per_channel(weight: Array, axis: int, qmax: int = 127) -> tuple[Array, Array]:
    """Symmetric per-channel int8: ``(q int8 in [-qmax, qmax], scale float32 [C])`` with ``q * scale ≈ weight``;
    an all-zero channel gets scale ``1 / qmax``. ``qmax`` 127 is the QDQ contract; int8 kernels on CPUs without
    VNNI use 63 (``backends/cpu_int8.py``)."""
    w = np.asarray(weight, dtype=np.float32)
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=reduce) if reduce else np.abs(w)
    scale = (np.where(amax > 0, amax, 1.0) / qmax).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
    return q, scale


def scalar_int8_params(constant: Callable[[str], Array | None], node: Node) -> tuple[float, int] | None:
    """``(scale, zero point)`` of a Q/DQ node whose scale is a positive constant scalar and whose zero point
    is a constant int8 scalar (``constant`` looks a value's data up by name), else None: the only form that
    QDQ folding and the int8 kernels take."""
    scale = constant(node.input(1))
    zero = constant(node.input(2)) if node.input(2) else None
    if scale is None or scale.size != 1 or zero is None or zero.dtype != np.int8 or zero.size != 1:
        return None
    if node.attr("block_size", 0) or float(scale.reshape(())) <= 0:
        return None
    return float(scale.reshape(())), int(zero.reshape(()))


@onnx_op("QuantizeLinear", infer=_quantize_infer, check=_check)
def quantize_linear(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0], dtype=np.float32)
    given = xs[2] if len(xs) > 2 else None
    zp = given if given is not None else np.zeros((), _output_dtype(node, None))
    scale = _per_axis(np.asarray(xs[1], dtype=np.float32), x, node)
    return _to_integer(x, scale, _per_axis(zp, x, node))


def _dequantize_infer(node: Node, ins: Ins) -> list[TensorType]:
    x, scale = ins[0], ins[1]
    assert x is not None and x.shape is not None and scale is not None and scale.dtype is not None
    return [(scale.dtype, x.shape)]


@onnx_op("DequantizeLinear", infer=_dequantize_infer, check=_check)
def dequantize_linear(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    scale = np.asarray(xs[1])
    zp = xs[2] if len(xs) > 2 and xs[2] is not None else np.zeros((), x.dtype)
    return _to_real(x, _per_axis(scale, x, node), _per_axis(zp, x, node)).astype(scale.dtype)


# ---------------------------------------------------------------------------------------------------------
# QConv: the INT8 conv that ``passes/qdq.fold_qdq`` makes of ``QuantizeLinear → DequantizeLinear → Conv``.


def _qconv_infer(node: Node, ins: Ins) -> list[TensorType]:
    from lanner.engine.ops.nn import _conv_infer

    ((_, shape),) = _conv_infer(node, ins)
    return [(np.dtype(np.int8) if node.attr("y_scale", 0.0) else np.dtype(np.float32), shape)]


@onnx_op("QConv", infer=_qconv_infer, domain=LANNER_DOMAIN)
def qconv(node: Node, xs: Inputs) -> Array:
    """``ai.lanner.QConv(X int8, W, [B], [Z])``: FusedConv on ``(X - x_zero_point) * x_scale``.

    Attributes: FusedConv's, plus ``x_scale``/``x_zero_point`` (the folded DequantizeLinear of X) and,
    when the only reader of the output was a QuantizeLinear, ``y_scale``/``y_zero_point`` (non-zero
    ``y_scale``: the output is that int8 tensor). ``W`` holds the dequantized per-channel int8 weights,
    so this is exactly the QDQ graph's arithmetic; backends may run it with integer kernels. A non-zero
    ``z_scale`` (with ``z_zero_point``) marks the residual input Z as int8 too (its folded DequantizeLinear).
    """
    from lanner.engine.ops.fused import fused_conv

    x = xs[0]
    if x is None:  # the importer requires X; only a hand-built graph can get here
        raise ValueError(f"QConv {node.name!r} has no X input")
    real = _to_real(x, np.float32(node.attr("x_scale")), np.int8(node.attr("x_zero_point", 0)))
    rest = list(xs[1:])
    z_scale = float(node.attr("z_scale", 0.0))
    if z_scale and len(rest) > 2 and rest[2] is not None:
        rest[2] = _to_real(rest[2], np.float32(z_scale), np.int8(node.attr("z_zero_point", 0)))
    y = fused_conv(node, [real, *rest])
    y_scale = float(node.attr("y_scale", 0.0))
    return _to_integer(y, np.float32(y_scale), np.int8(node.attr("y_zero_point", 0))) if y_scale else y
