"""Device fingerprint and library versions: what a plan and a timing cache are only valid for.

TensorRT engines are tied to the GPU and the TensorRT version and fail obscurely elsewhere (reference §0.3);
lanner records both in every plan and timing-cache key, and ``Engine.load`` says what differs.
For the CPU the device is the CPU model, architecture and the ISA extensions the kernels dispatch on
(AVX2, AVX-512, VNNI, AMX, NEON); the core count is left out on purpose (containers vary it, kernels don't).

Example:
    >>> sorted(device_fingerprint())
    ['arch', 'isa', 'kind', 'model']
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ISA_FLAGS: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve", "neon",
)  # fmt: skip
"""CPU flags that change which kernels oneDNN/MLAS pick (and so timings and, rarely, rounding)."""


@lru_cache(maxsize=1)
def device_fingerprint() -> dict[str, Any]:
    """``{"kind": "cpu", "model", "arch", "isa": [...]}`` for this machine."""
    model, flags = platform.processor() or "unknown", set[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model in ("unknown", "", platform.machine()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    return {"kind": "cpu", "model": model, "arch": platform.machine(), "isa": [f for f in ISA_FLAGS if f in flags]}


def library_versions() -> dict[str, str]:
    """Versions of the code that computes the results: lanner, numpy, torch (when installed)."""
    versions = {"lanner": _version("lanner"), "numpy": np.__version__}
    try:
        import torch

        versions["torch"] = str(torch.__version__)
    except ImportError:  # the reference backend works without torch
        versions["torch"] = "none"
    return versions


def fingerprint_id(device: dict[str, Any], libraries: dict[str, str]) -> str:
    """A short stable hash of a device + library set (part of every timing-cache key)."""
    text = json.dumps({"device": device, "libraries": libraries}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
