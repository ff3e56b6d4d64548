"""Pointwise ops: arithmetic with numpy broadcasting, activations, comparisons, casts.

ONNX broadcasting is numpy's (https://onnx.ai/onnx/repo-docs/Broadcasting.html). Kernels keep the
input dtype: float32 in, float32 out (numpy 2 keeps Python scalars from promoting).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lanner.engine.dtypes import to_numpy_dtype
from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.registry import TensorType, onnx_op, unsupported
from lanner.engine.ops.shapes import bool_broadcast_infer, broadcast_infer, same_as_input

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]


def _binary(op_type: str, fn: Callable[[Array, Array], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        a, b = xs[0], xs[1]
        assert a is not None and b is not None
        return np.asarray(fn(a, b)).astype(a.dtype, copy=False)

    onnx_op(op_type, infer=broadcast_infer)(run)


def _compare(op_type: str, fn: Callable[[Array, Array], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        return np.asarray(fn(xs[0], xs[1]))  # type: ignore[arg-type]

    onnx_op(op_type, infer=bool_broadcast_infer)(run)


def _unary(op_type: str, fn: Callable[[Node, Array], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        x = xs[0]
        assert x is not None
        return np.asarray(fn(node, x)).astype(x.dtype, copy=False)

    onnx_op(op_type, infer=same_as_input)(run)


def _div(a: Array, b: Array) -> Array:
    """ONNX Div on integers truncates toward zero, like C (numpy's ``//`` floors)."""
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(np.true_divide(a, b)).astype(a.dtype)
    return a / b


def erf(x: Array) -> Array:
    """erf via Abramowitz & Stegun 7.1.26 in float64 (|error| < 1.5e-7); numpy has no erf."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (np.sign(x) * (1.0 - poly * np.exp(-z * z))).astype(x.dtype)


def sigmoid(x: Array) -> Array:
    """Numerically stable logistic function."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def gelu(x: Array, approximate: str = "none") -> Array:
    """Gelu-20: ``0.5 x (1 + erf(x/√2))``, or the tanh form when ``approximate="tanh"``."""
    if approximate == "tanh":
        inner = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0).astype(x.dtype)))


def hard_sigmoid(x: Array, alpha: float = 0.2, beta: float = 0.5) -> Array:
    return np.clip(alpha * x + beta, 0.0, 1.0)


def softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


_ARITHMETIC: dict[str, Callable[[Array, Array], Array]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _div,
    "Pow": np.power,
}
for _name, _fn in _ARITHMETIC.items():
    _binary(_name, _fn)

for _name, _fn in {
    "Equal": np.equal,
    "Less": np.less,
    "LessOrEqual": np.less_equal,
    "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
}.items():
    _compare(_name, _fn)

