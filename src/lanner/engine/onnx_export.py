"""IR → ONNX ``ModelProto`` (``onnx`` imported lazily): look at an optimized graph in Netron, diff it,
or run the unfused parts in ONNX Runtime. Fused ops keep their ``ai.lanner`` domain (ORT cannot run
those; ``load_onnx`` reads them back).

Example:
    >>> import onnx
    >>> onnx.save(to_onnx(optimize(load_onnx("m.onnx"))), "m.optimized.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lanner.core.errors import UnsupportedOpError
from lanner.engine.dtypes import NUMPY_TO_ONNX
from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.ops.registry import LANNER_DOMAIN

if TYPE_CHECKING:
    import onnx


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """The graph as a ModelProto: constants as initializers, typed inputs/outputs and value_info."""
    import onnx
    from onnx import helper, numpy_helper

    produced = [name for node in graph.nodes for name in node.outputs if name]
    proto_graph = helper.make_graph(
        [_node_proto(node) for node in graph.nodes],
        graph.name,
        [_value_info(graph.values[name]) for name in graph.inputs],
        [_value_info(graph.values[name]) for name in graph.outputs],
        [numpy_helper.from_array(np.asarray(data), name) for name, data in graph.constants.items()],
        value_info=[_value_info(graph.values[name]) for name in produced if name not in graph.outputs],
    )
    opsets = [helper.make_opsetid("", graph.opset)]
    if any(node.domain == LANNER_DOMAIN for node in graph.nodes):
        opsets.append(helper.make_opsetid(LANNER_DOMAIN, 1))
    model = helper.make_model(proto_graph, opset_imports=opsets, producer_name="lanner")
    model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", graph.opset)])
    helper.set_model_props(model, dict(graph.metadata_props))
    if not _has_custom_ops(graph):  # the checker rejects ops of unregistered domains
        onnx.checker.check_model(model)
    return model


def _has_custom_ops(graph: Graph) -> bool:
    return any(node.domain not in ("", "ai.onnx") for node in graph.nodes)


def _value_info(value: Value) -> onnx.ValueInfoProto:
    from onnx import helper

    if value.dtype is None:
        return helper.make_empty_tensor_value_info(value.name)
    elem = NUMPY_TO_ONNX[np.dtype(value.dtype)]
    return helper.make_tensor_value_info(value.name, elem, None if value.shape is None else list(value.shape))


def _node_proto(node: Node) -> onnx.NodeProto:
    from onnx import AttributeProto, helper

    plain = {key: _attr(node, key, value) for key, value in node.attrs.items() if not _is_empty(value)}
    proto = helper.make_node(
        node.op_type, list(node.inputs), list(node.outputs), name=node.name, domain=node.domain, **plain
    )
    for key, value in node.attrs.items():
        if _is_empty(value):  # make_node cannot infer the type of an empty list
            proto.attribute.append(helper.make_attribute(key, [], attr_type=AttributeProto.INTS))
    return proto


def _is_empty(value: Any) -> bool:
    return isinstance(value, list | tuple) and not value


def _attr(node: Node, key: str, value: Any) -> Any:
    from onnx import numpy_helper

    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    if isinstance(value, list | tuple) and isinstance(value[0], np.ndarray):
        return [numpy_helper.from_array(v) for v in value]
    if isinstance(value, str) and value == "<subgraph>":
        raise UnsupportedOpError(
            f"node '{node.name}' has a subgraph attribute '{key}'", fix="control flow is not supported"
        )
    return value
