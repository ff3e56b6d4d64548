"""What every detection format shares on disk: where images live, how big they are, and how problems are told.

Images sit under ``<root>/images/`` (KITTI's ``image_2``/``label_2`` and ``training/image_2`` are read
too), possibly in sub-folders (Ultralytics' ``images/train``). An image's id is its path under the image
folder without the suffix (``000123``, ``train/000123``); text label files mirror it under ``labels/``.

Each format module parses leniently into a ``Parsed``: the samples it could build plus every
``Problem`` it met. ``read_dataset`` turns the first error into a ``DataError``; ``validate`` reports
them all and adds the checks that need the pixels.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.core.progress import ProgressFn
from lanner.data.dataset import KITTI_EXTRA_COLUMNS, DetectionDataset, Sample, kitti_defaults

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# (images folder, labels folder) pairs, tried in order.
LAYOUTS = (("images", "labels"), ("image_2", "label_2"), ("training/image_2", "training/label_2"))

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset on disk; ``line`` is 1-based where the file is a text label file."""

    kind: str
    message: str
    file: Path | None = None
    line: int | None = None
    severity: Severity = "error"

    def location(self) -> str:
        if self.file is None:
            return "<dataset>"
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def __str__(self) -> str:
        return f"{self.location()}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class BoxOrigin:
    """Where one box came from, so a validator can point at it: a label file line or a COCO annotation."""

    file: Path
    line: int | None = None
    ref: str = ""


@dataclass
class Parsed:
    """A leniently parsed dataset: what could be read, where each box came from, and what was wrong."""

    root: Path
    classes: list[str]
    source: Path | None = None  # what the user passed when it is not ``root`` (a COCO .json file)
    samples: list[Sample] = field(default_factory=list)
    origins: dict[str, list[BoxOrigin]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, message: str, file: Path | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(kind, message, file, line))

    def warn(self, kind: str, message: str, file: Path | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(kind, message, file, line, "warning"))

    def check_class_names(self, file: Path | None) -> None:
        """A ``duplicate_id`` problem for each class name listed twice (labels could not tell them apart)."""
        seen: set[str] = set()
        for name in self.classes:
            if name in seen:
                self.add("duplicate_id", f"class name {name!r} is listed twice in {self.classes}", file)
            seen.add(name)

    def to_dataset(self) -> DetectionDataset:
        """The dataset, or a ``DataError`` naming the first error and pointing at ``validate``."""
        errors = [p for p in self.problems if p.severity == "error"]
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise DataError(
                f"{first.kind}: {first.message}{more}",
                where=first.location() if first.file else str(self.root),
                fix=f"run `lanner dataset validate {self.source or self.root}` for the full report",
            )
        samples = sorted(self.samples, key=lambda s: s.image_id)
        return DetectionDataset(root=self.root, classes=list(self.classes), samples=samples)


@dataclass(frozen=True)
class DatasetFormat:
    """A detection label format: tell it apart on disk, parse it, write it (labels only; images are placed first)."""

    name: str
    sniff: Callable[[Path], bool]
    parse: Callable[[Path, Sequence[str] | None, ProgressFn | None], Parsed]
    write: Callable[[DetectionDataset, Path, ProgressFn | None], None]


@dataclass(frozen=True)
class Layout:
    """The image and label folders of a dataset root."""

    root: Path
    images_dir: Path
    labels_dir: Path


def find_layout(root: Path) -> Layout:
    """The first of ``images/labels``, ``image_2/label_2``, ``training/image_2`` that exists under ``root``."""
    for images, labels in LAYOUTS:
        if (root / images).is_dir() or (root / labels).is_dir():
            return Layout(root, root / images, root / labels)
    return Layout(root, root / "images", root / "labels")


def image_id_of(path: Path, images_dir: Path) -> str:
    """``images/train/0001.png`` -> ``train/0001``."""
    return path.relative_to(images_dir).with_suffix("").as_posix()


