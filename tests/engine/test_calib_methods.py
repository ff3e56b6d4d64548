"""Histograms and the four threshold methods, each on known distributions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lanner.core.errors import ConfigError
from lanner.engine.calibrate.histogram import MIN_BINS, Histogram
from lanner.engine.calibrate.methods import amax_entropy, compute_amax


def one_shot(*arrays: np.ndarray) -> Histogram:
    h = Histogram()
    h.add(np.concatenate([np.ravel(a) for a in arrays]))
    return h


def assert_same(a: Histogram, b: Histogram) -> None:
    assert a.width == b.width and a.absmax == b.absmax
    np.testing.assert_array_equal(a.counts, b.counts)


# -- histogram ---------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["growing", "shrinking", "shuffled"])
def test_merged_batches_equal_one_shot(order):
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(5000).astype(np.float32) * s for s in (0.01, 0.5, 3.0, 40.0, 1000.0)]
    if order == "shrinking":
        batches = batches[::-1]
    elif order == "shuffled":
        batches = [batches[i] for i in (2, 0, 4, 1, 3)]
    merged = Histogram()
    for b in batches:
        merged.add(b)
    assert_same(merged, one_shot(*batches))


def test_merge_of_two_histograms_equals_one_shot():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3000), rng.standard_normal(3000) * 77
    ha, hb = one_shot(a), one_shot(b)
    ha.merge(hb)
    assert_same(ha, one_shot(a, b))
    hz = one_shot(np.zeros(10))  # zeros only, merged into a wider one and the other way round
    hz.merge(one_shot(b))
    assert_same(hz, one_shot(np.zeros(10), b))


def test_zeros_before_the_first_nonzero_are_kept():
    h = Histogram()
    h.add(np.zeros(7))
    assert h.total == 7 and h.absmax == 0.0
    h.add(np.array([0.0, 2.0]))
    assert h.counts[0] == 8 and h.total == 9


@pytest.mark.parametrize("amax", [1e-6, 0.3, 1.0, 4096.0, 123456.7])
def test_bins_cover_absmax_with_at_least_2048_bins(amax):
    h = one_shot(np.array([amax, -amax / 3]))
    assert MIN_BINS <= h.counts.size <= 2 * MIN_BINS
    assert h.edges[-2] <= amax < h.edges[-1]
    assert h.counts[-1] == 1 and h.total == 2


# -- methods -----------------------------------------------------------------------------------
def ref_entropy(hist: np.ndarray, edges: np.ndarray, start_bin: int = 128, nbins: int = 128) -> float:
    """A literal port of NVIDIA's ``_compute_amax_entropy`` (pytorch_quantization/calib/histogram.py)."""
    from scipy.stats import entropy

    bins = hist.astype(np.float64).copy()
    bins[0] = bins[1]
    divergences = []
    for i in range(start_bin, len(bins) + 1):
        new_density_counts = np.zeros(nbins)
        space = np.linspace(0, i, num=nbins + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        for idx, d in enumerate(digitized):
            if d != -1:
                new_density_counts[d] += bins[idx]
        for key, val in Counter(digitized).items():
            if key != -1:
                new_density_counts[key] /= val
        new_density = np.array([new_density_counts[d] if d != -1 else 0.0 for d in digitized])
        reference = bins[:i].copy()
        reference[-1] += bins[i:].sum()
        divergences.append(entropy(reference, new_density))
    divergences = np.array(divergences)
    return float(edges[len(divergences) - 1 - np.argmin(divergences[::-1]) + start_bin])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entropy_matches_nvidia_reference_loop(seed):
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(20000), rng.laplace(size=20000), np.maximum(rng.standard_normal(20000), 0)][seed]
    a = np.abs(data)
    counts, edges = np.histogram(a, bins=300, range=(0, a.max()))
    counts[[5, 140, 141, 250]] = 0  # empty bins exercise the "spread over non-empty bins" rule
    h = Histogram()
    h.counts, h.width, h.absmax = counts.astype(np.int64), float(a.max()) / 300, float(a.max())
    assert amax_entropy(h) == pytest.approx(ref_entropy(counts, edges), rel=1e-12)


def test_entropy_clips_a_far_outlier_and_minmax_keeps_it():
    rng = np.random.default_rng(0)
    h = one_shot(rng.uniform(-1, 1, 100000), np.array([10.0, -10.0, 10.0]))
    assert compute_amax(h, "minmax") == 10.0
    assert compute_amax(h, "entropy") == pytest.approx(1.0, abs=0.02)
    assert compute_amax(h, "percentile") == pytest.approx(1.0, abs=0.02)


def test_entropy_on_gaussian_clips_the_tail_but_not_the_body():
    h = one_shot(np.random.default_rng(0).standard_normal(200000))
    assert 3.0 < compute_amax(h, "entropy") < h.absmax


def test_percentile_on_uniform():
    h = one_shot(np.random.default_rng(0).uniform(-1, 1, 1_000_000))
    assert compute_amax(h, "percentile", percentile=99.0) == pytest.approx(0.99, abs=2e-3)
    assert compute_amax(h, "percentile", percentile=50.0) == pytest.approx(0.5, abs=2e-3)
    assert compute_amax(h, "percentile", percentile=100.0) == h.absmax


def test_mse_on_gaussian_matches_the_analytic_optimum():
    # Banner et al. (ACIQ): the MSE-optimal 8-bit clipping of N(0, 1) is about 3.9 sigma
    h = one_shot(np.random.default_rng(0).standard_normal(400000))
    assert compute_amax(h, "mse") == pytest.approx(3.92, abs=0.25)


def test_mse_keeps_a_uniform_range():
    h = one_shot(np.random.default_rng(0).uniform(-2, 2, 200000))
    assert compute_amax(h, "mse") == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("method", ["entropy", "minmax", "percentile", "mse"])
def test_all_zero_tensor_gives_zero(method):
    assert compute_amax(one_shot(np.zeros(100)), method) == 0.0


def test_bad_method_and_percentile_are_config_errors():
    h = one_shot(np.ones(3))
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        compute_amax(h, "kl")
    with pytest.raises(ConfigError, match="percentile must be in"):
        compute_amax(h, "percentile", percentile=101.0)
