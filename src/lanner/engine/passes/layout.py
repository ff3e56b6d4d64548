"""Transpose/Reshape cancellation (TensorRT's "Shuffle + Shuffle" fusion).

- ``cancel_transposes``: Transpose(Transpose(x, p1), p2) → Transpose(x, p1∘p2), removed if identity.
- ``merge_reshapes``: Reshape/Flatten/Squeeze/Unsqueeze chains and no-op Reshapes collapse into one
  Reshape to the final (static) shape, since a reshape only depends on the element order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.passes.rewrite import Claimed, Rewrite, apply_rewrites, sole_consumer

_RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _rename_inputs(nodes: list[Node], rename: dict[str, str]) -> list[Node]:
    return [n.evolve(inputs=tuple(rename.get(i, i) for i in n.inputs)) for n in nodes]


def cancel_transposes(graph: Graph) -> Graph:
    """Compose back-to-back Transposes; drop the pair when the composition is the identity (to a fixpoint)."""
    return _fixpoint(_cancel_transposes_once, graph)


def merge_reshapes(graph: Graph) -> Graph:
    """Collapse chains of reshape-like ops into one Reshape when the output shape is static (to a fixpoint)."""
    return _fixpoint(_merge_reshapes_once, graph)


def _fixpoint(sweep: Callable[[Graph], Graph], graph: Graph) -> Graph:
    while True:
        result = sweep(graph)
        if len(result.nodes) == len(graph.nodes):
            return result
        graph = result


def _cancel_transposes_once(graph: Graph) -> Graph:
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    rename: dict[str, str] = {}
    for outer in graph.nodes:
        inner = producers.get(outer.inputs[0]) if outer.op_type == "Transpose" and not outer.domain else None
        if inner is None or inner.op_type != "Transpose" or inner.domain or not claimed.free(inner, outer):
            continue
        shape = graph.values[inner.inputs[0]].shape
        if shape is None or sole_consumer(graph, consumers, outer.inputs[0]) is not outer:
            continue
        rank = len(shape)
        p1 = list(inner.attr("perm", range(rank - 1, -1, -1)))
        p2 = list(outer.attr("perm", range(rank - 1, -1, -1)))
        composed = [int(p1[i]) for i in p2]
        claimed.take(inner, outer)
        if composed == list(range(rank)) and outer.outputs[0] not in graph.outputs:
            rename[outer.outputs[0]] = inner.inputs[0]
            rewrites.append(Rewrite([inner, outer], outer, []))
        else:
            new = outer.evolve(name=f"{inner.name} + {outer.name}", inputs=inner.inputs[:1], attrs={"perm": composed})
            rewrites.append(Rewrite([inner, outer], outer, [new]))
    result = apply_rewrites(graph, rewrites)
    return result.with_nodes(_rename_inputs(list(result.nodes), rename)) if rename else result


def _is_reshape(node: Node | None) -> bool:
    return node is not None and node.op_type in _RESHAPES and not node.domain


def _merge_reshapes_once(graph: Graph) -> Graph:
    producers, consumers = graph.producers(), graph.consumers()
    claimed = Claimed()
    rewrites: list[Rewrite] = []
    for outer in graph.nodes:
        inner = producers.get(outer.inputs[0]) if _is_reshape(outer) else None
        out = graph.values[outer.outputs[0]]
        if inner is None or not _is_reshape(inner) or not out.is_static or not claimed.free(inner, outer):
            continue
        if sole_consumer(graph, consumers, outer.inputs[0]) is not outer:
            continue
        claimed.take(inner, outer)
        target = graph.unique_name(f"{outer.name}_shape")
        shape = np.array(out.shape, dtype=np.int64)
        new = Node("Reshape", f"{inner.name} + {outer.name}", (inner.inputs[0], target), outer.outputs, {})
        rewrites.append(Rewrite([inner, outer], outer, [new], [Value.constant(target, shape)]))
    return apply_rewrites(graph, rewrites)
