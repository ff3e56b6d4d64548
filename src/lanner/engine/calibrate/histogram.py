"""A mergeable histogram of |x| for one tensor, the input of the entropy, percentile and MSE methods.

TensorRT's entropy calibrator histograms |x| into 2048 bins over ``[0, absmax]`` and accumulates over
all calibration batches; NVIDIA's reference (``pytorch_quantization/calib/histogram.py``) grows the
histogram by appending bins of the same width when a later batch has a larger max, which makes the
result depend on batch order. Here the bin width is always a power of two, chosen as the smallest
one that keeps the bin count under ``2 * MIN_BINS``; when the range grows past that, pairs of bins
merge exactly (the edges of a width-``2w`` histogram are edges of the width-``w`` one). So the
histogram after any sequence of batches equals the one-shot histogram of all the data, bit for bit,
and it always has between ``MIN_BINS`` (2048) and ``2 * MIN_BINS`` bins over ``[0, absmax]``.

Example:
    >>> import numpy as np
    >>> h = Histogram()
    >>> h.add(np.array([0.5, -1.0, 3.0], dtype=np.float32))
    >>> h.absmax, int(h.counts.sum()), h.counts.size >= MIN_BINS
    (3.0, 3, True)
"""

from __future__ import annotations

import math

import numpy as np

MIN_BINS = 2048
"""TensorRT's histogram resolution: at least this many bins cover ``[0, absmax]``."""


class Histogram:
    """Counts of |x| in bins ``[i * width, (i + 1) * width)``; ``absmax`` is the exact max |x| seen."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)
        self.width = 0.0  # 0 until a non-zero value arrives
        self.absmax = 0.0
        self._zeros = 0  # exact zeros seen before the width is known

    @property
    def total(self) -> int:
        """How many values were added."""
        return int(self.counts.sum()) + self._zeros

    @property
    def edges(self) -> np.ndarray:
        """The ``counts.size + 1`` bin edges."""
        return np.arange(self.counts.size + 1, dtype=np.float64) * self.width

    def add(self, x: np.ndarray) -> None:
        """Add the absolute values of ``x`` (any shape). Non-finite values must be filtered by the caller."""
        a = np.abs(np.asarray(x, dtype=np.float64).ravel())
        if a.size == 0:
            return
        amax = float(a.max())
        if amax == 0.0:
            self._add_zeros(a.size)
            return
        self._grow(amax)
        # width is a power of two, so a / width is exact and the bin of every value is the true one
        index = np.floor(a / self.width).astype(np.int64)
        self.counts += np.bincount(index, minlength=self.counts.size)

    def merge(self, other: Histogram) -> None:
        """Add another histogram's counts (e.g. from a worker); equal to adding its data here."""
        if other.width == 0.0:
            self._add_zeros(other._zeros)
            return
        self._grow(other.absmax)
        counts = other.counts
        factor = round(self.width / other.width)
        if factor > 1:  # coarsen the other one to our width
            counts = _coarsen(counts, factor)
        self.counts[: counts.size] += counts
        self.counts[0] += other._zeros

    def _add_zeros(self, n: int) -> None:
        if self.width == 0.0:
            self._zeros += n
        else:
            self.counts[0] += n

    def _grow(self, amax: float) -> None:
        """Make the bins cover ``amax``: pick or widen the power-of-two width, then extend the counts."""
        width = max(self.width, _width_for(amax))
        if self.width == 0.0:
            self.width = width
            self.counts = np.zeros(1, dtype=np.int64)
            self.counts[0] = self._zeros
            self._zeros = 0
        elif width > self.width:
            self.counts = _coarsen(self.counts, round(width / self.width))
            self.width = width
        self.absmax = max(self.absmax, amax)
        needed = math.floor(self.absmax / self.width) + 1
        if needed > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(needed - self.counts.size, dtype=np.int64)])


def _width_for(amax: float) -> float:
    """The smallest power of two ``w`` with ``amax < 2 * MIN_BINS * w`` (so at most 4096 bins)."""
    exponent = math.frexp(amax / (2 * MIN_BINS))[1]  # amax/4096 = m * 2**e with 0.5 <= m < 1
    return math.ldexp(1.0, exponent)  # amax/4096 < 2**e, and 2**(e-1) <= amax/4096


def _coarsen(counts: np.ndarray, factor: int) -> np.ndarray:
    """Sum groups of ``factor`` adjacent bins (``factor`` a power of two)."""
    padded = np.concatenate([counts, np.zeros((-counts.size) % factor, dtype=counts.dtype)])
    return padded.reshape(-1, factor).sum(axis=1)