def list_images(images_dir: Path) -> dict[str, list[Path]]:
    """Image files under ``images_dir`` (recursive, sorted) grouped by image id; >1 path per id is a clash."""
    found: dict[str, list[Path]] = {}
    if not images_dir.is_dir():
        return found
    for path in sorted(images_dir.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(image_id_of(path, images_dir), []).append(path.resolve())
    return found


def list_label_files(labels_dir: Path) -> dict[str, Path]:
    """``*.txt`` label files under ``labels_dir`` keyed by image id."""
    if not labels_dir.is_dir():
        return {}
    files = sorted(p for p in labels_dir.rglob("*.txt") if p.is_file())
    return {p.relative_to(labels_dir).with_suffix("").as_posix(): p for p in files}


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file header without decoding the pixels; ``None`` if unreadable."""
    from PIL import Image, UnidentifiedImageError  # pillow comes with matplotlib; only the header is read

    try:
        with Image.open(path) as image:
            return int(image.size[0]), int(image.size[1])
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def pair_images(parsed: Parsed, layout: Layout) -> tuple[dict[str, Path], dict[str, Path]]:
    """Match images to label files by id, recording clashes, orphans and unlabelled images in ``parsed``.

    Returns ``(images, labels)`` keyed by image id, for the ids that have a unique image.
    """
    images: dict[str, Path] = {}
    for image_id, paths in list_images(layout.images_dir).items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            parsed.add("duplicate_id", f"image id {image_id!r} is used by {names}", paths[1])
        images[image_id] = paths[0]
    labels = list_label_files(layout.labels_dir)
    for image_id, label in labels.items():
        if image_id not in images:
            parsed.add("label_without_image", f"no image {image_id}.* under {layout.images_dir}", label)
    for image_id, path in images.items():
        if image_id not in labels:
            parsed.warn("image_without_label", f"no label file {image_id}.txt under {layout.labels_dir}", path)
    if not images and not labels:
        parsed.add("missing_image", f"no images under {layout.images_dir} and no labels under {layout.labels_dir}")
    return images, labels


def sized_sample(parsed: Parsed, image_id: str, path: Path) -> Sample | None:
    """A box-less sample with the image's size, or ``None`` (and a ``corrupt_image`` problem)."""
    size = image_size(path)
    if size is None:
        parsed.add("corrupt_image", "cannot read the image header (not an image, or truncated)", path)
        return None
    return Sample(image_id=image_id, image_path=path, width=size[0], height=size[1])


def read_text_lines(parsed: Parsed, path: Path) -> list[str]:
    """The lines of a label file, or none (and a ``malformed`` problem) if it is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        parsed.add("malformed", f"cannot read label file: {exc}", path)
        return []


def build_boxes(rows: list[dict], with_kitti: bool) -> Detections:
    """``Detections`` from parsed rows (``xyxy``, ``class_id``, ``confidence`` and KITTI extras)."""
    n = len(rows)
    data: dict[str, np.ndarray] = {}
    if with_kitti:
        data = kitti_defaults(n)
        for key in KITTI_EXTRA_COLUMNS:
            if n:
                data[key] = np.asarray([r.get(key, data[key][i]) for i, r in enumerate(rows)], data[key].dtype)
    return Detections.from_arrays(
        xyxy=np.asarray([r["xyxy"] for r in rows], np.float32).reshape(-1, 4),
        class_id=np.asarray([r["class_id"] for r in rows], np.int64),
        confidence=np.asarray([r.get("confidence", 1.0) for r in rows], np.float32),
        data=data,
    )


def write_score_column(ds: DetectionDataset) -> bool:
    """Whether a text format should write a score column: only when some box is not ground truth (score 1)."""
    return any(bool(np.any(s.boxes.confidence != 1.0)) for s in ds.samples)


# Boxes and KITTI columns are stored as float32: a larger value would turn into inf when read.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_number(text: str) -> bool:
    """Whether ``text`` is a finite number that float32 holds (``nan``, ``inf`` and ``1e40`` are not label values)."""
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and abs(value) <= FLOAT32_MAX


def is_whole(value: float, low: int, high: int) -> bool:
    """Whether ``value`` is a whole number in ``low..high`` (a flag column such as KITTI's ``occluded``)."""
    return float(value).is_integer() and low <= value <= high


def parse_floats(fields: Sequence[str]) -> tuple[list[float], str | None]:
    """The fields as floats, or ``([], first_bad_field)`` when one is not a finite number."""
    for text in fields:
        if not is_number(text):
            return [], text
    return [float(text) for text in fields], None


ImageMode = Literal["copy", "link", "keep"]


def place_image(src: Path, dst: Path, mode: ImageMode) -> None:
    """Put ``src`` at ``dst``: copy it, or hard-link it (copy across filesystems); skip if already there."""
    if mode == "keep" or (dst.exists() and os.path.samefile(src, dst)):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    if mode == "link":
        try:
            os.link(src, dst)
            return
        except OSError:  # another filesystem, or links not allowed: a copy does the same job
            pass
    shutil.copy2(src, dst)
