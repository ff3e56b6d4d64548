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
        # inputs whose first dimension is the batch (declared shapes): what ``infer(pad=True)`` splits and pads
        self._batched_inputs = {s.name for s in self.inputs if s.shape and s.shape[0] == plan.batch_symbol}

    @classmethod
    def load(cls, path: str | Path, *, check: bool = True) -> Engine:
        """Read a plan file; ``PlanMismatchError`` if it was built for another version or device."""
        return cls(read_plan(path, check=check))

    @property
    def profiles(self) -> list[Profile]:
        return list(self.plan.profiles)

    def infer(self, feeds: Mapping[str, np.ndarray], *, pad: bool = False) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (every input by name); returns every output by name.

        A batch outside every profile is a ``DataError``, as in TensorRT. ``pad=True`` runs any batch: larger
        than the largest profile, it is split into pieces of that profile's max; a piece no profile covers (a
        partial last batch on a plan built ``--batch 4``) is padded with zero rows to the nearest profile's min
        and the outputs are cut back. Inputs and outputs are then batch-first.
        """
        if not pad or not self.plan.profiles:
            return self.executable_for(feeds).run(feeds)
        n = self._batch_of(feeds)
        batched_in = self._batched_inputs
        step = max(p.max for p in self.plan.profiles)
        if n > step:
            pieces = [{k: v[i : i + step] if k in batched_in else v for k, v in feeds.items()}
                      for i in range(0, n, step)]  # fmt: skip
            parts = [self.infer(piece, pad=True) for piece in pieces]
            # an output is batched when it has one row per image (its declared dim may be a derived symbol)
            rows = [min(step, n - i) for i in range(0, n, step)]
            batched = {k for k in parts[0] if all(p[k].ndim and len(p[k]) == r for p, r in zip(parts, rows))}
            return {k: np.concatenate([p[k] for p in parts]) if k in batched else parts[0][k] for k in parts[0]}
        size = padded_batch(n, [(p.min, p.max) for p in self.plan.profiles])
        if size == n:
            return self.executable_for(feeds).run(feeds)
        grown = {k: np.concatenate([v, np.zeros((size - n, *v.shape[1:]), v.dtype)]) if k in batched_in else v
                 for k, v in feeds.items()}  # fmt: skip
        out = self.executable_for(grown).run(grown)
        return {name: value[:n] if value.ndim and len(value) == size else value for name, value in out.items()}

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


def padded_batch(batch: int, ranges: list[tuple[int, int]]) -> int:
    """The batch to run ``batch`` rows at, given the profiles' ``(min, max)`` ranges: ``batch`` itself when a
    profile covers it (or there are none), else the smallest profile min above it (``Engine.infer(pad=True)``).

    >>> padded_batch(3, [(4, 4)]), padded_batch(3, [(1, 1), (4, 8)]), padded_batch(2, [(1, 4)])
    (4, 4, 2)
    """
    if not ranges or any(lo <= batch <= hi for lo, hi in ranges):
        return batch
    above = [lo for lo, _ in ranges if lo > batch]
    return min(above) if above else batch  # none above: ``select_profile`` names the profiles in its error


def _spec(graph: Any, name: str) -> TensorSpec:
    value = graph.values[name]
    return TensorSpec(name, value.dtype, tuple(value.shape or ()))
