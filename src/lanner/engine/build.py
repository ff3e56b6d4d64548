"""``build_engine``: ONNX → optimized graph → tactics per optimization profile → ``Plan`` (TensorRT's builder).

Steps (each logged on ``lanner.engine``): import + shape inference, the pass pipeline ("Original: N layers →
after fusion: M"), then per profile: tactic selection at the profile's opt batch through the timing cache,
and a memory plan summary (value lifetimes over the schedule, first-fit offsets into one arena).

Example:
    >>> config = BuildConfig(batch=["1:8:32"], timing_cache="t.cache", cache_mode="tune")
    >>> plan = build_engine("resnet18.onnx", config)  # doctest: +SKIP
    >>> write_plan(plan, "resnet18.plan")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import PositiveInt

from lanner.core.config import Section
from lanner.core.errors import ConfigError, Interrupted
from lanner.core.progress import ProgressFn
from lanner.engine.backends import get_backend
from lanner.engine.ir.graph import Graph
from lanner.engine.onnx_import import fix_input_size, load_onnx
from lanner.engine.passes import count_layers, optimize
from lanner.engine.plan import Plan, Profile
from lanner.engine.tactics import Timer, TimingPolicy, select_tactics
from lanner.engine.timing_cache import TimingCache

logger = logging.getLogger("lanner.engine")
_ALIGN = 64


class BuildConfig(Section):
    """What to build. ``batch``: one ``min:opt:max`` string per optimization profile (default: the model's
    fixed batch, or ``1:1:32`` for a dynamic one). ``input_size``: [height, width] for a model whose image
    inputs have dynamic height/width (trtexec's ``--shapes``). ``tune=False`` keeps every default tactic."""

    precision: Literal["fp32"] = "fp32"
    backend: Literal["cpu"] = "cpu"
    batch: list[str] = []
    input_size: tuple[PositiveInt, PositiveInt] | None = None
    timing_cache: str | None = None
    cache_mode: Literal["tune", "replay", "merge"] = "tune"
    tune: bool = True
    tactic_warmup: int = 2
    tactic_runs: int = 5
    tactic_margin: float = 0.05


def build_engine(
    model: str | Path | bytes | Any,
    config: BuildConfig | None = None,
    *,
    timer: Timer | None = None,
    progress: ProgressFn | None = None,
) -> Plan:
    """Build a ``Plan`` from an ONNX path, bytes or ``ModelProto`` (see module docstring).

    ``timer`` replaces the wall-clock tactic timing (see ``tactics.select_tactics``); ``progress(1)`` is
    called after every layer of the optimized graph, once per profile, while tactics are chosen (not at all
    with ``tune`` off).
    """
    config = config or BuildConfig()
    source = _model_bytes(model)
    raw = source if config.input_size is None else fix_input_size(source, config.input_size)
    graph = load_onnx(raw)
    optimized = optimize(graph)
    symbol = _batch_symbol(optimized)
    profiles = _profiles(optimized, symbol, config.batch)
    cache = _open_cache(config)
    policy = TimingPolicy(config.tactic_warmup, config.tactic_runs, config.tactic_margin)
    backend = get_backend(config.backend)
    built = []
    keep_cache = bool(config.timing_cache and config.tune and config.cache_mode != "replay")
    try:
        for profile in profiles:
            shapes = _shapes_at(optimized, symbol, profile.opt)
            tactics: dict[str, str] = {}
            if config.tune:
                choices = select_tactics(optimized, backend, shapes, cache, config.cache_mode, policy, timer, progress)
                tactics = choices.tactics
            built.append(Profile(profile.min, profile.opt, profile.max, tactics))
    except KeyboardInterrupt:  # the layers timed so far are the expensive part: keep them for the next build
        raise _interrupted(cache, config, keep_cache) from None
    if keep_cache:
        cache.save(config.timing_cache)
    settings = config.model_dump(exclude={"timing_cache"})
    return Plan(
        graph=optimized,
        profiles=built,
        build_config=settings,
        source_sha256=hashlib.sha256(source).hexdigest(),
        layers={"original": count_layers(graph), "fused": count_layers(optimized)},
        memory_plan=[memory_plan(optimized, symbol, p.opt) for p in built],
        batch_symbol=symbol,
    )


def _interrupted(cache: TimingCache, config: BuildConfig, keep_cache: bool) -> Interrupted:
    """Ctrl-C while tactics were timed: save what was measured (with a timing cache) and say how to go on."""
    if keep_cache and config.timing_cache:
        cache.save(config.timing_cache)
        fix = "build again with --cache-mode merge: it times only the layers the cache does not hold yet"
        return Interrupted(f"interrupted while timing tactics; {len(cache.entries)} layer timings saved",
                           where=config.timing_cache, fix=fix)  # fmt: skip
    fix = "pass --timing-cache FILE to keep the timings of an interrupted build for the next one"
    return Interrupted("interrupted while timing tactics; nothing was written", fix=fix)


def _model_bytes(model: str | Path | bytes | Any) -> bytes:
    if isinstance(model, bytes):
        return model
    if isinstance(model, str | Path):
        load_onnx(model, infer=False)  # the importer's clear errors for a missing or corrupt file
        return Path(model).read_bytes()
    data: bytes = model.SerializeToString()
    return data


def _open_cache(config: BuildConfig) -> TimingCache:
    if not config.timing_cache:
        if config.cache_mode == "replay" and config.tune:
            raise ConfigError("cache mode 'replay' needs a timing cache", fix="pass --timing-cache FILE")
        return TimingCache()
    return TimingCache.load(config.timing_cache, must_exist=config.cache_mode == "replay")


def _batch_symbol(graph: Graph) -> str | None:
    """The symbol of the inputs' first dimension (``"N"``) when the batch is dynamic, else None. Inputs with a
    fixed first dimension (a gain, a threshold) are not batched; two different symbols leave no batch."""
    first = [graph.values[name].shape for name in graph.inputs]
    symbols = {shape[0] for shape in first if shape and isinstance(shape[0], str)}
    return symbols.pop() if len(symbols) == 1 else None


def _profiles(graph: Graph, symbol: str | None, specs: list[str]) -> list[Profile]:
    if symbol is None:
        shape = graph.values[graph.inputs[0]].shape if graph.inputs else None
        fixed = int(shape[0]) if shape and isinstance(shape[0], int) else 1
        profiles = [Profile.parse(s) for s in specs] or [Profile(fixed, fixed, fixed)]
        bad = [f"{p.min}:{p.opt}:{p.max}" for p in profiles if (p.min, p.opt, p.max) != (fixed,) * 3]
        if bad:
            raise ConfigError(
                f"the model has a fixed batch of {fixed}, so batch profiles {bad} cannot be built",
                fix="re-export it with a dynamic batch (export_onnx(..., batch='dynamic')) or drop --batch",
            )
        return profiles
    return [Profile.parse(s) for s in specs] or [Profile(1, 1, 32)]


def _shapes_at(graph: Graph, symbol: str | None, batch: int) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name in graph.inputs:
        value = graph.values[name]
        dims = [batch if d == symbol else d for d in (value.shape or ())]
        if not all(isinstance(d, int) for d in dims):
            raise ConfigError(
                f"input '{name}' has dynamic dims {value.describe()} other than the batch",
                fix="build it at one size with --input-size HxW (BuildConfig.input_size), or export it with a fixed "
                "image size",
            )
        shapes[name] = tuple(int(d) for d in dims)
    return shapes


def memory_plan(graph: Graph, symbol: str | None, batch: int) -> dict[str, Any]:
    """Arena size for the activations at ``batch``: lifetimes over the node order, first-fit offsets.

    ``sum_bytes`` is every activation allocated separately, ``peak_live_bytes`` the lower bound, and
    ``arena_bytes`` what the first-fit plan needs. Values whose size is unknown at build time are counted
    in ``dynamic_values`` and left out.
    """
    sizes, start, end, dynamic = {}, {}, {}, 0
    for step, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name in start:
                end[name] = step
        for name in node.outputs:
            value = graph.values.get(name)
            if not name or value is None or value.shape is None or value.dtype is None:
                continue
            dims = [batch if d == symbol else d for d in value.shape]
            if not all(isinstance(d, int) for d in dims):
                dynamic += 1
                continue
            sizes[name] = int(np.prod([int(d) for d in dims], dtype=np.int64)) * value.dtype.itemsize
            start[name] = end[name] = step
    for name in graph.outputs:
        if name in end:
            end[name] = len(graph.nodes)
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, start, end)
    arena = 0
    for name in sorted(sizes, key=lambda n: (-sizes[n], start[n], n)):
        size = -(-sizes[name] // _ALIGN) * _ALIGN
        live = sorted((o, s) for o, s, b, e in placed if not (e < start[name] or end[name] < b))
        offset = 0
        for o, s in live:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, start[name], end[name]))
        arena = max(arena, offset + size)
    peak = max(
        (sum(sizes[n] for n in sizes if start[n] <= step <= end[n]) for step in range(len(graph.nodes) + 1)), default=0
    )
    return {
        "batch": batch,
        "values": len(sizes),
        "dynamic_values": dynamic,
        "sum_bytes": sum(sizes.values()),
        "peak_live_bytes": peak,
        "arena_bytes": arena,
    }
