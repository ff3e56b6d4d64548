"""Property-based round trips between KITTI, COCO and YOLO."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fixtures_formats import CLASSES, HEIGHT, WIDTH, write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lanner.core.detections import Detections
from lanner.data import DetectionDataset, Sample, convert, read_dataset, write_dataset

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
N_IMAGES = 3


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    return [write_png(folder / f"{i:04d}.png", seed=i) for i in range(N_IMAGES)]


def _cents(lo: int, hi: int) -> st.SearchStrategy[float]:
    """Values on KITTI's 0.01 grid in [lo, hi]."""
    return st.integers(lo * 100, hi * 100).map(lambda v: v / 100)


@st.composite
def kitti_boxes(draw: st.DrawFn) -> dict:
    """One box with every KITTI column, at least 1 px wide and high, inside a 64x48 image."""
    x1, y1 = draw(_cents(0, WIDTH - 2)), draw(_cents(0, HEIGHT - 2))
    x2 = draw(st.integers(round(x1 * 100) + 100, WIDTH * 100)) / 100
    y2 = draw(st.integers(round(y1 * 100) + 100, HEIGHT * 100)) / 100
    return {
        "xyxy": [x1, y1, x2, y2],
        "class_id": draw(st.integers(0, len(CLASSES) - 1)),
        "truncated": draw(_cents(0, 1)),
        "occluded": draw(st.integers(0, 3)),
        "alpha": draw(_cents(-3, 3)),
        "dimensions": [draw(_cents(0, 20)) for _ in range(3)],
        "location": [draw(_cents(-100, 100)) for _ in range(3)],
        "rotation_y": draw(_cents(-3, 3)),
    }


datasets = st.lists(st.lists(kitti_boxes(), max_size=4), min_size=N_IMAGES, max_size=N_IMAGES)


def _dataset(rows_per_image: list[list[dict]], image_paths: list[Path]) -> DetectionDataset:
    samples = []
    for i, rows in enumerate(rows_per_image):
        data = {
            key: np.asarray([r[key] for r in rows], np.int64 if key == "occluded" else np.float32).reshape(
                (len(rows), 3) if key in ("dimensions", "location") else (len(rows),)
            )
            for key in ("truncated", "occluded", "alpha", "dimensions", "location", "rotation_y")
        }
        boxes = Detections.from_arrays([r["xyxy"] for r in rows], [r["class_id"] for r in rows], data=data)
        samples.append(Sample(image_paths[i].stem, image_paths[i], WIDTH, HEIGHT, boxes))
    return DetectionDataset(root=image_paths[0].parent, classes=list(CLASSES), samples=samples)


def _labels(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((root / "labels").glob("*.txt"))}


@SETTINGS
@given(rows=datasets)
def test_kitti_coco_yolo_kitti_keeps_boxes_and_classes(rows: list[list[dict]], image_paths: list[Path]) -> None:
    ds = _dataset(rows, image_paths)
    with tempfile.TemporaryDirectory() as tmp:
        kitti = write_dataset(ds, Path(tmp) / "kitti", "kitti", images="link")
        coco = convert(kitti, Path(tmp) / "coco", "coco")
        yolo = convert(coco, Path(tmp) / "yolo", "yolo")
        back = read_dataset(convert(yolo, Path(tmp) / "kitti2", "kitti"))
    assert back.classes == ds.classes
    assert [s.image_id for s in back.samples] == [s.image_id for s in ds.samples]
    for before, after in zip(ds.samples, back.samples, strict=True):
        assert after.boxes.class_id.tolist() == before.boxes.class_id.tolist()
        np.testing.assert_allclose(after.boxes.xyxy, before.boxes.xyxy, atol=0.01)  # YOLO's normalization


@SETTINGS
@given(rows=datasets)
def test_kitti_to_kitti_keeps_all_15_columns(rows: list[list[dict]], image_paths: list[Path]) -> None:
    ds = _dataset(rows, image_paths)
    with tempfile.TemporaryDirectory() as tmp:
        first = write_dataset(ds, Path(tmp) / "a", "kitti", images="link")
        again = read_dataset(first)
        second = write_dataset(again, Path(tmp) / "b", "kitti", images="link")
        assert _labels(first) == _labels(second)
    for before, after in zip(ds.samples, again.samples, strict=True):
        assert after.boxes == before.boxes


@SETTINGS
@given(rows=datasets)
def test_kitti_coco_kitti_keeps_kitti_columns_in_attributes(rows: list[list[dict]], image_paths: list[Path]) -> None:
    ds = _dataset(rows, image_paths)
    with tempfile.TemporaryDirectory() as tmp:
        kitti = write_dataset(ds, Path(tmp) / "kitti", "kitti", images="link")
        back = convert(convert(kitti, Path(tmp) / "coco", "coco"), Path(tmp) / "kitti2", "kitti")
        assert _labels(back) == _labels(kitti)


@SETTINGS
@given(rows=datasets)
def test_coco_to_coco_is_exact(rows: list[list[dict]], image_paths: list[Path]) -> None:
    ds = _dataset(rows, image_paths)
    with tempfile.TemporaryDirectory() as tmp:
        first = write_dataset(ds, Path(tmp) / "a", "coco", images="link")
        second = convert(first, Path(tmp) / "b", "coco")
        a, b = (json.loads((p / "annotations.json").read_text()) for p in (first, second))
    for key in ("images", "annotations", "categories"):
        assert a[key] == b[key]


def test_coco_to_coco_keeps_area_iscrowd_and_score(tmp_path: Path, image_paths: list[Path]) -> None:
    doc = {
        "images": [{"id": 1, "file_name": image_paths[0].name, "width": WIDTH, "height": HEIGHT}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [1.25, 2.5, 30.75, 20.0],
                "area": 401.0625,
                "iscrowd": 1,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "bbox": [3.0, 4.0, 5.0, 6.0],
                "area": 30.0,
                "iscrowd": 0,
                "score": 0.5,
            },
        ],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}],
    }
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "annotations.json").write_text(json.dumps(doc))
    (tmp_path / "src" / "images").mkdir()
    (tmp_path / "src" / "images" / image_paths[0].name).hardlink_to(image_paths[0])
    out = convert(tmp_path / "src", tmp_path / "out", "coco")
    written = json.loads((out / "annotations.json").read_text())
    for key in ("images", "annotations", "categories"):
        assert written[key] == doc[key]
