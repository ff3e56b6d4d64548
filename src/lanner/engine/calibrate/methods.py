"""How an activation's clipping threshold ``amax`` is chosen from its statistics (scale = amax / 127).

The four methods of TensorRT and NVIDIA's ``pytorch_quantization`` (``calib/histogram.py``):

- ``minmax``: the largest |x| seen (``IInt8MinMaxCalibrator``); nothing is clipped.
- ``entropy``: TensorRT's KL-divergence method (``IInt8EntropyCalibrator2``; Migacz, "8-bit Inference
  with TensorRT", GTC 2017). For every candidate threshold bin ``i`` from 128 to the last bin, the
  reference distribution ``P`` is the histogram cut at ``i`` with the clipped outliers added to its
  last bin; ``Q`` quantizes ``hist[:i]`` into 128 levels and spreads each level's mass evenly over its
  non-empty source bins. The threshold is the edge ``i * width`` of the *last* ``i`` with minimal
  KL(P || Q). As in NVIDIA's code, ``bins[0] = bins[1]`` first, to damp ReLU's spike of exact zeros.
  One addition, the *saturation guard* (on by default, ``saturation_guard=False`` gives TensorRT's
  exact thresholds): a tensor whose values pile up in its top bin keeps its max. That spike is an
  activation saturating at a bound (ReLU6 at 6, HardSigmoid at 1, a Clip); KL weighs how much mass a
  threshold clips, not how far it moves it, so TensorRT's method cuts ReLU6 outputs to 0.45-0.65 x 6 and
  maps every saturated value there. On trained MobileNetV2s this alone took top-1 agreement from 97-98 %
  to 99-100 % (docs/benchmarks.md, INT8 calibration).
- ``percentile``: the smallest bin edge below which ``percentile`` % of |x| lie (default 99.99).
- ``mse``: the bin centre that minimises the quantisation MSE of the histogram (symmetric int8).

Example:
    >>> import numpy as np
    >>> from lanner.engine.calibrate.histogram import Histogram
    >>> h = Histogram(); h.add(np.linspace(-2.0, 2.0, 10001))
    >>> compute_amax(h, "minmax"), round(compute_amax(h, "percentile", percentile=50.0), 2)
    (2.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lanner.core.errors import ConfigError
from lanner.engine.calibrate.histogram import Histogram

INT8_MAX = 127
START_BIN = 128  # TensorRT / pytorch_quantization: first candidate threshold bin
NUM_LEVELS = 128  # 1 << (num_bits - 1) quantisation levels of |x| for signed int8
DEFAULT_PERCENTILE = 99.99
SPIKE_RATIO = 16  # saturated: the top bin holds >= this many times the mean count of the bins below it
SPIKE_WINDOW = 32  # ... over this many bins (saturated ReLU6 outputs: 100-750x; smooth tails: about 1x)
METHODS = ("entropy", "minmax", "percentile", "mse")


def compute_amax(
    hist: Histogram, method: str, *, percentile: float = DEFAULT_PERCENTILE, saturation_guard: bool = True
) -> float:
    """The threshold ``amax`` (>= 0; 0 only when every value was 0) of ``method`` for ``hist``.

    ``saturation_guard`` (entropy only): a saturated tensor (see ``saturated``) keeps its max."""
    if method not in _AMAX:
        raise ConfigError(f"unknown calibration method {method!r}", fix=f"choose one of {', '.join(METHODS)}")
    if not 0.0 < percentile <= 100.0:
        raise ConfigError(f"percentile must be in (0, 100], got {percentile}", fix="e.g. 99.99 or 99.999")
    if hist.absmax == 0.0:
        return 0.0
    if method == "percentile":
        return amax_percentile(hist, percentile)
    if method == "entropy" and saturation_guard and saturated(hist):
        return float(hist.absmax)
    return _AMAX[method](hist)


def saturated(hist: Histogram) -> bool:
    """Whether |x| piles up at its max: the top bin holds ``SPIKE_RATIO`` x the mean of the bins below it.

    Counts below one per bin count as one, so a thin tail whose max is a single value is not a spike."""
    counts = hist.counts
    if counts.size <= SPIKE_WINDOW:
        return False
    below = max(float(counts[-SPIKE_WINDOW - 1 : -1].mean()), 1.0)
    return bool(counts[-1] >= SPIKE_RATIO * below)


def amax_minmax(hist: Histogram) -> float:
    """The largest |x| seen."""
    return float(hist.absmax)


def amax_entropy(hist: Histogram, start_bin: int = START_BIN, num_levels: int = NUM_LEVELS) -> float:
    """TensorRT's entropy threshold (see the module docstring); ``absmax`` if there are too few bins."""
    bins = hist.counts.astype(np.float64)
    n = bins.size
    if n <= start_bin:
        return float(hist.absmax)
    bins[0] = bins[1]
    divergences = _divergences(bins, np.arange(start_bin, n + 1), num_levels)
    last_argmin = divergences.size - 1 - int(np.argmin(divergences[::-1]))
    return float(min((start_bin + last_argmin) * hist.width, hist.absmax))


