"""Offline augmentation (TAO's ``augment``): write N augmented copies of every image of a dataset.

``augment_dataset`` reads a detection set (KITTI, COCO, YOLO) or an ImageFolder classification set,
runs each image through the same seeded, bbox-safe pipeline training uses (``augment.py``: flip,
scale/translate, colour, blur, noise, plus copy-paste and mosaic for detection) and writes the copies, with their
boxes transformed alongside, as a new dataset in any detection format. Boxes cut below
``min_visibility`` (or left narrower than 1 px) are dropped and counted. Copy ``k`` of sample ``i``
draws from ``SeedSequence([seed, i, k])`` only, so the same seed always writes the same pixels, with
one process or many (``workers``). ``prepare_augment`` reads and checks everything (every input error
is raised before anything is written); ``AugmentJob.run`` writes.

Mosaic tiles the image with 3 others picked (seeded) from the set on a canvas of the image's own size
(rounded down to even), so augmented images keep the source's size. Classification sets get the same
pipeline without boxes and without mosaic (it would mix classes). KITTI's ``truncated``/``occluded``
columns follow their box; the 3D columns (alpha, dimensions, location, rotation_y) no longer hold after
a flip or an affine and are reset to TAO's 2D-only defaults.

Example:
    >>> section = load_augmentation(overrides=["hflip=1.0", "mosaic=0.5"])
    >>> report = augment_dataset("data/cars", "data/cars_aug", section, AugmentOptions(copies=3, seed=7))
    >>> print(report.summary())  # data/cars -> data/cars_aug (kitti): images 10 in, 30 out; ...
"""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lanner.core.config import load_config, read_yaml
from lanner.core.detections import Detections
from lanner.core.errors import DataError, UsageError
from lanner.core.folders import filling
from lanner.core.progress import ProgressFn, advance
from lanner.data.dataset import (
    IGNORE_CLASS,
    ClassificationDataset,
    DetectionDataset,
    Sample,
    kitti_defaults,
    regions_in_image,
)
from lanner.data.formats.imagefolder import read_imagefolder
from lanner.data.formats.layout import place_image
from lanner.data.io import ALL_FORMATS, check_output_folder, detect_format, parse_dataset, write_dataset
from lanner.train.augment import Augment, mosaic
from lanner.train.copy_paste import dataset_bank
from lanner.train.spec import AugmentationSection, load_spec

# Per-box columns that still describe a box after a 2D transform; the rest are dropped or reset.
KEPT_COLUMNS = ("truncated", "occluded", "iscrowd")
MIN_SIDE_PX = 1.0


@dataclass(frozen=True)
class AugmentOptions:
    """How many copies, which seed, the output format, and what to do with originals, bad images and DST.

    ``out_format`` None keeps the source's format. ``force`` replaces a non-empty DST (its contents are
    deleted first, so no stale image of an earlier run ends up in the new set). ``workers`` > 1 augments
    in that many processes; the files written are the same as with one.
    """

    copies: int = 1
    seed: int = 0
    out_format: str | None = None
    keep_originals: bool = False
    skip_bad: bool = False
    force: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise UsageError(f"copies must be at least 1, got {self.copies}", where="--copies")
        if self.workers < 1:
            raise UsageError(f"workers must be at least 1, got {self.workers}", where="--workers")
        if self.out_format not in (None, *ALL_FORMATS):
            raise UsageError(f"unknown output format {self.out_format!r}", where="--format")


