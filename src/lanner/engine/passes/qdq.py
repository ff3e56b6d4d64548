"""QDQ folding: ``QuantizeLinear → DequantizeLinear → Conv`` (explicit INT8) → one ``ai.lanner.QConv``.

A QDQ ONNX (``lanner calibrate``, ModelOpt, ONNX Runtime's ``quantize_static``) marks the INT8 regions with
Q/DQ pairs. After ``fold_constants`` the weights' DequantizeLinear is already folded into FP32 weights
(``q * scale``, which per-channel re-quantization recovers exactly), so what is left is, per conv::

    x ─QuantizeLinear(s)─▶ q (int8) ─DequantizeLinear(s)─▶ x' ─Conv/FusedConv─▶ y [─QuantizeLinear(s_y)─▶ q_y]

``fold_qdq`` makes the conv read ``q`` directly (``x_scale``/``x_zero_point`` attributes) and, when the conv's
only reader is a QuantizeLinear, writes that int8 tensor itself (``y_scale``/``y_zero_point``: the requant
epilogue). Consecutive quantized convs then pass int8 tensors to each other, which is what lets an INT8
kernel pay off (TensorRT's "Q/DQ propagation and fusion"). The arithmetic is unchanged (``ops/quant.qconv``);
a DequantizeLinear nobody reads any more is removed by ``eliminate_dead_nodes``.

A residual input (the skip a conv's epilogue adds, ``fuse_residual_add``) that comes from an int8
DequantizeLinear is read as that int8 tensor too (``z_scale``/``z_zero_point``): ``lanner calibrate`` puts a Q/DQ
pair on the skip, as TensorRT's Q/DQ guide does, so a residual block runs int8 from input to output.

Folded only: a per-tensor (scalar) scale, an int8 zero point, a 2-D conv with constant weights (and bias).
Anything else (uint8 zero points, per-axis activation scales) keeps its Q/DQ nodes and runs as FP32.
"""

from __future__ import annotations

import numpy as np

from lanner.engine.ir.graph import Graph, Node
from lanner.engine.ops.quant import scalar_int8_params
from lanner.engine.ops.registry import LANNER_DOMAIN
from lanner.engine.passes.conv_fusion import _as_fused
from lanner.engine.passes.rewrite import sole_consumer

_CONVS = {("", "Conv"), (LANNER_DOMAIN, "FusedConv")}


def _foldable_conv(graph: Graph, node: Node) -> bool:
    """A 2-D Conv/FusedConv with constant 4-D weights and a constant (or no) bias."""
    if (node.domain, node.op_type) not in _CONVS:
        return False
    weight = graph.constant(node.input(1))
    bias_name = node.input(2)
    return weight is not None and weight.ndim == 4 and (not bias_name or graph.constant(bias_name) is not None)


def _input_quantization(
    graph: Graph, producers: dict[str, Node], node: Node, slot: int = 0
) -> tuple[str, float, int] | None:
    """``(int8 tensor, scale, zero point)`` when ``node``'s input ``slot`` is a foldable DequantizeLinear's output."""
    dq = producers.get(node.input(slot))
    if dq is None or dq.op_type != "DequantizeLinear" or dq.domain:
        return None
    params = scalar_int8_params(graph.constant, dq)
    source = graph.values.get(dq.input(0))
    if params is None or source is None or source.dtype != np.int8 or source.is_constant:
        return None
    return dq.input(0), params[0], params[1]


def fold_qdq(graph: Graph) -> Graph:
    """Conv/FusedConv fed by an int8 DequantizeLinear → ``QConv`` (+ its output QuantizeLinear when sole reader)."""
    producers, consumers = graph.producers(), graph.consumers()
    replaced: dict[int, Node] = {}
    dropped: set[int] = set()
    for node in graph.nodes:
        quantized = _input_quantization(graph, producers, node) if _foldable_conv(graph, node) else None
        if quantized is None:
            continue
        source, scale, zero = quantized
        fused = _as_fused(node)
        attrs = {**fused.attrs, "x_scale": scale, "x_zero_point": zero}
        outputs = node.outputs
        q = sole_consumer(graph, consumers, node.outputs[0])
        q_params = (
            scalar_int8_params(graph.constant, q)
            if q is not None and q.op_type == "QuantizeLinear" and not q.domain
            else None
        )
        if q is not None and q_params is not None:
            attrs |= {"y_scale": q_params[0], "y_zero_point": q_params[1]}
            outputs = q.outputs
            dropped.add(id(q))
        inputs = (source, *fused.inputs[1:])
        skip = _input_quantization(graph, producers, fused, 3) if fused.input(3) else None
        if skip is not None:
            inputs = (*inputs[:3], skip[0], *inputs[4:])
            attrs |= {"z_scale": skip[1], "z_zero_point": skip[2]}
        replaced[id(node)] = fused.evolve(op_type="QConv", inputs=inputs, outputs=outputs, attrs=attrs)
    if not replaced:
        return graph
    nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in dropped]
    return graph.with_nodes(nodes)
