"""Op coverage of a model, up front (the future ``lanner build --check``).

Lists every op the model uses, how many nodes, and whether this engine runs it; unsupported entries
carry the reason (unknown op, or an attribute value the kernel does not implement).

Example:
    >>> report = check_coverage("yolo.onnx")  # doctest: +SKIP
    >>> print(report.format())  # doctest: +SKIP
    opset 17: 14 ops, 2 unsupported
      ok    Conv            x 57
      FAIL  NonZero         x 1   op 'NonZero' (opset 17) at node 'nz' is not supported
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lanner.core.errors import UnsupportedOpError
from lanner.engine.ir.graph import Graph
from lanner.engine.onnx_import import load_onnx
from lanner.engine.ops import lookup


@dataclass(frozen=True)
class OpCoverage:
    """One (domain, op_type) of the model: node count, support and, when unsupported, the first reason."""

    op_type: str
    domain: str
    count: int
    supported: bool
    nodes: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class CoverageReport:
    opset: int
    ops: tuple[OpCoverage, ...]
    errors: tuple[UnsupportedOpError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unsupported(self) -> list[OpCoverage]:
        return [op for op in self.ops if not op.supported]

    def format(self) -> str:
        """A small text table, one line per op."""
        lines = [f"opset {self.opset}: {len(self.ops)} ops, {len(self.unsupported)} unsupported"]
        for op in self.ops:
            name = op.op_type if not op.domain else f"{op.domain}.{op.op_type}"
            status = "ok  " if op.supported else "FAIL"
            lines.append(f"  {status}  {name:<24} x {op.count:<4} {op.reason}".rstrip())
        return "\n".join(lines)


def check_coverage(source: Graph | str | os.PathLike[str] | bytes | Any) -> CoverageReport:
    """Coverage of a Graph, an ONNX path, bytes or a ModelProto (nothing is inferred or run)."""
    graph = source if isinstance(source, Graph) else load_onnx(source, infer=False)
    groups: dict[tuple[str, str], list[str]] = {}
    reasons: dict[tuple[str, str], str] = {}
    errors: list[UnsupportedOpError] = []
    for node in graph.nodes:
        groups.setdefault(node.key, []).append(node.name)
        try:
            lookup(node, graph.opset)
        except UnsupportedOpError as exc:
            errors.append(exc)
            reasons.setdefault(node.key, str(exc))
    ops = tuple(
        OpCoverage(op, domain, len(names), key not in reasons, tuple(names), reasons.get(key, ""))
        for key, names in sorted(groups.items(), key=lambda kv: (kv[0] in reasons, kv[0]))
        for domain, op in [key]
    )
    return CoverageReport(graph.opset, ops, tuple(errors))
