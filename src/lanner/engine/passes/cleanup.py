"""Graph cleanup passes: constant folding, identity elimination, dead-node elimination."""

from __future__ import annotations

import numpy as np

from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.shape_inference import is_symbolic, propagate, strip_data

FOLD_MAX_ELEMENTS = 1 << 24
"""Tensors larger than this stay computed at run time (folding would only bloat the plan)."""


def fold_constants(graph: Graph) -> Graph:
    """Replace every node whose outputs can be computed at build time by constants, and refresh shapes.

    Uses the same walk as shape inference (``propagate``), so this folds nodes on constant inputs,
    Shape/Size of statically shaped values, and the shape subgraphs built from them
    (Shape → Gather → Concat → Reshape), and DequantizeLinear on constant weights. Shapes of the
    remaining values are re-inferred, so they become concrete once their shape inputs are.
    """
    known = propagate(graph, FOLD_MAX_ELEMENTS)
    kept: list[Node] = []
    values = {name: strip_data(known.get(name, value), graph) for name, value in graph.values.items()}
    for node in graph.nodes:
        outs = [known[o] for o in node.outputs if o]
        if not outs or any(v.data is None or is_symbolic(v) for v in outs):
            kept.append(node)
            continue
        for value in outs:
            values[value.name] = Value.constant(value.name, np.asarray(value.data))
    return graph.replace(values=values).with_nodes(kept)


def eliminate_identity(graph: Graph) -> Graph:
    """Remove Identity (and inference-mode single-output Dropout) nodes by rewiring their readers.

    An identity whose output is a graph output is kept (the output name must survive).
    """
    rename: dict[str, str] = {}
    kept: list[Node] = []
    for node in graph.nodes:
        node = node.evolve(inputs=tuple(rename.get(i, i) for i in node.inputs))
        is_identity = node.op_type == "Identity" or (
            node.op_type == "Dropout" and len([o for o in node.outputs if o]) == 1
        )
        if is_identity and not node.domain and node.outputs[0] not in graph.outputs:
            rename[node.outputs[0]] = node.inputs[0]
            continue
        kept.append(node)
    if not rename:
        return graph
    return graph.with_nodes(kept)


def eliminate_dead_nodes(graph: Graph) -> Graph:
    """Drop nodes none of whose outputs reach a graph output (TensorRT's dead-layer removal)."""
    live = set(graph.outputs)
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs if o):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    if len(kept) == len(graph.nodes):
        return graph
    return graph.with_nodes(reversed(kept))
