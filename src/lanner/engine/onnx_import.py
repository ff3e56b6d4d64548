"""ONNX → IR. The ``onnx`` package (protobuf + numpy) is imported lazily, inside the functions.

- initializers and ``Constant`` nodes become constant ``Value``s (via ``onnx.numpy_helper``);
- the default-domain opset comes from ``opset_import`` and must be 13–21;
- ``metadata_props`` are kept verbatim (that is how models carry labels, input size, mean/std);
- external data and sparse tensors are refused with a clear ``DataError``;
- unless ``infer=False``, every op is checked against the op table (one ``UnsupportedOpError``
  listing them all) and shapes are inferred.

Example:
    >>> graph = load_onnx("resnet18.onnx")  # doctest: +SKIP
    >>> graph.opset, graph.inputs  # doctest: +SKIP
    (17, ('input',))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lanner.core.errors import DataError, UnsupportedOpError
from lanner.engine.dtypes import to_numpy_dtype
from lanner.engine.ir.graph import Dim, Graph, Node, Value
from lanner.engine.ir.verify import verify
from lanner.engine.ops import lookup
from lanner.engine.shape_inference import infer_shapes

if TYPE_CHECKING:
    import onnx

MIN_OPSET, MAX_OPSET = 13, 21
_CONSTANT_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def load_onnx(source: str | os.PathLike[str] | bytes | onnx.ModelProto, *, infer: bool = True) -> Graph:
    """Load an ONNX model (path, bytes or ModelProto) into the IR; see the module docstring."""
    model, where = _read_model(source)
    return import_model(model, where=where, infer=infer)


def import_model(model: onnx.ModelProto, *, where: str = "model", infer: bool = True) -> Graph:
    """Convert a loaded ``ModelProto``; ``infer=False`` skips op checks and shape inference."""
    if not model.graph.output:
        raise DataError("not a valid ONNX model (the graph has no outputs)", where=where, fix="re-export it")
    opset = _default_opset(model, where)
    values: dict[str, Value] = {}
    _import_initializers(model, values, where)
    inputs = [_typed_value(vi) for vi in model.graph.input if vi.name not in values]
    values.update({v.name: v for v in inputs})
    nodes = _import_nodes(model, values, where)
    for vi in model.graph.output:
        if vi.name not in values:
            raise DataError(f"graph output '{vi.name}' is never produced", where=where, fix="re-export it")
    graph = Graph(
        nodes=tuple(nodes),
        inputs=tuple(v.name for v in inputs),
        outputs=tuple(vi.name for vi in model.graph.output),
        values=values,
        opset=opset,
        metadata_props={p.key: p.value for p in model.metadata_props},
        name=model.graph.name or "graph",
    )
    try:
        graph = graph.toposorted()
    except ValueError as exc:
        raise DataError(f"not a valid ONNX model ({exc})", where=where, fix="re-export it") from exc
    verify(graph)
    if not infer:
        return graph
    check_supported(graph)
    for name in graph.inputs:
        if graph.values[name].shape is None:
            raise DataError(
                f"input '{name}' has no shape (unknown rank)",
                where=where,
                fix="re-export with a shape for every input (use named dims such as 'N' for dynamic axes)",
            )
    return verify(infer_shapes(graph), require_types=True)


def check_supported(graph: Graph) -> None:
    """Raise one ``UnsupportedOpError`` naming every unsupported node (op, opset, node name)."""
    problems: list[UnsupportedOpError] = []
    for node in graph.nodes:
        try:
            lookup(node, graph.opset)
        except UnsupportedOpError as exc:
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "; ".join(p.what for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise UnsupportedOpError(f"{len(problems)} unsupported nodes: {listed}{more}", fix=problems[0].fix)


def fix_input_size(data: bytes, size_hw: tuple[int, int]) -> bytes:
    """``data`` (ONNX bytes) with the dynamic height and width of every 4-D graph input set to ``size_hw``, as
    trtexec's ``--shapes`` does: a model exported with dynamic image dims (Ultralytics ``dynamic=True``) builds at
    one size; the batch stays as it is. A fixed size that differs is a ``ConfigError``.

    Example:
        >>> fixed = fix_input_size(open("yolo_dynamic.onnx", "rb").read(), (640, 640))  # doctest: +SKIP
    """
    from lanner.core.errors import ConfigError

    model, where = _read_model(data)
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name in initializers or len(dims) != 4:
            continue
        for dim, size in zip(dims[2:], size_hw, strict=True):
            if dim.HasField("dim_value") and dim.dim_value not in (0, size):
                have = "x".join(str(d.dim_value) for d in dims[2:])
                raise ConfigError(
                    f"input '{value.name}' has a fixed size {have}, not {size_hw[0]}x{size_hw[1]}",
                    where=where,
                    fix=f"drop --input-size (the model runs at {have}), or re-export it with dynamic height/width",
                )
            dim.Clear()
            dim.dim_value = size
    return bytes(model.SerializeToString())


# -- reading -------------------------------------------------------------------------------------
def _read_model(source: Any) -> tuple[onnx.ModelProto, str]:
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source, "model"
    if isinstance(source, bytes | bytearray):
        data, where = bytes(source), "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError("no such ONNX file", where=str(path), fix="check the path")
        data, where = path.read_bytes(), str(path)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError (and friends) on garbage
        raise DataError(
            f"not a valid ONNX model ({type(exc).__name__}: {exc})", where=where, fix="re-export it"
        ) from exc
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise DataError("not a valid ONNX model (no ir_version or graph)", where=where, fix="re-export it")
    return model, where


def _default_opset(model: onnx.ModelProto, where: str) -> int:
    versions = [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")]
    if not versions:
        raise DataError("the model declares no default-domain opset", where=where, fix="re-export it")
    opset = int(versions[0])
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedOpError(
            f"opset {opset} is not supported (supported: {MIN_OPSET}-{MAX_OPSET})",
            where=where,
            fix="convert it: onnx.version_converter.convert_version(model, 17), or re-export with opset_version=17",
        )
    return opset


def _to_array(tensor: onnx.TensorProto, where: str) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise DataError(
            f"tensor '{tensor.name}' is stored as external data, which is not supported",
            where=where,
            fix="re-save the model in one file: onnx.save(onnx.load(path), out, save_as_external_data=False)",
        )
    to_numpy_dtype(tensor.data_type, f"{where} tensor '{tensor.name}'")
    return numpy_helper.to_array(tensor)


def _import_initializers(model: onnx.ModelProto, values: dict[str, Value], where: str) -> None:
    if model.graph.sparse_initializer:
        raise DataError("sparse initializers are not supported", where=where, fix="densify them before export")
    for tensor in model.graph.initializer:
        values[tensor.name] = Value.constant(tensor.name, _to_array(tensor, where), copy=False)


def _typed_value(vi: onnx.ValueInfoProto) -> Value:
    tensor_type = vi.type.tensor_type
    dtype = to_numpy_dtype(tensor_type.elem_type, f"input '{vi.name}'")
    if not tensor_type.HasField("shape"):
        return Value(vi.name, dtype, None)
    dims: list[Dim] = []
    for i, d in enumerate(tensor_type.shape.dim):
        dims.append(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or f"{vi.name}_d{i}"))
    return Value(vi.name, dtype, tuple(dims))


def _import_nodes(model: onnx.ModelProto, values: dict[str, Value], where: str) -> list[Node]:
    nodes: list[Node] = []
    names: set[str] = set()
    for i, proto in enumerate(model.graph.node):
        name = proto.name or f"{proto.op_type}_{i}"
        while name in names:
            name = f"{name}_{i}"
        names.add(name)
        attrs = {a.name: _attr_value(a, f"{where} node '{name}'") for a in proto.attribute}
        if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
            values[proto.output[0]] = Value.constant(proto.output[0], _constant_data(attrs, name, where))
            continue
        node = Node(proto.op_type, name, tuple(proto.input), tuple(proto.output), attrs, proto.domain)
        nodes.append(node)
        for out in node.outputs:
            if out:
                values[out] = Value(out)
    return nodes


def _constant_data(attrs: dict[str, Any], name: str, where: str) -> np.ndarray:
    for key in _CONSTANT_ATTRS:
        if key in attrs:
            value = attrs[key]
            if key == "value":
                return np.asarray(value)
            dtype = np.float32 if key.startswith("value_float") else np.int64
            return np.asarray(value, dtype=dtype)
    raise DataError(
        f"Constant node '{name}' uses an unsupported attribute {sorted(attrs)}", where=where, fix="use 'value'"
    )


def _attr_value(attr: onnx.AttributeProto, where: str) -> Any:
    """ONNX attribute → Python: ints/floats/strings (decoded)/lists, tensors → numpy arrays."""
    import onnx

    kind = attr.type
    if kind == onnx.AttributeProto.TENSOR:
        return _to_array(attr.t, where)
    if kind == onnx.AttributeProto.TENSORS:
        return [_to_array(t, where) for t in attr.tensors]
    if kind in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return "<subgraph>"  # control flow (If/Loop/Scan) is reported as unsupported by the op table
    if kind == onnx.AttributeProto.SPARSE_TENSOR:
        raise DataError(f"sparse tensor attribute '{attr.name}' is not supported", where=where, fix="densify it")
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value]
    return value
