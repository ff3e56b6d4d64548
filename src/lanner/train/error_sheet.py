"""The images a detector gets most wrong, drawn in one picture (``errors.jpg`` of ``lanner evaluate``).

mAP says how good a detector is; the failure cases say why. ``error_sheet`` pairs each image's detections
with its ground truth by the confusion matrix's rule (``metrics.detection.match_image``: score >= 0.25,
IoU >= 0.5, any class), ranks the images by their errors (false positives + missed objects + wrong classes),
and draws the worst ones: a missed object as a red box labelled "missed <class>", a false positive in its
class colour labelled "FP <class> <score>", a wrong class as "<true> as <predicted>", and correct detections
as thin green boxes, so the eye goes to the mistakes.

Example:
    >>> sheet = error_sheet(samples, predictions, ground_truth, ["car", "person"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from lanner.core.detections import Detections
from lanner.core.drawing import color_for, put_label
from lanner.core.errors import DataError
from lanner.data.dataset import ClassificationSample, Sample
from lanner.data.images import read_image
from lanner.data.preview import contact_sheet
from lanner.train.metrics.detection import ImageMatch, match_image

MISSED_BGR = (40, 40, 230)
CORRECT_BGR = (80, 200, 80)
log = logging.getLogger(__name__)


def worst_images(
    predictions: Sequence[Detections], ground_truth: Sequence[Detections], num_classes: int, count: int = 12
) -> list[tuple[int, ImageMatch]]:
    """``(image index, match)`` of the ``count`` images with the most errors (ties: dataset order); none without."""
    matches = [match_image(p, g, num_classes) for p, g in zip(predictions, ground_truth, strict=True)]
    ranked = sorted(range(len(matches)), key=lambda i: (-matches[i].errors, i))
    return [(i, matches[i]) for i in ranked[:count] if matches[i].errors]


def draw_errors(image: np.ndarray, match: ImageMatch, class_names: Sequence[str]) -> np.ndarray:
    """``image`` with the match drawn: mistakes labelled and thick, correct detections thin and green."""
    out = image.copy()
    thin, thick = max(1, round(min(out.shape[:2]) / 400)), max(2, round(min(out.shape[:2]) / 200))
    scale = max(0.35, min(out.shape[:2]) / 1000)

    def name(cls: int) -> str:
        return class_names[cls] if 0 <= cls < len(class_names) else str(cls)

    def box(xyxy: np.ndarray, colour: tuple[int, int, int], width: int, label: str | None = None) -> None:
        x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, width)
        if label:
            put_label(out, label, (x1, y1), colour, scale)

    wrong = set(match.wrong_class.tolist())
    for k, (p, g) in enumerate(zip(match.pred_used.tolist(), match.gt_used.tolist(), strict=True)):
        if k in wrong:
            true, seen = int(match.gt.class_id[g]), int(match.pred.class_id[p])
            box(match.pred.xyxy[p], color_for(seen), thick, f"{name(true)} as {name(seen)}")
        else:
            box(match.pred.xyxy[p], CORRECT_BGR, thin)
    for g in match.missed.tolist():
        box(match.gt.xyxy[g], MISSED_BGR, thick, f"missed {name(int(match.gt.class_id[g]))}")
    for p in match.false_positives.tolist():
        cls, score = int(match.pred.class_id[p]), float(match.pred.confidence[p])
        box(match.pred.xyxy[p], color_for(cls), thick, f"FP {name(cls)} {score:.2f}")
    return out


def error_sheet(
    samples: Sequence[Sample],
    predictions: Sequence[Detections],
    ground_truth: Sequence[Detections],
    class_names: Sequence[str],
    count: int = 12,
    tile_width: int = 480,
) -> np.ndarray | None:
    """The contact sheet of the worst ``count`` images (BGR), or None when no image has an error.

    An image that can no longer be read (moved or deleted since it was scored) is left out with a warning:
    the metrics are already computed, and a missing picture should not fail the evaluation.
    """
    worst = worst_images(predictions, ground_truth, len(class_names), count)
    tiles = []
    for index, match in worst:
        try:
            image = read_image(samples[index].image_path)
        except DataError as exc:
            log.warning("errors.jpg leaves out %s: %s", samples[index].image_path, exc)
            continue
        caption = (
            f"{samples[index].image_id}: {len(match.missed)} missed, {len(match.false_positives)} FP, "
            f"{len(match.wrong_class)} wrong class"
        )
        tiles.append((draw_errors(image, match, class_names), caption))
    return contact_sheet(tiles, tile_width) if tiles else None


def classification_error_sheet(
    samples: Sequence[ClassificationSample],
    logits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    count: int = 12,
    tile_width: int = 240,
) -> np.ndarray | None:
    """A classifier's most confident mistakes (highest softmax score on a wrong class), captioned
    ``true <class>, said <class> <score>``; None when every image is right."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    said = probs.argmax(1)
    wrong = np.flatnonzero(said != np.asarray(labels))
    tiles = []
    for index in wrong[np.argsort(-probs[wrong, said[wrong]], kind="stable")][:count].tolist():
        try:
            image = read_image(samples[index].image_path)
        except DataError as exc:
            log.warning("errors.jpg leaves out %s: %s", samples[index].image_path, exc)
            continue
        true, guess = class_names[int(labels[index])], class_names[int(said[index])]
        tiles.append((image, f"true {true}, said {guess} {probs[index, said[index]]:.2f}"))
    return contact_sheet(tiles, tile_width) if tiles else None
