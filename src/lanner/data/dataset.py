"""The in-memory form of a detection dataset, shared by every reader, writer and the synthetic world.

All formats on disk keep images under ``<root>/images/`` (KITTI's ``image_2`` is read too); only the
label files differ. Boxes are ``Detections`` in pixel xyxy with ``confidence`` 1. KITTI's extra
columns travel in ``Detections.data`` under their KITTI names (``truncated``, ``occluded``, ``alpha``,
``dimensions`` (N,3: h w l), ``location`` (N,3: x y z), ``rotation_y``), so a KITTI -> COCO -> KITTI
trip can keep them where the middle format has room.

Ignore regions are not training objects. A COCO ``iscrowd: 1`` box keeps its class and carries
``data["iscrowd"] = 1`` and ``data["ignore"] = True`` (training drops ``ignore`` boxes, evaluation treats them
as pycocotools does). KITTI's class-less ``DontCare`` boxes go to ``Sample.ignore_regions`` (never a class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lanner.core.detections import Detections

KITTI_EXTRA_COLUMNS = ("truncated", "occluded", "alpha", "dimensions", "location", "rotation_y")


@dataclass
class Sample:
    """One image and its labelled boxes. ``image_path`` is absolute; ``image_id`` is unique in the set.

    ``ignore_regions`` (M, 4) pixel xyxy: class-less areas to ignore (KITTI ``DontCare``): not objects, so
    no class and no box of ``boxes``; only KITTI has a way to write them.
    """

    image_id: str
    image_path: Path
    width: int
    height: int
    boxes: Detections = field(default_factory=Detections.empty)
    ignore_regions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


@dataclass
class DetectionDataset:
    """A list of samples and the class names that ``boxes.class_id`` indexes into."""

    root: Path
    classes: list[str]
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)

    def box_count(self) -> int:
        return sum(len(s.boxes) for s in self.samples)

    def class_counts(self) -> dict[str, int]:
        counts = np.zeros(len(self.classes), np.int64)
        for s in self.samples:
            counts += np.bincount(s.boxes.class_id, minlength=len(self.classes))[: len(self.classes)]
        return dict(zip(self.classes, counts.tolist(), strict=True))


IGNORE_CLASS = -2
"""The class id training and augmentation give a class-less ignore region row (KITTI ``DontCare``). A crowd box
of class ``c`` gets ``crowd_class(c)``, below it; every id <= ``IGNORE_CLASS`` is an ignore region (-1 pads)."""


def crowd_class(class_id: np.ndarray | int) -> np.ndarray:
    """The row id of a crowd box of class ``class_id`` (its own inverse: ``crowd_class(crowd_class(c)) == c``)."""
    return IGNORE_CLASS - 1 - np.asarray(class_id)


def ignored_boxes(boxes: Detections) -> np.ndarray:
    """Bool per box: an ignore region (``data["ignore"]`` or COCO's ``data["iscrowd"]``), not an object to learn."""
    mask = np.zeros(len(boxes), bool)
    for key in ("ignore", "iscrowd"):
        if key in boxes.data:
            mask |= np.asarray(boxes.data[key]).astype(bool).reshape(len(boxes))
    return mask


def regions_in_image(regions: np.ndarray, width: int, height: int) -> np.ndarray:
    """Ignore regions ``(M, 4)`` clipped to a ``width`` x ``height`` image, those left with no area dropped.

    A DontCare region past the edge would, once mosaic places the image in a quadrant, reach into the next
    image's quadrant and hide that image's background from the loss.
    """
    clipped, kept = clip_to_image(regions, width, height)
    return clipped[kept]


def clip_to_image(xyxy: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes clipped to the image, bool per box: it still has an area)``."""
    clipped = np.clip(np.asarray(xyxy, np.float32).reshape(-1, 4), 0, [width, height, width, height])
    return clipped, (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])


def kitti_defaults(n: int) -> dict[str, np.ndarray]:
    """KITTI's extra columns with the values TAO writes for 2D-only labels."""
    return {
        "truncated": np.zeros(n, np.float32),
        "occluded": np.zeros(n, np.int64),
        "alpha": np.zeros(n, np.float32),
        "dimensions": np.zeros((n, 3), np.float32),
        "location": np.zeros((n, 3), np.float32),
        "rotation_y": np.zeros(n, np.float32),
    }


@dataclass(frozen=True)
class ClassificationSample:
    """One image of a classification set: an absolute ``image_path`` and the index of its class."""

    image_path: Path
    class_id: int


@dataclass
class ClassificationDataset:
    """An image classification set (ImageFolder: ``<root>/<class>/<image>``); ``classes[class_id]`` names a class.

    Example:
        >>> ds = ClassificationDataset(Path("pets"), ["cat", "dog"], [ClassificationSample(Path("/p/cat/1.png"), 0)])
        >>> ds.class_counts()
        {'cat': 1, 'dog': 0}
    """

    root: Path
    classes: list[str]
    samples: list[ClassificationSample]

    def __len__(self) -> int:
        return len(self.samples)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(np.asarray([s.class_id for s in self.samples], np.int64), minlength=len(self.classes))
        return dict(zip(self.classes, counts[: len(self.classes)].tolist(), strict=True))
