"""Dtype/shape inference over the IR, with constant propagation for shape subgraphs.

``propagate`` walks the nodes in order. A node whose inputs are all known (constants, or values
already computed) and small is *evaluated* with its reference kernel; otherwise its op's ``infer``
gives dtype and shape. ``Shape`` of a value with a known shape is always known, and its data may
mix ints and symbols (a numpy ``object`` array, e.g. ``["N", 3, 64, 64]``); such *symbolic shape
tensors* flow through the data-movement ops in ``SYMBOLIC_OPS`` (Gather, Slice, Concat, ...), so
``x.view(x.shape[0], -1)`` exported with a dynamic batch still infers ``("N", 12)``.

Propagated data never stays in the graph from ``infer_shapes``; ``fold_constants`` (a pass) uses the
same walk to turn fully numeric results into constants.
"""

from __future__ import annotations

import numpy as np

from lanner.core.errors import LannerError
from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.ir.verify import InvalidGraphError
from lanner.engine.ops import lookup

PROPAGATE_MAX_ELEMENTS = 1 << 16
"""Inference evaluates nodes only on inputs up to this size (shapes, not weights)."""

SYMBOLIC_OPS = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Identity", "Reshape", "Cast"})
"""Ops whose kernels are pure data movement, so they may run on symbolic shape tensors."""


def evaluate_node(node: Node, graph: Graph, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, ...]:
    """Run ``node``'s reference kernel on concrete inputs; always returns a tuple of arrays."""
    result = lookup(node, graph.opset).run(node, inputs)
    outs = tuple(np.asarray(r) for r in result) if isinstance(result, tuple) else (np.asarray(result),)
    if len(outs) < len([o for o in node.outputs if o]):
        raise InvalidGraphError(
            f"kernel returned {len(outs)} outputs, the node has {len(node.outputs)}", where=_where(node)
        )
    return outs


def infer_shapes(graph: Graph) -> Graph:
    """A new graph where every value has a dtype and shape; raises naming the node on failure."""
    known = propagate(graph)
    return graph.replace(
        values={name: strip_data(known.get(name, value), graph) for name, value in graph.values.items()}
    )


def propagate(graph: Graph, max_elements: int = PROPAGATE_MAX_ELEMENTS) -> dict[str, Value]:
    """Name → typed ``Value`` for every value; ``data`` set where it could be computed."""
    known: dict[str, Value] = dict(graph.values)
    for node in graph.nodes:
        ins = [known[name] if name else None for name in node.inputs]
        try:
            outs = _evaluate(node, graph, ins, max_elements)
            if outs is None:
                types = lookup(node, graph.opset).infer(node, ins)
                outs = [
                    Value(name, dtype, tuple(shape)) for name, (dtype, shape) in zip(node.outputs, types, strict=False)
                ]
        except LannerError:
            raise
        except Exception as exc:
            shapes = ", ".join(v.describe() if v is not None else "-" for v in ins)
            raise InvalidGraphError(
                f"shape inference failed for inputs ({shapes}): {exc}",
                where=_where(node),
                fix="check the exporter's output",
            ) from exc
        known.update({value.name: value for value in outs if value.name})
    return known


def strip_data(value: Value, graph: Graph) -> Value:
    """Drop propagated data: only values that were constants in ``graph`` keep ``data``."""
    original = graph.values.get(value.name)
    if value.data is not None and (original is None or original.data is None):
        return Value(value.name, value.dtype, value.shape)
    return value


def is_symbolic(value: Value | None) -> bool:
    """True for a symbolic shape tensor (object data mixing ints and dim symbols)."""
    return value is not None and value.data is not None and value.data.dtype.kind in "OU"


def _evaluate(node: Node, graph: Graph, ins: list[Value | None], max_elements: int) -> list[Value] | None:
    """Output values with data when ``node`` can be computed from what is known, else ``None``."""
    if (
        node.op_type in ("Shape", "Size")
        and not node.domain
        and ins
        and ins[0] is not None
        and ins[0].shape is not None
    ):
        return _evaluate_shape(node, graph, ins[0])
    present = [v for v in ins if v is not None]
    if not present or any(v.data is None or v.data.size > max_elements for v in present):
        return None
    if not any(is_symbolic(v) for v in present):
        arrays = evaluate_node(node, graph, [None if v is None else v.data for v in ins])
        if any(a.size > max_elements for a in arrays):
            return None
        return [
            Value(name, a.dtype, tuple(int(d) for d in a.shape), a)
            for name, a in zip(node.outputs, arrays, strict=False)
        ]
    if node.op_type not in SYMBOLIC_OPS or node.domain:
        return None
    try:  # data movement on [N, 3, 64, 64]-style tensors; anything else falls back to ``infer``
        types = lookup(node, graph.opset).infer(node, ins)
        data = [None if v is None else v.data for v in ins]
        arrays = (np.asarray(data[0]),) if node.op_type == "Cast" else evaluate_node(node, graph, data)
    except (TypeError, ValueError):
        return None
    return [_symbolic_value(name, a, dtype) for name, a, (dtype, _) in zip(node.outputs, arrays, types, strict=False)]


def _evaluate_shape(node: Node, graph: Graph, x: Value) -> list[Value] | None:
    """Shape/Size of a value with a known shape: numeric when static, symbolic for Shape otherwise."""
    assert x.shape is not None
    if x.is_static:
        probe = np.broadcast_to(np.zeros((), dtype=x.dtype or np.float32), tuple(int(d) for d in x.shape))
        array = evaluate_node(node, graph, [probe])[0]  # the probe costs no memory: only its shape is read
        return [Value(node.outputs[0], array.dtype, tuple(array.shape), array)]
    if node.op_type == "Size":
        return None
    start, end = slice(node.attr("start", 0), node.attr("end", len(x.shape))).indices(len(x.shape))[:2]
    return [_symbolic_value(node.outputs[0], np.array(list(x.shape[start:end]), dtype=object), np.dtype("int64"))]


def _symbolic_value(name: str, array: np.ndarray, dtype: np.dtype) -> Value:
    """A value carrying shape data; all-int object arrays become plain integer data."""
    array = np.asarray(array, dtype=object)  # numpy turns a lone 'N' into a '<U1' array
    if array.dtype == object and all(isinstance(v, int | np.integer) for v in array.reshape(-1)):
        array = array.astype(dtype)
    return Value(name, dtype, tuple(int(d) for d in array.shape), array)


def _where(node: Node) -> str:
    return f"node '{node.name}' ({node.op_type})"
