"""The ``cpu`` backend: runs an optimized ``Graph`` with torch CPU kernels (oneDNN / MKL underneath).

At prepare time every constant becomes a torch tensor once, and every node becomes one closure from the
kernel table (``cpu_kernels.py``, ``cpu_conv.py``) with its attributes already resolved and its weights
already packed; a node whose op or attributes have no torch kernel runs its numpy reference kernel instead
(the same code the ``reference`` backend runs), so coverage never shrinks. ``run`` is then a flat loop over
``(closure, input slots, output slots, slots to free)`` under ``torch.inference_mode()``: no per-call
dictionary lookups and no attribute parsing. Fused ``FusedConv`` nodes (conv + bias + activation + residual)
are one call; with the ``onednn.fused`` tactic the epilogue runs inside oneDNN's kernel.

The executable holds no per-call state, so one instance serves concurrent ``run`` calls from many threads.
torch is imported here lazily (``import lanner.engine`` never imports it).

Example:
    >>> from lanner.engine import get_backend, load_onnx, optimize
    >>> exe = get_backend("cpu").prepare(optimize(load_onnx("resnet18.onnx")))  # doctest: +SKIP
    >>> exe.run({"images": batch})["output"].shape  # doctest: +SKIP
    (1, 1000)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lanner.core.errors import LannerError
from lanner.engine.backends.base import check_feeds
from lanner.engine.backends.reference import KernelError
from lanner.engine.ir.graph import Graph, Node
from lanner.engine.ir.verify import verify
from lanner.engine.ops import OPS, lookup
from lanner.engine.shape_inference import evaluate_node

_ALIASING_OPS = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Split", "Transpose", "Resize"}
"""Ops whose torch result may be a view of their input: graph outputs they produce are copied."""

Step = tuple[Callable[..., Any], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _torch() -> Any:
    import torch

    return torch


class CpuBackend:
    """torch CPU kernels with pre-packed weights; numpy reference kernels for whatever torch does not cover."""

    name = "cpu"

    def supports(self, node: Node) -> bool:
        """True when ``node`` can run here (a torch kernel, or the reference fallback)."""
        from lanner.engine.backends.cpu_kernels import KERNELS

        return node.key in KERNELS or node.key in OPS

    def context(self, graph: Graph, constants: dict[str, Any] | None = None) -> Any:
        """The prepare-time context: the graph, torch, and every constant as a torch tensor (made once)."""
        from lanner.engine.backends import (
            cpu_conv,  # noqa: F401  (registers the conv/gemm kernels)
            cpu_int8,  # noqa: F401  (registers Q/DQ and QConv: INT8)
        )
        from lanner.engine.backends.cpu_kernels import KernelContext

        torch = _torch()
        if constants is None:
            constants = {name: _to_tensor(torch, data) for name, data in graph.constants.items()}
        return KernelContext(graph, torch, constants)

    def tactics(self, node: Node, ctx: Any) -> tuple[str, ...]:
        """Candidate tactics for ``node`` (default first); ``()`` when it has no choice."""
        from lanner.engine.backends import cpu_int8
        from lanner.engine.backends.cpu_conv import tactics_for

        if node.key == cpu_int8.QCONV:  # INT8 hook: int8 kernel vs FP32, timed like any tactic
            return cpu_int8.tactics_for(node, ctx)
        return tactics_for(node, ctx)

    def kernel(self, node: Node, ctx: Any, tactic: str = "") -> tuple[Callable[..., Any], bool]:
        """``(closure, is_torch)``: the torch kernel for ``node`` with ``tactic``, else the reference fallback."""
        from lanner.engine.backends.cpu_kernels import KERNELS

        factory = KERNELS.get(node.key)
        ctx.tactic = tactic
        fn = factory(node, ctx) if factory is not None else None
        ctx.tactic = ""
        if fn is not None:
            return fn, True
        return _fallback(node, ctx.graph, ctx.torch), False

    def prepare(self, graph: Graph, tactics: Mapping[str, str] | None = None) -> CpuExecutable:
        """Check every op (``UnsupportedOpError`` at build time), pack weights and build the step list.

        ``tactics`` maps node names to tactic names (from a plan or the tuner); missing nodes get the default.
        """
        verify(graph)
        for node in graph.nodes:
            lookup(node, graph.opset)
        return CpuExecutable(graph, self, dict(tactics or {}))


class CpuExecutable:
    """A prepared graph: ``run`` (outputs), ``run_all`` (every intermediate), ``profile`` (per-layer times)."""

    def __init__(self, graph: Graph, backend: CpuBackend, tactics: dict[str, str]) -> None:
        self.graph = graph
        self.tactics = tactics
        self._torch = _torch()
        ctx = backend.context(graph)
        self._slot = _slot_table(graph)
        template: list[Any] = [None] * (max(self._slot.values(), default=1) + 1)
        for name, tensor in ctx.constants.items():
            if name in self._slot:
                template[self._slot[name]] = tensor
        self._template = template
        self._inputs = [(name, self._slot[name]) for name in graph.inputs]
        producers = graph.producers()
        self._outputs = [
            (name, self._slot[name], name in graph.inputs or name in ctx.constants or _aliases(producers.get(name)))
            for name in graph.outputs
        ]
        self.steps: list[Step] = []
        self.names: list[tuple[str, str]] = []
        self.torch_nodes = 0
        frees = _frees(graph, self._slot)
        blocked: set[str] = set()  # values held as oneDNN blocked (``mkldnn``) tensors
        for i, node in enumerate(graph.nodes):
            fn, is_torch = backend.kernel(node, ctx, tactics.get(node.name, ""))
            fn = _layout_boundary(fn, node, blocked)
            self.torch_nodes += int(is_torch)
            ins = tuple(self._slot[n] if n else 0 for n in node.inputs)
            outs = tuple(self._slot[n] if n else 1 for n in node.outputs)
            self.steps.append((_guard(fn, node), ins, outs, frees[i]))
            self.names.append((node.name, node.op_type))

    @property
    def fallback_nodes(self) -> list[str]:
        """Names of nodes that run their numpy reference kernel (no torch kernel for them)."""
        return [
            name for (fn, *_), (name, _) in zip(self.steps, self.names, strict=True) if getattr(fn, "fallback", False)
        ]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph output as a numpy array (validated feeds; outputs never alias the inputs)."""
        slots = self._execute(feeds, None, keep_all=False)
        result = {}
        for name, slot, copy in self._outputs:
            array = _to_numpy(slots[slot])
            result[name] = array.copy() if copy or not array.flags.writeable else array
        return result

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every value the graph computes (for per-layer comparisons)."""
        slots = self._execute(feeds, None, keep_all=True)
        return {n: _to_numpy(slots[self._slot[n]]).copy() for node in self.graph.nodes for n in node.outputs if n}

    def profile(self, feeds: Mapping[str, np.ndarray]) -> list[tuple[str, str, float]]:
        """``(layer name, op, milliseconds)`` for every step of one run."""
        times: list[float] = []
        self._execute(feeds, times, keep_all=False)
        return [(name, op, ms) for (name, op), ms in zip(self.names, times, strict=True)]

    def _execute(self, feeds: Mapping[str, np.ndarray], times: list[float] | None, *, keep_all: bool) -> list[Any]:
        check_feeds(self.graph, feeds)
        torch = self._torch
        slots = list(self._template)
        for name, slot in self._inputs:
            slots[slot] = _to_tensor(torch, feeds[name])
        with torch.inference_mode():
            for fn, ins, outs, frees in self.steps:
                start = time.perf_counter() if times is not None else 0.0
                result = fn(*[slots[i] for i in ins])
                if len(outs) == 1:
                    slots[outs[0]] = result[0] if type(result) is tuple else result
                else:
                    for slot, value in zip(outs, result, strict=False):
                        slots[slot] = value
                if not keep_all:
                    for slot in frees:
                        slots[slot] = None
                if times is not None:
                    times.append((time.perf_counter() - start) * 1e3)
        return slots


def _slot_table(graph: Graph) -> dict[str, int]:
    """Value name → slot index; slot 0 is an always-None input (omitted optional), slot 1 a write sink."""
    slot: dict[str, int] = {}
    for name in (*graph.inputs, *graph.constants):
        slot.setdefault(name, len(slot) + 2)
    for node in graph.nodes:
        for name in (*node.inputs, *node.outputs):
            if name:
                slot.setdefault(name, len(slot) + 2)
    return slot


def _frees(graph: Graph, slot: dict[str, int]) -> list[tuple[int, ...]]:
    """Per step, the slots read for the last time there (never graph outputs, inputs or constants)."""
    keep = set(graph.outputs) | set(graph.inputs) | set(graph.constants)
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for name in (*node.inputs, *node.outputs):
            if name:
                last[name] = i
    result: list[list[int]] = [[] for _ in graph.nodes]
    for name, i in last.items():
        if name not in keep:
            result[i].append(slot[name])
    return [tuple(r) for r in result]


def _layout_boundary(fn: Callable[..., Any], node: Node, blocked: set[str]) -> Callable[..., Any]:
    """Keep oneDNN's blocked layout along a chain and convert to dense only at its boundary.

    ``blocked`` holds the values that are ``mkldnn`` tensors so far (updated here with ``node``'s outputs). A
    kernel marked ``mkldnn_in`` takes them as they are (and passes the layout on); any other kernel gets its
    blocked inputs converted with ``to_dense`` (a wrapper made once, here, only where needed). A kernel marked
    ``mkldnn_out`` (``onednn.blocked`` convs) always returns a blocked tensor.
    """
    positions = tuple(k for k, name in enumerate(node.inputs) if name in blocked)
    takes_blocked = getattr(fn, "mkldnn_in", False)
    if positions and not takes_blocked:
        fn = _dense_inputs(fn, positions)
    if getattr(fn, "mkldnn_out", False) or (positions and takes_blocked):
        blocked.update(name for name in node.outputs if name)
    return fn


def _dense_inputs(fn: Callable[..., Any], positions: tuple[int, ...]) -> Callable[..., Any]:
    """``fn`` with the blocked inputs at ``positions`` made dense: channels-last for 4-D (what the conv
    tactics downstream prefer; NCHW would make each of them re-order again), contiguous otherwise."""
    import torch

    cl = torch.channels_last

    def dense(x: Any) -> Any:
        return x.to_dense().contiguous(memory_format=cl) if x.dim() == 4 else x.to_dense()

    def run(*xs: Any) -> Any:
        return fn(*(dense(x) if k in positions else x for k, x in enumerate(xs)))

    run.fallback = getattr(fn, "fallback", False)  # type: ignore[attr-defined]
    return run


def _aliases(node: Node | None) -> bool:
    return node is not None and node.op_type in _ALIASING_OPS


def _to_tensor(torch: Any, array: Any) -> Any:
    """A torch tensor sharing memory with ``array``; copied when read-only (constants) or when torch cannot
    wrap its strides (e.g. a ``[..., ::-1]`` BGR→RGB view)."""
    array = np.asarray(array)
    if not array.flags.writeable or any(s < 0 for s in array.strides):
        array = np.array(array, copy=True)
    return torch.from_numpy(array)


def _to_numpy(tensor: Any) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor
    if tensor.is_quantized:  # an int8 tensor of the INT8 path (cpu_int8.py)
        from lanner.engine.backends.cpu_int8 import to_numpy_int8

        return to_numpy_int8(tensor)
    if tensor.is_mkldnn:  # a blocked-layout graph output (onednn.blocked)
        return tensor.to_dense().numpy()
    return tensor.contiguous().numpy()


def _fallback(node: Node, graph: Graph, torch: Any) -> Callable[..., Any]:
    """Run the op's numpy reference kernel on torch tensors (zero-copy both ways where possible)."""

    def run(*xs: Any) -> Any:
        arrays = [None if x is None else _to_numpy(x) for x in xs]
        outs = evaluate_node(node, graph, arrays)
        return tuple(_to_tensor(torch, _contiguous(o)) for o in outs)

    run.fallback = True  # type: ignore[attr-defined]
    return run


def _contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` itself when torch can wrap it (C order, no negative strides), else a C-ordered copy."""
    if array.flags.c_contiguous and all(s >= 0 for s in array.strides):
        return array
    return np.array(array, order="C", copy=True)


def _guard(fn: Callable[..., Any], node: Node) -> Callable[..., Any]:
    """The step closure; kernel failures surface as ``KernelError`` naming the node (only on the error path)."""

    def run(*xs: Any) -> Any:
        try:
            return fn(*xs)
        except LannerError:
            raise
        except Exception as exc:
            shapes = ", ".join("-" if x is None else f"{x.dtype} {list(x.shape)}" for x in xs)
            raise KernelError(
                f"kernel failed on inputs ({shapes}): {exc}", where=f"node '{node.name}' ({node.op_type})"
            ) from exc

    run.fallback = getattr(fn, "fallback", False)  # type: ignore[attr-defined]
    return run
