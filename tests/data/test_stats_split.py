"""Stats on known sets; split fractions, determinism and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_formats import CLASSES, boxes, make_dataset, write_format, write_png

from lanner.core.errors import UsageError
from lanner.data import (
    DetectionDataset,
    Sample,
    compute_stats,
    plot_stats,
    read_dataset,
    read_imagefolder,
    split_dataset,
    write_split,
)
from lanner.data.split import split_counts


def test_stats_of_the_fixture_set(tmp_path: Path) -> None:
    stats = compute_stats(make_dataset(tmp_path, 4))
    assert (stats.images, stats.boxes) == (4, 7)
    assert stats.classes == {"car": 3, "person": 2, "bicycle": 2}
    assert stats.boxes_per_image == {"min": 1, "mean": 1.75, "max": 3}
    assert stats.image_sizes == {"64x48": 4}
    assert stats.box_sizes == {"small": 7, "medium": 0, "large": 0}
    assert stats.truncated == {"0-0.2": 4, "0.2-0.4": 1, "0.4-0.6": 2, "0.6-0.8": 0, "0.8-1": 0}
    assert stats.occluded == {"0": 4, "1": 2, "2": 1, "3": 0}


def test_box_size_buckets_follow_coco(tmp_path: Path) -> None:
    path = write_png(tmp_path / "big.png", width=200, height=150)
    sides = [31.9, 32, 95.9, 96, 100]
    xyxy = [[0, 0, s, s] for s in sides]
    samples = [
        Sample("big", path, 200, 150, boxes(xyxy, [0] * len(sides), kitti=False)),
        Sample("empty", path, 100, 50, boxes([], [], kitti=False)),
    ]
    stats = compute_stats(DetectionDataset(tmp_path, list(CLASSES), samples))
    assert stats.box_sizes == {"small": 1, "medium": 2, "large": 2}
    assert stats.boxes_per_image == {"min": 0, "mean": 2.5, "max": 5}
    assert stats.image_sizes == {"100x50": 1, "200x150": 1}
    assert sum(stats.sqrt_area_histogram.values()) == 5 and stats.sqrt_area_histogram["96-128"] == 2
    assert stats.truncated is None and stats.occluded is None  # no KITTI columns


def test_stats_json_and_plot(tmp_path: Path) -> None:
    stats = compute_stats(read_dataset(write_format(tmp_path, "yolo")))
    assert json.loads(stats.to_json())["classes"] == {"car": 3, "person": 2, "bicycle": 2}
    png = plot_stats(stats, tmp_path / "plots" / "stats.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("n", "val", "test", "expected"),
    [
        (10, 0.2, 0.0, {"train": 8, "val": 2}),
        (10, 0.2, 0.1, {"train": 7, "val": 2, "test": 1}),
        (7, 0.25, 0.0, {"train": 5, "val": 2}),
        (1, 0.5, 0.0, {"train": 1, "val": 0}),
        (2, 0.5, 0.4, {"train": 1, "val": 1, "test": 0}),
        (0, 0.2, 0.0, {"train": 0, "val": 0}),
    ],
)
def test_split_counts(n: int, val: float, test: float, expected: dict) -> None:
    assert split_counts(n, val, test) == expected


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.0), (1.0, 0.0), (0.6, 0.4), (0.2, 1.2)])
def test_split_rejects_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(UsageError):
        split_counts(10, val, test)


def _ids(part: DetectionDataset) -> list[str]:
    return [s.image_id for s in part.samples]


def test_split_is_a_seeded_partition(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path, 20, kitti=False)
    parts = split_dataset(ds, val=0.25, test=0.1, seed=3)
    assert {k: len(v) for k, v in parts.items()} == {"train": 13, "val": 5, "test": 2}
    all_ids = sorted(i for p in parts.values() for i in _ids(p))
    assert all_ids == sorted(_ids(ds))
    shuffled = DetectionDataset(ds.root, ds.classes, ds.samples[::-1])
    assert {k: _ids(v) for k, v in split_dataset(shuffled, 0.25, 0.1, seed=3).items()} == {
        k: _ids(v) for k, v in parts.items()
    }
    assert _ids(split_dataset(ds, 0.25, 0.1, seed=4)["val"]) != _ids(parts["val"])


def test_write_split_in_another_format(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti", n_images=5)
    paths = write_split(root, tmp_path / "split", val=0.4, seed=0, to_fmt="coco")
    assert sorted(paths) == ["train", "val"]
    train, val = read_dataset(paths["train"]), read_dataset(paths["val"])
    assert (len(train), len(val)) == (3, 2)
    assert (paths["val"] / "annotations.json").is_file()
    assert train.box_count() + val.box_count() == read_dataset(root).box_count()


def test_imagefolder_split_is_stratified_and_stats_count_images(tmp_path: Path) -> None:
    for i in range(10):
        write_png(tmp_path / "pets" / "cat" / f"{i}.png")
    for i in range(5):
        write_png(tmp_path / "pets" / "dog" / f"{i}.png")
    paths = write_split(tmp_path / "pets", tmp_path / "split", val=0.2, seed=0, images="copy")
    parts = {name: read_imagefolder(path) for name, path in paths.items()}
    assert {k: v.class_counts() for k, v in parts.items()} == {
        "train": {"cat": 8, "dog": 4},
        "val": {"cat": 2, "dog": 1},
    }
    stats = compute_stats(parts["train"])
    assert (stats.images, stats.boxes, stats.classes) == (12, 0, {"cat": 8, "dog": 4})
    assert stats.image_sizes == {"64x48": 12}
    with pytest.raises(UsageError, match="ImageFolder"):
        write_split(tmp_path / "pets", tmp_path / "x", to_fmt="coco")


@pytest.mark.parametrize("fmt", ["kitti", "coco"])
def test_validate_and_split_report_progress_while_reading_too(tmp_path: Path, fmt: str) -> None:
    from lanner.data import validate

    src = write_format(tmp_path, fmt, n_images=5)
    calls: list[int] = []
    validate(src, progress=calls.append)
    assert sum(calls) == 2 * 5  # each image once while parsing, once while checking
    calls.clear()
    write_split(src, tmp_path / f"split_{fmt}", val=0.4, progress=calls.append)
    assert sum(calls) == 2 * 5  # each image once while reading, once while writing
