"""Seeded random train/val(/test) splits, written as datasets of their own.

The split depends only on the set of image ids and the seed (samples are sorted before shuffling), so
the same data and seed always give the same split, whatever order the files were listed in.

Example:
    >>> parts = write_split("data/kitti_cars", "data/cars_split", val=0.2, test=0.1, seed=0)
    >>> sorted(parts)
    ['test', 'train', 'val']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lanner.core.errors import UsageError
from lanner.core.progress import ProgressFn
from lanner.data.dataset import ClassificationDataset, ClassificationSample, DetectionDataset
from lanner.data.formats.imagefolder import read_imagefolder, write_imagefolder
from lanner.data.formats.layout import ImageMode
from lanner.data.io import check_output_folder, detect_format, read_dataset, write_dataset


def split_counts(n: int, val: float, test: float = 0.0) -> dict[str, int]:
    """How many of ``n`` samples go to each part: val and test rounded, train gets the rest (at least one)."""
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise UsageError(
            f"split fractions must be >= 0 and leave some training data: val={val}, test={test}",
            fix="e.g. --val 0.2 --test 0.1",
        )
    n_val, n_test = round(val * n), round(test * n)
    while n > 0 and n_val + n_test > n - 1:  # keep one training sample: shrink the most rounded-up part
        if n_val - val * n > n_test - test * n:
            n_val -= 1
        else:
            n_test -= 1
    counts = {"train": n - n_val - n_test, "val": n_val}
    if test > 0:
        counts["test"] = n_test
    return counts


def split_dataset(
    ds: DetectionDataset, val: float = 0.2, test: float = 0.0, seed: int = 0
) -> dict[str, DetectionDataset]:
    """Shuffle ``ds`` with ``seed`` and cut it into ``train``, ``val`` (and ``test`` when ``test > 0``)."""
    samples = sorted(ds.samples, key=lambda s: s.image_id)
    order = np.random.default_rng(seed).permutation(len(samples))
    parts, start = {}, 0
    for name, count in split_counts(len(samples), val, test).items():
        chosen = sorted((samples[i] for i in order[start : start + count]), key=lambda s: s.image_id)
        parts[name] = DetectionDataset(root=ds.root, classes=list(ds.classes), samples=chosen)
        start += count
    return parts


def split_classification(
    ds: ClassificationDataset, val: float = 0.2, test: float = 0.0, seed: int = 0
) -> dict[str, ClassificationDataset]:
    """Like ``split_dataset`` but stratified: each class is cut on its own, so every part keeps the balance."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[ClassificationSample]] = {name: [] for name in split_counts(0, val, test)}
    for class_id in range(len(ds.classes)):
        members = sorted((s for s in ds.samples if s.class_id == class_id), key=lambda s: s.image_path)
        order, start = rng.permutation(len(members)), 0
        for name, count in split_counts(len(members), val, test).items():
            chosen[name].extend(members[i] for i in order[start : start + count])
            start += count
    return {
        name: ClassificationDataset(
            ds.root, list(ds.classes), sorted(samples, key=lambda s: (s.class_id, s.image_path))
        )
        for name, samples in chosen.items()
    }


def write_split(
    src: str | Path,
    out: str | Path,
    *,
    val: float = 0.2,
    test: float = 0.0,
    seed: int = 0,
    to_fmt: str | None = None,
    from_fmt: str | None = None,
    images: ImageMode = "link",
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Split the dataset at ``src`` and write each part to ``out/<part>`` (same format unless ``to_fmt``).

    ImageFolder sets are split per class (``split_classification``) and written as ImageFolder sets.
    """
    check_output_folder(src, out)  # out/train inside the input would become part of it
    fmt = from_fmt or detect_format(src)
    out = Path(out)
    if fmt == "imagefolder":
        if to_fmt not in (None, "imagefolder"):
            raise UsageError(f"an ImageFolder set cannot be written as {to_fmt}", fix="leave out --to")
        folders = split_classification(read_imagefolder(Path(src)), val=val, test=test, seed=seed)
        return {
            name: write_imagefolder(part, out / name, images=images, progress=progress)
            for name, part in folders.items()
        }
    parts = split_dataset(read_dataset(src, fmt, progress=progress), val=val, test=test, seed=seed)  # read, then write
    return {
        name: write_dataset(part, out / name, to_fmt or fmt, images=images, progress=progress)
        for name, part in parts.items()
    }
