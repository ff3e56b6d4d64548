"""The ``reference`` backend: interprets the IR node by node with the numpy kernels of the op table.

It runs every supported op (including the engine's fused ops), so it is the test oracle for passes
and for the faster backends. Intermediate arrays are released after their last use.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lanner.core.errors import LannerError
from lanner.engine.backends.base import check_feeds
from lanner.engine.ir.graph import Graph, Node
from lanner.engine.ir.verify import verify
from lanner.engine.ops import OPS, lookup
from lanner.engine.shape_inference import evaluate_node


class KernelError(LannerError):
    """A kernel failed at run time; the message names the node."""


class ReferenceBackend:
    """numpy, every op; slow but simple and exact (accumulates conv/matmul in the input dtype)."""

    name = "reference"

    def supports(self, node: Node) -> bool:
        return node.key in OPS

    def prepare(self, graph: Graph) -> ReferenceExecutable:
        verify(graph)
        for node in graph.nodes:
            lookup(node, graph.opset)  # raises UnsupportedOpError at build time, not mid-run
        return ReferenceExecutable(graph)


class ReferenceExecutable:
    """A graph ready to run; ``run`` validates feeds, then executes nodes in order."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._last_use = _last_uses(graph)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph output. Outputs that view a feed (Identity, Reshape, ...) are copied, so writing
        to an output never changes the caller's input; views of constants stay read-only."""
        env = self._execute(feeds, keep_all=False)
        inputs = [np.asarray(v) for v in feeds.values()]
        result = {}
        for name in self.graph.outputs:
            array = env[name]
            result[name] = array.copy() if any(np.may_share_memory(array, x) for x in inputs) else array
        return result

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every value the graph computes (for per-layer comparisons, Polygraphy-style)."""
        env = self._execute(feeds, keep_all=True)
        return {name: env[name] for node in self.graph.nodes for name in node.outputs if name}

    def _execute(self, feeds: Mapping[str, np.ndarray], *, keep_all: bool) -> dict[str, np.ndarray]:
        check_feeds(self.graph, feeds)
        env: dict[str, np.ndarray] = dict(self.graph.constants)
        env.update({k: np.asarray(v) for k, v in feeds.items()})
        keep = set(self.graph.outputs) | set(self.graph.constants)
        for step, node in enumerate(self.graph.nodes):
            for name, array in zip(node.outputs, self._run_node(node, env), strict=False):
                if name:
                    env[name] = array
            if not keep_all:
                for name in self._last_use.get(step, ()):
                    if name not in keep:
                        env.pop(name, None)
        return env

    def _run_node(self, node: Node, env: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        inputs = [env[name] if name else None for name in node.inputs]
        try:
            return evaluate_node(node, self.graph, inputs)
        except LannerError:
            raise
        except Exception as exc:
            shapes = ", ".join("-" if a is None else f"{a.dtype} {list(a.shape)}" for a in inputs)
            where = f"node '{node.name}' ({node.op_type})"
            raise KernelError(f"kernel failed on inputs ({shapes}): {exc}", where=where) from exc


def _last_uses(graph: Graph) -> dict[int, list[str]]:
    """Step index → values that are read for the last time at that step."""
    last: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                last[name] = step
    result: dict[int, list[str]] = {}
    for name, step in last.items():
        result.setdefault(step, []).append(name)
    return result