@dataclass
class AugmentReport:
    """What ``augment_dataset`` did: counts in and out, boxes dropped, images skipped, warnings."""

    src: Path
    dst: Path
    fmt: str
    images_in: int = 0
    images_out: int = 0
    boxes_in: int = 0
    boxes_out: int = 0
    boxes_dropped: int = 0
    skipped: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI: images and boxes in/out, boxes dropped, images skipped."""
        text = f"{self.src} -> {self.dst} ({self.fmt}): images {self.images_in} in, {self.images_out} out"
        if self.fmt != "imagefolder":
            dropped = f"{self.boxes_dropped} dropped (min_visibility, <1 px)"
            text += f"; boxes {self.boxes_in} in, {self.boxes_out} out, {dropped}"
        return text + f"; {len(self.skipped)} bad images skipped"


def load_augmentation(path: str | Path | None = None, overrides: Iterable[str] = ()) -> AugmentationSection:
    """The ``AugmentationSection`` from a YAML of augmentation keys (or a whole training spec) plus ``k=v``.

    A file with an ``augmentation:`` section is read as a ``lanner train`` spec, so the spec a model
    was trained with can drive offline augmentation too; overrides then apply inside that section.
    Unknown keys are ``ConfigError`` s with file:line and a did-you-mean.
    """
    overrides = list(overrides)
    if path is not None and "augmentation" in read_yaml(path):
        return load_spec(path, [f"augmentation.{item}" for item in overrides]).augmentation
    return load_config(AugmentationSection, path, overrides)


def copy_seed(seed: int, index: int, copy: int) -> int:
    """The 32-bit seed of copy ``copy`` of sample ``index``: nothing else changes what is drawn."""
    return int(np.random.SeedSequence([seed, index, copy]).generate_state(1)[0])


@dataclass
class AugmentJob:
    """A source that was read and checked, ready to write; ``total`` is the number of images it writes.

    Made by ``prepare_augment``; the split lets a progress bar know its length before the slow part.
    """

    src_root: Path
    dst: Path
    section: AugmentationSection
    options: AugmentOptions
    dataset: DetectionDataset | ClassificationDataset
    names: list[list[str]]  # per sample, per copy (see ``_output_names``)
    report: AugmentReport

    @property
    def total(self) -> int:
        return len(self.dataset.samples) * (self.options.copies + int(self.options.keep_originals))

    def run(self, progress: ProgressFn | None = None) -> AugmentReport:
        """Replace ``dst`` if asked (``force``), augment every image into it and return the report (run once)."""
        _check_output(self.src_root, self.dst, self.options.force)
        if self.dst.is_dir() and any(self.dst.iterdir()):  # only reached with force (checked above)
            shutil.rmtree(self.dst)
        with filling(self.dst, "lanner dataset augment"):  # a run cut short leaves the folder marked incomplete
            return self._fill(progress)

    def _fill(self, progress: ProgressFn | None) -> AugmentReport:
        plan = _Plan(self.dataset, self.dst, self.section, self.options, self.names)
        if isinstance(self.dataset, ClassificationDataset) and self.section.mosaic > 0:
            self.report.warnings.append("mosaic is ignored for a classification set (it would mix classes)")
        if isinstance(self.dataset, ClassificationDataset) and self.section.copy_paste.prob > 0:
            self.report.warnings.append("copy_paste is ignored for a classification set (it has no boxes)")
        done = _augment_all(plan, progress)
        report = self.report
        bad = {path: reason for d in done for path, reason in d.bad.items()}  # a partner may be found bad twice
        for path in sorted(bad):
            report.skipped.append(path)
            report.warnings.append(f"skipped {path}: {bad[path]}")
        report.images_out = sum(d.images_out for d in done)
        report.boxes_in = sum(d.boxes_in for d in done)
        report.boxes_dropped = sum(d.dropped for d in done)
        if isinstance(self.dataset, DetectionDataset):
            written = [s for d in done for s in d.written]
            report.boxes_out = sum(len(s.boxes) for s in written)
            classes = list(self.dataset.classes)
            write_dataset(DetectionDataset(self.dataset.root, classes, written), self.dst, report.fmt, images="link")
        return report


def prepare_augment(
    src: str | Path,
    dst: str | Path,
    section: AugmentationSection,
    options: AugmentOptions = AugmentOptions(),
    *,
    src_format: str | None = None,
) -> AugmentJob:
    """Read ``src`` and check ``dst`` and the formats (every input error surfaces here, before any write)."""
    src, dst = Path(src), Path(dst)
    fmt = src_format or _detect_format(src)
    src_root = src.parent if src.is_file() else src
    out_fmt = options.out_format or fmt
    if (fmt == "imagefolder") != (out_fmt == "imagefolder"):
        raise UsageError(
            f"cannot write the {fmt} dataset as {out_fmt}",
            where=str(src),
            fix="ImageFolder (classification) sets stay ImageFolder; detection sets go to kitti, coco or yolo",
        )
    report = AugmentReport(src=src, dst=dst, fmt=out_fmt)
    if fmt == "imagefolder":
        dataset: DetectionDataset | ClassificationDataset = read_imagefolder(src)
        report.images_in = len(dataset.samples)
    else:
        dataset = _read_detection(src, fmt, options.skip_bad, report)
    names = _output_names(dataset, options)
    dataset_bank(dataset, section.copy_paste)  # its class names are checked now, before anything is written
    _check_output(src_root, dst, options.force)
    return AugmentJob(src_root, dst, section, options, dataset, names, report)


def augment_dataset(
    src: str | Path,
    dst: str | Path,
    section: AugmentationSection,
    options: AugmentOptions = AugmentOptions(),
    *,
    src_format: str | None = None,
    progress: ProgressFn | None = None,
) -> AugmentReport:
    """Write ``options.copies`` augmented copies of every image of ``src`` into ``dst``; see the module docstring."""
    return prepare_augment(src, dst, section, options, src_format=src_format).run(progress)


def _detect_format(src: Path) -> str:
    """``detect_format`` with this command's hints: an empty folder says so, an unknown layout names ``--from``."""
    if src.is_dir() and not any(src.iterdir()):
        raise DataError("the dataset folder is empty", where=str(src), fix="point SRC at a dataset with images")
    try:
        return detect_format(src)
    except DataError as exc:
        raise DataError(
            exc.what, where=exc.where, fix=f"pass the source format (--from {'|'.join(ALL_FORMATS)})"
        ) from None


