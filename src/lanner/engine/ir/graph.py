"""The engine IR: a small SSA graph of ``Value``s and ``Node``s (the shape of onnx-graphsurgeon's IR).

A ``Graph`` is treated as immutable: passes never edit one in place, they build a new graph with
``Graph.replace`` / ``Graph.with_nodes``. Constant data (initializers) is stored read-only.

Names follow ONNX verbatim: ``Node.op_type`` is the ONNX op name, ``Node.attrs`` uses ONNX attribute
names, and value names are the ONNX tensor names (so calibration tables and per-layer diffs line up).

Example:
    >>> import numpy as np
    >>> x = Value("x", np.dtype("float32"), ("N", 3))
    >>> y = Value("y", np.dtype("float32"), ("N", 3))
    >>> g = Graph(nodes=(Node("Relu", "relu0", ("x",), ("y",)),), inputs=("x",), outputs=("y",),
    ...           values={"x": x, "y": y}, opset=17)
    >>> [n.name for n in g.consumers()["x"]]
    ['relu0']
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Dim = int | str
"""One dimension: a fixed size, or a symbol such as ``"N"`` for a dynamic one."""
Shape = tuple[Dim, ...]


@dataclass(frozen=True, eq=False)
class Value:
    """A tensor: name, element dtype, (possibly symbolic) shape and, for constants, its data.

    IR objects compare (and hash) by identity: ``==`` on numpy data would be ambiguous.

    ``dtype``/``shape`` are ``None`` until shape inference fills them. ``data`` is set only for
    constants (initializers and folded values); such arrays are made read-only.
    """

    name: str
    dtype: np.dtype | None = None
    shape: Shape | None = None
    data: np.ndarray | None = None

    @staticmethod
    def constant(name: str, array: np.ndarray, *, copy: bool = True) -> Value:
        """A constant value whose dtype and shape come from ``array``, stored read-only.

        ``copy=False`` takes ownership of a freshly made array (the importer does, to avoid doubling
        the memory of the weights); the array is then marked read-only in place.
        """
        data = np.array(array, copy=True) if copy else np.asarray(array)
        data.flags.writeable = False
        return Value(name, data.dtype, tuple(int(d) for d in data.shape), data)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def is_static(self) -> bool:
        """True when the shape is known and every dimension is an int."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def describe(self) -> str:
        """``float32 [N,3,224,224]``: the form used in error messages."""
        dtype = self.dtype.name if self.dtype is not None else "?"
        shape = "?" if self.shape is None else "[" + ",".join(str(d) for d in self.shape) + "]"
        return f"{dtype} {shape}"


@dataclass(frozen=True, eq=False)
class Node:
    """One operation. ``inputs`` may contain ``""`` for an omitted optional input (as in ONNX)."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = ""

    def attr(self, name: str, default: Any = None) -> Any:
        """The attribute ``name`` or ``default`` (ONNX default values are given by the op table)."""
        return self.attrs.get(name, default)

    def input(self, i: int) -> str:
        """The i-th input name, or ``""`` when it is absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def evolve(self, **changes: Any) -> Node:
        """A copy with some fields replaced (``attrs`` is copied, never shared)."""
        if "attrs" in changes:
            changes["attrs"] = dict(changes["attrs"])
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> tuple[str, str]:
        """``(domain, op_type)`` with the default ONNX domain spelled ``""``."""
        return ("" if self.domain == "ai.onnx" else self.domain, self.op_type)


