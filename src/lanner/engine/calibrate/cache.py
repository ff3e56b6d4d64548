"""TensorRT's INT8 calibration cache (the text file ``IInt8Calibrator::writeCalibrationCache`` writes).

Format: a header line ``TRT-<version>-<Algorithm>``, then one ``tensor_name: <hex>`` line per tensor,
``<hex>`` being the IEEE-754 float32 bit pattern of the **scale** (amax / 127), big-endian hex digits
as ``printf("%x")`` writes them. ONNX Runtime's TensorRT EP reads it the same way (``ReadDynamicRange``:
``strtoul(hex, 16)`` → float bits → dynamic range = scale * 127). Example from that source::

    TRT-7103-EntropyCalibration2
    data_0: 4000889d

TensorRT compares the header's algorithm with its calibrator's (a mismatch triggers re-calibration),
and TRT 10 also rejects caches of older versions, so both are parameters. Names are ONNX tensor names.

Example:
    >>> text = format_cache({"x": 0.0236220472}, algorithm="EntropyCalibration2", version="8601")
    >>> text.splitlines()
    ['TRT-8601-EntropyCalibration2', 'x: 3cc18306']
    >>> parse_cache(text).scales["x"] == np.float32(0.0236220472)
    True
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lanner.core.errors import DataError
from lanner.core.folders import replacing

DEFAULT_TRT_VERSION = "8601"  # TensorRT 8.6.1, the last major version every calibrator exists in
ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
METHOD_ALGORITHM = {
    # TensorRT has no percentile or MSE calibrator; their ranges are valid dynamic ranges all the
    # same, so those caches are labelled for the default calibrator, which reads them as they are.
    "entropy": "EntropyCalibration2",
    "minmax": "MinMaxCalibration",
    "percentile": "EntropyCalibration2",
    "mse": "EntropyCalibration2",
}
_HEADER = re.compile(r"TRT-(\d+)-(\w+)")
_HEX = re.compile(r"[0-9a-fA-F]{1,8}")


@dataclass(frozen=True)
class CalibrationCache:
    """A parsed cache: TensorRT version string, algorithm name and tensor → float32 scale."""

    version: str
    algorithm: str
    scales: dict[str, float] = field(default_factory=dict)

    def amax(self) -> dict[str, float]:
        """Tensor → amax (scale * 127), the dynamic range TensorRT sets."""
        # in float64 the product is exact, so amax / 127 gives back the float32 scale bit for bit
        return {name: float(scale) * 127.0 for name, scale in self.scales.items()}


def scale_to_hex(scale: float) -> str:
    """The float32 bits of ``scale`` as 8 lower-case hex digits (``1.0`` → ``3f800000``)."""
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text: str) -> float:
    """The float32 whose bits are the hex number ``text`` (at most 8 digits)."""
    return float(struct.unpack(">f", int(text, 16).to_bytes(4, "big"))[0])


def format_cache(
    scales: Mapping[str, float], *, algorithm: str = "EntropyCalibration2", version: str = DEFAULT_TRT_VERSION
) -> str:
    """The cache text for ``scales`` (tensor → scale), in the given order, ending with a newline."""
    if algorithm not in ALGORITHMS:
        raise DataError(f"unknown TensorRT calibration algorithm {algorithm!r}", fix=f"use one of {ALGORITHMS}")
    if not version.isdigit():
        raise DataError(f"TensorRT version {version!r} is not a number", fix="write it as TensorRT does, e.g. 8601")
    lines = [f"TRT-{version}-{algorithm}"]
    for name, scale in scales.items():
        if "\n" in name or not name:
            raise DataError(f"tensor name {name!r} cannot be written to a calibration cache")
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_cache(path: str | os.PathLike[str], scales: Mapping[str, float], **header: str) -> Path:
    """Write ``format_cache(scales, **header)`` to ``path``; returns the path."""
    path = Path(path)
    with replacing(path) as partial:
        partial.write_text(format_cache(scales, **header), encoding="utf-8")
    return path


def parse_cache(text: str, *, where: str = "calibration cache") -> CalibrationCache:
    """Parse cache text; a malformed line is one ``DataError`` with ``where:line``."""
    lines = text.splitlines()
    if not lines or not _HEADER.fullmatch(lines[0].strip()):
        first = lines[0][:60] if lines else ""
        raise DataError(
            f"not a TensorRT calibration cache: the first line is {first!r}",
            where=f"{where}:1",
            fix="the header must look like TRT-8601-EntropyCalibration2",
        )
    match = _HEADER.fullmatch(lines[0].strip())
    assert match is not None
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, hex_text = line.rpartition(":")
        name, hex_text = name.strip(), hex_text.strip()
        if not sep or not name or not _HEX.fullmatch(hex_text):
            raise DataError(
                f"expected 'tensor_name: <hex float32 scale>', got {line[:80]!r}",
                where=f"{where}:{number}",
                fix="fix or delete the line, or re-run lanner calibrate without --cache",
            )
        scale = hex_to_scale(hex_text)
        if not np.isfinite(scale) or scale <= 0.0:
            what = f"scale {hex_text} of '{name}' is {scale}, not a positive number"
            raise DataError(what, where=f"{where}:{number}", fix="re-run lanner calibrate without --cache")
        if name in scales:
            raise DataError(f"tensor '{name}' is listed twice", where=f"{where}:{number}", fix="keep one line each")
        scales[name] = scale
    return CalibrationCache(version=match[1], algorithm=match[2], scales=scales)


def read_cache(path: str | os.PathLike[str]) -> CalibrationCache:
    """Read and parse a cache file (see ``parse_cache``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the calibration cache: {exc}", where=str(path)) from exc
    return parse_cache(text, where=str(path))
