"""fold_batchnorm: BatchNormalization after Conv or Gemm folded into the weights (TensorRT's
"Fusing convolution weights from <conv> with scale <bn>").

With per-channel ``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``:
Conv:  ``W' = W * s[:, None, ...]``, ``B' = B * s + t``.
Gemm:  ``Y = alpha * A'B' + beta * C`` → scale the columns of B' by ``s`` and set ``C' = beta*C*s + t``
(so the new node uses beta = 1). Done in float64, stored in the weight dtype.
"""

from __future__ import annotations

import numpy as np

from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.ops.nn import batchnorm_scale_shift
from lanner.engine.passes.rewrite import Claimed, Rewrite, apply_rewrites, sole_consumer


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold every legal Conv→BN and Gemm→BN pair (the producer's output read only by the BN)."""
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    for bn in graph.nodes:
        if bn.op_type != "BatchNormalization" or bn.domain or len([o for o in bn.outputs if o]) != 1:
            continue
        prod = producers.get(bn.inputs[0])
        if prod is None or prod.domain or sole_consumer(graph, consumers, bn.inputs[0]) is not bn:
            continue
        stats = [graph.constant(name) for name in bn.inputs[1:5]]
        if any(s is None for s in stats) or not claimed.free(prod, bn):
            continue
        scale, shift = batchnorm_scale_shift(bn, [None, *stats])
        rewrite = _fold_conv(graph, prod, bn, scale, shift) if prod.op_type == "Conv" else None
        if prod.op_type == "Gemm":
            rewrite = _fold_gemm(graph, prod, bn, scale, shift)
        if rewrite is not None:
            claimed.take(prod, bn)
            rewrites.append(rewrite)
    return apply_rewrites(graph, rewrites)


def _fold_conv(graph: Graph, conv: Node, bn: Node, scale: np.ndarray, shift: np.ndarray) -> Rewrite | None:
    weight = graph.constant(conv.inputs[1])
    bias_name = conv.input(2)
    bias = graph.constant(bias_name) if bias_name else np.zeros(scale.shape)
    if weight is None or bias is None or weight.shape[0] != scale.shape[0]:
        return None
    new_w = (weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(weight.dtype)
    new_b = (bias.astype(np.float64) * scale + shift).astype(weight.dtype)
    w_name, b_name = graph.unique_name(f"{conv.name}_bn_W"), graph.unique_name(f"{conv.name}_bn_B")
    fused = conv.evolve(name=f"{conv.name} + {bn.name}", inputs=(conv.inputs[0], w_name, b_name), outputs=bn.outputs)
    return Rewrite([conv, bn], bn, [fused], [Value.constant(w_name, new_w), Value.constant(b_name, new_b)])


def _fold_gemm(graph: Graph, gemm: Node, bn: Node, scale: np.ndarray, shift: np.ndarray) -> Rewrite | None:
    weight = graph.constant(gemm.inputs[1])
    c_name = gemm.input(2)
    c = graph.constant(c_name) if c_name else np.zeros(())
    out = graph.values[gemm.outputs[0]]
    if weight is None or c is None or out.shape is None or len(out.shape) != 2 or out.shape[1] != scale.shape[0]:
        return None
    if c.ndim > 1 and c.shape[0] != 1:  # C varies per row: cannot be folded into a per-column bias
        return None
    trans_b = gemm.attr("transB", 0)
    w64 = weight.astype(np.float64)
    new_w = (w64 * scale[:, None] if trans_b else w64 * scale[None, :]).astype(weight.dtype)
    c_row = np.broadcast_to(c.astype(np.float64).reshape(-1) if c.ndim else c, scale.shape)
    new_c = (gemm.attr("beta", 1.0) * c_row * scale + shift).astype(weight.dtype)
    w_name, c_name = graph.unique_name(f"{gemm.name}_bn_W"), graph.unique_name(f"{gemm.name}_bn_C")
    attrs = {**gemm.attrs, "beta": 1.0}
    fused = gemm.evolve(
        name=f"{gemm.name} + {bn.name}", inputs=(gemm.inputs[0], w_name, c_name), outputs=bn.outputs, attrs=attrs
    )
    return Rewrite([gemm, bn], bn, [fused], [Value.constant(w_name, new_w), Value.constant(c_name, new_c)])
