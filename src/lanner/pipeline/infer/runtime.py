"""Model runtimes behind one small protocol, so the detector does not care what executes the model.

``open_runtime(path)`` picks by file: ``.onnx`` runs in ONNX Runtime (CPU, ``threads`` intra-op threads;
two by default, the sweet spot on a small edge box), a lanner plan (``.plan``) runs in the lanner engine.
``runtime="lanner"`` with an ``.onnx`` model builds a plan on first use and caches it (``plan_cache``).
A runtime exposes the model's ``metadata`` (ONNX ``metadata_props``), its input name and fixed batch
size (``None`` when dynamic), and ``run(nchw) -> {output name: array}``.

ONNX Runtime's intra-op threads do not spin-wait between operators unless ``spin=True``: spinning buys
a little speed for a process that only runs the model, but in the pipeline it burns the CPU time the
decode threads need, and when a decode thread preempts one ORT thread the other spins at the barrier
(on a loaded 2-core machine ``bench/pipeline.py`` saw inference alone at half speed with spinning on).

Example:
    >>> rt = open_runtime("detector.onnx", threads=2)  # doctest: +SKIP
    >>> rt.run(np.zeros((1, 3, 384, 640), np.float32))["boxes"].shape  # doctest: +SKIP
    (1, 5040, 4)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lanner.core.assets import resolve_asset
from lanner.core.errors import ConfigError, DataError
from lanner.core.ultralytics import lanner_metadata

RUNTIMES = ("auto", "onnxruntime", "lanner")
DEFAULT_PLAN_BATCH = 4  # the batch a plan built from an ONNX model is tuned at when nobody says (the mux's default)
PLAN_SUFFIXES = (".plan", ".lplan")


@runtime_checkable
class Runtime(Protocol):
    """What the inference stages need from a model runtime."""

    path: Path
    metadata: dict[str, str]
    input_name: str
    fixed_batch: int | None

    def run(self, nchw: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch (N x C x H x W float32); return every output by name."""
        ...


