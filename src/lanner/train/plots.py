"""PNG plots written with the results: training curves, PR curves per class, confusion matrix (matplotlib Agg).

Example:
    >>> plot_curves([{"event": "epoch", "epoch": 1, "loss": 3.0}], Path("/tmp/doc_curves.png"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Loss, learning rate and validation metrics per epoch (one panel each)."""
    plt = _pyplot()
    epochs = [h for h in history if h.get("event") == "epoch"]
    panels = [("loss", ["loss", "loss_iou", "loss_obj", "loss_cls"]), ("lr", ["lr"])]
    panels.append(("validation", ["mAP", "mAP50", "top1", "top5"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5))
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            points = [(h["epoch"], h[key]) for h in epochs if isinstance(h.get(key), int | float)]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if ax.has_data():
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_pr_curves(pr_curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Precision-recall at IoU 0.5, one line per class."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (recall, precision) in pr_curves.items():
        ax.plot(recall, precision, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("PR curves (IoU 0.5)")
    if pr_curves:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path) -> Path:
    """A confusion matrix (rows: truth, columns: prediction) with counts in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    names = list(labels) + ["background"] * (matrix.shape[0] - len(labels))
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 0.8 + 0.6 * len(names)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
