"""Check a dataset on disk and list every problem, not just the first.

Errors: ``missing_image``, ``corrupt_image`` (the pixels are decoded), ``size_mismatch`` (COCO width/height
vs the file), ``box_outside_image``, ``invalid_box`` (inverted or zero-size), ``unknown_class``,
``duplicate_id``, ``malformed`` (wrong column count, non-numeric value, bad JSON/YAML),
``label_without_image``. Warnings: ``image_without_label``; for ImageFolder sets ``empty_class`` and
``not_an_image``.

Example:
    >>> report = validate("data/kitti_cars")
    >>> for problem in report.errors:
    ...     print(problem)          # data/kitti_cars/labels/000007.txt:3: invalid_box: ...
    >>> report.ok
    False
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import Sample
from lanner.data.formats.imagefolder import read_imagefolder, stray_files
from lanner.data.formats.layout import BoxOrigin, Problem
from lanner.data.io import detect_format, parse_dataset

# Coordinates may overshoot the image by this much (rounding of normalized or 2-decimal labels).
EDGE_TOLERANCE_PX = 0.01


@dataclass
class Report:
    """The outcome of ``validate``: every problem found, sorted by file and line."""

    path: Path
    fmt: str
    images: int
    boxes: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def kinds(self) -> dict[str, int]:
        """How many problems of each kind."""
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.path} ({self.fmt}): {self.images} images, {self.boxes} boxes: "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings: {verdict}"
        )

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.fmt,
            "ok": self.ok,
            "images": self.images,
            "boxes": self.boxes,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "kinds": self.kinds(),
            "problems": [
                {
                    "file": None if p.file is None else str(p.file),
                    "line": p.line,
                    "kind": p.kind,
                    "severity": p.severity,
                    "message": p.message,
                }
                for p in self.problems
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def validate(
    path: str | Path,
    fmt: str | None = None,
    classes: Sequence[str] | None = None,
    *,
    decode: bool = True,
    progress: ProgressFn | None = None,
) -> Report:
    """Check the dataset at ``path`` and report every problem.

    ``classes`` replaces the class list on disk (labels naming other classes are ``unknown_class``);
    ``decode=False`` skips decoding every image (faster; headers are still read for KITTI and YOLO).
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "imagefolder":
        return validate_imagefolder(path, decode=decode, progress=progress)
    parsed = parse_dataset(path, fmt, classes=classes, progress=progress)  # then once more per image checked
    problems = list(parsed.problems)
    for sample in parsed.samples:
        problems.extend(check_boxes(sample, parsed.origins.get(sample.image_id, [])))
        if decode:
            problems.extend(check_image(sample))
        advance(progress)
    problems.sort(key=lambda p: (str(p.file or ""), p.line or 0, p.kind))
    boxes = sum(len(s.boxes) for s in parsed.samples)
    return Report(path=path, fmt=fmt, images=len(parsed.samples), boxes=boxes, problems=problems)


def validate_imagefolder(path: Path, *, decode: bool = True, progress: ProgressFn | None = None) -> Report:
    """An ImageFolder set: ``corrupt_image`` errors; warnings for empty class folders and non-image files."""
    ds = read_imagefolder(path)
    empty, others = stray_files(path)
    problems = [Problem("empty_class", "class folder without images (not a class)", d, None, "warning") for d in empty]
    problems += [Problem("not_an_image", "not an image file; skipped", p, None, "warning") for p in others]
    for sample in ds.samples:
        if decode:
            decoded = check_image_decodes(sample.image_path)
            problems.extend([decoded] if isinstance(decoded, Problem) else [])
        advance(progress)
    problems.sort(key=lambda p: (str(p.file or ""), p.line or 0, p.kind))
    return Report(path=path, fmt="imagefolder", images=len(ds), boxes=0, problems=problems)


def check_boxes(sample: Sample, origins: list[BoxOrigin]) -> list[Problem]:
    """``invalid_box`` for inverted or zero-size boxes, ``box_outside_image`` for boxes past the edges."""
    problems = []
    tol = EDGE_TOLERANCE_PX
    for i, (x1, y1, x2, y2) in enumerate(sample.boxes.xyxy.tolist()):
        origin = origins[i] if i < len(origins) else BoxOrigin(file=sample.image_path)
        prefix = f"{origin.ref}: " if origin.ref else ""
        box = f"[{x1:.2f}, {y1:.2f}, {x2:.2f}, {y2:.2f}]"
        if x2 <= x1 or y2 <= y1:
            problems.append(
                Problem("invalid_box", f"{prefix}inverted or zero-size box {box}", origin.file, origin.line)
            )
        elif x1 < -tol or y1 < -tol or x2 > sample.width + tol or y2 > sample.height + tol:
            message = f"{prefix}box {box} extends outside the {sample.width}x{sample.height} image"
            problems.append(Problem("box_outside_image", message, origin.file, origin.line))
    return problems


def check_image(sample: Sample) -> list[Problem]:
    """Decode the image: ``corrupt_image`` if it cannot be, ``size_mismatch`` if its size is not the labelled one."""
    size = check_image_decodes(sample.image_path)
    if isinstance(size, Problem):
        return [size]
    if size != (sample.width, sample.height):
        message = f"labelled {sample.width}x{sample.height} but the image is {size[0]}x{size[1]}"
        return [Problem("size_mismatch", message, sample.image_path)]
    return []


def check_image_decodes(path: Path) -> tuple[int, int] | Problem:
    """Decode every pixel: the image's ``(width, height)``, or a ``corrupt_image`` problem."""
    from PIL import Image, UnidentifiedImageError  # pillow comes with matplotlib

    try:
        with Image.open(path) as image:
            image.load()
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        return Problem("corrupt_image", f"cannot decode the image: {exc}", path)
