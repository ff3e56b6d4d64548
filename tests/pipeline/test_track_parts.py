"""The tracker building blocks: the vectorised Kalman filter and the association functions."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lanner.pipeline.track import box_iou, greedy_assignment, iou_cost, kalman, linear_assignment


class ReferenceKalman:
    """One track, textbook matrices: ByteTrack's ``KalmanFilter`` (yolox/tracker/kalman_filter.py) with ``dt``."""

    def __init__(self, xyah: np.ndarray) -> None:
        h = xyah[3]
        self.mean = np.r_[xyah, np.zeros(4)]
        std = [h / 10, h / 10, 1e-2, h / 10, h / 16, h / 16, 1e-5, h / 16]  # 2 * 1/20 h, 10 * 1/160 h
        self.cov = np.diag(np.square(std))

    def predict(self, dt: int) -> None:
        h = self.mean[3]
        motion = np.eye(8)
        for i in range(4):
            motion[i, 4 + i] = dt
        q = np.diag(np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160])) * dt
        self.mean = motion @ self.mean
        self.cov = motion @ self.cov @ motion.T + q

    def update(self, xyah: np.ndarray) -> None:
        h = self.mean[3]
        measure = np.eye(4, 8)
        r = np.diag(np.square([h / 20, h / 20, 1e-1, h / 20]))
        s = measure @ self.cov @ measure.T + r
        gain = self.cov @ measure.T @ np.linalg.inv(s)
        self.mean = self.mean + gain @ (xyah - measure @ self.mean)
        self.cov = self.cov - gain @ s @ gain.T


def test_kalman_matches_a_per_track_textbook_filter() -> None:
    rng = np.random.default_rng(0)
    n_tracks, n_steps = 7, 25
    start = np.c_[rng.uniform(0, 500, (n_tracks, 2)), rng.uniform(0.3, 0.7, n_tracks), rng.uniform(40, 150, n_tracks)]
    velocity = np.c_[rng.normal(0, 3, (n_tracks, 2)), np.zeros(n_tracks), rng.normal(0, 0.5, n_tracks)]
    refs = [ReferenceKalman(x) for x in start]
    mean, cov = kalman.initiate(start)
    for step in range(1, n_steps):
        dt = 1 + step % 3
        z = start + velocity * step + rng.normal(0, 1, (n_tracks, 4)) * [1, 1, 0.01, 1]
        mean, cov = kalman.predict(mean, cov, dt)
        mean, cov = kalman.update(mean, cov, z)
        for ref, zi in zip(refs, z):
            ref.predict(dt)
            ref.update(zi)
    np.testing.assert_allclose(mean, [r.mean for r in refs], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cov, [r.cov for r in refs], rtol=1e-7, atol=1e-9)


def test_kalman_learns_constant_velocity_and_predicts_ahead() -> None:
    truth = np.array([[100.0, 200.0, 0.5, 80.0]])
    velocity = np.array([[4.0, -2.0, 0.0, 0.5]])
    mean, cov = kalman.initiate(truth)
    for t in range(1, 30):
        mean, cov = kalman.update(*kalman.predict(mean, cov), truth + velocity * t)
    np.testing.assert_allclose(mean[0, 4:], velocity[0], atol=0.05)
    ahead, _ = kalman.predict(mean, cov, dt=5)
    np.testing.assert_allclose(ahead[0, :4], (truth + velocity * 34)[0], atol=0.5)
    assert np.allclose(cov, np.swapaxes(cov, 1, 2)) and np.all(np.linalg.eigvalsh(cov) > 0)


def test_kalman_freeze_height_and_empty_inputs() -> None:
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 0.5, 50.0], [9.0, 9.0, 0.5, 50.0]]))
    mean[:, 7] = -3.0
    moved, _ = kalman.predict(mean, cov, freeze_height=np.array([True, False]))
    assert moved[:, 3].tolist() == [50.0, 47.0]
    empty_mean, empty_cov = kalman.predict(np.zeros((0, 8)), np.zeros((0, 8, 8)))
    assert empty_mean.shape == (0, 8) and kalman.update(empty_mean, empty_cov, np.zeros((0, 4)))[1].shape == (0, 8, 8)


