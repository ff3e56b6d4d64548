"""Association: pairwise IoU, cost matrices, and assignment with a cost threshold.

Example:
    >>> import numpy as np
    >>> tracks = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    >>> dets = np.array([[21, 21, 31, 31], [1, 0, 11, 10]], np.float64)
    >>> matches, lone_tracks, lone_dets = linear_assignment(iou_cost(tracks, dets), max_cost=0.7)
    >>> matches.tolist()
    [[0, 1], [1, 0]]
"""

from __future__ import annotations

import numpy as np

_EMPTY_MATCHES = np.zeros((0, 2), np.int64)


def hungarian(cost: np.ndarray, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.optimize.linear_sum_assignment`` (scipy is imported here, lazily: it is the ``pipeline`` extra)."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as exc:  # pragma: no cover - scipy is installed wherever the tests run
        raise ImportError("lanner's trackers and MOT metrics need scipy: pip install 'lanner[pipeline]'") from exc
    return linear_sum_assignment(cost, maximize=maximize)


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4): (N, M)."""
    a = np.asarray(a_xyxy, np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, np.float64).reshape(-1, 4)
    # Column by column on (N, M) planes: no (N, M, 2) temporaries, no reductions (this is the hot loop).
    inter_w = np.minimum(a[:, 2:3], b[:, 2]) - np.maximum(a[:, 0:1], b[:, 0])
    inter_h = np.minimum(a[:, 3:4], b[:, 3]) - np.maximum(a[:, 1:2], b[:, 1])
    np.maximum(inter_w, 0.0, out=inter_w)
    np.maximum(inter_h, 0.0, out=inter_h)
    inter = np.multiply(inter_w, inter_h, out=inter_w)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_cost(
    track_xyxy: np.ndarray,
    det_xyxy: np.ndarray,
    det_score: np.ndarray | None = None,
    track_class: np.ndarray | None = None,
    det_class: np.ndarray | None = None,
) -> np.ndarray:
    """``1 - IoU`` between tracks (rows) and detections (columns); ``inf`` where pairing is forbidden.

    With ``det_score``, the similarity is ``IoU * score`` (ByteTrack's ``fuse_score``, Zhang et al. 2022):
    a confident detection wins a tie against a weak one. With both class arrays, pairs of different
    classes cost ``inf`` (class-aware tracking: a car track never takes a person box).
    """
    similarity = box_iou(track_xyxy, det_xyxy)
    if det_score is not None:
        similarity = similarity * np.asarray(det_score, np.float64)[None, :]
    cost = 1.0 - similarity
    if track_class is not None and det_class is not None:
        cost[np.asarray(track_class)[:, None] != np.asarray(det_class)[None, :]] = np.inf
    return cost


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching (Hungarian, ``scipy.optimize.linear_sum_assignment``) keeping pairs ``<= max_cost``.

    Pairs above ``max_cost`` are replaced by ``max_cost + 1e-4`` before solving: leaving a row and a column
    unmatched then costs about ``max_cost``, which is what ByteTrack's ``lap.lapjv(cost_limit=thresh)``
    does. Returns ``matches (K, 2)`` as (row, column), unmatched rows, unmatched columns (all sorted).
    """
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return _EMPTY_MATCHES, np.arange(n_rows), np.arange(n_cols)
    valid = np.isfinite(cost) & (cost <= max_cost)
    rows, cols = hungarian(np.where(valid, cost, max_cost + 1e-4))
    keep = valid[rows, cols]
    return _split(np.stack([rows[keep], cols[keep]], axis=1), n_rows, n_cols)


def greedy_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Take the cheapest remaining pair until none is ``<= max_cost`` (the IOU tracker's rule,
    Bochinski et al. 2017). Same return values as ``linear_assignment``; ties go to the lower index."""
    n_rows, n_cols = cost.shape
    valid = np.isfinite(cost) & (cost <= max_cost)
    rows, cols = np.nonzero(valid)
    order = np.lexsort((cols, rows, cost[rows, cols]))
    row_used = np.zeros(n_rows, bool)
    col_used = np.zeros(n_cols, bool)
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if not row_used[r] and not col_used[c]:
            row_used[r] = col_used[c] = True
            pairs.append((r, c))
    matches = np.array(pairs, np.int64).reshape(-1, 2)
    return _split(matches, n_rows, n_cols)


def _split(matches: np.ndarray, n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    matches = matches[np.argsort(matches[:, 0], kind="stable")].astype(np.int64)
    row_free = np.ones(n_rows, bool)
    col_free = np.ones(n_cols, bool)
    row_free[matches[:, 0]] = False
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
