"""Tactic selection: for each node with several kernels, time them at the profile's opt shape and pick one.

The builder runs the graph once at the opt shape (seeded random inputs), node by node. A node with more
than one candidate (``backend.tactics``) is timed with its real upstream inputs, so a layout change it
forces on its input (e.g. NCHW → channels-last) is part of its measured time: warm-up runs, then the
median of ``runs``; the default (first) tactic is kept unless another is faster by ``margin`` (5% by
default), which stops flip-flopping on noise (reference §5.3.2). Per-node timing cannot see the conversions a
choice forces on the *next* node, so the per-node plan is then timed end to end against the uniform plans
(one tactic everywhere it is offered, or one plus a partial tactic where that is offered; see ``variants``)
and the fastest is kept, by the same margin; the variants are timed interleaved, round by round, so load
changes on a shared machine hit them alike. Decisions go to the
``TimingCache`` (one entry per node signature, one per graph).

Example:
    >>> choices = select_tactics(graph, get_backend("cpu"), {"images": (8, 3, 224, 224)})  # doctest: +SKIP
    >>> choices.tactics["conv1 + relu"]  # doctest: +SKIP
    'onednn.fused'
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanner.core.errors import ConfigError
from lanner.core.progress import ProgressFn, advance
from lanner.engine.fingerprint import device_fingerprint, fingerprint_id, library_versions
from lanner.engine.ir.graph import Graph, Node
from lanner.engine.timing_cache import CACHE_MODES, TimingCache, TimingCacheMissError, cache_key

logger = logging.getLogger("lanner.engine")

Timer = Callable[[Node | None, str, Callable[[], Any]], float]
"""``timer(node, tactic, call) -> milliseconds``: how one candidate is measured (``node`` is None when a
whole-graph variant is timed; ``tactic`` is then the variant name)."""


@dataclass(frozen=True)
class TimingPolicy:
    """How candidates are timed: ``warmup`` runs, the median of ``runs``, ``margin`` before leaving the default."""

    warmup: int = 2
    runs: int = 5
    margin: float = 0.05


@dataclass
class TacticChoices:
    """The result: node name → tactic, and counts of timed nodes and cache hits."""

    tactics: dict[str, str] = field(default_factory=dict)
    timed: int = 0
    hits: int = 0
    candidates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    variant: str = "per-node"


def signature(node: Node, inputs: list[Any], graph: Graph) -> dict[str, Any]:
    """What a timing depends on: op, attributes, concrete input shapes/dtypes and which inputs are constant."""
    attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in sorted(node.attrs.items())}
    shapes = [None if x is None else [int(d) for d in x.shape] for x in inputs]
    dtypes = [None if x is None else str(x.dtype).replace("torch.", "") for x in inputs]
    constant = [bool(name) and graph.constant(name) is not None for name in node.inputs]
    return {
        "op": node.op_type,
        "domain": node.domain,
        "attrs": attrs,
        "shapes": shapes,
        "dtypes": dtypes,
        "constant": constant,
    }


def select_tactics(
    graph: Graph,
    backend: Any,
    input_shapes: Mapping[str, tuple[int, ...]],
    cache: TimingCache | None = None,
    mode: str = "tune",
    policy: TimingPolicy = TimingPolicy(),
    timer: Timer | None = None,
    progress: ProgressFn | None = None,
) -> TacticChoices:
    """Choose a tactic for every node that has a choice; updates ``cache`` in ``tune``/``merge`` mode.

    ``replay`` never times anything: a node without a cache entry raises ``TimingCacheMissError``.
    ``timer(node, tactic, call) -> ms`` replaces the wall-clock measurement (tests use a fake clock).
    ``progress(1)`` is called after each node (the CLI's progress bar).
    """
    if mode not in CACHE_MODES:
        raise ConfigError(f"unknown cache mode {mode!r}", fix=f"choose one of {list(CACHE_MODES)}")
    cache = cache if cache is not None else TimingCache()
    fingerprint = fingerprint_id(device_fingerprint(), library_versions())
    ctx = backend.context(graph)
    feeds = _random_inputs(graph, input_shapes, ctx.torch)
    env: dict[str, Any] = {**ctx.constants, **feeds}
    result = TacticChoices()
    timer = timer or _wall_timer(policy)
    keys: list[str] = []
    with ctx.torch.inference_mode():
        for node in graph.nodes:
            inputs = [env[name] if name else None for name in node.inputs]
            candidates = backend.tactics(node, ctx)
            tactic = ""
            if len(candidates) > 1:
                key = cache_key(node.op_type, signature(node, inputs, graph), fingerprint)
                tactic = _decide(node, key, candidates, inputs, backend, ctx, cache, mode, policy, result, timer)
                result.tactics[node.name] = tactic
                result.candidates[node.name] = candidates
                keys.append(key)
            fn, _ = backend.kernel(node, ctx, tactic)
            outs = fn(*inputs)
            outs = tuple(_plain(o) for o in outs) if type(outs) is tuple else (_plain(outs),)
            env.update({name: value for name, value in zip(node.outputs, outs, strict=False) if name})
            advance(progress)
    logger.info("tactics: %d nodes timed, %d from the timing cache", result.timed, result.hits)
    if len(result.tactics) > 1:
        graph_key = cache_key("Graph", {"nodes": keys}, fingerprint)
        numpy_feeds = {name: tensor.numpy() for name, tensor in feeds.items()}
        _choose_variant(graph, graph_key, backend, numpy_feeds, cache, mode, policy, result, timer)
    return result


def variants(choices: TacticChoices) -> dict[str, dict[str, str]]:
    """Whole-graph alternatives to the per-node choices.

    ``"uniform:<t>"`` runs ``t`` on every node that offers it (the default elsewhere), so a layout is kept end to
    end without conversions. ``"uniform:<t>+<p>"`` is the same with a *partial* tactic ``p`` (offered on a strict
    subset of the nodes that offer ``t``, e.g. the cpu backend's ``gemm.nhwc`` on 1x1 convs) taking precedence
    where offered: a layout-compatible mix that noisy per-node timing may miss. A mixed variant that maps every
    node the same way as an earlier variant is dropped (not timed twice).
    """
    result = {"per-node": dict(choices.tactics)}
    offered_by: dict[str, set[str]] = {}
    for node, offered in choices.candidates.items():
        for t in offered:
            offered_by.setdefault(t, set()).add(node)
    names = sorted(offered_by)
    orders: list[tuple[str, tuple[str, ...]]] = [(f"uniform:{t}", (t,)) for t in names]
    orders += [(f"uniform:{t}+{p}", (p, t)) for t in names for p in names if p != t and offered_by[p] < offered_by[t]]
    for name, order in orders:
        plan = {
            node: next((t for t in order if t in offered), offered[0]) for node, offered in choices.candidates.items()
        }
        if len(order) == 1 or all(plan != other for other in result.values()):
            result[name] = plan
    return result


def _choose_variant(
    graph: Graph,
    key: str,
    backend: Any,
    feeds: dict[str, Any],
    cache: TimingCache,
    mode: str,
    policy: TimingPolicy,
    result: TacticChoices,
    timer: Timer,
) -> None:
    """Per-node timing cannot see the layout conversions a choice causes downstream (reference §5.3.5), so the
    per-node plan is timed end to end against the uniform plans and the fastest (by the margin) is kept."""
    options = variants(result)
    entry = cache.get(key)
    if mode != "tune" and entry is not None and entry.get("variant") in options:
        chosen = str(entry["variant"])
    elif mode == "replay":
        raise TimingCacheMissError(
            "timing cache has no whole-graph decision for this model at this shape",
            where=f"graph '{graph.name}'",
            fix="rebuild with --cache-mode merge (or tune) to record it",
        )
    else:
        calls = {
            name: functools.partial(backend.prepare(graph, tactics).run, feeds) for name, tactics in options.items()
        }
        times = _time_variants(calls, timer, policy)
        best = min(options, key=lambda n: times[n])
        chosen = best if times[best] < times["per-node"] * (1.0 - policy.margin) else "per-node"
        cache.put(key, {"variant": chosen, "times_ms": {n: round(ms, 4) for n, ms in times.items()}})
        logger.info("whole graph: %s (%s)", chosen, ", ".join(f"{n} {ms:.2f} ms" for n, ms in times.items()))
    result.variant = chosen
    result.tactics = options[chosen]


def _decide(
    node: Node,
    key: str,
    candidates: tuple[str, ...],
    inputs: list[Any],
    backend: Any,
    ctx: Any,
    cache: TimingCache,
    mode: str,
    policy: TimingPolicy,
    result: TacticChoices,
    timer: Timer,
) -> str:
    entry = cache.get(key)
    if mode != "tune" and entry is not None and entry.get("tactic") in candidates:
        result.hits += 1
        return str(entry["tactic"])
    if mode == "replay":
        raise TimingCacheMissError(
            f"timing cache has no decision for this {node.op_type} (key {key})",
            where=f"node '{node.name}'",
            fix="rebuild with --cache-mode merge (or tune) to record it; replay needs a cache from the same "
            "model, device and library versions",
        )
    times = {}
    for t in candidates:
        fn = backend.kernel(node, ctx, t)[0]
        times[t] = float(timer(node, t, functools.partial(fn, *inputs)))
    default = candidates[0]
    best = min(candidates, key=lambda t: times[t])
    chosen = best if times[best] < times[default] * (1.0 - policy.margin) else default
    cache.put(key, {"tactic": chosen, "times_ms": {t: round(ms, 4) for t, ms in times.items()}, "node": node.name})
    result.timed += 1
    logger.debug("%s: %s (%s)", node.name, chosen, ", ".join(f"{t} {ms:.3f} ms" for t, ms in times.items()))
    return chosen


def _wall_timer(policy: TimingPolicy) -> Timer:
    def measure(node: Node | None, tactic: str, call: Callable[[], Any]) -> float:
        """Median wall time of ``call()`` in milliseconds, after warm-up."""
        for _ in range(policy.warmup):
            call()
        samples = []
        for _ in range(max(policy.runs, 1)):
            start = time.perf_counter()
            call()
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples)

    measure.interleaved = True  # type: ignore[attr-defined]  # whole-graph variants: see _time_variants
    return measure


def _time_variants(
    calls: Mapping[str, Callable[[], Any]],
    timer: Timer,
    policy: TimingPolicy,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Milliseconds per whole-graph variant. With the wall-clock timer the variants run interleaved, round by
    round (alternating the order), and each gets the median of its rounds: a load change on a shared machine
    then hits every variant alike instead of whichever happened to be timed during it. A custom ``timer``
    (tests, external profilers) is called once per variant, as for single nodes."""
    if not getattr(timer, "interleaved", False):
        return {name: float(timer(None, name, call)) for name, call in calls.items()}
    names = list(calls)
    for name in names:
        for _ in range(policy.warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(max(policy.runs, 1)):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = clock()
            calls[name]()
            samples[name].append((clock() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def _plain(value: Any) -> Any:
    """A value in a backend's opaque layout (a oneDNN blocked ``mkldnn`` tensor) back to a plain one, so every
    downstream candidate can take it; the end-to-end variant timing measures the real conversions."""
    return value.to_dense() if getattr(value, "is_mkldnn", False) else value


def _random_inputs(graph: Graph, shapes: Mapping[str, tuple[int, ...]], torch: Any) -> dict[str, Any]:
    """Seeded inputs of the given shapes: standard normal floats, zeros otherwise."""
    rng = np.random.default_rng(0)
    feeds = {}
    for name in graph.inputs:
        dtype = graph.values[name].dtype or np.dtype(np.float32)
        shape = tuple(shapes[name])
        data = rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating) else np.zeros(shape, dtype)
        feeds[name] = torch.from_numpy(data)
    return feeds