def _divergences(bins: np.ndarray, cuts: np.ndarray, num_levels: int) -> np.ndarray:
    """KL(P_i || Q_i) for every cut ``i`` in ``cuts`` (each >= ``num_levels``), in O(levels) per cut.

    The loop over source bins of the reference is replaced by prefix sums: level ``k`` of cut ``i``
    holds bins ``[ceil(k*i/L), ceil((k+1)*i/L))`` (NVIDIA's ``digitize`` over ``linspace(0, i, L+1)``),
    so its mass and its count of non-empty bins are differences of prefix sums. With ``T`` the total,
    ``C_i`` the mass below the cut and ``m_l / s_l`` a level's mass per non-empty bin, a bin ``j < i-1``
    adds ``b_j/T * log((b_j/T) / (m_l / (s_l * C_i)))``; the last bin (which also holds the outliers,
    and is always in level ``L-1`` when ``i >= L``) is added separately.
    """
    total = bins.sum()
    positive = bins > 0
    mass_below = np.concatenate([[0.0], np.cumsum(bins)])
    count_below = np.concatenate([[0.0], np.cumsum(positive)])
    blogb = np.where(positive, bins * np.log(np.where(positive, bins, 1.0)), 0.0)
    blogb_below = np.concatenate([[0.0], np.cumsum(blogb)])
    edges = (np.arange(num_levels + 1)[None, :] * cuts[:, None] + num_levels - 1) // num_levels
    mass = np.diff(mass_below[edges], axis=1)
    support = np.diff(count_below[edges], axis=1)
    used = mass > 0
    safe_mass, safe_support = np.where(used, mass, 1.0), np.where(used, support, 1.0)
    level_log = np.log(safe_support) - np.log(safe_mass)  # log(s_l / m_l)
    grouped = np.sum(np.where(used, mass * level_log, 0.0), axis=1)
    last = bins[cuts - 1]
    below_last, kept = mass_below[cuts - 1], mass_below[cuts]
    safe_kept = np.where(kept > 0, kept, 1.0)
    head = blogb_below[cuts - 1] + grouped - last * level_log[:, -1] + below_last * (np.log(safe_kept) - np.log(total))
    p_last = last + (total - kept)  # the last bin plus the clipped outliers
    q_last = np.where(last > 0, mass[:, -1] / safe_support[:, -1] / safe_kept, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(p_last > 0, p_last * (np.log(p_last / total) - np.log(q_last)), 0.0)
    kl = (head + tail) / total
    kl[(p_last > 0) & (last == 0)] = np.inf  # P > 0 where Q = 0, as scipy.stats.entropy
    kl[kept == 0] = np.inf
    return kl


def amax_percentile(hist: Histogram, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The upper edge of the bin where the CDF of |x| reaches ``percentile`` %, at most ``absmax``."""
    cdf = np.cumsum(hist.counts) / hist.counts.sum()
    index = int(np.searchsorted(cdf, percentile / 100.0 - 1e-12))
    return float(min((index + 1) * hist.width, hist.absmax))


def amax_mse(hist: Histogram, start_bin: int = START_BIN, chunk: int = 256) -> float:
    """The bin centre ``c_i`` (``i >= start_bin``) minimising sum(count * (fake_quant(c, c_i) - c)^2)."""
    counts = hist.counts.astype(np.float64)
    centers = (np.arange(counts.size) + 0.5) * hist.width
    if counts.size <= start_bin:
        return float(hist.absmax)
    best, best_err = float(hist.absmax), np.inf
    for lo in range(start_bin, counts.size, chunk):
        amax = centers[lo : lo + chunk, None]
        scale = amax / INT8_MAX
        fake = np.minimum(np.round(centers[None, :] / scale), INT8_MAX) * scale
        errors = ((fake - centers[None, :]) ** 2 * counts[None, :]).sum(axis=1)
        j = int(np.argmin(errors))
        if errors[j] < best_err:
            best, best_err = float(amax[j, 0]), float(errors[j])
    return min(best, float(hist.absmax))


_AMAX: dict[str, Callable[[Histogram], float]] = {
    "minmax": amax_minmax,
    "entropy": amax_entropy,
    "percentile": amax_percentile,
    "mse": amax_mse,
}
