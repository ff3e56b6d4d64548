"""``lanner.core.nms``: the IoU-matrix path gives exactly the kept indices of the one-row-at-a-time path."""

from __future__ import annotations

import numpy as np
import pytest

from lanner.core import nms as core_nms


def clustered_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like candidates: jittered copies around a few objects, tied scores, degenerate boxes."""
    centres = rng.uniform(0, 500, (max(1, n // 6), 2))
    pick = centres[rng.integers(0, len(centres), n)]
    size = rng.uniform(5, 80, (n, 2))
    xy = pick + rng.normal(0, 4, (n, 2))
    boxes = np.concatenate([xy - size / 2, xy + size / 2], axis=1).astype(np.float32)
    degenerate = rng.random(n) < 0.05
    boxes[degenerate, 2] = boxes[degenerate, 0] - rng.uniform(0, 3, int(degenerate.sum()))  # width <= 0
    scores = np.round(rng.uniform(0.3, 1.0, n), 2).astype(np.float32)  # rounded: many ties
    return boxes, scores


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.45, 0.7])
def test_matrix_and_row_paths_keep_the_same_boxes(seed: int, iou_threshold: float) -> None:
    rng = np.random.default_rng(seed)
    boxes, scores = clustered_boxes(rng, int(rng.integers(0, 200)))
    order = np.argsort(-scores, kind="stable")
    by_rows = core_nms._nms_rows(boxes, order, iou_threshold)
    by_matrix = core_nms._nms_matrix(boxes[order], iou_threshold, order)
    assert by_matrix.dtype == np.int64 and by_matrix.tolist() == by_rows.tolist()


def test_nms_uses_the_row_path_beyond_the_matrix_limit(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    boxes, scores = clustered_boxes(rng, 60)
    expected = core_nms.nms(boxes, scores, 0.5)
    monkeypatch.setattr(core_nms, "MATRIX_NMS_MAX", 10)
    monkeypatch.setattr(core_nms, "_nms_matrix", None)  # would fail if called
    assert core_nms.nms(boxes, scores, 0.5).tolist() == expected.tolist()


def test_a_nan_box_is_suppressed_by_both_paths() -> None:
    boxes = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    order = np.argsort(-scores, kind="stable")
    assert core_nms._nms_matrix(boxes[order], 0.5, order).tolist() == core_nms._nms_rows(boxes, order, 0.5).tolist()
