"""An executable verifier for the IR: run it after import and after every pass in tests.

Checks, each failing with an ``InvalidGraphError`` that names the node or value:

- every node input is a graph input, a constant, or produced by an earlier node (so: no cycles);
- every value has exactly one producer, and graph inputs/constants are not produced by a node;
- node names are unique (logs, tactic tables and per-layer diffs key on them);
- every graph output is produced (or is an input/constant);
- with ``require_types=True``: every value has a dtype and a shape (after ``infer_shapes``).
"""

from __future__ import annotations

from lanner.core.errors import LannerError
from lanner.engine.ir.graph import Graph


class InvalidGraphError(LannerError):
    """The IR breaks an invariant: a malformed model, or a bug in a pass (the message names which node)."""


def verify(graph: Graph, *, require_types: bool = False) -> Graph:
    """Check the invariants above and return ``graph`` unchanged, so it can be chained."""
    _check_dataflow(graph)
    for name in graph.outputs:
        if name not in graph.values:
            raise InvalidGraphError(f"graph output '{name}' has no value", where=graph.name)
    if require_types:
        _check_types(graph)
    return graph


def _check_dataflow(graph: Graph) -> None:
    defined = set(graph.inputs)
    for name in graph.inputs:
        if name not in graph.values:
            raise InvalidGraphError(f"graph input '{name}' has no value", where=graph.name)
        if graph.values[name].data is not None:
            raise InvalidGraphError(f"graph input '{name}' is also a constant", where=graph.name)
    defined.update(k for k, v in graph.values.items() if v.data is not None)
    produced: set[str] = set()
    names: set[str] = set()
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op_type})"
        if node.name in names:
            raise InvalidGraphError("two nodes share this name", where=where, fix="node names must be unique")
        names.add(node.name)
        for name in node.inputs:
            if name and name not in defined:
                raise InvalidGraphError(
                    f"input '{name}' is used before it is defined (or never defined)",
                    where=where,
                    fix="nodes must be in topological order and read only inputs, constants or earlier outputs",
                )
        for name in node.outputs:
            if not name:
                continue
            if name in defined:
                raise InvalidGraphError(
                    f"output '{name}' already has a producer (or is an input/constant)", where=where
                )
            if name not in graph.values:
                raise InvalidGraphError(f"output '{name}' has no value entry", where=where)
            defined.add(name)
            produced.add(name)
    for name in graph.outputs:
        if name not in defined:
            raise InvalidGraphError(f"graph output '{name}' is never produced", where=graph.name)


def _check_types(graph: Graph) -> None:
    producers = graph.producers()
    for name, value in graph.values.items():
        if value.dtype is None or value.shape is None:
            node = producers.get(name)
            where = f"node '{node.name}' ({node.op_type})" if node else graph.name
            raise InvalidGraphError(
                f"value '{name}' has no dtype/shape after inference", where=where, fix="run infer_shapes first"
            )