_UNARY: dict[str, Callable[[Node, Array], Array]] = {
    "Relu": lambda n, x: np.maximum(x, 0),
    "LeakyRelu": lambda n, x: np.where(x >= 0, x, n.attr("alpha", 0.01) * x),
    "Elu": lambda n, x: np.where(x >= 0, x, n.attr("alpha", 1.0) * np.expm1(np.minimum(x, 0))),
    "Selu": lambda n, x: (
        n.attr("gamma", 1.05070102214813232421875)
        * np.where(x > 0, x, n.attr("alpha", 1.67326319217681884765625) * np.expm1(np.minimum(x, 0)))
    ),
    "Sigmoid": lambda n, x: sigmoid(x),
    "HardSigmoid": lambda n, x: hard_sigmoid(x, n.attr("alpha", 0.2), n.attr("beta", 0.5)),
    "HardSwish": lambda n, x: x * hard_sigmoid(x, 1.0 / 6.0, 0.5),
    "Softplus": lambda n, x: softplus(x),
    "Softsign": lambda n, x: x / (1.0 + np.abs(x)),
    "Mish": lambda n, x: x * np.tanh(softplus(x)),
    "Tanh": lambda n, x: np.tanh(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Exp": lambda n, x: np.exp(x),
    "Log": lambda n, x: np.log(x),
    "Abs": lambda n, x: np.abs(x),
    "Neg": lambda n, x: np.negative(x),
    "Reciprocal": lambda n, x: np.reciprocal(x),
    "Floor": lambda n, x: np.floor(x),
    "Ceil": lambda n, x: np.ceil(x),
    "Round": lambda n, x: np.round(x),  # ONNX Round: half to even, as numpy
    "Sign": lambda n, x: np.sign(x),
    "Erf": lambda n, x: erf(x),
    "Sin": lambda n, x: np.sin(x),
    "Cos": lambda n, x: np.cos(x),
    "Not": lambda n, x: np.logical_not(x),
}
for _name, _ufn in _UNARY.items():
    _unary(_name, _ufn)


def _gelu_check(node: Node, opset: int) -> None:
    if node.attr("approximate", "none") not in ("none", "tanh"):
        raise unsupported(node, opset, f"approximate '{node.attr('approximate')}'")


@onnx_op("Gelu", infer=same_as_input, check=_gelu_check)
def gelu_op(node: Node, xs: Inputs) -> Array:
    x = np.asarray(xs[0])
    return np.asarray(gelu(x, node.attr("approximate", "none"))).astype(x.dtype)


@onnx_op("Mod", infer=broadcast_infer)
def mod(node: Node, xs: Inputs) -> Array:
    """Mod-13: ``fmod=0`` takes the divisor's sign (Python %), ``fmod=1`` the dividend's (C fmod)."""
    a, b = xs[0], xs[1]
    assert a is not None and b is not None
    return (np.fmod(a, b) if node.attr("fmod", 0) else np.mod(a, b)).astype(a.dtype)


@onnx_op("PRelu", infer=broadcast_infer)
def prelu(node: Node, xs: Inputs) -> Array:
    """PRelu-16: ``slope`` broadcasts unidirectionally to ``X``."""
    x, slope = xs[0], xs[1]
    assert x is not None and slope is not None
    return np.where(x >= 0, x, slope * x).astype(x.dtype)


@onnx_op("Clip", infer=same_as_input)
def clip(node: Node, xs: Inputs) -> Array:
    """Clip-13: ``min``/``max`` are optional scalar inputs (absent → no bound)."""
    x = xs[0]
    assert x is not None
    lo = xs[1] if len(xs) > 1 else None
    hi = xs[2] if len(xs) > 2 else None
    out = x
    if lo is not None:
        out = np.maximum(out, lo.astype(x.dtype))
    if hi is not None:
        out = np.minimum(out, hi.astype(x.dtype))
    return np.asarray(out, dtype=x.dtype)


def _variadic(op_type: str, fn: Callable[[list[Array]], Array]) -> None:
    def run(node: Node, xs: Inputs) -> Array:
        arrays = [x for x in xs if x is not None]
        return np.asarray(fn(arrays)).astype(arrays[0].dtype, copy=False)

    onnx_op(op_type, infer=broadcast_infer)(run)


_variadic("Max", lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs)))
_variadic("Min", lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs)))


def _sum(xs: list[Array]) -> Array:
    total = np.zeros(np.broadcast_shapes(*(x.shape for x in xs)), dtype=xs[0].dtype)
    for x in xs:
        total = total + x
    return total


_variadic("Sum", _sum)
_variadic("Mean", lambda xs: _sum(xs) / len(xs))


def _where_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    return [(ins[1].dtype, broadcast_infer(node, ins)[0][1])]  # type: ignore[union-attr, list-item]


@onnx_op("Where", infer=_where_infer)
def where(node: Node, xs: Inputs) -> Array:
    cond, a, b = (np.asarray(x) for x in xs[:3])
    return np.asarray(np.where(cond, a, b))


def _cast_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    return [(to_numpy_dtype(int(node.attr("to")), node.name), ins[0].shape)]  # type: ignore[union-attr, list-item]


@onnx_op("Cast", infer=_cast_infer)
def cast(node: Node, xs: Inputs) -> Array:
    """Cast-19: float → int truncates toward zero (as C and numpy ``astype``)."""
    return np.asarray(xs[0]).astype(to_numpy_dtype(int(node.attr("to")), node.name))


def _cast_like_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    return [(ins[1].dtype, ins[0].shape)]  # type: ignore[union-attr, list-item]


@onnx_op("CastLike", infer=_cast_like_infer)
def cast_like(node: Node, xs: Inputs) -> Array:
    return np.asarray(xs[0]).astype(xs[1].dtype)  # type: ignore[union-attr]


@onnx_op("Identity", infer=same_as_input)
def identity(node: Node, xs: Inputs) -> Array:
    return np.asarray(xs[0])


def _dropout_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    x = ins[0]
    assert x is not None and x.shape is not None and x.dtype is not None
    return [(x.dtype, x.shape), (np.dtype(bool), x.shape)][: len(node.outputs)]


@onnx_op("Dropout", infer=_dropout_infer)
def dropout(node: Node, xs: Inputs) -> tuple[Array, ...]:
    """Dropout at inference (training_mode absent/false) is the identity; the mask is all True."""
    x = np.asarray(xs[0])
    return (x, np.ones(x.shape, dtype=bool))[: len(node.outputs)]
