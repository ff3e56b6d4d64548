"""COCO-style detection metrics in numpy: mAP@[.5:.95], mAP@.5, mAP@.75, per-class AP, P/R, PR curves.

Reproduces ``pycocotools.cocoeval.COCOeval`` for bounding boxes (area range "all", ``maxDets`` = 100
by default): detections are ranked per image and class, greedily matched to ground truth at ten IoU
thresholds (.50:.05:.95), crowd/ignore boxes absorb matches without counting, and precision is read
at 101 recall points after taking its monotone envelope. The test suite checks the numbers against
pycocotools to 1e-4. Classes without ground truth have no AP (``nan``) and are left out of the means,
as pycocotools leaves out its ``-1`` entries.

Example:
    >>> import numpy as np
    >>> from lanner.core import Detections
    >>> gt = [Detections.from_arrays([[0, 0, 10, 10]], [0])]
    >>> pred = [Detections.from_arrays([[0, 0, 10, 9]], [0], confidence=[0.9])]
    >>> m = evaluate_detections(pred, gt, ["car"])
    >>> round(m.map50, 3), round(m.map, 3)
    (1.0, 0.9)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError

# pycocotools Params: np.linspace(.5, .95, 10) and np.linspace(.0, 1.00, 101)
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass
class DetectionMetrics:
    """Detection quality of one model on one dataset (COCO definitions, IoU thresholds .50:.05:.95).

    ``precision``/``recall`` are read at the confidence with the best F1 per class, at IoU .5;
    ``pr_curves[name]`` is (recall grid, interpolated precision at IoU .5), ready to plot;
    ``confusion`` is (K+1)x(K+1): rows ground-truth class, columns predicted class, last = background.

    Example:
        >>> m = DetectionMetrics(0.5, 0.7, 0.5, {"car": 0.5}, {"car": 0.7}, {"car": 0.8}, {"car": 0.6}, {})
        >>> m.to_dict()["mAP50"]
        0.7
    """

    map: float
    map50: float
    map75: float
    per_class_ap: dict[str, float]
    per_class_ap50: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    pr_curves: dict[str, tuple[np.ndarray, np.ndarray]]
    best_f1_confidence: dict[str, float] = field(default_factory=dict)
    num_gt: dict[str, int] = field(default_factory=dict)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    def to_dict(self) -> dict:
        """JSON-ready summary (``nan`` becomes ``None``); PR curves are left out, they are for plots."""
        per_class = {
            name: {
                "AP": _json_float(self.per_class_ap.get(name)),
                "AP50": _json_float(self.per_class_ap50.get(name)),
                "precision": _json_float(self.precision.get(name)),
                "recall": _json_float(self.recall.get(name)),
                "best_f1_confidence": _json_float(self.best_f1_confidence.get(name)),
                "num_gt": int(self.num_gt.get(name, 0)),
            }
            for name in self.per_class_ap
        }
        return {
            "mAP": _json_float(self.map),
            "mAP50": _json_float(self.map50),
            "mAP75": _json_float(self.map75),
            "per_class": per_class,
            "confusion_matrix": self.confusion.tolist(),
        }


def _json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def box_iou_coco(dt_xyxy: np.ndarray, gt_xyxy: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """IoU matrix (D, G) as COCO's ``maskUtils.iou`` on boxes: for crowd GT, intersection over the detection area."""
    dt = np.asarray(dt_xyxy, np.float64).reshape(-1, 4)
    gt = np.asarray(gt_xyxy, np.float64).reshape(-1, 4)
    w = np.minimum(dt[:, None, 2], gt[None, :, 2]) - np.maximum(dt[:, None, 0], gt[None, :, 0])
    h = np.minimum(dt[:, None, 3], gt[None, :, 3]) - np.maximum(dt[:, None, 1], gt[None, :, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    dt_area = ((dt[:, 2] - dt[:, 0]) * (dt[:, 3] - dt[:, 1]))[:, None]
    gt_area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :]
    union = np.where(np.asarray(gt_crowd, bool)[None, :], dt_area, dt_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class _ImageClassEval:
    """Per (image, class) result of COCO matching: det scores, matched/ignored flags per IoU threshold."""

    scores: np.ndarray  # (D,) sorted descending (stable, as COCO's mergesort)
    ious: np.ndarray  # (D, G), GT ordered non-ignored first
    gt_ignore: np.ndarray  # (G,)
    num_gt: int  # non-ignored ground truth
    matched: np.ndarray | None = None  # (T, D) bool, filled by _match_all
    ignored: np.ndarray | None = None  # (T, D) bool


def _match_batch(ious: np.ndarray, gt_ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching for a batch of (image, class) groups at once: ``ious (B, D, G)`` padded with -1.

    Mirrors ``COCOeval.evaluateImg``: each detection, in score order, takes the unmatched GT with the
    highest IoU >= t (a later GT wins ties); a non-ignored GT is preferred over an ignore/crowd one
    (COCO sorts them first and stops at the first ignored one once it has a match); crowd GT can
    absorb many detections. Sequential only over the detection rank, vectorised over groups and thresholds.
    """
    n_b, n_d, n_g = ious.shape
    n_t = len(IOU_THRESHOLDS)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]
    matched = np.zeros((n_b, n_t, n_d), bool)
    ignored = np.zeros((n_b, n_t, n_d), bool)
    taken = np.zeros((n_b, n_t, n_g), bool)
    bonus = np.where(gt_ignore, 0.0, 2.0)[:, None, :]  # +2 ranks any non-ignored GT above every ignored one
    active = ious.max(axis=2, initial=-1.0) >= thr.min()  # (B, D): detections that can match at all
    t_idx = np.arange(n_t)[None, :]
    for d in np.flatnonzero(active.any(axis=0)):
        rows = np.flatnonzero(active[:, d])
        row = ious[rows, d][:, None, :]  # (R, 1, G)
        ok = (row >= thr) & (~taken[rows] | gt_ignore[rows][:, None, :])
        key = np.where(ok, row + bonus[rows], -1.0)  # (R, T, G)
        last = n_g - 1 - np.argmax(key[..., ::-1], axis=2)  # highest key, ties to the later GT
        b_idx = rows[:, None]
        hit = key[np.arange(len(rows))[:, None], t_idx, last] >= 0  # (R, T)
        taken[b_idx, t_idx, last] |= hit
        matched[rows, :, d] = hit
        ignored[rows, :, d] = hit & gt_ignore[b_idx, last]
    return matched, ignored


def _match_all(evals: list[_ImageClassEval], chunk: int = 256) -> None:
    """Fill ``matched``/``ignored`` of every group; groups with both dets and GT go through ``_match_batch``
    in chunks of similar size (padding stays small, memory bounded)."""
    n_t = len(IOU_THRESHOLDS)
    todo = []
    for e in evals:
        e.matched = np.zeros((n_t, len(e.scores)), bool)
        e.ignored = np.zeros((n_t, len(e.scores)), bool)
        if e.ious.size:
            todo.append(e)
    todo.sort(key=lambda e: e.ious.shape)
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        n_d = max(e.ious.shape[0] for e in part)
        n_g = max(e.ious.shape[1] for e in part)
        ious = np.full((len(part), n_d, n_g), -1.0)
        gt_ignore = np.zeros((len(part), n_g), bool)
        for i, e in enumerate(part):
            ious[i, : e.ious.shape[0], : e.ious.shape[1]] = e.ious
            gt_ignore[i, : e.ious.shape[1]] = e.gt_ignore
        matched, ignored = _match_batch(ious, gt_ignore)
        for i, e in enumerate(part):
            e.matched, e.ignored = matched[i, :, : len(e.scores)], ignored[i, :, : len(e.scores)]


def _ignore_flags(gt: Detections) -> np.ndarray:
    """``data["ignore"]`` (or COCO's ``iscrowd``, as the COCO reader stores it) as a bool per GT box."""
    for key in ("ignore", "iscrowd"):
        if key in gt.data:
            return np.asarray(gt.data[key]).astype(bool).reshape(len(gt))
    return np.zeros(len(gt), bool)


def _check_inputs(predictions: Sequence[Detections], ground_truth: Sequence[Detections]) -> None:
    if len(predictions) != len(ground_truth):
        raise DataError(
            f"got predictions for {len(predictions)} images but ground truth for {len(ground_truth)}",
            fix="pass one Detections per image to both, in the same order",
        )


def _collect(predictions, ground_truth, num_classes: int, max_dets: int) -> list[list[_ImageClassEval]]:
    """COCO matching for every (image, class) pair that has any GT or prediction; grouped by class."""
    per_class: list[list[_ImageClassEval]] = [[] for _ in range(num_classes)]
    for pred, gt in zip(predictions, ground_truth):
        ignore = _ignore_flags(gt)
        ious = box_iou_coco(pred.xyxy, gt.xyxy, ignore)  # crowd == ignore, as COCOeval sets it
        classes = np.union1d(np.unique(gt.class_id), np.unique(pred.class_id))
        for k in classes[(classes >= 0) & (classes < num_classes)].tolist():
            p_idx = np.flatnonzero(pred.class_id == k)
            p_idx = p_idx[np.argsort(-pred.confidence[p_idx], kind="mergesort")][:max_dets]
            g_idx = np.flatnonzero(gt.class_id == k)
            g_idx = g_idx[np.argsort(ignore[g_idx], kind="mergesort")]
            scores = pred.confidence[p_idx].astype(np.float64)
            group = _ImageClassEval(scores, ious[np.ix_(p_idx, g_idx)], ignore[g_idx], int((~ignore[g_idx]).sum()))
            per_class[k].append(group)
    _match_all([e for evals in per_class for e in evals])
    return per_class


@dataclass
class _ClassCurves:
    precision_grid: np.ndarray  # (T, R) interpolated precision, COCO's precision[:, :, k, 0, -1]
    precision: float  # at best F1, IoU .5
    recall: float
    confidence: float


def _accumulate(evals: list[_ImageClassEval]) -> _ClassCurves | None:
    """COCOeval.accumulate for one class; ``None`` when the class has no non-ignored GT (COCO's -1)."""
    num_gt = sum(e.num_gt for e in evals)
    if num_gt == 0:
        return None
    n_t = len(IOU_THRESHOLDS)
    scores = np.concatenate([e.scores for e in evals]) if evals else np.zeros(0)
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e.matched for e in evals], axis=1)[:, order] if evals else np.zeros((n_t, 0), bool)
    ignored = np.concatenate([e.ignored for e in evals], axis=1)[:, order] if evals else np.zeros((n_t, 0), bool)
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    recall = tp / num_gt
    precision = tp / (fp + tp + np.spacing(1))
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    grid = np.zeros((n_t, len(RECALL_THRESHOLDS)))
    for t in range(n_t):
        idx = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
        valid = idx < recall.shape[1]
        grid[t, valid] = envelope[t, idx[valid]]
    if recall.shape[1] == 0:
        return _ClassCurves(grid, 0.0, 0.0, 0.0)
    f1 = 2 * precision[0] * recall[0] / (precision[0] + recall[0] + np.spacing(1))
    best = int(np.argmax(f1))
    return _ClassCurves(grid, float(precision[0, best]), float(recall[0, best]), float(scores[order][best]))


def _mean(values: list[np.ndarray]) -> float:
    return float(np.mean(np.stack(values))) if values else float("nan")


def evaluate_detections(
    predictions: Sequence[Detections],
    ground_truth: Sequence[Detections],
    class_names: Sequence[str],
    max_dets: int = 100,
    confusion_conf: float = 0.25,
    confusion_iou: float = 0.5,
) -> DetectionMetrics:
    """COCO box metrics of ``predictions`` against ``ground_truth`` (one ``Detections`` per image, same order).

    ``class_id`` indexes ``class_names``; predictions of other ids are ignored. GT boxes with a true
    ``data["ignore"]`` (or ``data["iscrowd"]``, as the COCO reader stores it) are crowd/ignore regions.
    ``max_dets`` caps detections per image and class as COCO does. The confusion matrix uses
    ``confusion_conf``/``confusion_iou``.

    Example:
        >>> from lanner.core import Detections
        >>> gt = [Detections.from_arrays([[0, 0, 10, 10]], [1])]
        >>> evaluate_detections([Detections.empty()], gt, ["a", "b"]).per_class_ap50
        {'a': nan, 'b': 0.0}
    """
    _check_inputs(predictions, ground_truth)
    names = list(class_names)
    per_class = _collect(predictions, ground_truth, len(names), max_dets)
    curves = [_accumulate(evals) for evals in per_class]
    nan = float("nan")
    defined = [c.precision_grid for c in curves if c is not None]
    return DetectionMetrics(
        map=_mean(defined),
        map50=_mean([g[0] for g in defined]),
        map75=_mean([g[5] for g in defined]),
        per_class_ap={n: float(c.precision_grid.mean()) if c else nan for n, c in zip(names, curves)},
        per_class_ap50={n: float(c.precision_grid[0].mean()) if c else nan for n, c in zip(names, curves)},
        precision={n: c.precision if c else nan for n, c in zip(names, curves)},
        recall={n: c.recall if c else nan for n, c in zip(names, curves)},
        pr_curves={n: (RECALL_THRESHOLDS.copy(), c.precision_grid[0].copy()) for n, c in zip(names, curves) if c},
        best_f1_confidence={n: c.confidence if c else nan for n, c in zip(names, curves)},
        num_gt={n: sum(e.num_gt for e in evals) for n, evals in zip(names, per_class)},
        confusion=detection_confusion_matrix(predictions, ground_truth, len(names), confusion_conf, confusion_iou),
    )


def detection_confusion_matrix(
    predictions: Sequence[Detections],
    ground_truth: Sequence[Detections],
    num_classes: int,
    conf: float = 0.25,
    iou: float = 0.5,
) -> np.ndarray:
    """Class confusion of detections: (K+1)x(K+1) counts, rows = GT class, columns = predicted, K = background.

    Per image, predictions above ``conf`` are matched to GT regardless of class, greedily by highest
    IoU (>= ``iou``); unmatched predictions count as background rows, missed GT as background columns.
    Ignore/crowd GT is dropped together with the predictions that match it.

    Example:
        >>> from lanner.core import Detections
        >>> gt = [Detections.from_arrays([[0, 0, 10, 10]], [0])]
        >>> pred = [Detections.from_arrays([[0, 0, 10, 10]], [1], confidence=[0.9])]
        >>> detection_confusion_matrix(pred, gt, 2).tolist()
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    """
    _check_inputs(predictions, ground_truth)
    k = num_classes
    matrix = np.zeros((k + 1, k + 1), np.int64)
    for pred, gt in zip(predictions, ground_truth):
        m = match_image(pred, gt, k, conf, iou)
        np.add.at(matrix, (m.gt.class_id[m.gt_used], m.pred.class_id[m.pred_used]), 1)
        np.add.at(matrix, (np.full(len(m.pred) - len(m.pred_used), k), np.delete(m.pred.class_id, m.pred_used)), 1)
        np.add.at(matrix, (np.delete(m.gt.class_id, m.gt_used), np.full(len(m.gt) - len(m.gt_used), k)), 1)
    return matrix


@dataclass(frozen=True)
class ImageMatch:
    """One image's detections paired with its ground truth (the confusion matrix's rule).

    ``pred`` and ``gt`` are what is scored: predictions above ``conf`` not over an ignore region, and the
    non-ignored ground truth. ``pred_used[i]`` and ``gt_used[i]`` are a pair (IoU >= the threshold, any class).
    """

    pred: Detections
    gt: Detections
    pred_used: np.ndarray
    gt_used: np.ndarray

    @property
    def false_positives(self) -> np.ndarray:
        """Indices into ``pred`` of detections that match nothing."""
        return np.setdiff1d(np.arange(len(self.pred)), self.pred_used)

    @property
    def missed(self) -> np.ndarray:
        """Indices into ``gt`` of objects no detection found."""
        return np.setdiff1d(np.arange(len(self.gt)), self.gt_used)

    @property
    def wrong_class(self) -> np.ndarray:
        """Positions in ``pred_used``/``gt_used`` of pairs whose classes differ."""
        return np.flatnonzero(self.pred.class_id[self.pred_used] != self.gt.class_id[self.gt_used])

    @property
    def errors(self) -> int:
        return len(self.false_positives) + len(self.missed) + len(self.wrong_class)


def match_image(pred: Detections, gt: Detections, num_classes: int, conf: float = 0.25, iou: float = 0.5) -> ImageMatch:
    """Pair one image's detections with its ground truth, greedily by highest IoU (see ``ImageMatch``)."""
    k = num_classes
    pred = pred[(pred.confidence >= conf) & (pred.class_id >= 0) & (pred.class_id < k)]
    ignore = _ignore_flags(gt) | (gt.class_id < 0) | (gt.class_id >= k)
    if ignore.any() and len(pred):
        over_ignored = box_iou_coco(pred.xyxy, gt.xyxy[ignore], np.ones(int(ignore.sum()), bool)).max(1) >= iou
        pred = pred[~over_ignored]
    gt = gt[~ignore]
    pred_used, gt_used = _greedy_pairs(box_iou_coco(pred.xyxy, gt.xyxy, np.zeros(len(gt), bool)), iou)
    return ImageMatch(pred, gt, pred_used, gt_used)


def _greedy_pairs(ious: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one (pred index, gt index) pairs with IoU >= threshold, taken highest IoU first."""
    pred_idx, gt_idx = np.nonzero(ious >= threshold)
    order = np.argsort(-ious[pred_idx, gt_idx], kind="mergesort")
    used_p: set[int] = set()
    used_g: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for p, g in zip(pred_idx[order].tolist(), gt_idx[order].tolist()):
        if p not in used_p and g not in used_g:
            used_p.add(p)
            used_g.add(g)
            pairs.append((p, g))
    array = np.asarray(pairs, np.int64).reshape(-1, 2)
    return array[:, 0], array[:, 1]
