"""Insert QuantizeLinear/DequantizeLinear into the IR: the explicit-quantization (QDQ) ONNX contract.

TensorRT 10+/11 and ONNX Runtime take INT8 precision from Q/DQ nodes in the network. The placement
follows TensorRT's guidance (and NVIDIA Model Optimizer's default for CNNs): the activation inputs of
the weighted ops are quantized per tensor (symmetric int8, zero point 0, scale = amax / 127) and their
weights per output channel (symmetric, values in [-127, 127]), stored as int8 initializers read by a
DequantizeLinear. Biases stay FP32. The builder folds the pairs into INT8 kernels; ONNX Runtime runs
the file as it is. A node can be pinned to FP32 by its name or its op type (``exclude``).

Residual adds: where a conv's output feeds only an ``Add`` (ResNet's and MobileNetV2's skip connections), the
*other* input of that Add (the skip) gets a Q/DQ pair too, as TensorRT's Q/DQ guide places them ("quantize the
residual input so the add fuses into the conv"). The conv then reads an int8 skip in its epilogue, the tensor
before the Add is read only through Q/DQ, and a block's output can stay int8 from one block to the next. The
conv's own output is left unquantized so the add fuses into it without a second rounding.

Pools: a MaxPool / AveragePool / GlobalAveragePool whose input a quantized conv (with its fused activation or
residual add) produces for it alone gets a Q/DQ pair on that input (``pooled_inputs``), as ONNX Runtime's
quantizer and TensorRT's guide treat pooling: the conv then writes int8 instead of a float tensor.

Example:
    >>> qgraph = insert_qdq(graph, amax={"images": 2.64, "/relu/Relu_output_0": 5.1})  # doctest: +SKIP
    >>> qgraph.op_counts()["DequantizeLinear"]  # doctest: +SKIP
    4
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from lanner.core.errors import ConfigError, DataError
from lanner.engine.calibrate.methods import INT8_MAX
from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.ir.verify import verify
from lanner.engine.ops.quant import quantize_per_channel
from lanner.engine.passes.rewrite import sole_consumer

ACTIVATION_INPUTS: dict[str, tuple[int, ...]] = {"Conv": (0,), "ConvTranspose": (0,), "Gemm": (0,), "MatMul": (0, 1)}
"""op_type → input slots whose run-time (non-constant) tensors are quantized per tensor."""
WEIGHT_INPUT = 1  # Conv/ConvTranspose W, Gemm/MatMul B
ZERO_SCALE_AMAX = 1.0  # an all-zero tensor gets amax 1 (any positive scale represents it exactly)


@dataclass(frozen=True)
class QuantizedWeight:
    """A weight's per-channel scales (what the scale table records)."""

    name: str
    axis: int
    scale: np.ndarray


def scale_from_amax(amax: float) -> np.float32:
    """Symmetric int8 scale ``amax / 127`` as float32 (``amax`` 0 → 1/127)."""
    return np.float32((amax if amax > 0 else ZERO_SCALE_AMAX) / INT8_MAX)


def resolve_exclusions(graph: Graph, exclude: Iterable[str]) -> set[str]:
    """The names of the nodes pinned to FP32 by ``exclude`` (node names or op types).

    An entry that is neither is a ``ConfigError`` with the closest names.
    """
    names = {node.name for node in graph.nodes}
    op_types = {node.op_type for node in graph.nodes}
    pinned: set[str] = set()
    for entry in exclude:
        if entry in names:
            pinned.add(entry)
        elif entry in op_types:
            pinned.update(node.name for node in graph.nodes if node.op_type == entry)
        else:
            close = difflib.get_close_matches(entry, sorted(names | op_types), n=3)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see the node names in Netron"
            raise ConfigError(f"--exclude {entry!r} is neither a node name nor an op type in the model", fix=hint)
    return pinned


def quantized_nodes(graph: Graph, pinned: AbstractSet[str] = frozenset()) -> list[Node]:
    """The nodes that get Q/DQ inputs: weighted ops in the default domain that are not pinned."""
    return [n for n in graph.nodes if n.op_type in ACTIVATION_INPUTS and not n.domain and n.name not in pinned]


def residual_slots(graph: Graph, pinned: AbstractSet[str] = frozenset()) -> dict[str, int]:
    """Add node name → the input slot of its skip, for each two-input Add that a quantized Conv's output feeds
    alone (the conv that ``fuse_residual_add`` will fuse the add into; same order of preference: first input)."""
    producers, consumers = graph.producers(), graph.consumers()
    slots: dict[str, int] = {}
    for add in graph.nodes:
        if add.op_type != "Add" or add.domain or len(add.inputs) != 2 or add.name in pinned:
            continue
        for conv_slot in (0, 1):
            conv = producers.get(add.inputs[conv_slot])
            skip = graph.values.get(add.inputs[1 - conv_slot])
            if (
                conv is not None
                and conv.op_type == "Conv"
                and not conv.domain
                and conv.name not in pinned
                and sole_consumer(graph, consumers, add.inputs[conv_slot]) is add
                and skip is not None
                and not skip.is_constant
                and add.inputs[0] != add.inputs[1]
            ):
                slots[add.name] = 1 - conv_slot
                break
    return slots


POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool")
"""Pooling ops whose input is quantized when a quantized conv (through its fused epilogue) produces it alone."""
_EPILOGUE_OPS = ("Relu", "Clip", "LeakyRelu", "HardSwish", "Sigmoid")


def pooled_inputs(
    graph: Graph, pinned: AbstractSet[str] = frozenset(), residual: dict[str, int] | None = None
) -> list[str]:
    """Pool node names whose input gets a Q/DQ pair: the input is read by the pool alone and comes from a quantized
    Conv through ops the builder fuses into it (an activation, a residual Add). Then the conv writes int8 (as
    before ResNet's stem MaxPool or its last GlobalAveragePool) instead of a float tensor that only the pool reads.
    ``residual``: ``residual_slots(graph, pinned)`` when the caller has it."""
    producers, consumers = graph.producers(), graph.consumers()
    residual = residual_slots(graph, pinned) if residual is None else residual
    names: list[str] = []
    for pool in graph.nodes:
        if pool.op_type not in POOLS or pool.domain or pool.name in pinned:
            continue
        if sole_consumer(graph, consumers, pool.input(0)) is not pool:
            continue
        node = _behind_epilogue(graph, producers, consumers, residual, pool.input(0))
        if node is not None and node.op_type == "Conv" and not node.domain and node.name not in pinned:
            names.append(pool.name)
    return names


def _behind_epilogue(
    graph: Graph, producers: dict[str, Node], consumers: dict[str, list[Node]], residual: dict[str, int], name: str
) -> Node | None:
    """The node ``name`` comes from once the ops the builder fuses into a conv's epilogue are walked back (an
    activation, a residual Add on its conv side, read alone); None where the chain leaves that pattern."""
    node = producers.get(name)
    for _ in range(3):  # activation, residual add, activation: the longest epilogue fusion builds
        if node is None or node.domain or node.op_type not in (*_EPILOGUE_OPS, "Add"):
            return node
        if node.op_type == "Add" and node.name not in residual:
            return None
        slot = 1 - residual[node.name] if node.op_type == "Add" else 0
        if sole_consumer(graph, consumers, node.input(slot)) is None:
            return None
        node = producers.get(node.input(slot))
    return node


def _quantized_slots(graph: Graph, pinned: AbstractSet[str]) -> list[tuple[Node, tuple[int, ...]]]:
    """(node, activation slots to quantize) for the weighted ops, the residual adds and the pools, in graph order."""
    residual = residual_slots(graph, pinned)
    pools = set(pooled_inputs(graph, pinned, residual))
    chosen = {id(n) for n in quantized_nodes(graph, pinned)}
    result: list[tuple[Node, tuple[int, ...]]] = []
    for node in graph.nodes:
        if id(node) in chosen:
            result.append((node, ACTIVATION_INPUTS[node.op_type]))
        elif node.name in residual and node.op_type == "Add":
            result.append((node, (residual[node.name],)))
        elif node.name in pools:
            result.append((node, (0,)))
    return result


def activations_to_quantize(graph: Graph, pinned: AbstractSet[str] = frozenset()) -> list[str]:
    """The run-time float32 tensors that get a Q/DQ pair, in graph order, each once."""
    return _activations(graph, _quantized_slots(graph, pinned))


def _activations(graph: Graph, quantized: list[tuple[Node, tuple[int, ...]]]) -> list[str]:
    result: list[str] = []
    for node, slots in quantized:
        for slot in slots:
            name = node.input(slot)
            value = graph.values.get(name) if name else None
            if value is not None and not value.is_constant and value.dtype == np.float32 and name not in result:
                result.append(name)
    return result


def weight_axis(node: Node, weight: np.ndarray) -> int:
    """The output-channel axis of a weight: Conv 0, ConvTranspose 1, Gemm 0 if transB else 1, MatMul last."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        return 0 if node.attr("transB", 0) else 1
    return weight.ndim - 1


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8: ``(q int8 in [-127, 127], scale float32 [C])`` with ``q * scale ≈ weight``."""
    return quantize_per_channel(weight, axis, INT8_MAX)


