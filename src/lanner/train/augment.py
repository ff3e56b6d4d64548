"""Bbox-safe online augmentation for detection training (albumentations) and mosaic.

``build_augment(section, size_hw)`` returns an ``Augment``: a callable ``(image_bgr, xyxy, class_id,
seed) -> (image_bgr, xyxy, class_id)`` that flips, scales/translates, jitters colour, blurs and adds
noise, with boxes transformed alongside (and dropped when less than ``min_visibility`` of them is left).
The seed makes each call reproducible: the same (run seed, epoch, index) always gives the same image.
``mosaic`` puts four letterboxed images on a 2x2 canvas (YOLOX/YOLOv4 style) before the other steps.

Example:
    >>> import numpy as np
    >>> aug = build_augment(AugmentationSection(), (128, 224))
    >>> img, boxes, cls = aug(np.zeros((100, 200, 3), np.uint8), np.array([[10, 10, 50, 60]], np.float32),
    ...                       np.array([0]), seed=1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from lanner.data.preprocess import letterbox
from lanner.train.spec import AugmentationSection

PAD_VALUE = 114


class Augment:
    """A seeded, bbox-safe albumentations pipeline (see the module docstring)."""

    def __init__(self, section: AugmentationSection) -> None:
        # albumentations asks PyPI for a newer version when it is first imported, unless this is set: training
        # must not touch the network (offline machines wait on DNS, and CI logged the failed lookup).
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
        import albumentations as A
        import cv2

        s = section
        lo, hi = s.scale
        steps = [
            A.HorizontalFlip(p=s.hflip),
            A.Affine(
                scale=(lo, hi),
                translate_percent=(-s.translate, s.translate),
                border_mode=cv2.BORDER_CONSTANT,
                fill=PAD_VALUE,
                p=1.0 if (lo, hi) != (1.0, 1.0) or s.translate > 0 else 0.0,
            ),
            A.Compose(
                [
                    A.RandomBrightnessContrast(0.2, 0.2, p=1.0),
                    A.HueSaturationValue(s.hue, s.saturation, s.value, p=1.0),
                ],
                p=s.color,
            ),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=s.blur),
            A.GaussNoise(std_range=(0.02, 0.08), p=s.noise),
        ]
        bbox_params = A.BboxParams(
            format="pascal_voc", label_fields=["class_id"], min_visibility=s.min_visibility, clip=True, min_area=4.0
        )
        self.pipeline = A.Compose(steps, bbox_params=bbox_params)

    def __call__(
        self, image: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.pipeline.set_random_seed(seed)
        h, w = image.shape[:2]
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out = self.pipeline(image=image, bboxes=boxes[keep], class_id=np.asarray(class_id)[keep])
        out_boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        return out["image"], out_boxes, np.asarray(out["class_id"], np.int64).reshape(-1)


def build_augment(section: AugmentationSection, size_hw: tuple[int, int]) -> Augment:
    """The training-time augmentation for a network input of ``size_hw`` (height, width)."""
    del size_hw  # scale/translate act on the source image; letterboxing to size_hw happens afterwards
    return Augment(section)


def mosaic(
    images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], size_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four images letterboxed into the quadrants of a ``2H x 2W`` canvas; returns ``(image, xyxy, index)``.

    ``index[k]`` says which of the four inputs box ``k`` came from (so class ids can follow).
    """
    h, w = size_hw
    canvas = np.full((2 * h, 2 * w, 3), PAD_VALUE, np.uint8)
    all_boxes, origin = [], []
    for k, (image, xyxy) in enumerate(zip(images[:4], boxes[:4], strict=True)):
        fitted, scale = letterbox(image, (h, w), PAD_VALUE)
        oy, ox = (k // 2) * h, (k % 2) * w
        canvas[oy : oy + h, ox : ox + w] = fitted
        shifted = np.asarray(xyxy, np.float32).reshape(-1, 4) * scale + np.array([ox, oy, ox, oy], np.float32)
        all_boxes.append(shifted)
        origin.append(np.full(len(shifted), k, np.int64))
    return canvas, np.concatenate(all_boxes), np.concatenate(origin)
