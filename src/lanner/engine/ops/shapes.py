"""Shape helpers shared by the op table's ``infer`` functions (symbolic dims are strings)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from lanner.engine.ir.graph import Dim, Node, Shape, Value
from lanner.engine.ops.registry import TensorType


def normalize_axis(axis: int, rank: int) -> int:
    """ONNX allows negative axes counted from the end: ``-1`` is the last axis."""
    return axis + rank if axis < 0 else axis


def broadcast_shapes(*shapes: Shape) -> Shape:
    """Numpy (multidirectional) broadcasting over possibly symbolic dims.

    ONNX spec: https://onnx.ai/onnx/repo-docs/Broadcasting.html. ``1`` stretches; two different
    symbols are assumed equal at run time (the backend checks real sizes).
    """
    rank = max((len(s) for s in shapes), default=0)
    result: list[Dim] = []
    for i in range(rank):
        dims = [s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0]
        sizes = {d for d in dims if isinstance(d, int) and d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {list(shapes)} do not broadcast")
        symbols = [d for d in dims if isinstance(d, str)]
        result.append(sizes.pop() if sizes else (symbols[0] if symbols else 1))
    return tuple(result)


def dims_product(shape: Sequence[Dim]) -> Dim:
    """Product of the dims, or a symbolic string when some are symbols."""
    if all(isinstance(d, int) for d in shape):
        return math.prod(int(d) for d in shape)
    return "*".join(str(d) for d in shape)


def symbol(node: Node, axis: int, out: int = 0) -> str:
    """A fresh symbol for a dim inference cannot compute (depends on a symbolic input dim)."""
    return f"{node.outputs[out]}_d{axis}"


def same_as_input(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    """Unary ops: output dtype and shape equal to input 0."""
    x = ins[0]
    assert x is not None and x.dtype is not None and x.shape is not None
    return [(x.dtype, x.shape)]


def broadcast_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    """Elementwise ops: dtype of input 0, broadcast shape of all inputs."""
    present = [v for v in ins if v is not None]
    return [(present[0].dtype, broadcast_shapes(*(v.shape for v in present)))]  # type: ignore[arg-type, list-item]


def bool_broadcast_infer(node: Node, ins: Sequence[Value | None]) -> list[TensorType]:
    """Comparisons and logic ops: bool output with the broadcast shape."""
    return [(np.dtype(bool), broadcast_infer(node, ins)[0][1])]


def const_ints(value: Value | None) -> list[int] | None:
    """The data of a constant integer input as a list, or ``None`` when not constant/absent/symbolic."""
    if value is None or value.data is None or value.data.dtype == object:
        return None
    return [int(v) for v in np.asarray(value.data).reshape(-1)]


def input_or_attr_ints(node: Node, ins: Sequence[Value | None], index: int, attr: str) -> list[int] | None:
    """``axes``-style parameters that moved from attribute to input across opsets (e.g. Squeeze 13,
    ReduceMean 18): take the input when present, else the attribute, else ``None``."""
    if index < len(ins) and ins[index] is not None:
        return const_ints(ins[index])
    value = node.attr(attr)
    return None if value is None else [int(v) for v in value]


def const_dims(value: Value | None) -> list[Dim] | None:
    """Like ``const_ints`` but keeps dim symbols of a symbolic shape tensor (``["N", 3, -1]``)."""
    if value is None or value.data is None:
        return None
    return [v if isinstance(v, str) else int(v) for v in np.asarray(value.data).reshape(-1)]


def divide_dims(total: Sequence[Dim], known: Sequence[Dim]) -> Dim:
    """prod(total) / prod(known) with symbols cancelled: (N, 7, 16, 16) / (N, 7) → 256.

    Used for Reshape's ``-1``; returns a symbolic product when symbols do not cancel.
    """
    left, right = Counter(d for d in total if isinstance(d, str)), Counter(d for d in known if isinstance(d, str))
    num = math.prod(d for d in total if isinstance(d, int))
    den = math.prod(d for d in known if isinstance(d, int))
    if right - left or (den and num % den):
        return f"({dims_product(total)})/({dims_product(known)})"
    rest = sorted((left - right).elements())
    value = num // den if den else 0
    return value if not rest else "*".join([*rest, *([str(value)] if value != 1 else [])])
