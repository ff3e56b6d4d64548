"""The backend protocol: a backend turns a (typed, optimized) ``Graph`` into an ``Executable``.

Every backend is one module behind this tiny protocol (reference now; cpu and cuda later).
``check_feeds`` is shared so every backend rejects bad inputs with the same message.

Example:
    >>> from lanner.engine.backends import get_backend
    >>> exe = get_backend("reference").prepare(graph)  # doctest: +SKIP
    >>> exe.run({"images": batch})["logits"].shape  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from lanner.core.errors import DataError
from lanner.engine.ir.graph import Graph, Node, Value


class Executable(Protocol):
    """A prepared graph: call ``run`` with every input, get every output."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def run_all(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every value the graph computes, by name (calibration reads intermediate tensors)."""
        ...


class Backend(Protocol):
    """One way to execute graphs."""

    name: str

    def supports(self, node: Node) -> bool: ...

    def prepare(self, graph: Graph) -> Executable: ...


def check_feeds(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Validate names, dtypes and shapes of ``feeds``; returns the bound symbolic dims.

    A symbol (e.g. ``"N"``) must take the same size everywhere it appears.
    """
    if not isinstance(feeds, Mapping):
        raise DataError(
            f"feeds must be a mapping of input name to array, got {type(feeds).__name__}",
            fix=f"pass a dict such as {{{', '.join(repr(n) + ': array' for n in graph.inputs)}}}",
        )
    missing = [n for n in graph.inputs if n not in feeds]
    unknown = [n for n in feeds if n not in graph.inputs]
    if missing or unknown:
        raise DataError(
            f"inputs do not match the model: missing {missing}, unexpected {unknown}",
            fix=f"feed exactly {list(graph.inputs)}",
        )
    bound: dict[str, int] = {}
    for name in graph.inputs:
        value, array = graph.values[name], np.asarray(feeds[name])
        if not _matches(value, array, bound):
            got = Value(name, array.dtype, tuple(array.shape)).describe()
            raise DataError(f"input '{name}' expects {value.describe()}, got {got}", fix="convert or resize the input")
    return bound


def _matches(value: Value, array: np.ndarray, bound: dict[str, int]) -> bool:
    if value.dtype is not None and array.dtype != value.dtype:
        return False
    if value.shape is None:
        return True
    if len(value.shape) != array.ndim:
        return False
    for dim, size in zip(value.shape, array.shape, strict=True):
        if isinstance(dim, int):
            if dim != size:
                return False
        elif bound.setdefault(dim, size) != size:
            return False
    return True
