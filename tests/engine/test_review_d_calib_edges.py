"""The clipping report on degenerate tensors (helper D's review): all zeros, never fed, a single value."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lanner.engine.calibrate.histogram import Histogram
from lanner.engine.calibrate.report import clipping_table, plot_clipping


def _hist(values: list[float]) -> Histogram:
    h = Histogram()
    if values:
        h.add(np.asarray(values, np.float32))
    return h


def test_zero_empty_and_single_value_tensors_report_nothing_clipped_and_still_plot(tmp_path: Path) -> None:
    stats = {"zeros": _hist([0.0] * 100), "never_fed": _hist([]), "one": _hist([3.0])}
    rows = clipping_table(stats, {"zeros": 0.0, "never_fed": 0.0, "one": 3.0})
    assert [(r.ratio, r.clipped) for r in rows] == [(1.0, 0.0)] * 3
    assert rows[0].describe().endswith("amax 1.00x of its max, 0% of values clipped")
    path = plot_clipping(stats, rows, tmp_path / "calibration.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
