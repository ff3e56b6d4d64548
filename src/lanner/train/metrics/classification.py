"""Classification metrics in numpy: top-1, top-5, per-class accuracy and the confusion matrix.

Example:
    >>> import numpy as np
    >>> logits = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    >>> m = evaluate_classification(logits, np.array([0, 1]), ["a", "b", "c"])
    >>> m.top1, m.confusion.tolist()
    (0.5, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lanner.core.errors import DataError


@dataclass
class ClassificationMetrics:
    """Accuracy of a classifier. ``confusion[i, j]`` counts images of true class i predicted as j.

    ``top5`` is top-min(5, K) accuracy; per-class accuracy is ``nan`` for classes with no images.

    Example:
        >>> import numpy as np
        >>> ClassificationMetrics(1.0, 1.0, {"a": 1.0}, np.ones((1, 1), np.int64)).to_dict()["top1"]
        1.0
    """

    top1: float
    top5: float
    per_class_accuracy: dict[str, float]
    confusion: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready summary (``nan`` becomes ``None``)."""

        def clean(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "top1": clean(self.top1),
            "top5": clean(self.top5),
            "per_class_accuracy": {k: clean(v) for k, v in self.per_class_accuracy.items()},
            "confusion_matrix": self.confusion.tolist(),
        }


def evaluate_classification(
    logits_or_probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> ClassificationMetrics:
    """Top-1/top-5/per-class accuracy and confusion matrix of scores (N, K) against integer labels (N,).

    Ties in scores go to the lower class index (stable sort), so results are deterministic.

    Example:
        >>> import numpy as np
        >>> evaluate_classification(np.eye(3), np.array([0, 1, 1]), ["a", "b", "c"]).per_class_accuracy
        {'a': 1.0, 'b': 0.5, 'c': nan}
    """
    scores = np.asarray(logits_or_probs, np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    names = list(class_names)
    k = len(names)
    if scores.ndim != 2 or scores.shape[1] != k:
        raise DataError(
            f"scores must have shape (N, {k}) for {k} classes, got {scores.shape}",
            fix="pass one row of logits or probabilities per image, one column per class name",
        )
    if scores.shape[0] != labels.shape[0]:
        raise DataError(f"got {scores.shape[0]} score rows but {labels.shape[0]} labels", fix="pass one label per row")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise DataError(f"labels must be in [0, {k}), got range [{labels.min()}, {labels.max()}]")
    n = labels.shape[0]
    if n == 0:
        return ClassificationMetrics(float("nan"), float("nan"), dict.fromkeys(names, float("nan")), np.zeros((k, k)))
    ranked = np.argsort(-scores, axis=1, kind="stable")
    top1 = ranked[:, 0]
    top5_hit = (ranked[:, : min(5, k)] == labels[:, None]).any(axis=1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, top1), 1)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return ClassificationMetrics(
        top1=float((top1 == labels).mean()),
        top5=float(top5_hit.mean()),
        per_class_accuracy={name: float(v) for name, v in zip(names, per_class)},
        confusion=confusion,
    )
