"""Ignore regions in training (KITTI DontCare, COCO crowd): carried by items, spared by the loss, never pasted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.data.dataset import DetectionDataset, Sample, crowd_class
from lanner.train.copy_paste import CopyPaste
from lanner.train.data import IGNORE_CLASS, detection_items
from lanner.train.loss import YOLOXLoss
from lanner.train.spec import CopyPasteSection

STRIDES = (8, 16, 32)


def test_dontcare_regions_and_crowd_boxes_become_ignore_rows_after_the_objects() -> None:
    crowd = Detections.from_arrays([[0, 0, 10, 10], [20, 20, 40, 40]], [1, 0], data={"iscrowd": np.array([1, 0])})
    sample = Sample("a", Path("a.png"), 64, 64, crowd, ignore_regions=np.array([[50, 0, 64, 20]], np.float32))
    [item] = detection_items(DetectionDataset(Path("."), ["car", "person"], [sample]), ["person", "car"], "d")
    # car -> spec id 1; the crowd person (spec id 0) keeps its class as crowd_class(0) = -3; DontCare has none
    assert item.class_id.tolist() == [1, crowd_class(0), IGNORE_CLASS] and crowd_class(0) == -3
    assert item.xyxy.tolist() == [[20, 20, 40, 40], [0, 0, 10, 10], [50, 0, 64, 20]]


def test_ignore_regions_are_clipped_to_the_image_and_dropped_when_outside_or_empty() -> None:
    """Past the edge, a region would reach into the next mosaic quadrant and hide its background from the loss."""
    crowd = Detections.from_arrays([[-5, 50, 30, 90]], [0], data={"iscrowd": np.array([1])})
    regions = np.array([[-20, -20, 500, 5000], [70, 0, 90, 10], [10, 10, 10, 30], [20, 5, 40, 5]], np.float32)
    sample = Sample("a", Path("a.png"), 64, 64, crowd, ignore_regions=regions)
    [item] = detection_items(DetectionDataset(Path("."), ["car"], [sample]), ["car"], "d")
    assert item.class_id.tolist() == [crowd_class(0), IGNORE_CLASS]  # the one right of the image and the empty go
    assert item.xyxy.tolist() == [[0, 50, 30, 64], [0, 0, 64, 64]]


def _zero_outputs(batch: int = 1, size: int = 64, classes: int = 2) -> list[torch.Tensor]:
    return [torch.zeros(batch, 5 + classes, size // s, size // s) for s in STRIDES]


def test_background_anchor_points_inside_an_ignore_region_add_no_objectness_loss() -> None:
    loss = YOLOXLoss(2)
    real = [0, 40, 40, 60, 60]  # one object away from the region
    plain = loss(_zero_outputs(), torch.tensor([[real, [-1, 0, 0, 0, 0]]], dtype=torch.float32))
    spared = loss(_zero_outputs(), torch.tensor([[real, [IGNORE_CLASS, 0, 0, 32, 32]]], dtype=torch.float32))
    # anchor centres inside [0, 32]^2: 4x4 at stride 8, 2x2 at 16, 1 at 32; each saved BCE(0, 0) = log 2
    inside = 16 + 4 + 1
    assert float(spared["num_fg"]) == float(plain["num_fg"])  # the region is never assigned
    expected = inside * math.log(2) / float(plain["num_fg"])
    assert float(plain["obj"] - spared["obj"]) == pytest.approx(expected, rel=1e-5)
    assert float(plain["iou"]) == pytest.approx(float(spared["iou"]))


def test_ignore_rows_are_never_pasted() -> None:
    boxes = [(np.array([[0, 0, 20, 20], [30, 30, 60, 60]], np.float32), np.array([0, IGNORE_CLASS]))]
    assert CopyPaste(boxes, None, CopyPasteSection(prob=1.0)).bank == [(0, 0)]


def test_a_set_labelled_only_with_dontcare_is_refused(tmp_path: Path) -> None:
    import cv2

    from lanner.data.io import write_dataset
    from lanner.train.distributed import resolve_runtime
    from lanner.train.experiment import build_experiment
    from lanner.train.spec import load_spec

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 96, 3), np.uint8))
    sample = Sample("a", tmp_path / "a.png", 96, 64, ignore_regions=np.array([[0, 0, 30, 30]], np.float32))
    root = write_dataset(DetectionDataset(tmp_path, ["car"], [sample]), tmp_path / "kitti", "kitti")
    spec = {
        "dataset": {"train": str(root), "classes": ["car"]},
        "model": {"name": "yolox_nano", "input_size": [64, 96]},
    }
    with pytest.raises(DataError, match="has no boxes"):
        build_experiment(load_spec(data=spec), resolve_runtime("cpu"))


def test_ignore_rows_travel_through_flip_and_mosaic_like_boxes(tmp_path: Path) -> None:
    import cv2

    from lanner.data.preprocess import InputSpec
    from lanner.train.augment import build_augment
    from lanner.train.data import DetectionTrainSet, Item
    from lanner.train.spec import AugmentationSection

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 96, 3), np.uint8))
    item = Item(
        tmp_path / "a.png", np.array([[10, 10, 30, 30], [60, 0, 96, 20]], np.float32), np.array([0, IGNORE_CLASS])
    )
    spec = InputSpec(size_hw=(64, 96), resize="letterbox", color_order="BGR")
    flip = build_augment(AugmentationSection(hflip=1.0, scale=(1.0, 1.0), translate=0.0, color=0.0), spec.size_hw)
    _, targets = DetectionTrainSet([item], spec, flip)[(0, 0)]
    assert targets[:, 0].tolist() == [0, IGNORE_CLASS]
    assert targets[1, 1:].tolist() == pytest.approx([0, 0, 36, 20])  # mirrored like the image
    _, mosaic_targets = DetectionTrainSet([item], spec, flip, mosaic_prob=1.0)[(0, 0)]
    assert mosaic_targets[:, 0].tolist().count(IGNORE_CLASS) == 4  # one per tile


def test_validation_during_training_scores_dontcare_as_ignore_boxes(
    synth_sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import tiny_spec

    import lanner.train.metrics as metrics
    from lanner.data.io import read_dataset, write_dataset
    from lanner.train.spec import load_spec
    from lanner.train.trainer import train

    val = read_dataset(synth_sets["val"])
    val.samples[0].ignore_regions = np.array([[0, 0, 40, 30]], np.float32)
    val_dir = write_dataset(val, tmp_path / "val_dc", "kitti")
    seen: list = []
    real = metrics.evaluate_detections
    monkeypatch.setattr(metrics, "evaluate_detections", lambda p, t, *a, **k: seen.append(t) or real(p, t, *a, **k))
    spec = tiny_spec(synth_sets["train"], val_dir, training={"epochs": 1})
    train(load_spec(data=spec), tmp_path / "run")
    first = seen[-1][0]  # image 0 of the last validation
    labelled = {int(c) for truth in seen[-1] for c, i in zip(truth.class_id, truth.data["ignore"]) if not i}
    regions = first.xyxy[first.data["ignore"]]
    assert len(regions) == len(labelled) and len(regions) > 0  # the region once per labelled class
    assert {int(c) for c in first.class_id[first.data["ignore"]]} == labelled


def test_validation_during_training_keeps_a_crowd_boxs_class(
    synth_sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import tiny_spec

    import lanner.train.metrics as metrics
    from lanner.data.io import read_dataset, write_dataset
    from lanner.train.spec import load_spec
    from lanner.train.trainer import train

    val = read_dataset(synth_sets["val"])
    first = val.samples[0]
    crowd = Detections.from_arrays([[0, 0, 40, 30]], [val.classes.index("person")], data={"iscrowd": np.array([1])})
    plain = Detections.from_arrays(first.boxes.xyxy, first.boxes.class_id, data={"iscrowd": np.zeros(len(first.boxes))})
    first.boxes = Detections.merge([plain, crowd])
    val_dir = write_dataset(val, tmp_path / "val_coco", "coco")
    seen: list = []
    real = metrics.evaluate_detections
    monkeypatch.setattr(metrics, "evaluate_detections", lambda p, t, *a, **k: seen.append(t) or real(p, t, *a, **k))
    train(load_spec(data=tiny_spec(synth_sets["train"], val_dir, training={"epochs": 1})), tmp_path / "run")
    truth = seen[-1][0]
    ignored = truth.class_id[truth.data["ignore"]].tolist()
    assert ignored == [val.classes.index("person")]  # one ignore box, of the crowd's own class
