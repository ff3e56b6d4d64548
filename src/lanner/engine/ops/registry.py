"""The op table: ``(domain, op_type) -> OpDef``, filled by ``@onnx_op`` (registering twice raises).

Each op provides
- ``run(node, inputs) -> array | tuple of arrays``: the numpy reference implementation (the test oracle);
- ``infer(node, inputs) -> [(dtype, shape), ...]``: dtype/shape inference on ``Value``s, which carry
  ``data`` when the input is a (propagated) constant, e.g. the ``shape`` input of Reshape;
- optionally ``check(node, opset)``: raises ``UnsupportedOpError`` for attribute values we do not run.

Attribute names and defaults are the ONNX ones, verbatim (https://onnx.ai/onnx/operators/).

Example:
    >>> from lanner.engine.ops import OPS
    >>> OPS[("", "Relu")].op_type
    'Relu'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from lanner.core.errors import UnsupportedOpError
from lanner.engine.ir.graph import Node, Shape, Value

TensorType = tuple[np.dtype, Shape]
RunFn = Callable[[Node, Sequence[np.ndarray | None]], "np.ndarray | tuple[np.ndarray, ...]"]
InferFn = Callable[[Node, Sequence[Value | None]], list[TensorType]]
CheckFn = Callable[[Node, int], None]
F = TypeVar("F", bound=Callable[..., Any])

LANNER_DOMAIN = "ai.lanner"
"""Domain of the engine's own fused ops (e.g. ``FusedConv``)."""


@dataclass(frozen=True)
class OpDef:
    """One supported op: its ONNX name, the reference kernel, inference and legality check."""

    op_type: str
    domain: str
    run: RunFn
    infer: InferFn
    check: CheckFn | None = None


OPS: dict[tuple[str, str], OpDef] = {}


def onnx_op(op_type: str, *, infer: InferFn, check: CheckFn | None = None, domain: str = "") -> Callable[[F], F]:
    """Register the decorated function as the reference kernel of ``op_type`` (returned unchanged)."""

    def decorator(run: F) -> F:
        key = (domain, op_type)
        if key in OPS:
            raise ValueError(f"onnx op {op_type!r} (domain {domain!r}) is registered twice")
        OPS[key] = OpDef(op_type, domain, run, infer, check)
        return run

    return decorator


def lookup(node: Node, opset: int) -> OpDef:
    """The ``OpDef`` for ``node``, after its legality check; ``UnsupportedOpError`` otherwise."""
    op = OPS.get(node.key)
    if op is None:
        domain = f" in domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
        raise UnsupportedOpError(
            f"op '{node.op_type}'{domain} (opset {opset}) at node '{node.name}' is not supported",
            fix="replace it in the exporter, or run `check_coverage` to list every unsupported op at once",
        )
    if op.check is not None:
        op.check(node, opset)
    return op


def unsupported(node: Node, opset: int, detail: str) -> UnsupportedOpError:
    """The error for a supported op used with an attribute value we do not run."""
    return UnsupportedOpError(
        f"op '{node.op_type}' (opset {opset}) at node '{node.name}': {detail} is not supported",
        fix="re-export the model without it",
    )