class OrtRuntime:
    """ONNX Runtime on CPU. ``threads`` intra-op threads, one inter-op thread, sequential execution;
    ``spin``: let the intra-op threads busy-wait between operators (see the module docstring)."""

    def __init__(self, path: Path, threads: int = 2, spin: bool = False, model_bytes: bytes | None = None) -> None:
        """``model_bytes``: run this serialized model instead of the file (e.g. ``path`` resized to another
        input size); ``path`` still names it in messages."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError(
                "ONNX Runtime is not installed, and it runs .onnx models here",
                where=str(path),
                fix="pip install 'lanner[pipeline]' (or build a lanner plan: lanner build)",
            ) from None

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.spin = spin
        try:
            model = model_bytes if model_bytes is not None else str(path)
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types (InvalidGraph, Fail, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"ONNX Runtime cannot load the model: {first}", where=str(path),
                            fix="check the file is a complete ONNX model (re-export it)") from None  # fmt: skip
        self.path = path
        first_input = self.session.get_inputs()[0]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = lanner_metadata(meta, first_input.shape, where=str(path))
        self.input_name = first_input.name
        batch_dim = first_input.shape[0] if first_input.shape else None
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, nchw: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(nchw, np.float32)})
        return dict(zip(self.output_names, values))


def open_runtime(
    path: str | Path,
    runtime: str = "auto",
    threads: int = 2,
    spin: bool = False,
    input_size: tuple[int, int] | None = None,
    plan_batch: int | None = None,
) -> Runtime:
    """Open ``path`` (or ``builtin:<name>``, a model shipped with lanner) in ``runtime`` ("auto": by suffix).

    ``spin`` applies to ONNX Runtime only (see the module docstring). ``input_size`` (height, width) runs an
    ONNX detector at another network input than it was exported at (``infer.input_size``); a plan is fixed
    at the size it was built for, so there it must match. ``plan_batch``: the batch a plan built from an ONNX
    model (``runtime="lanner"``) is tuned at (None: ``DEFAULT_PLAN_BATCH``).
    """
    path = resolve_asset(path)
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}", fix=f"use one of {', '.join(RUNTIMES)}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a model file", fix="pass the .onnx or .plan file inside it")
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}", fix="check the path (relative paths are from the cwd)")
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    kind = runtime if runtime != "auto" else ("lanner" if path.suffix in PLAN_SUFFIXES else "onnxruntime")
    if kind == "lanner" and path.suffix not in PLAN_SUFFIXES:  # an ONNX model: build the plan once, then reuse it
        from lanner.pipeline.infer.plan_cache import cached_plan

        data = at_metadata_size(path) if input_size is None else resized_model_bytes(path, input_size)
        plan_path, plan = cached_plan(data, name=path.name, batch=plan_batch or DEFAULT_PLAN_BATCH)
        return _open_plan(plan_path, threads, plan)
    if kind == "lanner":
        return _checked_size(_open_plan(path, threads), input_size)
    if input_size is None:
        return OrtRuntime(path, threads, spin)
    return OrtRuntime(path, threads, spin, model_bytes=resized_model_bytes(path, input_size))


def at_metadata_size(path: Path) -> bytes:
    """The ONNX at ``path``, its dynamic image height/width set to the size its metadata names (an Ultralytics
    ``dynamic=True`` export's ``imgsz``), so a plan can be built from it; other models as they are."""
    data = path.read_bytes()
    try:
        import onnx

        model = onnx.load_model_from_string(data)
    except Exception:  # not readable here: the builder's importer says why, with the file named
        return data
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    meta = lanner_metadata({p.key: p.value for p in model.metadata_props}, where=str(path))
    if len(dims) != 4 or all(d.HasField("dim_value") for d in dims[2:]) or "input_size" not in meta:
        return data
    from lanner.engine.onnx_import import fix_input_size

    height, width = json.loads(meta["input_size"])
    return fix_input_size(data, (int(height), int(width)))


def resized_model_bytes(path: Path, input_size: tuple[int, int]) -> bytes:
    """The ONNX at ``path`` rewritten for ``input_size`` (``lanner.pipeline.infer.input_size``), serialized."""
    import onnx

    from lanner.pipeline.infer.input_size import resize_detector_onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise DataError(f"cannot read the ONNX model: {exc}", where=str(path), fix="re-export the model") from None
    return resize_detector_onnx(model, input_size, where=f"primary.input_size ({path.name})").SerializeToString()


def _checked_size(runtime: Runtime, input_size: tuple[int, int] | None) -> Runtime:
    """``runtime`` when it takes ``input_size`` (or none is asked for); else a ``ConfigError`` that says how."""
    built = json.loads(runtime.metadata.get("input_size", "null"))
    if input_size is not None and built is not None and tuple(built) != tuple(input_size):
        raise ConfigError(
            f"the plan was built for input {built[0]}x{built[1]}, the config asks for {input_size[0]}x{input_size[1]}",
            where=f"primary.input_size ({runtime.path.name})",
            fix="drop input_size, or build a plan from the ONNX at that size (or point the model at the .onnx)",
        )
    return runtime


def _open_plan(path: Path, threads: int, plan: Any = None) -> Runtime:
    try:
        from lanner.engine.runtime import Engine  # noqa: F401  (the engine's plan runtime)
    except ImportError:
        raise ConfigError(
            "lanner plan files cannot be run by the pipeline in this install",
            where=str(path),
            fix="point the model at the .onnx file (runtime: onnxruntime)",
        ) from None
    return PlanRuntime(path, threads, plan)


class PlanRuntime:
    """A lanner engine plan (``lanner.engine.runtime.Engine``), same protocol as ``OrtRuntime``.

    The plan keeps the ONNX ``metadata_props``; any batch runs (``run``: split or padded to the profiles).
    ``threads`` sets torch's intra-op threads, which are process-wide: the pipeline's workers all open their
    runtime from the same ``primary.threads``, so they agree (2 workers x 1 thread, as with ONNX Runtime).
    """

    def __init__(self, path: Path, threads: int = 2, plan: Any = None) -> None:
        """``plan``: the ``Plan`` read from (or just written to) ``path``, so it is not read again."""
        import torch

        from lanner.engine.runtime import Engine

        torch.set_num_threads(threads)
        self.engine = Engine.load(path) if plan is None else Engine(plan)
        self.path = path
        first = self.engine.inputs[0]
        meta = getattr(self.engine.plan.graph, "metadata_props", {}) or {}
        self.metadata = lanner_metadata(meta, first.shape, where=str(path))
        self.input_name = first.name
        batch_dim = first.shape[0] if first.shape else None
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    def run(self, nchw: np.ndarray) -> dict[str, np.ndarray]:
        """Any batch: split to the plan's largest profile and a partial batch padded to the nearest profile
        (``Engine.infer(pad=True)``), as DeepStream runs a partial batch on a fixed-batch engine."""
        nchw = np.ascontiguousarray(nchw, np.float32)
        if self.fixed_batch is None:
            return dict(self.engine.infer({self.input_name: nchw}, pad=True))
        step = self.fixed_batch  # a static batch (the detector pads the last chunk)
        parts = [self.engine.infer({self.input_name: nchw[i : i + step]}) for i in range(0, len(nchw), step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
