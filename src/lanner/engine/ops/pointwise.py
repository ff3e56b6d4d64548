"""``ai.lanner.Pointwise``: a chain of elementwise ops run as one node (TensorRT's generated
"PointWise" layers). Produced by ``passes.pointwise.fuse_pointwise_chains``.

The node's ``program`` attribute is a JSON list of steps, each ``{"op": ONNX op_type, "inputs":
[ref, ...], "attrs": {...}}`` where a ref is ``"in:k"`` (the node's k-th input) or ``"step:j"``
(an earlier step's result); the last step is the node's output. A future codegen backend compiles
the same program into one kernel; the reference backend interprets it with the op table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from lanner.engine.ir.graph import Node, Value
from lanner.engine.ops.registry import LANNER_DOMAIN, OPS, TensorType, onnx_op

Array = np.ndarray
Inputs = Sequence[np.ndarray | None]

POINTWISE_OPS = frozenset(
    {
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg",
        "Reciprocal", "Erf", "Softplus", "Elu", "Selu", "Mish", "Gelu", "Clip", "Floor", "Ceil",
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu",
    }
)  # fmt: skip
"""Float elementwise ops (one output, broadcasting inputs) that may join a pointwise chain."""


@lru_cache(maxsize=1024)
def decode_program(program: str) -> tuple[Node, ...]:
    """The steps as IR nodes whose inputs are refs (``"in:0"``, ``"step:1"``); cached per program."""
    steps: list[dict[str, Any]] = json.loads(program)
    return tuple(
        Node(s["op"], f"step{j}", tuple(s["inputs"]), (f"step:{j}",), dict(s.get("attrs", {})))
        for j, s in enumerate(steps)
    )


def encode_program(steps: Sequence[tuple[str, Sequence[str], dict[str, Any]]]) -> str:
    """JSON for ``[(op_type, refs, attrs), ...]`` (compact and key-sorted, so builds are deterministic)."""
    return json.dumps([{"op": op, "inputs": list(refs), "attrs": attrs} for op, refs, attrs in steps], sort_keys=True)


def _pointwise_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    env: dict[str, Value | None] = {f"in:{k}": v for k, v in enumerate(ins)}
    for step in decode_program(node.attr("program")):
        types = OPS[("", step.op_type)].infer(step, [env[r] if r else None for r in step.inputs])
        env[step.outputs[0]] = Value(step.outputs[0], *types[0])
    result = env[step.outputs[0]]
    assert result is not None and result.dtype is not None and result.shape is not None
    return [(result.dtype, result.shape)]


@onnx_op("Pointwise", infer=_pointwise_infer, domain=LANNER_DOMAIN)
def pointwise(node: Node, xs: Inputs) -> Array:
    env: dict[str, Any] = {f"in:{k}": x for k, x in enumerate(xs)}
    for step in decode_program(node.attr("program")):
        env[step.outputs[0]] = np.asarray(
            OPS[("", step.op_type)].run(step, [env[r] if r else None for r in step.inputs])
        )
    return np.asarray(env[step.outputs[0]])
