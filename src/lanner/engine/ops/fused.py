"""The engine's own fused ops (domain ``ai.lanner``), produced by passes and run by every backend.

``FusedConv`` (inputs ``X, W, [B], [Z]``) is Conv with an epilogue, and ``FusedGemm`` (inputs
``A, B, [C], [Z]``, Gemm's attributes) is Gemm with the same epilogue:
``y = conv(X, W, B)``; if ``residual == "before_activation"``: ``y = act(y + Z)``;
if ``residual == "after_activation"``: ``y = act(y) + Z``; else ``y = act(y)``.
``activation`` is an ONNX op name (``Relu``, ``LeakyRelu``, ``Sigmoid``, ``HardSigmoid``, ``HardSwish``,
``Clip``, ``Tanh``) or ``Silu`` (x·sigmoid(x)) or ``""``; ``activation_alpha``/``activation_beta`` carry
its parameters (LeakyRelu alpha, HardSigmoid alpha/beta, Clip min/max).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Node
from lanner.engine.ops.elementwise import hard_sigmoid, sigmoid
from lanner.engine.ops.nn import _conv_infer, _gemm_infer, conv2col, gemm
from lanner.engine.ops.registry import LANNER_DOMAIN, onnx_op

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]

ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh", "Silu")


def apply_activation(name: str, x: Array, alpha: float, beta: float) -> Array:
    """The epilogue activation ``name`` (see module docstring for the meaning of alpha/beta)."""
    if not name:
        return x
    if name == "Relu":
        return np.maximum(x, 0)
    if name == "LeakyRelu":
        return np.where(x >= 0, x, alpha * x)
    if name == "Sigmoid":
        return sigmoid(x)
    if name == "HardSigmoid":
        return hard_sigmoid(x, alpha, beta)
    if name == "HardSwish":
        return x * hard_sigmoid(x, 1.0 / 6.0, 0.5)
    if name == "Clip":
        return np.clip(x, alpha, beta)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Silu":
        return x * sigmoid(x)
    raise ValueError(f"unknown epilogue activation {name!r}")


def _epilogue(node: Node, y: Array, residual: Array | None) -> Array:
    where = node.attr("residual", "none")
    if residual is not None and where == "before_activation":
        y = y + residual
    alpha, beta = node.attr("activation_alpha", 0.0), node.attr("activation_beta", 0.0)
    y = apply_activation(node.attr("activation", ""), y, alpha, beta)
    if residual is not None and where == "after_activation":
        y = y + residual
    return y


@onnx_op("FusedConv", infer=_conv_infer, domain=LANNER_DOMAIN)
def fused_conv(node: Node, xs: Inputs) -> Array:
    x, w = xs[0], xs[1]
    assert x is not None and w is not None
    y = conv2col(node, x, w, xs[2] if len(xs) > 2 else None)
    return np.asarray(_epilogue(node, y, xs[3] if len(xs) > 3 else None), dtype=x.dtype)


@onnx_op("FusedGemm", infer=_gemm_infer, domain=LANNER_DOMAIN)
def fused_gemm(node: Node, xs: Inputs) -> Array:
    y = gemm(node, xs[:3])
    return np.asarray(_epilogue(node, y, xs[3] if len(xs) > 3 else None), dtype=y.dtype)
