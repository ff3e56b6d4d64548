"""Small helpers for pattern-rewrite passes: who consumes a value, and applying non-overlapping rewrites."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lanner.engine.ir.graph import Graph, Node, Value


@dataclass
class Rewrite:
    """Replace ``remove`` (a matched pattern) by ``new_nodes`` placed where ``anchor`` was.

    ``anchor`` must be the last node of the pattern in topological order, so every input of the
    new nodes is already defined there.
    """

    remove: Sequence[Node]
    anchor: Node
    new_nodes: Sequence[Node]
    new_values: Sequence[Value] = field(default_factory=list)


def sole_consumer(graph: Graph, consumers: dict[str, list[Node]], name: str) -> Node | None:
    """The only node reading ``name``, when ``name`` is not also a graph output (fusion legality)."""
    readers = consumers.get(name, [])
    if name in graph.outputs or len(readers) != 1:
        return None
    return readers[0]


def apply_rewrites(graph: Graph, rewrites: Sequence[Rewrite]) -> Graph:
    """A new graph with every rewrite applied; rewrites must not share nodes."""
    if not rewrites:
        return graph
    removed = {id(n) for r in rewrites for n in r.remove}
    at_anchor = {id(r.anchor): r for r in rewrites}
    nodes: list[Node] = []
    for node in graph.nodes:
        if id(node) in at_anchor:
            nodes.extend(at_anchor[id(node)].new_nodes)
        elif id(node) not in removed:
            nodes.append(node)
    return graph.with_nodes(nodes, [v for r in rewrites for v in r.new_values])


class Claimed:
    """Tracks nodes already used by a match in this sweep, so rewrites never overlap."""

    def __init__(self) -> None:
        self._ids: set[int] = set()

    def free(self, *nodes: Node) -> bool:
        return not any(id(n) in self._ids for n in nodes)

    def take(self, *nodes: Node) -> None:
        self._ids.update(id(n) for n in nodes)
