"""lanner plans built from an ONNX model on first use and kept on disk (``runtime: lanner`` with an ``.onnx`` model).

DeepStream's nvinfer does the same with TensorRT: give it an ONNX file and it builds the engine the first time
(slow) and serializes it next to the model (``model-engine-file``) so the next start is fast. Here the plan is
tuned on this machine at the mux batch (profile ``1:batch:batch``; a larger batch is split by ``PlanRuntime``),
named by a hash of the model bytes (after any ``input_size`` resize), the batch, and this machine's device and
library fingerprint, under ``$LANNER_CACHE_DIR`` (default ``~/.cache/lanner/plans``). So a new model, size,
batch, CPU or library version gets its own plan, and a cached plan is never one that would not load.

A cached file that cannot be read (half-written by a killed process, disk trouble) is rebuilt, with a warning:
the cache only ever saves time. Plans are written to a temporary name and renamed, so readers never see half
a file.

Example:
    >>> path, plan = cached_plan(onnx_bytes, name="detector", batch=4)  # doctest: +SKIP
    >>> PlanRuntime(path, plan=plan)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lanner.core.errors import ConfigError, DataError, LannerError

if TYPE_CHECKING:
    from lanner.engine.plan import Plan

logger = logging.getLogger("lanner.pipeline")

CACHE_ENV = "LANNER_CACHE_DIR"


def cache_dir() -> Path:
    """Where built plans go: ``$LANNER_CACHE_DIR`` or ``~/.cache/lanner/plans``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "lanner" / "plans"


def plan_key(model_bytes: bytes, batch: int) -> str:
    """A short hash of the model, the batch and this machine's device + library fingerprint."""
    from lanner.engine.fingerprint import device_fingerprint, fingerprint_id, library_versions

    machine = fingerprint_id(device_fingerprint(), library_versions())
    digest = hashlib.sha256(model_bytes)
    digest.update(f"|batch={batch}|{machine}".encode())
    return digest.hexdigest()[:20]


def cached_plan(model_bytes: bytes, *, name: str, batch: int, directory: Path | None = None) -> tuple[Path, Plan]:
    """A plan for ``model_bytes`` at ``batch`` and its file: read from the cache, or built and cached now."""
    from lanner.engine.plan import read_plan

    directory = directory or cache_dir()
    path = directory / f"{Path(name).stem}-{plan_key(model_bytes, batch)}.plan"
    if path.is_file():
        try:
            return path, read_plan(path)
        except LannerError as exc:
            logger.warning("cached plan %s is unusable (%s); building it again", path, exc)
    return path, _build(model_bytes, name, batch, path)


def _build(model_bytes: bytes, name: str, batch: int, path: Path) -> Plan:
    from lanner.engine.build import BuildConfig, build_engine
    from lanner.engine.plan import write_plan

    logger.warning("building a lanner plan for %s at batch %d (first use; cached as %s)", name, batch, path)
    start = time.perf_counter()
    profiles = [f"1:{batch}:{batch}"] if _dynamic_batch(model_bytes) else []  # a fixed batch needs no profile
    plan = build_engine(model_bytes, BuildConfig(batch=profiles))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_plan(plan, path)  # written beside it and moved into place: other processes never see half a plan
    except (OSError, DataError) as exc:
        raise ConfigError(
            f"cannot write the plan cache: {getattr(exc, 'what', None) or getattr(exc, 'strerror', None) or exc}",
            where=str(path.parent),
            fix=f"set {CACHE_ENV} to a writable folder",
        ) from None
    logger.warning("built %s in %.1f s", path.name, time.perf_counter() - start)
    return plan


def _dynamic_batch(model_bytes: bytes) -> bool:
    """True when the model's first input has a symbolic (or unknown) batch dimension."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    initializers = {t.name for t in model.graph.initializer}
    first = next(i for i in model.graph.input if i.name not in initializers)
    dims = first.type.tensor_type.shape.dim
    return not dims or not dims[0].HasField("dim_value")


__all__ = ["CACHE_ENV", "cache_dir", "cached_plan", "plan_key"]
