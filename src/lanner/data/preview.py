"""A contact sheet of a dataset: sample images with their boxes (or class) drawn, to look at before training.

The first thing to do with a dataset from another tool is to look at it: are the boxes on the objects, are the
classes right, did a converter swap x and y or read normalized numbers as pixels? ``preview_grid`` draws a
seeded sample of images (``count``) in a grid, each box in its class colour (the same colours as ``lanner
infer`` and the streaming overlay) with its class name, ignore regions (KITTI ``DontCare``, COCO crowd boxes)
in grey with "ignore", and under each tile the image id, its box count and its ignore region count. ``classes``
keeps only images that show one of those classes, so a rare class can be checked.

Example:
    >>> from lanner.data.io import read_dataset  # doctest: +SKIP
    >>> grid = preview_grid(read_dataset("d"), count=16, seed=0)  # doctest: +SKIP
    >>> cv2.imwrite("preview.jpg", grid)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from lanner.core.drawing import draw_boxes, put_label
from lanner.core.errors import DataError, UsageError
from lanner.data.dataset import (
    ClassificationDataset,
    ClassificationSample,
    DetectionDataset,
    Sample,
    ignored_boxes,
)
from lanner.data.images import read_image

IGNORE_BGR = (160, 160, 160)
CAPTION_PX = 22
AnyDataset = DetectionDataset | ClassificationDataset
MAX_TILE_ASPECT = 2.0  # a tile is at most this many times as tall as it is wide


def pick_samples(dataset: AnyDataset, count: int, seed: int = 0, classes: Sequence[str] = ()) -> list[Any]:
    """``count`` samples drawn without replacement (seeded; dataset order kept), only those showing ``classes``
    (a detection image with a box of one, a classification image of one)."""
    if count < 1:
        raise UsageError(f"--count must be at least 1, got {count}")
    unknown = [name for name in classes if name not in dataset.classes]
    if unknown:
        raise UsageError(f"classes {unknown} are not in the dataset", fix=f"choose from {', '.join(dataset.classes)}")
    wanted = [dataset.classes.index(name) for name in classes]
    pool: list[Any] = [s for s in dataset.samples if not wanted or np.isin(_labels(s), wanted).any()]
    if not pool:
        raise DataError(f"no image shows {', '.join(classes)}", where=str(dataset.root))
    order = np.random.default_rng(seed).permutation(len(pool))[:count]
    return [pool[i] for i in sorted(order.tolist())]


def draw_sample(sample: Sample, classes: Sequence[str]) -> np.ndarray:
    """One image with its boxes and ignore regions drawn."""
    image = read_image(sample.image_path)
    boxes = sample.boxes
    ignore = ignored_boxes(boxes)
    names = [classes[c] if 0 <= c < len(classes) else str(c) for c in boxes.class_id.tolist()]
    image = draw_boxes(image, boxes.xyxy[~ignore], boxes.class_id[~ignore], [n for n, i in zip(names, ignore) if not i])
    regions = np.concatenate([boxes.xyxy[ignore], np.asarray(sample.ignore_regions, np.float32).reshape(-1, 4)])
    thickness = max(1, round(min(image.shape[:2]) / 300))
    for x1, y1, x2, y2 in regions.round().astype(int).tolist():
        cv2.rectangle(image, (x1, y1), (x2, y2), IGNORE_BGR, thickness)
        put_label(image, "ignore", (x1, y1), IGNORE_BGR, max(0.35, min(image.shape[:2]) / 1000))
    return image


def preview_grid(
    dataset: AnyDataset,
    count: int = 16,
    seed: int = 0,
    classes: Sequence[str] = (),
    tile_width: int = 480,
    columns: int | None = None,
) -> np.ndarray:
    """The contact sheet (BGR) of ``count`` seeded samples; see the module docstring."""
    return draw_preview(dataset, pick_samples(dataset, count, seed, classes), tile_width, columns)


def draw_preview(
    dataset: AnyDataset, samples: Sequence[Any], tile_width: int = 480, columns: int | None = None
) -> np.ndarray:
    """The contact sheet of ``samples`` (from ``pick_samples``). An ImageFolder set's tiles are its images
    captioned with their class and file name."""
    if isinstance(dataset, ClassificationDataset):
        names = dataset.classes
        tiles = [(read_image(s.image_path), f"{names[s.class_id]}  {s.image_path.name}") for s in samples]
    else:
        tiles = [(draw_sample(s, dataset.classes), caption(s)) for s in samples]
    return contact_sheet(tiles, tile_width, columns)


def _labels(sample: Sample | ClassificationSample) -> np.ndarray:
    return np.asarray([sample.class_id]) if isinstance(sample, ClassificationSample) else sample.boxes.class_id


def caption(sample: Sample) -> str:
    """``"<image id>  (<n> boxes)"``, plus ``", <m> ignore"`` when it has ignore regions (not counted as boxes)."""
    ignore = int(ignored_boxes(sample.boxes).sum())
    regions = ignore + len(np.asarray(sample.ignore_regions).reshape(-1, 4))
    more = f", {regions} ignore" if regions else ""
    return f"{sample.image_id}  ({len(sample.boxes) - ignore} boxes{more})"


def contact_sheet(
    tiles: Sequence[tuple[np.ndarray, str]], tile_width: int = 480, columns: int | None = None
) -> np.ndarray:
    """Images with a caption under each, resized to ``tile_width`` and laid out in a white grid (BGR).

    An image taller than ``MAX_TILE_ASPECT`` times its width is fitted to that height instead (white at its
    right): a 40 x 4000 px strip would otherwise make a sheet taller than JPEG's 65535 px and never be written.
    """
    columns = columns or min(len(tiles), max(1, round(math.sqrt(len(tiles) * 1.5))))
    shown = []
    for image, text in tiles:
        scale = min(tile_width / image.shape[1], MAX_TILE_ASPECT * tile_width / image.shape[0])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        tile = np.full((size[1], tile_width, 3), 255, np.uint8)
        tile[:, : size[0]] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        caption = np.full((CAPTION_PX, tile_width, 3), 255, np.uint8)
        cv2.putText(caption, text, (4, CAPTION_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
        shown.append(np.concatenate([tile, caption]))
    tile_h = max(t.shape[0] for t in shown)
    rows = math.ceil(len(shown) / columns)
    grid = np.full((rows * tile_h, columns * tile_width, 3), 255, np.uint8)
    for k, tile in enumerate(shown):
        r, c = divmod(k, columns)
        grid[r * tile_h : r * tile_h + tile.shape[0], c * tile_width : (c + 1) * tile_width] = tile
    return grid
