"""How hard each activation's INT8 threshold clips, as a table and as a PNG to look at (``calibration.png``).

Entropy, percentile and MSE calibration trade the rare large values of a tensor for resolution of the common
ones: values above ``amax`` saturate at 127. When an INT8 model disagrees with its FP32 original, the first
question is which tensors were cut hardest (on an undertrained MobileNetV2, entropy put the classifier's input at
0.31x of its max). ``clipping_table`` answers it from the calibration histograms; ``plot_clipping`` draws the
worst ones: the histogram of |x| on a log scale, the chosen ``amax`` and the largest value seen. The fix is then
``--method minmax`` or ``percentile``, or ``--exclude`` to keep that layer in FP32.

Example:
    >>> import numpy as np
    >>> from lanner.engine.calibrate.histogram import Histogram
    >>> h = Histogram()
    >>> h.add(np.array([1.0] * 99 + [10.0], np.float32))
    >>> row = clipping_table({"x": h}, {"x": 5.0})[0]
    >>> round(row.ratio, 2), round(row.clipped, 2)
    (0.5, 0.01)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lanner.engine.calibrate.histogram import Histogram

PLOT_BINS = 256  # the histogram is summed down to about this many bars for the picture


@dataclass(frozen=True)
class Clipping:
    """One activation: the largest |x| seen, the chosen threshold and the fraction of values above it."""

    name: str
    absmax: float
    amax: float
    clipped: float

    @property
    def ratio(self) -> float:
        """``amax / absmax``: 1 means nothing was clipped."""
        return self.amax / self.absmax if self.absmax > 0 else 1.0

    def describe(self) -> str:
        return f"{self.name}: amax {self.ratio:.2f}x of its max, {100 * self.clipped:.2g}% of values clipped"


def clipped_fraction(hist: Histogram, amax: float) -> float:
    """The fraction of the values with |x| > ``amax`` (a bin that ``amax`` splits counts in proportion)."""
    total = hist.total
    if total == 0 or hist.width == 0 or amax >= hist.absmax:
        return 0.0
    position = amax / hist.width
    first = math.floor(position)
    above = hist.counts[first + 1 :].sum()
    if first < hist.counts.size:
        above += hist.counts[first] * (1.0 - (position - first))
    return float(above) / total


def clipping_table(
    stats: Mapping[str, Histogram], amax: Mapping[str, float], names: Iterable[str] | None = None
) -> list[Clipping]:
    """A ``Clipping`` per tensor of ``names`` (default: all of ``amax``), the most clipped first."""
    rows = [
        Clipping(name, stats[name].absmax, float(amax[name]), clipped_fraction(stats[name], float(amax[name])))
        for name in (amax if names is None else names)
        if name in stats and name in amax
    ]
    return sorted(rows, key=lambda r: (-r.clipped, r.ratio, r.name))


def plot_clipping(stats: Mapping[str, Histogram], rows: list[Clipping], path: str | Path, top: int = 12) -> Path:
    """Histograms of the ``top`` first ``rows`` with their thresholds, as a PNG grid at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = rows[:top] or rows
    cols = min(4, max(1, len(shown)))
    lines = max(1, math.ceil(len(shown) / cols))
    figure = Figure(figsize=(4.2 * cols, 2.8 * lines), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for k, row in enumerate(shown):
        ax = figure.add_subplot(lines, cols, k + 1)
        hist = stats[row.name]
        group = max(1, hist.counts.size // PLOT_BINS)
        usable = hist.counts.size - hist.counts.size % group
        counts = hist.counts[:usable].reshape(-1, group).sum(1)
        left = np.arange(counts.size) * hist.width * group
        seen = counts > 0  # empty bins draw nothing (a log axis has no zero)
        ax.bar(left[seen], counts[seen], width=hist.width * group, align="edge", color="#4c72b0", linewidth=0)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
        ax.axvline(row.amax, color="#c44e52", linewidth=1.5, label=f"amax {row.amax:.3g}")
        ax.axvline(row.absmax, color="0.4", linestyle="--", linewidth=1, label=f"max {row.absmax:.3g}")
        name = row.name if len(row.name) <= 38 else "…" + row.name[-37:]
        ax.set_title(f"{name}\n{row.ratio:.2f}x of max, {100 * row.clipped:.2g}% clipped", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
    if not shown:
        figure.add_subplot(1, 1, 1).text(0.5, 0.5, "no calibrated activations", ha="center")
    figure.suptitle("INT8 calibration: |x| histograms of the most clipped activations", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
