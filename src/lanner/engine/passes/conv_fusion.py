"""Conv/Gemm epilogue fusion into ``ai.lanner.FusedConv`` / ``FusedGemm`` (semantics in ``ops/fused.py``).

- ``fuse_conv_activation``: Conv or Gemm (or a fused node without activation) → Relu / LeakyRelu / Sigmoid /
  HardSigmoid / HardSwish / Clip (constant bounds) / Tanh, and the SiLU pattern ``Mul(y, Sigmoid(y))``.
- ``fuse_pad_into_conv``: a zero constant Pad on the spatial axes feeding a Conv → the Conv's ``pads``.
- ``fuse_residual_add``: Conv/Gemm (or fused) → Add(·, skip) with the skip of the same shape (ResNet's
  ``conv + sum``; the Relu after it is fused by a second ``fuse_conv_activation``).

Legality (reference §5.3): the conv output is read by the pattern only and is not a graph output.
"""

from __future__ import annotations

import numpy as np

from lanner.engine.ir.graph import Graph, Node
from lanner.engine.ops.registry import LANNER_DOMAIN
from lanner.engine.passes.rewrite import Claimed, Rewrite, apply_rewrites, sole_consumer

_SIMPLE = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh"}


_FUSED = {"Conv": "FusedConv", "Gemm": "FusedGemm"}


def _as_fused(conv: Node) -> Node:
    """The ``ai.lanner`` fused form of a Conv/Gemm (unchanged if already fused)."""
    if conv.domain == LANNER_DOMAIN:
        return conv
    attrs = {**conv.attrs, "activation": "", "activation_alpha": 0.0, "activation_beta": 0.0, "residual": "none"}
    return conv.evolve(op_type=_FUSED[conv.op_type], domain=LANNER_DOMAIN, attrs=attrs)


def _is_conv(node: Node | None, *, needs_free_activation: bool) -> bool:
    """A Conv/Gemm, or a fused one that can still take an activation (when ``needs_free_activation``)."""
    if node is None:
        return False
    if node.op_type in _FUSED and not node.domain:
        return True
    if node.op_type in _FUSED.values() and node.domain == LANNER_DOMAIN:
        return not needs_free_activation or (
            not node.attr("activation") and node.attr("residual") != "after_activation"
        )
    return False


def _activation_params(graph: Graph, act: Node) -> tuple[float, float] | None:
    if act.op_type == "LeakyRelu":
        return float(act.attr("alpha", 0.01)), 0.0
    if act.op_type == "HardSigmoid":
        return float(act.attr("alpha", 0.2)), float(act.attr("beta", 0.5))
    if act.op_type == "Clip":
        lo_name, hi_name = act.input(1), act.input(2)
        lo, hi = graph.constant(lo_name), graph.constant(hi_name)
        if (lo_name and lo is None) or (hi_name and hi is None):
            return None  # runtime bounds cannot go into attributes
        return (float(lo) if lo is not None else float("-inf")), (float(hi) if hi is not None else float("inf"))
    return 0.0, 0.0


def _match_activation(
    graph: Graph, node: Node, producers: dict, consumers: dict
) -> tuple[Node, list[Node], str, tuple[float, float]] | None:
    """(conv, pattern nodes, activation name, params) when ``node`` ends a fusable activation."""
    if node.domain:
        return None
    if node.op_type in _SIMPLE:
        conv = producers.get(node.inputs[0])
        params = _activation_params(graph, node)
        if params is None or conv is None or not _is_conv(conv, needs_free_activation=True):
            return None
        if sole_consumer(graph, consumers, node.inputs[0]) is not node:
            return None
        return conv, [node], node.op_type, params
    if node.op_type == "Mul":  # SiLU: Mul(y, Sigmoid(y)) in either order
        for y, s in (node.inputs[:2], node.inputs[1::-1]):
            sig, conv = producers.get(s), producers.get(y)
            if sig is None or sig.op_type != "Sigmoid" or sig.domain or sig.inputs[0] != y:
                continue
            if conv is None or not _is_conv(conv, needs_free_activation=True) or y in graph.outputs:
                continue
            if (
                sorted(n.name for n in consumers.get(y, [])) == sorted([sig.name, node.name])
                and sole_consumer(graph, consumers, s) is node
            ):
                return conv, [sig, node], "Silu", (0.0, 0.0)
    return None