def insert_qdq(
    graph: Graph, amax: Mapping[str, float], *, exclude: Iterable[str] = ()
) -> tuple[Graph, list[QuantizedWeight]]:
    """A new graph with Q/DQ on the activations (``amax`` per tensor) and weights of the weighted ops.

    Returns the graph and the per-channel weight scales. A tensor that needs a Q/DQ pair but has no
    entry in ``amax`` is a ``DataError`` listing them (e.g. a cache from another model).
    """
    pinned = resolve_exclusions(graph, exclude)
    quantized = _quantized_slots(graph, pinned)
    activations = _activations(graph, quantized)
    missing = [name for name in activations if name not in amax]
    if missing:
        raise DataError(
            f"no calibration range for {len(missing)} tensor(s): {missing[:5]}",
            fix="calibrate this model (the cache or table may belong to another model)",
        )
    builder = _QdqBuilder(graph)
    for name in activations:
        builder.add_activation(name, amax[name])
    slots = {id(node): node_slots for node, node_slots in quantized}
    nodes: list[Node] = []
    for node in graph.nodes:
        if id(node) in slots:
            node = builder.rewire(node, slots[id(node)])
        nodes.extend(builder.take_pending(node))
        nodes.append(node)
    result = graph.with_nodes(nodes, builder.values)
    verify(result, require_types=True)
    return result, builder.weights


class _QdqBuilder:
    """Collects the new Q/DQ nodes and values; each tensor gets one pair however many nodes read it."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.values: list[Value] = []
        self.weights: list[QuantizedWeight] = []
        self.replacement: dict[tuple[str, int | None], str] = {}  # (tensor, weight axis) → DQ output
        self.pending: dict[str, list[Node]] = {}  # DQ output → nodes still to emit
        self.taken: set[str] = set()

    def _name(self, base: str) -> str:
        name = self.graph.unique_name(base)
        while name in self.taken:
            name = self.graph.unique_name(f"{name}_")
        self.taken.add(name)
        return name

    def add_activation(self, name: str, amax: float) -> None:
        value = self.graph.values[name]
        scale = Value.constant(self._name(f"{name}_scale"), np.asarray(scale_from_amax(amax)))
        zero = Value.constant(self._name(f"{name}_zero_point"), np.zeros((), np.int8))
        q = Value(self._name(f"{name}_quantized"), np.dtype(np.int8), value.shape)
        dq = Value(self._name(f"{name}_dequantized"), np.dtype(np.float32), value.shape)
        self.values += [scale, zero, q, dq]
        params = (scale.name, zero.name)
        self.pending[dq.name] = [
            Node("QuantizeLinear", self._name(f"{name}_QuantizeLinear"), (name, *params), (q.name,)),
            Node("DequantizeLinear", self._name(f"{name}_DequantizeLinear"), (q.name, *params), (dq.name,)),
        ]
        self.replacement[(name, None)] = dq.name

    def rewire(self, node: Node, slots: tuple[int, ...]) -> Node:
        inputs = list(node.inputs)
        for slot in slots:
            key = (node.input(slot), None)
            if key in self.replacement:
                inputs[slot] = self.replacement[key]
        if node.op_type not in ACTIVATION_INPUTS:
            return node.evolve(inputs=tuple(inputs))  # a residual Add: no weight
        weight = self.graph.constant(node.input(WEIGHT_INPUT))
        if weight is not None and weight.dtype == np.float32 and weight.ndim >= 1:
            inputs[WEIGHT_INPUT] = self._weight(node, weight)
        return node.evolve(inputs=tuple(inputs))

    def _weight(self, node: Node, weight: np.ndarray) -> str:
        name = node.input(WEIGHT_INPUT)
        axis = weight_axis(node, weight)
        if (name, axis) in self.replacement:
            return self.replacement[(name, axis)]
        q, scale = quantize_weight(weight, axis)
        qv = Value.constant(self._name(f"{name}_quantized"), q, copy=False)
        sv = Value.constant(self._name(f"{name}_scale"), scale, copy=False)
        zv = Value.constant(self._name(f"{name}_zero_point"), np.zeros(scale.shape, np.int8))
        dq = Value(self._name(f"{name}_dequantized"), np.dtype(np.float32), tuple(int(d) for d in weight.shape))
        self.values += [qv, sv, zv, dq]
        node_name = self._name(f"{name}_DequantizeLinear")
        inputs = (qv.name, sv.name, zv.name)
        self.pending[dq.name] = [Node("DequantizeLinear", node_name, inputs, (dq.name,), {"axis": axis})]
        self.replacement[(name, axis)] = dq.name
        self.weights.append(QuantizedWeight(name, axis, scale))
        return dq.name

    def take_pending(self, node: Node) -> list[Node]:
        """The Q/DQ nodes ``node`` reads that were not emitted yet (so the order stays topological)."""
        emitted: list[Node] = []
        for name in node.inputs:
            emitted += self.pending.pop(name, [])
        return emitted
