"""Read, write and convert detection datasets in any supported format.

Example:
    >>> ds = read_dataset("data/kitti_cars")                # format detected from the files
    >>> write_dataset(ds, "data/cars_coco", "coco", images="link")
    >>> convert("data/kitti_cars", "data/cars_yolo", "yolo")  # the same in one call

Images always go to ``<out>/images/<image_id><suffix>``; an image already there is not copied again.
Output is deterministic: samples sorted by ``image_id``, ids renumbered in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lanner.core.errors import DataError, UsageError
from lanner.core.folders import check_complete
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import ClassificationDataset, DetectionDataset, Sample
from lanner.data.formats import FORMATS, Parsed, coco, imagefolder, kitti, yolo
from lanner.data.formats.layout import ImageMode, find_layout, list_images, place_image

DETECTION_FORMATS = ("kitti", "coco", "yolo")
ALL_FORMATS = (*DETECTION_FORMATS, "imagefolder")


def detect_format(path: str | Path) -> str:
    """The format of the dataset at ``path``: ``kitti``, ``coco``, ``yolo`` or ``imagefolder``.

    COCO: a ``.json`` file, ``annotations.json`` or the file CVAT, Roboflow or Label Studio exports; YOLO:
    ``data.yaml`` (also an Ultralytics ``images/<split>`` folder under one) or 5-number label lines; KITTI:
    15/16-column label lines (or ``images/`` with only empty or no labels); ImageFolder: class sub-folders.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", where=str(path), fix="check the dataset path")
    if path.is_file() and path.suffix.lower() != ".json":
        raise DataError("not a dataset folder or COCO .json file", where=str(path), fix="pass the dataset's folder")
    check_complete(path)  # a folder an interrupted command left half-written
    for name, sniff in (("coco", coco.sniff), ("yolo", yolo.sniff), ("kitti", kitti.sniff)):
        if sniff(path):
            return name
    layout = find_layout(path)
    if list_images(layout.images_dir):
        return "kitti"  # images without any object line: every format reads it the same, KITTI is TAO's
    if imagefolder.sniff(path):
        return "imagefolder"
    raise DataError(
        "cannot tell the dataset format (no annotations.json, data.yaml, labels/ or class folders)",
        where=str(path),
        fix=f"pass the format explicitly (--format {'|'.join(ALL_FORMATS)})",
    )


def parse_dataset(
    path: str | Path,
    fmt: str | None = None,
    *,
    classes: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> Parsed:
    """Parse leniently: the samples that could be read plus every problem met (used by ``validate``)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    check_complete(path)
    if fmt == "imagefolder":
        raise UsageError(
            "ImageFolder is a classification layout, not a detection dataset",
            where=str(path),
            fix="use lanner.data.read_imagefolder, or convert to kitti/coco/yolo from a detection set",
        )
    return FORMATS.get(fmt).parse(path, classes, progress)


def read_dataset(
    path: str | Path,
    fmt: str | None = None,
    *,
    classes: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> DetectionDataset:
    """Read a detection dataset (format detected unless ``fmt`` is given).

    ``classes`` overrides the class list found on disk. A malformed dataset raises ``DataError`` naming
    the first problem's file:line; ``lanner dataset validate PATH`` lists them all.
    """
    return parse_dataset(path, fmt, classes=classes, progress=progress).to_dataset()


def read_any(
    path: str | Path, fmt: str | None = None, *, progress: ProgressFn | None = None
) -> DetectionDataset | ClassificationDataset:
    """A detection dataset, or a ``ClassificationDataset`` when ``path`` is an ImageFolder set."""
    fmt = fmt or detect_format(path)
    if fmt == "imagefolder":
        return imagefolder.read_imagefolder(Path(path))
    return read_dataset(path, fmt, progress=progress)


def write_dataset(
    ds: DetectionDataset,
    out_dir: str | Path,
    fmt: str,
    *,
    images: ImageMode = "copy",
    progress: ProgressFn | None = None,
) -> Path:
    """Write ``ds`` in ``fmt`` under ``out_dir`` and return it.

    ``images``: "copy", "link" (hard link, falling back to a copy across filesystems) or "keep" (leave the
    images where they are; COCO then refers to them by relative path). Existing label files are overwritten.
    """
    out_dir = Path(out_dir)
    writer = FORMATS.get(fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    placed = _place_images(ds, out_dir, images, progress)
    writer.write(DetectionDataset(root=out_dir.resolve(), classes=list(ds.classes), samples=placed), out_dir, None)
    return out_dir


def _place_images(ds: DetectionDataset, out_dir: Path, images: ImageMode, progress: ProgressFn | None) -> list[Sample]:
    if images not in ("copy", "link", "keep"):
        raise UsageError(f"images must be 'copy', 'link' or 'keep', not {images!r}")
    samples = sorted(ds.samples, key=lambda s: s.image_id)
    seen: set[str] = set()
    for sample in samples:  # check everything before writing anything
        if sample.image_id in seen:
            raise DataError(f"image id {sample.image_id!r} appears twice", where=str(sample.image_path))
        seen.add(sample.image_id)
        _check_sample(sample, len(ds.classes))
    placed: list[Sample] = []
    for sample in samples:
        dst = sample.image_path
        if images != "keep":
            dst = out_dir / "images" / f"{sample.image_id}{sample.image_path.suffix}"
            place_image(sample.image_path, dst, images)
        placed.append(replace(sample, image_path=dst.resolve()))
        advance(progress)
    return placed


def _check_sample(sample: Sample, n_classes: int) -> None:
    """What a writer needs of a sample: the image file, a size, class ids that index ``classes``."""
    where = f"sample {sample.image_id!r}"
    if not sample.image_path.is_file():
        raise DataError(f"image {sample.image_path} not found", where=where, fix="fix the sample's image_path")
    if sample.width <= 0 or sample.height <= 0:
        raise DataError(f"image size {sample.width}x{sample.height} is not positive", where=where)
    ids = sample.boxes.class_id
    if len(ids) and (ids.min() < 0 or ids.max() >= n_classes):
        raise DataError(
            f"class_id {int(ids.max()) if ids.max() >= n_classes else int(ids.min())} is outside 0..{n_classes - 1}",
            where=where,
            fix="add the class to DetectionDataset.classes",
        )


def check_output_folder(src: str | Path, dst: str | Path) -> None:
    """Refuse an output folder that is the input dataset's folder or lies inside it.

    Written inside the input (``--out data/cars/images``), the new files become part of the input: its
    image folder silently gains a second, unlabelled copy of every image.
    """
    src, dst = Path(src), Path(dst)
    src_root = (src.parent if src.is_file() else src).resolve()
    dst_abs = dst.resolve()
    if dst_abs == src_root:
        raise UsageError("the output folder is the input folder", where=str(dst), fix="pass another --out folder")
    if dst_abs.is_relative_to(src_root):
        raise UsageError(
            f"the output folder is inside the input dataset {src_root} (it would become part of it)",
            where=str(dst),
            fix="pass an --out folder outside the input, e.g. next to it",
        )


def convert(
    src: str | Path,
    dst: str | Path,
    to_fmt: str,
    from_fmt: str | None = None,
    *,
    images: ImageMode = "link",
    progress: ProgressFn | None = None,
) -> Path:
    """Read ``src`` and write it to ``dst`` in ``to_fmt``; images are hard-linked by default."""
    src, dst = Path(src), Path(dst)
    check_output_folder(src, dst)
    ds = read_dataset(src, from_fmt)
    return write_dataset(ds, dst, to_fmt, images=images, progress=progress)