def fuse_conv_activation(graph: Graph) -> Graph:
    """Fuse an activation into the Conv/Gemm that feeds it (node named ``"conv + act"`` as TensorRT does)."""
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    for node in graph.nodes:
        match = _match_activation(graph, node, producers, consumers)
        if match is None:
            continue
        conv, pattern, name, (alpha, beta) = match
        if not claimed.free(conv, *pattern):
            continue
        claimed.take(conv, *pattern)
        fused = _as_fused(conv)
        attrs = {**fused.attrs, "activation": name, "activation_alpha": alpha, "activation_beta": beta}
        label = " + ".join([conv.name, *(n.name for n in pattern)])
        new = fused.evolve(name=label, outputs=(pattern[-1].outputs[0],), attrs=attrs)
        rewrites.append(Rewrite([conv, *pattern], pattern[-1], [new]))
    return apply_rewrites(graph, rewrites)


def fuse_residual_add(graph: Graph) -> Graph:
    """Fuse ``Add(conv_or_gemm_out, skip)`` into the producer as a residual input (same shape and dtype only)."""
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    for add in graph.nodes:
        if add.op_type != "Add" or add.domain or len(add.inputs) != 2:
            continue
        for y, skip in (add.inputs, add.inputs[::-1]):
            conv = producers.get(y)
            if (
                not _is_conv(conv, needs_free_activation=False)
                or conv is None
                or (len(conv.inputs) > 3 and conv.input(3))
            ):
                continue
            if sole_consumer(graph, consumers, y) is not add or not claimed.free(conv, add):
                continue
            out, other = graph.values[y], graph.values[skip]
            if out.shape is None or out.shape != other.shape or out.dtype != other.dtype or y == skip:
                continue
            fused = _as_fused(conv)
            where = "after_activation" if fused.attr("activation") else "before_activation"
            inputs = (conv.inputs[0], conv.inputs[1], conv.input(2), skip)
            new = fused.evolve(
                name=f"{conv.name} + {add.name}",
                inputs=inputs,
                outputs=add.outputs,
                attrs={**fused.attrs, "residual": where},
            )
            claimed.take(conv, add)
            rewrites.append(Rewrite([conv, add], add, [new]))
            break
    return apply_rewrites(graph, rewrites)


def _constant_pads(graph: Graph, pad: Node, rank: int) -> list[int] | None:
    """The Pad's [x1_begin, ..., x1_end, ...] over all ``rank`` axes, if constant, zero-valued and non-negative."""
    pads, value = graph.constant(pad.input(1)), graph.constant(pad.input(2)) if pad.input(2) else None
    axes_name = pad.input(3)
    axes = graph.constant(axes_name) if axes_name else None
    if pads is None or pad.attr("mode", "constant") != "constant" or (axes_name and axes is None):
        return None
    if pad.input(2) and (value is None or np.any(value != 0)):
        return None
    full = [0] * (2 * rank)
    axis_list = range(rank) if axes is None else [int(a) % rank for a in axes.reshape(-1)]
    flat = [int(p) for p in pads.reshape(-1)]
    for k, axis in enumerate(axis_list):
        full[axis], full[rank + axis] = flat[k], flat[len(flat) // 2 + k]
    return full if min(full) >= 0 else None


def fuse_pad_into_conv(graph: Graph) -> Graph:
    """Pad (constant mode, zero value, spatial dims only) → Conv becomes one Conv with larger ``pads``."""
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    for conv in graph.nodes:
        if conv.op_type != "Conv" or conv.domain or conv.attr("auto_pad", "NOTSET") != "NOTSET":
            continue
        pad = producers.get(conv.inputs[0])
        shape = graph.values[conv.inputs[0]].shape
        if pad is None or pad.op_type != "Pad" or pad.domain or shape is None or not claimed.free(pad, conv):
            continue
        full = _constant_pads(graph, pad, len(shape))
        if full is None or sole_consumer(graph, consumers, conv.inputs[0]) is not conv:
            continue
        rank = len(shape)
        if any(full[i] or full[rank + i] for i in (0, 1)):
            continue  # padding the batch or channel axes is not a conv padding
        spatial = rank - 2
        old = list(conv.attr("pads", [0] * (2 * spatial)))
        new_pads = [old[i] + full[2 + i] for i in range(spatial)] + [
            old[spatial + i] + full[rank + 2 + i] for i in range(spatial)
        ]
        attrs = {**conv.attrs, "pads": new_pads}
        new = conv.evolve(name=f"{pad.name} + {conv.name}", inputs=(pad.inputs[0], *conv.inputs[1:]), attrs=attrs)
        claimed.take(pad, conv)
        rewrites.append(Rewrite([pad, conv], conv, [new]))
    return apply_rewrites(graph, rewrites)
