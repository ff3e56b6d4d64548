"""fuse_pointwise_chains: grow groups of elementwise nodes into one ``ai.lanner.Pointwise`` node.

A node joins the group of an input's producer when that producer is pointwise, already in a group,
and the value between them is read only by this node and is not a graph output. So every group is
a tree whose intermediates stay internal; its external inputs are all defined before its last
member, where the fused node is placed (so the graph stays topologically ordered).
Groups of one node are left alone. Only float tensors and JSON-friendly attributes qualify.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lanner.engine.ir.graph import Graph, Node
from lanner.engine.ops.pointwise import POINTWISE_OPS, encode_program
from lanner.engine.ops.registry import LANNER_DOMAIN
from lanner.engine.passes.rewrite import Rewrite, apply_rewrites, sole_consumer


def _eligible(graph: Graph, node: Node) -> bool:
    if node.domain or node.op_type not in POINTWISE_OPS or len(node.outputs) != 1:
        return False
    out = graph.values[node.outputs[0]]
    if out.dtype is None or not np.issubdtype(out.dtype, np.floating):
        return False
    return all(isinstance(v, int | float | str) for v in node.attrs.values())


def _groups(graph: Graph) -> list[list[Node]]:
    """Members of each group in topological order."""
    producers, consumers = graph.producers(), graph.consumers()
    group_of: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if not _eligible(graph, node):
            continue
        joined = None
        for name in node.inputs:
            prod = producers.get(name) if name else None
            if prod is not None and id(prod) in group_of and sole_consumer(graph, consumers, name) is node:
                joined = group_of[id(prod)]
                break
        group = joined if joined is not None else []
        group.append(node)
        group_of[id(node)] = group
    unique = {id(g): g for g in group_of.values()}
    return [g for g in unique.values() if len(g) > 1]


def _fuse(group: list[Node]) -> Node:
    internal = {node.outputs[0]: j for j, node in enumerate(group)}
    externals: list[str] = []
    steps: list[tuple[str, list[str], dict[str, Any]]] = []
    for node in group:
        refs = []
        for name in node.inputs:
            if not name:
                refs.append("")
            elif name in internal and internal[name] < len(steps):
                refs.append(f"step:{internal[name]}")
            else:
                if name not in externals:
                    externals.append(name)
                refs.append(f"in:{externals.index(name)}")
        steps.append((node.op_type, refs, dict(node.attrs)))
    name = " + ".join(n.name for n in group)
    attrs = {"program": encode_program(steps)}
    return Node("Pointwise", name, tuple(externals), group[-1].outputs, attrs, LANNER_DOMAIN)


def fuse_pointwise_chains(graph: Graph) -> Graph:
    """Replace each group of two or more elementwise nodes by one Pointwise node."""
    return apply_rewrites(graph, [Rewrite(group, group[-1], [_fuse(group)]) for group in _groups(graph)])