@dataclass(frozen=True, eq=False)
class Graph:
    """Nodes in topological order plus every value they touch.

    ``values`` maps each name to its ``Value``: graph inputs, constants (``data`` set) and node
    outputs. ``inputs`` lists only runtime inputs (never constants).
    """

    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    values: Mapping[str, Value]
    opset: int
    metadata_props: Mapping[str, str] = field(default_factory=dict)
    name: str = "graph"

    # -- views -------------------------------------------------------------------------------
    @property
    def constants(self) -> dict[str, np.ndarray]:
        """Name → data for every constant value (initializers and folded tensors)."""
        return {k: v.data for k, v in self.values.items() if v.data is not None}

    def constant(self, name: str) -> np.ndarray | None:
        """The data of ``name`` if it is a constant, else ``None`` (also for ``""``)."""
        value = self.values.get(name) if name else None
        return None if value is None else value.data

    def producers(self) -> dict[str, Node]:
        """Value name → the node that produces it."""
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        """Value name → the nodes that read it (a node reading a value twice is listed twice)."""
        result: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    result.setdefault(name, []).append(node)
        return result

    def op_counts(self) -> dict[str, int]:
        """op_type → number of nodes, for logs and coverage reports."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        return counts

    # -- building new graphs -----------------------------------------------------------------
    def replace(self, **changes: Any) -> Graph:
        """A new graph with some fields replaced; mappings are copied."""
        for key in ("values", "metadata_props"):
            if key in changes:
                changes[key] = dict(changes[key])
        if "nodes" in changes:
            changes["nodes"] = tuple(changes["nodes"])
        return dataclasses.replace(self, **changes)

    def copy(self) -> Graph:
        """A shallow copy with fresh containers (constant arrays are read-only, so sharing is safe)."""
        return self.replace(values=self.values, metadata_props=self.metadata_props, nodes=self.nodes)

    def with_nodes(self, nodes: Iterable[Node], new_values: Iterable[Value] = ()) -> Graph:
        """A new graph with ``nodes``; adds ``new_values`` and drops values nobody references."""
        nodes = tuple(nodes)
        values = dict(self.values)
        for value in new_values:
            values[value.name] = value
        used = set(self.inputs) | set(self.outputs)
        for node in nodes:
            used.update(n for n in node.inputs if n)
            used.update(n for n in node.outputs if n)
        return self.replace(nodes=nodes, values={k: v for k, v in values.items() if k in used})

    def toposorted(self) -> Graph:
        """The same graph with nodes in topological order; an already ordered graph keeps its order.

        Kahn's algorithm that always emits the ready node that came first, so the result is stable.
        Raises ``ValueError`` naming a node on a cycle; reads of undefined values are left to ``verify``.
        """
        available = set(self.inputs) | {k for k, v in self.values.items() if v.data is not None}
        producer = {out: i for i, node in enumerate(self.nodes) for out in node.outputs if out}
        waiting: list[set[int]] = []
        readers: dict[int, list[int]] = {}
        for i, node in enumerate(self.nodes):
            deps = {producer[n] for n in node.inputs if n and n not in available and n in producer}
            waiting.append(deps)
            for d in deps:
                readers.setdefault(d, []).append(i)
        ready = [i for i, deps in enumerate(waiting) if not deps]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for r in readers.get(i, ()):
                waiting[r].discard(i)
                if not waiting[r]:
                    heapq.heappush(ready, r)
        if len(order) < len(self.nodes):
            stuck = self.nodes[min(set(range(len(self.nodes))) - set(order))]
            raise ValueError(f"node '{stuck.name}' ({stuck.op_type}) is on a cycle")
        return self.replace(nodes=[self.nodes[i] for i in order])

    def summary(self, limit: int = 50) -> str:
        """A readable listing: inputs, then one line per node ``name: op(inputs) -> outputs [shapes]``."""
        lines = [f"graph '{self.name}' (opset {self.opset}): {len(self.nodes)} nodes, {len(self.constants)} constants"]
        lines += [f"  input {name}: {self.values[name].describe()}" for name in self.inputs]
        for node in self.nodes[:limit]:
            outs = ", ".join(f"{o} {self.values[o].describe()}" for o in node.outputs if o in self.values)
            lines.append(f"  {node.name}: {node.op_type}({', '.join(node.inputs)}) -> {outs}")
        if len(self.nodes) > limit:
            lines.append(f"  ... {len(self.nodes) - limit} more nodes")
        lines += [f"  output {name}: {self.values[name].describe()}" for name in self.outputs]
        return "\n".join(lines)

    def unique_name(self, base: str) -> str:
        """A value/node name not used in this graph, derived from ``base``."""
        taken = set(self.values) | {n.name for n in self.nodes}
        if base not in taken:
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"
