"""The runtime: ``Engine.load(path)`` → ``engine.infer({name: array}) -> {name: array}`` (TensorRT's runtime).

An engine holds one prepared executable per optimization profile (built lazily, under a lock); ``infer``
validates the feeds against the model's input specs, picks the profile whose batch range holds the batch
(the one with the nearest opt batch when several do) and runs it. Executables keep no per-call state, so one
``Engine`` serves concurrent ``infer`` calls from many threads.

Example:
    >>> engine = Engine.load("resnet18.plan")  # doctest: +SKIP
    >>> engine.inputs  # doctest: +SKIP
    [TensorSpec(name='images', dtype=dtype('float32'), shape=('N', 3, 224, 224))]
    >>> engine.infer({"images": batch})["output"].shape  # doctest: +SKIP
    (8, 1000)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.errors import DataError
from lanner.engine.backends import get_backend
from lanner.engine.backends.base import check_feeds
from lanner.engine.ir.graph import Shape
from lanner.engine.plan import Plan, Profile, read_plan


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: ONNX name, numpy dtype, shape (the batch as its symbol, e.g. ``"N"``)."""

    name: str
    dtype: np.dtype
    shape: Shape


class Engine:
    """A loaded plan, ready to run (see module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        graph = plan.graph
        self.inputs = [_spec(graph, n) for n in graph.inputs]
        self.outputs = [_spec(graph, n) for n in graph.outputs]
        self._backend = get_backend(str(plan.build_config.get("backend", "cpu")))
        self._executables: dict[int, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, *, check: bool = True) -> Engine:
        """Read a plan file; ``PlanMismatchError`` if it was built for another version or device."""
        return cls(read_plan(path, check=check))

    @property
    def profiles(self) -> list[Profile]:
        return list(self.plan.profiles)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (every input by name); returns every output by name."""
        return self.executable_for(feeds).run(feeds)

    def executable_for(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """The prepared executable of the profile that serves these feeds (validated)."""
        check_feeds(self.plan.graph, feeds)
        index = self.select_profile(self._batch_of(feeds))
        exe = self._executables.get(index)
        if exe is None:
            with self._lock:
                exe = self._executables.get(index)
                if exe is None:
                    exe = self._backend.prepare(self.plan.graph, self.plan.profiles[index].tactics)  # type: ignore[call-arg]
                    self._executables[index] = exe
        return exe

    def select_profile(self, batch: int) -> int:
        """Index of the profile for ``batch``; ``DataError`` when no profile's range holds it."""
        matches = [i for i, p in enumerate(self.plan.profiles) if p.covers(batch)]
        if not matches:
            ranges = ", ".join(f"{p.min}..{p.max}" for p in self.plan.profiles)
            raise DataError(
                f"batch {batch} is outside the plan's optimization profiles ({ranges})",
                fix="split the batch, or rebuild with a profile that covers it (lanner build --batch min:opt:max)",
            )
        return min(matches, key=lambda i: (abs(self.plan.profiles[i].opt - batch), i))

    def _batch_of(self, feeds: Mapping[str, np.ndarray]) -> int:
        if not self.inputs:
            return 1
        first = np.asarray(feeds[self.inputs[0].name])
        return int(first.shape[0]) if first.ndim else 1


def _spec(graph: Any, name: str) -> TensorSpec:
    value = graph.values[name]
    return TensorSpec(name, value.dtype, tuple(value.shape or ()))
