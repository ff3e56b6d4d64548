"""torch CPU kernels for the ``cpu`` backend: elementwise, activation, shape, pooling, resize, reduce ops.

Each entry of ``KERNELS`` is a *factory* ``make(node, ctx) -> fn | None``: it reads the node's attributes
and constant inputs once, at prepare time, and returns a closure ``fn(*inputs) -> tensor | tuple`` that does
no attribute lookups per call. ``None`` means "not with these attributes" and the backend falls back to the
op's numpy reference kernel (so coverage never shrinks). Conv/Gemm/fused ops live in ``cpu_conv.py``.

Float-only ops return ``None`` for integer outputs: ONNX integer semantics (e.g. ``Div`` truncation)
differ from torch's, and integer tensors in vision nets are small shape arithmetic anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanner.engine.backends.cpu_activations import Fn, activation_fn
from lanner.engine.ir.graph import Graph, Node, Value
from lanner.engine.ops.nn import window_pads
from lanner.engine.ops.pointwise import decode_program

Factory = Callable[[Node, "KernelContext"], "Fn | None"]


@dataclass
class KernelContext:
    """What a kernel factory may read at prepare time: the graph, torch, constants as tensors, the tactic."""

    graph: Graph
    torch: Any
    constants: dict[str, Any] = field(default_factory=dict)
    tactic: str = ""

    def const(self, name: str) -> np.ndarray | None:
        return self.graph.constant(name)

    def value(self, name: str) -> Value | None:
        return self.graph.values.get(name) if name else None

    def is_float(self, name: str) -> bool:
        value = self.value(name)
        return value is not None and value.dtype is not None and np.issubdtype(value.dtype, np.floating)

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        value = self.value(name)
        return tuple(int(d) for d in value.shape) if value is not None and value.is_static else None  # type: ignore[union-attr]


KERNELS: dict[tuple[str, str], Factory] = {}


def kernel(*op_types: str, domain: str = "") -> Callable[[Factory], Factory]:
    """Register a factory for ``op_types`` (a duplicate raises, as the op table does)."""

    def decorator(factory: Factory) -> Factory:
        for op in op_types:
            if (domain, op) in KERNELS:
                raise ValueError(f"cpu kernel for {op!r} is registered twice")
            KERNELS[(domain, op)] = factory
        return factory

    return decorator


# -- elementwise -------------------------------------------------------------------------------------
_UNARY = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Abs": "abs", "Neg": "neg", "Reciprocal": "reciprocal", "Erf": "erf", "Floor": "floor", "Ceil": "ceil",
    "Sin": "sin", "Cos": "cos",
}  # fmt: skip
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}


@kernel(*_UNARY)
def _unary(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    fn: Fn = getattr(ctx.torch, _UNARY[node.op_type])
    return fn


@kernel(*_BINARY)
def _binary(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]) or not all(ctx.is_float(n) for n in node.inputs):
        return None
    fn: Fn = getattr(ctx.torch, _BINARY[node.op_type])
    return fn


@kernel("Max", "Min", "Sum", "Mean")
def _variadic(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    torch, op = ctx.torch, node.op_type
    pair = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add, "Mean": torch.add}[op]
    count = len(node.inputs)

    def run(*xs: Any) -> Any:
        y = xs[0]
        for x in xs[1:]:
            y = pair(y, x)
        return y / count if op == "Mean" and count > 1 else y

    return run


@kernel("LeakyRelu", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu", "Softplus", "Mish", "Gelu", "PRelu")
def _activation(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    torch, op = ctx.torch, node.op_type
    F = torch.nn.functional
    if op == "LeakyRelu":
        return activation_fn(torch, op, float(node.attr("alpha", 0.01)), 0.0)
    if op == "HardSigmoid":
        return activation_fn(torch, op, float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5)))
    if op == "HardSwish":
        return F.hardswish
    if op == "Clip":
        return _clip(node, ctx)
    if op == "Elu":
        alpha = float(node.attr("alpha", 1.0))
        return lambda x: F.elu(x, alpha)
    if op == "Selu":
        a, g = (
            float(node.attr("alpha", 1.67326319217681884765625)),
            float(node.attr("gamma", 1.05070102214813232421875)),
        )
        return lambda x: g * torch.where(x > 0, x, a * (torch.exp(x) - 1))
    if op == "Softplus":
        return lambda x: torch.log1p(torch.exp(x))
    if op == "Mish":
        return F.mish
    if op == "Gelu":
        approximate = node.attr("approximate", "none")
        return lambda x: F.gelu(x, approximate=approximate)
    return lambda x, slope: torch.where(x >= 0, x, x * slope)  # PRelu with ONNX broadcasting


def _clip(node: Node, ctx: KernelContext) -> Fn | None:
    bounds = []
    for name in (node.input(1), node.input(2)):
        data = ctx.const(name) if name else None
        if name and data is None:
            return None  # runtime bounds: reference kernel
        bounds.append(None if data is None else float(data))
    lo, hi = bounds
    return lambda x, *_: ctx.torch.clamp(x, lo, hi)


@kernel("Pointwise", domain="ai.lanner")
def _pointwise(node: Node, ctx: KernelContext) -> Fn | None:
    """The fused elementwise program as one closure chain (each step a torch kernel)."""
    if not ctx.is_float(node.outputs[0]):
        return None
    n_in = len(node.inputs)
    steps: list[tuple[Fn, list[int]]] = []
    for step in decode_program(node.attr("program")):
        factory = KERNELS.get(("", step.op_type))
        fn = factory(step, _StepContext(ctx)) if factory else None
        if fn is None or "" in step.inputs:
            return None
        refs = [int(r[3:]) if r.startswith("in:") else n_in + int(r[5:]) for r in step.inputs]
        steps.append((fn, refs))

    def run(*xs: Any) -> Any:
        env = list(xs)
        for fn, refs in steps:
            env.append(fn(*[env[r] for r in refs]))
        return env[-1]

    return run


class _StepContext(KernelContext):
    """Steps of a Pointwise program are float by construction (the pass only fuses float ops)."""

    def __init__(self, parent: KernelContext) -> None:
        super().__init__(parent.graph, parent.torch, parent.constants)

    def is_float(self, name: str) -> bool:
        return True

    def const(self, name: str) -> np.ndarray | None:
        return None


# -- shape and data movement --------------------------------------------------------------------------
def _ints(ctx: KernelContext, node: Node, index: int, attr: str) -> list[int] | None:
    """A list of ints from a constant input (newer opsets) or an attribute (older); None if runtime."""
    name = node.input(index)
    if name:
        data = ctx.const(name)
        return None if data is None else [int(v) for v in data.reshape(-1)]
    value = node.attr(attr)
    return None if value is None else [int(v) for v in value]


@kernel("Identity")
def _identity(node: Node, ctx: KernelContext) -> Fn | None:
    return lambda x: x


@kernel("Shape")
def _shape(node: Node, ctx: KernelContext) -> Fn | None:
    start, end = node.attr("start", 0), node.attr("end")
    torch = ctx.torch
    return lambda x: torch.tensor(x.shape[start:end], dtype=torch.int64)


@kernel("Reshape")
def _reshape(node: Node, ctx: KernelContext) -> Fn | None:
    if node.attr("allowzero", 0):
        return None
    shape = ctx.const(node.input(1))
    if shape is None:  # a shape computed at run time (dynamic batch): resolve ONNX's 0 = "copy this dim"
        return lambda x, s: x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(s.tolist())])
    target = [int(s) for s in shape.reshape(-1)]
    copies = [i for i, s in enumerate(target) if s == 0]
    if not copies:
        return lambda x, _: x.reshape(target)

    def run(x: Any, _: Any) -> Any:
        dims = list(target)
        for i in copies:
            dims[i] = x.shape[i]
        return x.reshape(dims)

    return run


@kernel("Flatten")
def _flatten(node: Node, ctx: KernelContext) -> Fn | None:
    axis = int(node.attr("axis", 1))

    def run(x: Any) -> Any:
        a = axis % x.dim() if x.dim() else 0
        if a == 1:
            return x.reshape(x.shape[0], -1)  # the common case, without a numpy product per call
        lead = int(np.prod(x.shape[:a])) if a else 1
        return x.reshape(lead, -1)

    return run


@kernel("Transpose")
def _transpose(node: Node, ctx: KernelContext) -> Fn | None:
    perm = node.attr("perm")
    return (lambda x: x.permute(*perm)) if perm is not None else (lambda x: x.permute(*reversed(range(x.dim()))))


@kernel("Squeeze", "Unsqueeze")
def _squeeze(node: Node, ctx: KernelContext) -> Fn | None:
    axes = _ints(ctx, node, 1, "axes")
    out = ctx.static_shape(node.outputs[0])
    value = ctx.value(node.outputs[0])
    if value is None or value.shape is None:
        return None
    if out is not None:
        return lambda x, *_: x.reshape(out)
    if axes is None and node.op_type == "Unsqueeze":
        return None
    if node.op_type == "Squeeze":
        if axes is None:
            return lambda x, *_: x.squeeze()
        return lambda x, *_: x.squeeze(tuple(axes))
    rank = len(value.shape)
    positions = sorted(a % rank for a in axes)  # type: ignore[union-attr]

    def unsqueeze(x: Any, *_: Any) -> Any:
        for a in positions:
            x = x.unsqueeze(a)
        return x

    return unsqueeze


@kernel("Gather")
def _gather(node: Node, ctx: KernelContext) -> Fn | None:
    indices = ctx.const(node.input(1))
    if indices is None:
        return None
    axis, torch = int(node.attr("axis", 0)), ctx.torch
    if indices.ndim == 0:
        i = int(indices)
        return lambda x, _: x.select(axis, i)
    flat, index_shape = torch.from_numpy(indices.reshape(-1).astype(np.int64)), tuple(indices.shape)

    def run(x: Any, _: Any) -> Any:
        a = axis % x.dim()
        picked = torch.index_select(x, a, torch.where(flat < 0, flat + x.shape[a], flat))
        return picked.reshape(*x.shape[:a], *index_shape, *x.shape[a + 1 :])

    return run


@kernel("Concat")
def _concat(node: Node, ctx: KernelContext) -> Fn | None:
    axis, cat = int(node.attr("axis")), ctx.torch.cat
    return lambda *xs: cat(xs, axis)


@kernel("Split")
def _split(node: Node, ctx: KernelContext) -> Fn | None:
    axis = int(node.attr("axis", 0))
    sizes = _ints(ctx, node, 1, "split")
    if sizes is None:
        shape = ctx.value(node.inputs[0])
        dim = shape.shape[axis] if shape is not None and shape.shape is not None else None
        if not isinstance(dim, int):
            return None
        n = len(node.outputs)
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    split = list(sizes)
    return lambda x, *_: tuple(x.split(split, axis))


@kernel("Slice")
def _slice(node: Node, ctx: KernelContext) -> Fn | None:
    starts, ends = _ints(ctx, node, 1, "starts"), _ints(ctx, node, 2, "ends")
    value = ctx.value(node.inputs[0])
    if starts is None or ends is None or value is None or value.shape is None:
        return None
    rank = len(value.shape)
    axes = _ints(ctx, node, 3, "axes") if node.input(3) else list(range(len(starts)))
    steps = _ints(ctx, node, 4, "steps") if node.input(4) else [1] * len(starts)
    if axes is None or steps is None or any(s <= 0 for s in steps):
        return None  # negative steps clamp differently in ONNX than in Python
    index: list[slice] = [slice(None)] * rank
    for a, b, e, s in zip(axes, starts, ends, steps, strict=True):
        index[a % rank] = slice(b, e, s)
    key = tuple(index)
    return lambda x, *_: x[key]


@kernel("Cast")
def _cast(node: Node, ctx: KernelContext) -> Fn | None:
    out = ctx.value(node.outputs[0])
    if out is None or out.dtype is None or not ctx.is_float(node.inputs[0]) or not ctx.is_float(node.outputs[0]):
        return None
    dtype = getattr(ctx.torch, out.dtype.name)
    return lambda x: x.to(dtype)


@kernel("Softmax", "LogSoftmax")
def _softmax(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]) or ctx.graph.opset < 13:
        return None
    axis = int(node.attr("axis", -1))
    fn = ctx.torch.softmax if node.op_type == "Softmax" else ctx.torch.log_softmax
    return lambda x: fn(x, axis)


@kernel("ReduceMean", "ReduceMax", "ReduceSum")
def _reduce(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    from_input = node.op_type == "ReduceSum" or ctx.graph.opset >= 18
    axes = _ints(ctx, node, 1, "_none") if from_input else node.attr("axes")
    if from_input and node.input(1) and axes is None:
        return None
    keep = bool(node.attr("keepdims", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return lambda x, *_: x
        axes = None
    dims = tuple(axes) if axes is not None else None
    torch = ctx.torch
    if node.op_type == "ReduceMax":
        return lambda x, *_: torch.amax(x, dims if dims is not None else tuple(range(x.dim())), keep)
    fn = torch.mean if node.op_type == "ReduceMean" else torch.sum
    return lambda x, *_: fn(x, dims if dims is not None else tuple(range(x.dim())), keep)


# -- pooling and resize --------------------------------------------------------------------------------
@kernel("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node: Node, ctx: KernelContext) -> Fn | None:
    if not ctx.is_float(node.outputs[0]):
        return None
    F = ctx.torch.nn.functional
    if node.op_type == "GlobalAveragePool":
        return lambda x: F.adaptive_avg_pool2d(x, 1) if x.dim() == 4 else x.mean(tuple(range(2, x.dim())), True)
    return lambda x: ctx.torch.amax(x, tuple(range(2, x.dim())), True)


@kernel("MaxPool", "AveragePool")
def _pool(node: Node, ctx: KernelContext) -> Fn | None:
    shape = ctx.value(node.inputs[0])
    kernel_shape = list(node.attr("kernel_shape", []))
    if shape is None or shape.shape is None or len(kernel_shape) != 2 or len(node.outputs) > 1:
        return None
    spatial = shape.shape[2:]
    if not all(isinstance(d, int) for d in spatial) or not ctx.is_float(node.outputs[0]):
        return None
    ceil = bool(node.attr("ceil_mode", 0))
    pads, _ = window_pads(node, spatial, kernel_shape, ceil)  # type: ignore[arg-type]
    strides = list(node.attr("strides", [1, 1]))
    F = ctx.torch.nn.functional
    symmetric = all(b == e for b, e in pads) and all(b <= k // 2 for (b, _), k in zip(pads, kernel_shape, strict=True))
    if node.op_type == "MaxPool":
        dil = list(node.attr("dilations", [1, 1]))
        if not symmetric:
            return None
        pad = [b for b, _ in pads]

        def max_pool(x: Any) -> Any:
            return F.max_pool2d(x, kernel_shape, strides, pad, dil, ceil)

        # oneDNN's pooling takes a blocked ``mkldnn`` tensor (from an ``onednn.blocked`` conv) as it is, and
        # returns one: the executable then keeps the blocked layout through the pool (cpu.py)
        max_pool.mkldnn_in = dil == [1, 1] and not ceil  # type: ignore[attr-defined]
        return max_pool
    if ceil or node.attr("dilations") not in (None, [1, 1]) or not symmetric:
        return None  # torch's and ONNX's edge-window divisors differ with ceil_mode
    include = bool(node.attr("count_include_pad", 0))
    pad = [b for b, _ in pads]
    return lambda x: F.avg_pool2d(x, kernel_shape, strides, pad, False, include)


@kernel("Resize", "Upsample")
def _resize(node: Node, ctx: KernelContext) -> Fn | None:
    """Nearest (asymmetric + floor) and bilinear (half_pixel / pytorch_half_pixel / align_corners) when the
    output size is static and an exact multiple, where torch's and ONNX's coordinate maps agree."""
    x, y = ctx.static_shape(node.inputs[0]), ctx.static_shape(node.outputs[0])
    value_in, value_out = ctx.value(node.inputs[0]), ctx.value(node.outputs[0])
    if value_in is None or value_out is None or value_in.shape is None or value_out.shape is None:
        return None
    in_hw, out_hw = value_in.shape[2:], value_out.shape[2:]
    if len(in_hw) != 2 or not all(isinstance(d, int) for d in (*in_hw, *out_hw)) or not ctx.is_float(node.inputs[0]):
        return None
    if tuple(value_in.shape[:2]) != tuple(value_out.shape[:2]):
        return None
    del x, y
    mode = node.attr("mode", "nearest")
    coord = node.attr("coordinate_transformation_mode", "asymmetric" if node.op_type == "Upsample" else "half_pixel")
    F, size = ctx.torch.nn.functional, [int(d) for d in out_hw]
    if list(in_hw) == size:
        return lambda t, *_: t  # ONNX Runtime's shortcut: same size is a copy
    exact = all(o % i == 0 for i, o in zip(in_hw, size, strict=True))  # type: ignore[operator]
    if mode == "nearest" and coord == "asymmetric" and node.attr("nearest_mode", "round_prefer_floor") == "floor":
        return (lambda t, *_: F.interpolate(t, size=size, mode="nearest")) if exact else None
    if mode == "linear" and coord == "align_corners":
        return lambda t, *_: F.interpolate(t, size=size, mode="bilinear", align_corners=True)
    if mode == "linear" and coord in ("half_pixel", "pytorch_half_pixel") and exact and min(size) > 1:
        return lambda t, *_: F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return None


@kernel("Pad")
def _pad(node: Node, ctx: KernelContext) -> Fn | None:
    pads = ctx.const(node.input(1))
    value = ctx.value(node.inputs[0])
    if pads is None or node.input(3) or value is None or value.shape is None or not ctx.is_float(node.inputs[0]):
        return None
    if node.attr("mode", "constant") != "constant":
        return None
    fill = 0.0
    if node.input(2):
        data = ctx.const(node.input(2))
        if data is None:
            return None
        fill = float(data)
    rank, flat = len(value.shape), [int(p) for p in pads.reshape(-1)]
    torch_pads: list[int] = []
    for axis in reversed(range(rank)):
        torch_pads += [flat[axis], flat[rank + axis]]
    F = ctx.torch.nn.functional
    return lambda x, *_: F.pad(x, torch_pads, "constant", fill)
