"""ImageFolder classification sets: ``<root>/<class>/<image>``, the layout torchvision and timm read.

Classes are the sorted sub-folder names (torchvision's rule), so the class index of a folder is stable.
Images directly under ``root`` or nested deeper than one level belong to no class and are not read.
"""

from __future__ import annotations

from pathlib import Path

from lanner.core.errors import DataError
from lanner.core.folders import check_complete
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import ClassificationDataset, ClassificationSample
from lanner.data.formats.layout import IMAGE_SUFFIXES, ImageMode, place_image

NAME = "imagefolder"


def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p.resolve() for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def sniff(root: Path) -> bool:
    """Sub-folders holding images, and none of the detection formats' folders."""
    names = {p.name for p in _class_dirs(root)}
    if names & {"images", "labels", "image_2", "label_2", "training"}:
        return False
    return any(_images_in(d) for d in _class_dirs(root))


def stray_files(root: Path) -> tuple[list[Path], list[Path]]:
    """``(empty class folders, files in class folders that are not images)``: both are skipped by the reader."""
    empty = [d for d in _class_dirs(root) if not _images_in(d)]
    others = [
        p
        for d in _class_dirs(root)
        for p in sorted(d.iterdir())
        if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
    ]
    return empty, others


def read_imagefolder(root: Path) -> ClassificationDataset:
    """Read ``<root>/<class>/<image>``; a ``DataError`` if there is no class folder with images."""
    root = Path(root)
    check_complete(root)
    dirs = [d for d in _class_dirs(root) if _images_in(d)]
    if not dirs:
        raise DataError(
            "no class folders with images",
            where=str(root),
            fix="an ImageFolder set is <root>/<class name>/<image>.png",
        )
    samples = [ClassificationSample(path, class_id) for class_id, d in enumerate(dirs) for path in _images_in(d)]
    return ClassificationDataset(root=root.resolve(), classes=[d.name for d in dirs], samples=samples)


def write_imagefolder(
    ds: ClassificationDataset, out_dir: Path, *, images: ImageMode = "copy", progress: ProgressFn | None = None
) -> Path:
    """Write ``ds`` as ``<out_dir>/<class>/<image>``; ``images`` is "copy" or "link" (hard link)."""
    if images == "keep":
        raise DataError("an ImageFolder set is its images; 'keep' cannot write one", fix="use images='copy' or 'link'")
    out_dir = Path(out_dir)
    for class_name in ds.classes:
        (out_dir / class_name).mkdir(parents=True, exist_ok=True)
    used: set[Path] = set()
    for sample in ds.samples:
        dst = out_dir / ds.classes[sample.class_id] / sample.image_path.name
        if dst in used:
            raise DataError(
                f"two images of class {ds.classes[sample.class_id]!r} are named {dst.name}",
                where=str(sample.image_path),
                fix="rename one of them",
            )
        used.add(dst)
        place_image(sample.image_path, dst, images)
        advance(progress)
    return out_dir
