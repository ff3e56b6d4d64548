"""PNG plots for evaluation and training reports: per-class PR curves and a confusion matrix.

Uses matplotlib's object API with the Agg canvas (no pyplot global state, no display needed), so it
is safe in worker processes and on headless servers.

Example:
    >>> import numpy as np
    >>> curves = {"car": (np.linspace(0, 1, 101), np.linspace(1, 0.5, 101))}
    >>> plot_pr_curves(curves, "/tmp/doc_pr.png").name
    'doc_pr.png'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_pr_curves(
    pr_curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    ap50: Mapping[str, float] | None = None,
    title: str = "Precision-recall at IoU 0.5",
) -> Path:
    """One precision-recall curve per class (legend shows AP@.5 when given); returns the PNG path.

    Example:
        >>> plot_pr_curves(metrics.pr_curves, "out/pr_curves.png", metrics.per_class_ap50)  # doctest: +SKIP
    """
    figure = _figure(7, 5)
    ax = figure.add_subplot()
    for name, (recall, precision) in pr_curves.items():
        value = (ap50 or {}).get(name)
        label = name if value is None or not math.isfinite(value) else f"{name} (AP50 {value:.3f})"
        ax.plot(recall, precision, label=label, linewidth=1.5)
    if pr_curves:
        ax.legend(loc="lower left", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no class has ground truth", ha="center", va="center")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """A confusion matrix as a heat map, rows = true class, columns = predicted, each row normalised.

    Cells show the row fraction and the count. ``labels`` names rows/columns (include ``background``
    for detection matrices).

    Example:
        >>> plot_confusion_matrix(np.array([[5, 1], [0, 3]]), ["cat", "dog"], "/tmp/doc_cm.png").suffix
        '.png'
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix shape {matrix.shape} does not match {len(labels)} labels")
    rows = matrix.sum(axis=1, keepdims=True)
    fraction = np.divide(matrix, rows, out=np.zeros(matrix.shape, np.float64), where=rows > 0)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    figure = _figure(size + 1, size)
    ax = figure.add_subplot()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, fraction=0.046)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(labels) <= 30:
        for i, j in np.ndindex(matrix.shape):
            colour = "white" if fraction[i, j] > 0.5 else "black"
            text = f"{fraction[i, j]:.2f}\n{matrix[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color=colour)
    return _save(figure, path)