def _read_detection(src: Path, fmt: str, skip_bad: bool, report: AugmentReport) -> DetectionDataset:
    """Read ``src``; images whose header cannot be read are an error, or skipped and counted under ``skip_bad``."""
    parsed = parse_dataset(src, fmt)
    corrupt = [p for p in parsed.problems if p.kind == "corrupt_image"]
    if corrupt and not skip_bad:
        first = corrupt[0]
        raise DataError(
            f"cannot read image: {first.message}",
            where=first.location(),
            fix="replace or remove it, or pass --skip-bad to skip unreadable images",
        )
    for problem in corrupt:
        report.skipped.append(Path(problem.file or src))
        report.warnings.append(f"skipped {problem.location()}: {problem.message}")
    ds = replace(parsed, problems=[p for p in parsed.problems if p.kind != "corrupt_image"]).to_dataset()
    if not ds.samples:
        raise DataError("the dataset has no images", where=str(src), fix="point SRC at a dataset with images")
    report.images_in = len(ds.samples) + len(corrupt)
    return ds


def _check_output(src_root: Path, dst: Path, force: bool) -> None:
    """Refuse a non-empty ``dst`` unless ``force``; never replace the source (``dst`` is it, holds it or is in it)."""
    check_output_folder(src_root, dst)  # inside the source, --force would delete its files
    if dst.exists() and not dst.is_dir():
        raise UsageError("the output exists and is a file", where=str(dst), fix="pass a folder to --out")
    if not dst.exists() or not any(dst.iterdir()):
        return
    if not force:
        raise UsageError("the output folder exists and is not empty", where=str(dst), fix="pass --force to replace it")
    src_abs, dst_abs = src_root.resolve(), dst.resolve()
    if src_abs == dst_abs or src_abs.is_relative_to(dst_abs):
        raise UsageError("the output folder holds the input", where=str(dst), fix="pass another --out folder")


@dataclass(frozen=True)
class _Plan:
    """Everything a worker needs to augment any sample (sent once to each process of the pool)."""

    dataset: DetectionDataset | ClassificationDataset
    dst: Path
    section: AugmentationSection
    options: AugmentOptions
    names: list[list[str]]  # per sample, per copy: the output image id, or the path under dst (ImageFolder)


@dataclass
class _Done:
    """One sample's outcome: what was written, its counts, and the images found undecodable on the way."""

    index: int
    written: list[Sample] = field(default_factory=list)  # detection: the samples to label (originals too)
    images_out: int = 0
    boxes_in: int = 0
    dropped: int = 0
    bad: dict[Path, str] = field(default_factory=dict)


def _output_names(ds: DetectionDataset | ClassificationDataset, options: AugmentOptions) -> list[list[str]]:
    """Each copy's name: ``<id>_aug<k>`` (detection), ``<class>/<stem>_aug<k><suffix>`` (ImageFolder).

    A name that two outputs would share (a source image already called ``x_aug0``) is an error before
    anything is written.
    """
    if isinstance(ds, ClassificationDataset):
        folders = [ds.classes[s.class_id] for s in ds.samples]
        paths = [s.image_path for s in ds.samples]
        originals = [f"{c}/{p.name}" for c, p in zip(folders, paths, strict=True)]
        names = [
            [f"{c}/{p.stem}_aug{k}{p.suffix}" for k in range(options.copies)]
            for c, p in zip(folders, paths, strict=True)
        ]
    else:
        originals = [s.image_id for s in ds.samples]
        names = [[f"{i}_aug{k}" for k in range(options.copies)] for i in originals]
    counts = Counter(name for copies in names for name in copies)
    counts.update(originals if options.keep_originals else [])
    clash = next((name for name, count in counts.items() if count > 1), None)
    if clash is not None:
        raise DataError(f"output image {clash!r} would be written twice", fix="rename the source image called so")
    return names


