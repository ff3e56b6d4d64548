"""Backends behind one protocol (``base.Backend``). Only ``reference`` exists so far."""

from __future__ import annotations

from lanner.core.errors import ConfigError
from lanner.engine.backends.base import Backend, Executable, check_feeds
from lanner.engine.backends.cpu import CpuBackend
from lanner.engine.backends.reference import ReferenceBackend

BACKENDS: dict[str, type] = {"reference": ReferenceBackend, "cpu": CpuBackend}


def get_backend(name: str) -> Backend:
    """A backend instance by name (``"reference"``)."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown engine backend {name!r}", fix=f"choose one of {sorted(BACKENDS)}")
    backend: Backend = BACKENDS[name]()
    return backend


__all__ = ["BACKENDS", "Backend", "CpuBackend", "Executable", "ReferenceBackend", "check_feeds", "get_backend"]
