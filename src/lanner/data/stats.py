"""Numbers that describe a detection dataset, and a picture of them.

Box sizes use COCO's buckets (small < 32², medium < 96², large otherwise; box area in pixels), so the
numbers line up with the APs, APm, APl of an evaluation. Truncation and occlusion histograms appear
when the boxes carry KITTI's columns. ``ignore_regions`` counts COCO crowd boxes and KITTI DontCare regions.

Example:
    >>> stats = compute_stats(read_dataset("data/kitti_cars"))
    >>> stats.boxes_per_image
    {'min': 0, 'mean': 3.2, 'max': 11}
    >>> plot_stats(stats, "cars.png")
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lanner.core.errors import UsageError
from lanner.core.folders import writing
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import ClassificationDataset, DetectionDataset, ignored_boxes
from lanner.data.formats.layout import image_size

# COCO's area ranges (pycocotools' ``areaRng``): small < 32², medium < 96², large beyond.
SIZE_BUCKETS = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, float("inf")))
# Edges (pixels) of the sqrt(box area) histogram.
SQRT_AREA_EDGES = (0, 8, 16, 32, 64, 96, 128, 256, 512)
TRUNCATED_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# KITTI occluded: 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown.
OCCLUDED_LEVELS = (0, 1, 2, 3)
PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".pdf")


@dataclass
class Stats:
    """Summary numbers of a detection dataset; ``to_dict`` is what ``--json`` writes."""

    images: int
    boxes: int
    classes: dict[str, int]
    boxes_per_image: dict[str, float]
    image_sizes: dict[str, int]
    box_sizes: dict[str, int]
    sqrt_area_histogram: dict[str, int]
    truncated: dict[str, int] | None = None
    occluded: dict[str, int] | None = None
    ignore_regions: int = 0  # COCO iscrowd boxes (also in ``boxes``) + KITTI DontCare regions (not boxes)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def compute_stats(ds: DetectionDataset | ClassificationDataset, progress: ProgressFn | None = None) -> Stats:
    """Count images, boxes, classes, sizes, and KITTI truncation/occlusion when present.

    For a ``ClassificationDataset`` the class counts are images per class and there are no boxes.
    """
    if isinstance(ds, ClassificationDataset):
        return _classification_stats(ds, progress)
    per_image, areas, sizes = [], [], {}
    truncated, occluded, ignored = [], [], 0
    kitti = bool(ds.samples) and all("truncated" in s.boxes.data and "occluded" in s.boxes.data for s in ds.samples)
    for sample in ds.samples:
        per_image.append(len(sample.boxes))
        areas.append(sample.boxes.area)
        key = f"{sample.width}x{sample.height}"
        sizes[key] = sizes.get(key, 0) + 1
        ignored += int(ignored_boxes(sample.boxes).sum()) + len(sample.ignore_regions)
        if kitti:
            truncated.append(sample.boxes.data["truncated"])
            occluded.append(sample.boxes.data["occluded"])
        advance(progress)
    area = np.concatenate(areas) if areas else np.zeros(0)
    counts = np.asarray(per_image if per_image else [0])
    return Stats(
        images=len(ds),
        boxes=int(area.size),
        classes=ds.class_counts(),
        boxes_per_image={"min": int(counts.min()), "mean": round(float(counts.mean()), 3), "max": int(counts.max())},
        image_sizes=dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))),
        box_sizes={name: int(np.sum((area >= lo) & (area < hi))) for name, lo, hi in SIZE_BUCKETS},
        sqrt_area_histogram=_histogram(np.sqrt(area), SQRT_AREA_EDGES),
        truncated=_histogram(np.concatenate(truncated), TRUNCATED_EDGES, closed=True) if kitti else None,
        occluded=_levels(np.concatenate(occluded)) if kitti else None,
        ignore_regions=ignored,
    )


def _classification_stats(ds: ClassificationDataset, progress: ProgressFn | None) -> Stats:
    sizes: dict[str, int] = {}
    for sample in ds.samples:
        size = image_size(sample.image_path)
        key = f"{size[0]}x{size[1]}" if size else "unreadable"
        sizes[key] = sizes.get(key, 0) + 1
        advance(progress)
    return Stats(
        images=len(ds),
        boxes=0,
        classes=ds.class_counts(),
        boxes_per_image={"min": 0, "mean": 0.0, "max": 0},
        image_sizes=dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))),
        box_sizes={},
        sqrt_area_histogram={},
    )


def _histogram(values: np.ndarray, edges: tuple, closed: bool = False) -> dict[str, int]:
    """Counts per ``[lo, hi)`` bin labelled ``lo-hi``; the last bin is open-ended unless ``closed``."""
    bounds = [*edges] if closed else [*edges, float("inf")]
    labels = [f"{lo:g}-{hi:g}" if hi != float("inf") else f">={lo:g}" for lo, hi in itertools.pairwise(bounds)]
    index = np.clip(np.searchsorted(np.asarray(bounds), values, side="right") - 1, 0, len(labels) - 1)
    counts = np.bincount(index.astype(np.int64), minlength=len(labels)) if values.size else np.zeros(len(labels))
    return {label: int(c) for label, c in zip(labels, counts, strict=True)}


def _levels(values: np.ndarray) -> dict[str, int]:
    levels = {str(level): int(np.sum(values == level)) for level in OCCLUDED_LEVELS}
    other = int(values.size - sum(levels.values()))
    if other:
        levels["other"] = other
    return levels


def check_plot_path(path: str | Path) -> Path:
    """``path`` if its suffix names an image format ``plot_stats`` writes (checked before any work is done).

    Without this, matplotlib silently adds ``.png`` to a name without a suffix (a folder ``out`` becomes
    ``out.png``) and fails with a traceback on an unknown one.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(
            "the plot path is a folder", where=str(path), fix=f"pass a file path, e.g. {path / 'stats.png'}"
        )
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(
            f"cannot tell the image format of {path.name!r}",
            where=str(path),
            fix=f"pass a file name ending in {', '.join(PLOT_SUFFIXES)}",
        )
    return path


def plot_stats(stats: Stats, path: str | Path) -> Path:
    """Save a PNG with the class counts and the box-size histogram (matplotlib, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # drawing is optional: import on use
    from matplotlib.figure import Figure

    path = check_plot_path(path)
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    names = list(stats.classes)
    left.barh(names[::-1], [stats.classes[n] for n in names][::-1], color="#4c72b0")
    left.set_title(f"boxes per class ({stats.boxes} boxes, {stats.images} images)")
    left.set_xlabel("boxes")
    bins = list(stats.sqrt_area_histogram)
    right.bar(bins, [stats.sqrt_area_histogram[b] for b in bins], color="#55a868")
    right.set_title("box size: sqrt(area) in pixels (COCO small < 32, large >= 96)")
    right.set_xlabel("sqrt(width x height) [px]")
    right.set_ylabel("boxes")
    right.tick_params(axis="x", labelrotation=45)
    with writing(path, "plot"):
        figure.savefig(path, dpi=100)
    return path
