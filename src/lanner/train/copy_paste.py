"""Box copy-paste: objects cut from training images and pasted into other training images.

Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method" (CVPR 2021), paste instance masks. A
detection set has boxes only, so here the box's pixels are pasted as a rectangle, as YOLO-style box copy-paste
does. It shows a class with few examples in more places: in class extension, the new class's objects land on
the replayed old-class images, so the detector sees them against backgrounds it was never shown with them.

A paste covers at most ``max_overlap`` of any box already in the image (existing labels stay true), and at
most that much of the paste is covered in turn; a paste that finds no such place in ``tries`` draws is
skipped. Each pasted object is scaled by a log-uniform factor from ``scale``.

Example:
    >>> import numpy as np
    >>> from lanner.train.spec import CopyPasteSection
    >>> image = np.zeros((100, 200, 3), np.uint8)
    >>> crop = np.full((10, 8, 3), 255, np.uint8)
    >>> section = CopyPasteSection(prob=1.0, scale=(1.0, 1.0))
    >>> out, xyxy, cls = paste_objects(image, np.zeros((0, 4)), np.zeros(0, np.int64), [(crop, 3)],
    ...                                np.random.default_rng(0), section)
    >>> cls.tolist(), (xyxy[0, 2:] - xyxy[0, :2]).tolist()
    ([3], [8.0, 10.0])
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from lanner.core.errors import ConfigError, DataError
from lanner.data.dataset import IGNORE_CLASS, ClassificationDataset, DetectionDataset, ignored_boxes
from lanner.train.spec import CopyPasteSection

Loader = Callable[[int], tuple[np.ndarray | None, np.ndarray, np.ndarray]]  # index -> (image, xyxy, class_id)


class CopyPaste:
    """The bank of pasteable objects of a training set and the draw that pastes some into an image.

    ``items_boxes`` is each training item's ``(xyxy, class_id)``; ``class_ids`` the classes whose objects
    are banked (None: every class). Objects narrower or shorter than ``section.min_size`` pixels are left
    out (a 2-pixel crop teaches nothing), and so is a crop that the image edge cuts below that size.
    """

    def __init__(
        self,
        items_boxes: Sequence[tuple[np.ndarray, np.ndarray]],
        class_ids: Sequence[int] | None,
        section: CopyPasteSection,
    ) -> None:
        self.section = section
        wanted = None if class_ids is None else set(int(c) for c in class_ids)
        bank: list[tuple[int, int]] = []
        for index, (xyxy, class_id) in enumerate(items_boxes):
            boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
            sizes = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            for k, (cls, size) in enumerate(zip(np.asarray(class_id).reshape(-1), sizes, strict=True)):
                # negative ids are ignore regions (``data.IGNORE_CLASS``), never objects to paste
                if cls >= 0 and size >= section.min_size and (wanted is None or int(cls) in wanted):
                    bank.append((index, k))
        self.bank = bank

    def __len__(self) -> int:
        return len(self.bank)

    def __call__(
        self, image: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray, rng: np.random.Generator, load: Loader
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """With probability ``prob``, paste 1..``max_objects`` banked objects into ``image``."""
        if not self.bank or rng.random() >= self.section.prob:
            return image, xyxy, class_id
        count = int(rng.integers(1, self.section.max_objects + 1))
        crops = []
        for pick in rng.integers(0, len(self.bank), count).tolist():
            index, k = self.bank[pick]
            source, boxes, classes = load(index)
            if source is None:  # a source image that cannot be decoded (a skipped bad image): no paste from it
                continue
            crop = crop_box(source, np.asarray(boxes, np.float32).reshape(-1, 4)[k])
            if min(crop.shape[:2]) >= self.section.min_size:  # a box mostly past the image edge shows a sliver
                crops.append((crop, int(classes[k])))
        return paste_objects(image, xyxy, class_id, crops, rng, self.section)


def build_bank(
    items_boxes: Sequence[tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    section: CopyPasteSection,
    where: str,
    key: str = "copy_paste",
) -> CopyPaste | None:
    """The bank of ``section`` over ``items_boxes`` (class ids index ``classes``); None when ``prob`` is 0.

    ``key`` is the section's place in the spec, for the messages.

    Training and ``lanner dataset augment`` share it, so both refuse the same two mistakes before any work: a
    class name not in ``classes`` (``ConfigError`` with a did-you-mean) and no object big enough to paste.
    """
    if section.prob == 0:
        return None
    classes = list(classes)
    unknown = [name for name in section.classes if name not in classes]
    if unknown:
        close = difflib.get_close_matches(unknown[0], classes, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"{key}.classes names {unknown}, which are not among the classes {classes}",
            where=where,
            fix=f"{hint}use those class names, or leave {key}.classes empty for all",
        )
    ids = [classes.index(name) for name in section.classes] if section.classes else None
    bank = CopyPaste(items_boxes, ids, section)
    if not len(bank):
        raise DataError(
            f"{key} found no object of {section.classes or 'any class'} at least {section.min_size} px wide and "
            "high to paste",
            where=where,
            fix=f"lower {key}.min_size, name classes the set has, or set {key}.prob to 0",
        )
    return bank


def dataset_bank(dataset: DetectionDataset | ClassificationDataset, section: CopyPasteSection) -> CopyPaste | None:
    """``build_bank`` over a dataset on disk (``lanner dataset augment``); None for a classification set.

    Crowd boxes are ignore regions, not objects to paste.
    """
    if isinstance(dataset, ClassificationDataset):
        return None
    boxes = [(s.boxes.xyxy, np.where(ignored_boxes(s.boxes), IGNORE_CLASS, s.boxes.class_id)) for s in dataset.samples]
    return build_bank(boxes, dataset.classes, section, str(dataset.root))


def crop_box(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """The pixels of one box (rounded outwards, clipped to the image)."""
    h, w = image.shape[:2]
    x0, y0 = max(0, int(np.floor(xyxy[0]))), max(0, int(np.floor(xyxy[1])))
    x1, y1 = min(w, int(np.ceil(xyxy[2]))), min(h, int(np.ceil(xyxy[3])))
    return image[y0:y1, x0:x1]


def paste_objects(
    image: np.ndarray,
    xyxy: np.ndarray,
    class_id: np.ndarray,
    crops: Sequence[tuple[np.ndarray, int]],
    rng: np.random.Generator,
    section: CopyPasteSection,
    tries: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` with each ``(crop, class)`` pasted where it hides no labelled object; boxes appended."""
    h, w = image.shape[:2]
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    classes = np.asarray(class_id, np.int64).reshape(-1)
    out = image.copy()
    lo, hi = np.log(section.scale[0]), np.log(section.scale[1])
    for crop, cls in crops:
        if crop.size == 0:
            continue
        factor = float(np.exp(rng.uniform(lo, hi)))
        cw, ch = max(2, round(crop.shape[1] * factor)), max(2, round(crop.shape[0] * factor))
        if cw > w or ch > h:
            continue
        for _ in range(tries):
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            box = np.array([x0, y0, x0 + cw, y0 + ch], np.float32)
            if not _overlaps(box, boxes, section.max_overlap):
                resized = (
                    cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_LINEAR)
                    if (cw, ch) != crop.shape[1::-1]
                    else crop
                )
                out[y0 : y0 + ch, x0 : x0 + cw] = resized
                boxes = np.concatenate([boxes, box[None]])
                classes = np.concatenate([classes, np.array([cls], np.int64)])
                break
    return out, boxes, classes


def _overlaps(box: np.ndarray, boxes: np.ndarray, limit: float) -> bool:
    """Whether ``box`` covers more than ``limit`` of any of ``boxes``, or they cover more than that of it."""
    if not len(boxes):
        return False
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    areas = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    own = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
    return bool(((inter / areas) > limit).any() or ((inter / own) > limit).any())