def _augment_all(plan: _Plan, progress: ProgressFn | None) -> list[_Done]:
    """Every sample through ``_SampleAugmenter``, in this process or a pool of ``options.workers``; index order."""
    n, workers = len(plan.dataset.samples), plan.options.workers
    per_sample = plan.options.copies + int(plan.options.keep_originals)
    done: list[_Done] = []
    if workers == 1:
        for result in map(_SampleAugmenter(plan), range(n)):
            done.append(result)
            advance(progress, per_sample)
        return done
    # spawn, not fork: the caller may run threads (a progress bar); each worker gets the plan once
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (plan,)) as pool:
        for result in pool.imap_unordered(_run_worker, range(n), chunksize=max(1, min(16, n // (4 * workers)))):
            done.append(result)
            advance(progress, per_sample)
    return sorted(done, key=lambda d: d.index)


_WORKER: _SampleAugmenter | None = None


def _init_worker(plan: _Plan) -> None:
    import cv2

    global _WORKER
    cv2.setNumThreads(1)  # one process per core already
    _WORKER = _SampleAugmenter(plan)


def _run_worker(index: int) -> _Done:
    assert _WORKER is not None, "_init_worker runs first in every pool process"
    return _WORKER(index)


class _SampleAugmenter:
    """Writes every copy of one sample (the unit of work, so any process can take any sample).

    Copy ``k`` of sample ``i`` draws in the order training does: the mosaic coin and its 3 partners
    from ``default_rng(copy_seed)``, then the albumentations pipeline seeded with the same seed. A partner
    that cannot be decoded (under skip_bad) turns that copy's mosaic off.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan, self.augment = plan, Augment(plan.section)
        self.bad: set[int] = set()
        self.paste = dataset_bank(plan.dataset, plan.section.copy_paste)

    def __call__(self, index: int) -> _Done:
        done = _Done(index)
        image = self._read(index, done)
        if image is None:  # undecodable under skip_bad: none of its copies is written
            return done
        if isinstance(self.plan.dataset, ClassificationDataset):
            self._classification(index, image, done)
        else:
            self._detection(index, image, done)
        return done

    def _read(self, index: int, done: _Done) -> np.ndarray | None:
        """The decoded BGR image, or None (recorded in ``done.bad``) when it is undecodable under skip_bad."""
        import cv2

        if index in self.bad:
            return None
        path = self.plan.dataset.samples[index].image_path
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            return image
        reason = "cannot decode image (corrupt or truncated)"
        if not self.plan.options.skip_bad:
            raise DataError(reason, where=str(path), fix="replace or remove it, or pass --skip-bad to skip it")
        self.bad.add(index)
        done.bad[path] = reason
        return None

    def _detection(self, index: int, image: np.ndarray, done: _Done) -> None:
        sample, options = self.plan.dataset.samples[index], self.plan.options
        assert isinstance(sample, Sample)
        done.boxes_in = len(sample.boxes)
        done.written = [sample] if options.keep_originals else []
        for copy, name in enumerate(self.plan.names[index]):
            out_image, rows, dropped = self._copy(index, image, copy_seed(options.seed, index, copy), done)
            path = self.plan.dst / "images" / f"{name}{sample.image_path.suffix}"
            _write_image(path, out_image)
            done.dropped += dropped
            region = rows.class_id == IGNORE_CLASS  # DontCare regions moved with the pixels, written back as such
            h, w = out_image.shape[:2]
            done.written.append(Sample(name, path.resolve(), w, h, rows[~region], ignore_regions=rows.xyxy[region]))
        done.images_out = len(done.written)

    def _copy(self, index: int, image: np.ndarray, seed: int, done: _Done) -> tuple[np.ndarray, Detections, int]:
        """One augmented copy of detection sample ``index``: ``(image, boxes, boxes dropped)``."""
        samples = self.plan.dataset.samples
        rng = np.random.default_rng(seed)
        image, boxes = self._pasted(image, _with_regions(samples[index]), rng, done)
        if self.plan.section.mosaic > 0 and rng.random() < self.plan.section.mosaic:
            picks = rng.integers(0, len(samples), 3).tolist()
            partners = [self._read(i, done) for i in picks]
            if all(p is not None for p in partners):
                pasted = [self._pasted(p, _with_regions(samples[i]), rng, done) for i, p in zip(picks, partners)]
                tiles = [image, *(p[0] for p in pasted)]
                tile_boxes = [boxes, *(p[1] for p in pasted)]
                h, w = image.shape[:2]
                image, shifted, _ = mosaic(tiles, [b.xyxy for b in tile_boxes], (h // 2, w // 2))
                boxes = _merge(tile_boxes)  # mosaic keeps the boxes in input order, so the columns line up
                boxes.xyxy = shifted
        order = np.arange(len(boxes), dtype=np.int64)  # through the pipeline as labels: tells which boxes survive
        out_image, out_xyxy, kept = self.augment(image, boxes.xyxy, order, seed)
        out = boxes[kept]
        out.xyxy = out_xyxy.reshape(-1, 4)
        wide = (out.xyxy[:, 2] - out.xyxy[:, 0] >= MIN_SIDE_PX) & (out.xyxy[:, 3] - out.xyxy[:, 1] >= MIN_SIDE_PX)
        out = out[wide]
        dropped = int((boxes.class_id != IGNORE_CLASS).sum() - (out.class_id != IGNORE_CLASS).sum())
        return np.ascontiguousarray(out_image), out, dropped

    def _pasted(
        self, image: np.ndarray, boxes: Detections, rng: np.random.Generator, done: _Done
    ) -> tuple[np.ndarray, Detections]:
        """``image`` with copy-paste applied (the draws training makes); pasted boxes get default columns."""
        if self.paste is None:
            return image, boxes
        samples = self.plan.dataset.samples

        def load(i: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
            return self._read(i, done), samples[i].boxes.xyxy, samples[i].boxes.class_id

        out, xyxy, class_id = self.paste(image, boxes.xyxy, boxes.class_id, rng, load)
        return out, _appended(boxes, xyxy[len(boxes) :], class_id[len(boxes) :])

    def _classification(self, index: int, image: np.ndarray, done: _Done) -> None:
        sample, options = self.plan.dataset.samples[index], self.plan.options
        no_boxes, no_labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        for copy, name in enumerate(self.plan.names[index]):
            out_image, _, _ = self.augment(image, no_boxes, no_labels, copy_seed(options.seed, index, copy))
            _write_image(self.plan.dst / name, out_image)
        if options.keep_originals:
            folder = self.plan.dst / self.plan.dataset.classes[sample.class_id]
            place_image(sample.image_path, folder / sample.image_path.name, "link")
        done.images_out = options.copies + int(options.keep_originals)


def _transformable(boxes: Detections) -> Detections:
    """The box columns that survive a 2D transform; a full KITTI set keeps its 3D columns, reset to defaults."""
    data = {k: v for k, v in boxes.data.items() if k in KEPT_COLUMNS}
    if "truncated" in data and "occluded" in data:
        data = {**kitti_defaults(len(boxes)), **data}
    return Detections.from_arrays(boxes.xyxy, boxes.class_id, data=data)


def _with_regions(sample: Sample) -> Detections:
    """The transformable boxes of ``sample`` followed by its DontCare regions as rows of class ``IGNORE_CLASS``."""
    regions = regions_in_image(sample.ignore_regions, sample.width, sample.height)
    return _appended(_transformable(sample.boxes), regions, np.full(len(regions), IGNORE_CLASS))


def _appended(boxes: Detections, xyxy: np.ndarray, class_id: np.ndarray) -> Detections:
    """``boxes`` followed by new rows (pasted objects, ignore regions) whose data columns are zeros."""
    if not len(xyxy):
        return boxes
    data = {k: np.zeros((len(xyxy), *v.shape[1:]), v.dtype) for k, v in boxes.data.items()}
    return Detections.merge([boxes, Detections.from_arrays(xyxy, class_id, data=data)])


def _merge(items: Sequence[Detections]) -> Detections:
    """Concatenate boxes of several images, keeping only the data columns all of them carry."""
    keys = set.intersection(*(set(d.data) for d in items))
    return Detections.merge(
        [Detections.from_arrays(d.xyxy, d.class_id, data={k: d.data[k] for k in keys}) for d in items]
    )


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` to ``path`` (format from the suffix); a failed write is a ``DataError`` naming it."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise DataError("cannot write image", where=str(path), fix="check the disk space and the file suffix")