def test_box_conversions_round_trip() -> None:
    xyxy = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 3.0, 4.0]])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(kalman.xyxy_to_xyah(xyxy)), xyxy)
    np.testing.assert_allclose(kalman.xyxy_to_xyah(xyxy)[0], [30, 70, 0.4, 100])


boxes = arrays(np.float64, st.tuples(st.integers(0, 6), st.just(4)), elements=st.floats(0, 100, width=32))


def _iou_one(a: np.ndarray, b: np.ndarray) -> float:
    a = [a[0], a[1], max(a[0], a[2]), max(a[1], a[3])]
    b = [b[0], b[1], max(b[0], b[2]), max(b[1], b[3])]
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


@settings(max_examples=60, deadline=None)
@given(boxes, boxes)
def test_box_iou_matches_the_pairwise_formula(a: np.ndarray, b: np.ndarray) -> None:
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    expected = np.array([[_iou_one(x, y) for y in b] for x in a]).reshape(len(a), len(b))
    np.testing.assert_allclose(iou, expected, atol=1e-12)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))


def _best_clipped_total(cost: np.ndarray, max_cost: float) -> float:
    """Brute force: the least total over full assignments, pairs above max_cost counting max_cost + 1e-4."""
    clipped = np.where(np.isfinite(cost) & (cost <= max_cost), cost, max_cost + 1e-4)
    n, m = clipped.shape
    if n > m:
        clipped, n, m = clipped.T, m, n
    return min(sum(clipped[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=st.floats(0, 1, width=32)),
    st.floats(0.1, 0.9),
)
def test_linear_assignment_is_optimal_and_respects_the_threshold(cost: np.ndarray, max_cost: float) -> None:
    matches, lone_rows, lone_cols = linear_assignment(cost, max_cost)
    assert np.all(cost[matches[:, 0], matches[:, 1]] <= max_cost)
    assert sorted([*matches[:, 0], *lone_rows]) == list(range(cost.shape[0]))
    assert sorted([*matches[:, 1], *lone_cols]) == list(range(cost.shape[1]))
    total = cost[matches[:, 0], matches[:, 1]].sum() + (min(cost.shape) - len(matches)) * (max_cost + 1e-4)
    assert total == pytest.approx(_best_clipped_total(cost, max_cost), abs=1e-9)


@pytest.mark.parametrize("assign", [linear_assignment, greedy_assignment])
def test_assignment_never_takes_forbidden_pairs_and_handles_empty(assign: Callable) -> None:
    cost = np.array([[np.inf, 0.1], [0.2, np.inf]])
    matches, lone_rows, lone_cols = assign(cost, 0.5)
    assert matches.tolist() == [[0, 1], [1, 0]] and len(lone_rows) == len(lone_cols) == 0
    matches, lone_rows, lone_cols = assign(np.full((2, 3), np.inf), 0.5)
    assert matches.shape == (0, 2) and lone_rows.tolist() == [0, 1] and lone_cols.tolist() == [0, 1, 2]
    matches, lone_rows, lone_cols = assign(np.zeros((0, 3)), 0.5)
    assert matches.shape == (0, 2) and lone_rows.tolist() == [] and lone_cols.tolist() == [0, 1, 2]


def test_greedy_takes_the_cheapest_pair_first_where_hungarian_minimises_the_total() -> None:
    cost = np.array([[0.1, 0.2], [0.3, 0.9]])
    assert greedy_assignment(cost, 1.0)[0].tolist() == [[0, 0], [1, 1]]  # 0.1 first, then 0.9
    assert linear_assignment(cost, 1.0)[0].tolist() == [[0, 1], [1, 0]]  # 0.2 + 0.3 < 0.1 + 0.9


def test_iou_cost_fuses_scores_and_gates_classes() -> None:
    tracks = np.array([[0, 0, 10, 10]], np.float64)
    dets = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float64)
    np.testing.assert_allclose(iou_cost(tracks, dets, det_score=np.array([0.9, 0.5])), [[0.1, 0.5]])
    gated = iou_cost(tracks, dets, track_class=np.array([3]), det_class=np.array([3, 4]))
    assert gated[0, 0] == 0 and np.isinf(gated[0, 1])
