"""The JSON scale table: every calibrated activation's amax and scale, and the per-channel weight scales.

Human-readable and diffable, unlike the TensorRT cache; ``read_scales`` gives back the activation
ranges, so a table can re-create the QDQ model (``insert_qdq(graph, read_scales(path))``).

Example:
    >>> table = scales_table({"x": 2.54}, method="entropy", num_images=500, batch=8)
    >>> table["activations"]["x"]["scale"] == float(np.float32(2.54 / 127))
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lanner.core.errors import DataError
from lanner.core.folders import replacing
from lanner.engine.calibrate.qdq import QuantizedWeight, scale_from_amax

FORMAT = "lanner-int8-scales"
VERSION = 1


def scales_table(
    amax: Mapping[str, float],
    *,
    method: str,
    num_images: int,
    batch: int,
    percentile: float | None = None,
    saturation_guard: bool | None = None,
    quantized: Sequence[str] = (),
    excluded_nodes: Sequence[str] = (),
    weights: Sequence[QuantizedWeight] = (),
) -> dict[str, Any]:
    """The table as a JSON-ready dict (scales are the float32 values the QDQ model stores)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "method": method,
        "percentile": percentile,
        "saturation_guard": saturation_guard,
        "num_images": num_images,
        "batch": batch,
        "scheme": {"activations": "per-tensor symmetric int8", "weights": "per-channel symmetric int8 [-127, 127]"},
        "quantized_activations": list(quantized),
        "excluded_nodes": sorted(excluded_nodes),
        "activations": {
            name: {"amax": float(value), "scale": float(scale_from_amax(value))} for name, value in amax.items()
        },
        "weights": {w.name: {"axis": w.axis, "scale": [float(s) for s in w.scale]} for w in weights},
    }


def write_scales(path: str | os.PathLike[str], table: Mapping[str, Any]) -> Path:
    """Write ``table`` as indented JSON; returns the path."""
    path = Path(path)
    with replacing(path) as partial:
        partial.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return path


def read_scales(path: str | os.PathLike[str]) -> dict[str, float]:
    """Activation name → amax from a table written by ``write_scales``."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the scale table: {exc}", where=str(path)) from exc
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        raise DataError(f'not a lanner scale table (no "format": "{FORMAT}")', where=str(path))
    try:
        return {name: float(entry["amax"]) for name, entry in table["activations"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"malformed activation entry in the scale table: {exc}", where=str(path)) from exc


__all__ = ["FORMAT", "read_scales", "scales_table", "write_scales"]
