"""``lanner.data.preview``: seeded sample choice, class filter, boxes and ignore regions drawn, the grid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.drawing import color_for
from lanner.core.errors import DataError, UsageError
from lanner.data.dataset import DetectionDataset, Sample
from lanner.data.preview import IGNORE_BGR, caption, draw_sample, pick_samples, preview_grid

W, H = 120, 80


def make_set(root: Path, n: int = 6) -> DetectionDataset:
    """Grey images; image k has one car box, and every third one a person box too; image 0 a DontCare region."""
    samples = []
    for k in range(n):
        path = root / f"{k}.png"
        cv2.imwrite(str(path), np.full((H, W, 3), 90, np.uint8))
        xyxy, cls = [[10, 20, 50, 60]], [0]
        if k % 3 == 0:
            xyxy, cls = [*xyxy, [70, 10, 100, 70]], [0, 1]
        regions = np.array([[60, 0, 119, 8]], np.float32) if k == 0 else np.zeros((0, 4), np.float32)
        samples.append(Sample(str(k), path, W, H, Detections.from_arrays(xyxy, cls), ignore_regions=regions))
    return DetectionDataset(root, ["car", "person"], samples)


def test_samples_are_seeded_in_dataset_order_and_filtered_by_class(tmp_path: Path) -> None:
    ds = make_set(tmp_path)
    first = [s.image_id for s in pick_samples(ds, 3, seed=1)]
    assert first == [s.image_id for s in pick_samples(ds, 3, seed=1)] and first == sorted(first, key=int)
    assert [s.image_id for s in pick_samples(ds, 100, seed=0)] == [str(k) for k in range(6)]  # all of them
    assert [s.image_id for s in pick_samples(ds, 10, classes=["person"])] == ["0", "3"]
    with pytest.raises(UsageError, match=r"classes \['bus'\] are not in the dataset; choose from car, person"):
        pick_samples(ds, 4, classes=["bus"])
    with pytest.raises(UsageError, match="--count must be at least 1"):
        pick_samples(ds, 0)
    empty = DetectionDataset(tmp_path, ["car", "person"], [s for s in ds.samples if 1 not in s.boxes.class_id])
    with pytest.raises(DataError, match="no image shows person"):
        pick_samples(empty, 4, classes=["person"])


def test_boxes_take_their_class_colour_and_ignore_regions_are_grey(tmp_path: Path) -> None:
    ds = make_set(tmp_path)
    image = draw_sample(ds.samples[0], ds.classes)
    assert tuple(int(v) for v in image[40, 10]) == color_for(0)  # the car box's left edge
    assert tuple(int(v) for v in image[40, 100]) == color_for(1)  # the person box's right edge
    assert tuple(int(v) for v in image[5, 60]) == IGNORE_BGR  # the DontCare region's left edge
    assert tuple(int(v) for v in image[79, 0]) == (90, 90, 90)  # elsewhere the image is untouched


def test_the_grid_has_one_captioned_tile_per_sample(tmp_path: Path) -> None:
    grid = preview_grid(make_set(tmp_path), count=5, tile_width=60, columns=3)
    tile_h = H // 2 + 22  # the image at half width, plus its caption
    assert grid.shape == (2 * tile_h, 3 * 60, 3)
    assert (grid[tile_h:, 2 * 60 :] == 255).all()  # the sixth place is empty


def test_a_very_tall_image_is_fitted_so_the_sheet_stays_writable(tmp_path: Path) -> None:
    """A 40 x 4000 px strip at 480 px wide would be a 48000 px tile: past JPEG's 65535 px limit in two rows."""
    path = tmp_path / "strip.png"
    cv2.imwrite(str(path), np.full((4000, 40, 3), 90, np.uint8))
    strip = Sample("strip", path, 40, 4000, Detections.from_arrays([[5, 5, 30, 3000]], [0]))
    ds = DetectionDataset(tmp_path, ["car"], [strip] * 4)
    grid = preview_grid(ds, count=4, tile_width=100, columns=2)
    assert grid.shape == (2 * (200 + 22), 200, 3)  # each tile at most twice as tall as wide, plus its caption
    assert (grid[:200, :2] != 255).any() and (
        grid[:200, 2:100] == 255
    ).all()  # the 2 px strip at the left, white beside
    assert cv2.imwrite(str(tmp_path / "sheet.jpg"), grid)


def test_captions_count_ignore_regions_apart_from_boxes(tmp_path: Path) -> None:
    ds = make_set(tmp_path)
    crowd = Detections.from_arrays([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 0], data={"iscrowd": np.array([0, 1])})
    assert caption(ds.samples[0]) == "0  (2 boxes, 1 ignore)"  # the DontCare region is no box
    assert caption(ds.samples[1]) == "1  (1 boxes)"
    assert caption(Sample("c", ds.samples[1].image_path, W, H, crowd)) == "c  (1 boxes, 1 ignore)"
