"""Vehicle crops for secondary classifiers (body type, colour) in ImageFolder layout.

Crops come from rendered scenes like the detection images, but each car's label is steered to the
class with the fewest crops so far, so rare classes (buses, orange cars) fill as fast as common ones.
Only clean views are kept: cars at least 24 px, not truncated and not occluded; colour crops come from
daylight scenes only (at night a grey and a blue car look alike, and the label would be a guess) and
leave out trucks (their cargo box, not the labelled cab, fills the crop).

Example:
    >>> counts = generate_crops(SynthConfig(width=320, height=192), Path("/tmp/crops"), by="body_type", per_class=2)
    >>> sorted(counts) == sorted(BODY_TYPES)
    True
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lanner.core.errors import DataError, UsageError
from lanner.core.progress import ProgressFn, advance
from lanner.data.synth.images import SynthConfig
from lanner.data.synth.render import random_actors, render
from lanner.data.synth.world import BODY_TYPES, COLORS, ActorBox, make_actor, random_scene

MIN_SIDE_PX = 24
MARGIN = 0.12  # context around the box, as a fraction of its longer side
MAX_IMAGES_PER_CROP = 40  # give up when a class stays empty this long (per crop asked for)


def generate_crops(
    config: SynthConfig,
    out_dir: str | Path,
    by: str = "body_type",
    per_class: int = 100,
    size: int = 64,
    progress: ProgressFn | None = None,
) -> dict[str, int]:
    """Write ``per_class`` square ``size`` px crops of each class to ``out_dir/<label>/<n>.jpg``; returns counts."""
    if by not in ("body_type", "color"):
        raise UsageError(f"crops by {by!r} is not supported", fix="use body_type or color")
    labels = list(BODY_TYPES) if by == "body_type" else list(COLORS)
    counts = dict.fromkeys(labels, 0)
    out_dir = Path(out_dir)
    for label in labels:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
    limit = MAX_IMAGES_PER_CROP * per_class * len(labels)
    index = 0
    while min(counts.values()) < per_class:
        if index >= limit:
            raise DataError(f"could not fill every class after {limit} images: {counts}", fix="lower --per-class")
        image, boxes = _render_steered(config, index, by, counts)
        for box in boxes:
            if box.cls != "car" or (by == "color" and box.body_type == "truck"):  # a truck's cargo box hides its colour
                continue
            label = box.body_type if by == "body_type" else box.color
            if label is None or counts[label] >= per_class or not _clean(box):
                continue
            crop = square_crop(image, box.xyxy, size)
            cv2.imwrite(str(out_dir / label / f"{counts[label]:05d}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            counts[label] += 1
            advance(progress)
        index += 1
    return counts


def _render_steered(config: SynthConfig, index: int, by: str, counts: dict[str, int]):
    """Render a scene whose cars carry the currently rarest labels."""
    rng = np.random.default_rng([config.seed, index, 3])
    scene = random_scene(rng, config.width, config.height, "day" if by == "color" else None)
    actors = random_actors(scene, rng, config.actors_min, max(config.actors_min, config.actors_max))
    needed = sorted(counts, key=lambda k: (counts[k], k))
    k = 0
    for i, a in enumerate(actors):
        if a.cls != "car":
            continue
        label = needed[k % len(needed)]
        k += 1
        kw = {"body_type": label} if by == "body_type" else {"color": label, "body_type": a.body_type}
        actors[i] = make_actor(rng, a.actor_id, "car", a.x_m, a.z_m, a.heading_rad, **kw)
    return render(scene, actors, rng, config.min_visible_px)


def _clean(box: ActorBox) -> bool:
    w, h = box.xyxy[2] - box.xyxy[0], box.xyxy[3] - box.xyxy[1]
    return box.truncated == 0 and box.occluded == 0 and min(w, h) >= MIN_SIDE_PX


def square_crop(image: np.ndarray, xyxy: np.ndarray, size: int) -> np.ndarray:
    """A square crop centred on the box with ``MARGIN`` context, edge-padded where it leaves the image."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    side_px = max(1, round(side))
    h, w = image.shape[:2]
    pad = max(0, -left, -top, left + side_px - w, top + side_px - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    crop = image[top : top + side_px, left : left + side_px]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
