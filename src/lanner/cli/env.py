"""``lanner env``: what this install and machine can do, one line each (like ``deepstream-app --version-all``).

Each row is a capability with its status: ``ok`` (with versions or devices), ``missing`` (with the pip command
that adds it) or ``note`` (it works, with a caveat worth knowing, such as INT8 speed on a CPU without VNNI).
The probes import each library lazily and never fail the command: a broken install is a ``missing`` row
naming the error. ``--json`` writes the same rows for bug reports and CI logs.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from lanner import __version__
from lanner.cli.app import out

OK, MISSING, NOTE = "ok", "missing", "note"


@dataclass(frozen=True)
class Row:
    """One capability: ``what`` it is, its ``status``, what was found, and the fix when it is missing."""

    what: str
    status: str
    detail: str
    fix: str = ""


def _module(name: str) -> tuple[Any, str]:
    """``(module, "")``, or ``(None, why)`` when it cannot be imported (absent or broken)."""
    try:
        return importlib.import_module(name), ""
    except ImportError as exc:
        return None, str(exc) or type(exc).__name__
    except Exception as exc:  # a broken native library raises other errors on import
        return None, f"{type(exc).__name__}: {exc}"


def _version(module: Any) -> str:
    return str(getattr(module, "__version__", "") or "installed")


def _libraries(names: tuple[str, ...], what: str, fix: str) -> Row:
    """One row for a group of packages that one pip command installs (``fix``)."""
    found, absent = [], []
    for name in names:
        module, why = _module(name)
        if module is not None:
            found.append(f"{name} {_version(module)}")
        else:  # a broken install says why; an absent one needs no more than its name
            absent.append(name if why.startswith("No module named") else f"{name} ({why})")
    if absent:
        return Row(what, MISSING, f"no {', '.join(absent)}", fix)
    return Row(what, OK, ", ".join(found))


def python_row() -> Row:
    return Row("lanner", OK, f"{__version__} on Python {platform.python_version()}, {platform.platform(terse=True)}")


def cpu_row() -> Row:
    """CPU model, usable cores and the ISA extensions the kernels pick from; INT8 speed depends on VNNI."""
    from lanner.engine.fingerprint import device_fingerprint

    device = device_fingerprint()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    isa = set(device["isa"])
    detail = f"{device['model']}, {cores} cores, {' '.join(device['isa']) or 'no SIMD flags read'}"
    if device["arch"] in ("x86_64", "AMD64") and not isa & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return Row("CPU", NOTE, detail, "no VNNI: INT8 plans run at best about 0.65x their FP32 time here")
    return Row("CPU", OK, detail)


def torch_row() -> Row:
    torch, why = _module("torch")
    if torch is None:
        return Row("torch (train, engine)", MISSING, why, TRAIN)
    if not torch.cuda.is_available():
        build = "CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no GPU visible"
        return Row("torch (train, engine)", OK, f"{torch.__version__}, {build}")
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return Row("torch (train, engine)", OK, f"{torch.__version__}, CUDA {torch.version.cuda}: {', '.join(gpus)}")


def onnxruntime_row() -> Row:
    ort, why = _module("onnxruntime")
    if ort is None:
        return Row("onnxruntime (run, compare)", MISSING, why, PIPELINE)
    return Row(
        "onnxruntime (run, compare)", OK, f"{ort.__version__}, providers {', '.join(ort.get_available_providers())}"
    )


def video_row() -> Row:
    """PyAV and its FFmpeg: the H.264 encoders the video sink can use and the hardware decoders."""
    av, why = _module("av")
    if av is None:
        return Row("PyAV (decode, video sink)", MISSING, why, "pip install av")
    encoders = [name for name in ("libx264", "h264_nvenc") if name in av.codecs_available]
    from av.codec.hwaccel import hwdevices_available

    accels = hwdevices_available()
    detail = (
        f"{av.__version__}, H.264 encoders: {', '.join(encoders) or 'none'}; hwaccel: {', '.join(accels) or 'none'}"
    )
    if "libx264" not in encoders:
        return Row("PyAV (decode, video sink)", NOTE, detail, "no libx264: install PyAV's own wheels (pip install av)")
    return Row("PyAV (decode, video sink)", OK, detail)


def nvdec_row() -> Row:
    """``hwaccel: nvdec``: PyNvVideoCodec importable and a CUDA GPU visible to torch."""
    nvc, why = _module("PyNvVideoCodec")
    if nvc is None:
        return Row("NVDEC (hwaccel: nvdec)", MISSING, f"no PyNvVideoCodec ({why})", 'pip install "lanner[nvdec]"')
    from lanner.pipeline.sources.nvdec import cuda_devices

    gpus = cuda_devices()
    if not gpus:
        return Row("NVDEC (hwaccel: nvdec)", MISSING, f"PyNvVideoCodec {_version(nvc)}, but torch sees no CUDA GPU",
                   "install torch with CUDA on a machine with an NVIDIA GPU")  # fmt: skip
    return Row("NVDEC (hwaccel: nvdec)", OK, f"PyNvVideoCodec {_version(nvc)}, {gpus} GPU(s)")


TRAIN, ENGINE, PIPELINE = (
    'pip install "lanner[train]"',
    'pip install "lanner[engine]"',
    'pip install "lanner[pipeline]"',
)
PROBES: tuple[Callable[[], Row], ...] = (
    python_row,
    cpu_row,
    lambda: _libraries(("numpy", "cv2", "pydantic", "yaml"), "core", "pip install --force-reinstall lanner"),
    torch_row,
    lambda: _libraries(("onnx", "safetensors"), "engine (build, export)", ENGINE),
    lambda: _libraries(("albumentations", "pycocotools", "tensorboard"), "training extras", TRAIN),
    onnxruntime_row,
    video_row,
    nvdec_row,
    lambda: _libraries(("paho.mqtt", "confluent_kafka", "redis", "prometheus_client"), "brokers, metrics", PIPELINE),
)


def collect() -> list[Row]:
    """Every probe's row; a probe that itself fails becomes a ``missing`` row instead of an error."""
    rows = []
    for probe in PROBES:
        try:
            rows.append(probe())
        except Exception as exc:  # a probe must never take the report down
            rows.append(Row(getattr(probe, "__name__", "probe"), MISSING, f"{type(exc).__name__}: {exc}"))
    return rows


@click.command("env", short_help="Versions, devices and missing pieces of this install.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the rows as JSON ('-': stdout).")
def env(json_file: Path | None) -> None:
    """List lanner's capabilities on this machine, one line each: ok, missing (with the pip command) or note.

    \b
    Examples:
      lanner env
      lanner env --json env.json      # attach to a bug report
    """
    rows = collect()
    if json_file is not None and str(json_file) == "-":
        sys.stdout.write(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
        return
    width = max(len(r.what) for r in rows)
    for r in rows:
        fix = f"  -> {r.fix}" if r.fix else ""
        out.print(f"{r.what:<{width}}  {r.status:<7}  {r.detail}{fix}", markup=False)
    if json_file is not None:
        json_file.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8")
        out.print(f"wrote {json_file}", markup=False)
