"""Box copy-paste: placement that keeps labels true, the object bank, the training set hook, spec errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_spec

from lanner.core.errors import ConfigError, DataError
from lanner.data.preprocess import InputSpec
from lanner.train.augment import build_augment
from lanner.train.copy_paste import CopyPaste, paste_objects
from lanner.train.data import DetectionTrainSet, Item
from lanner.train.distributed import resolve_runtime
from lanner.train.experiment import build_experiment
from lanner.train.spec import AugmentationSection, CopyPasteSection, load_spec

SPEC = InputSpec(size_hw=(64, 96), resize="letterbox", color_order="BGR")


def test_a_paste_lands_its_pixels_in_its_box_and_hides_no_labelled_object() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    existing = np.array([[0, 0, 40, 60]], np.float32)  # the left half is a labelled object
    crop = np.full((10, 6, 3), 200, np.uint8)
    section = CopyPasteSection(prob=1.0, scale=(1.0, 1.0), max_overlap=0.0)
    for seed in range(20):
        out, xyxy, cls = paste_objects(
            image, existing, np.array([0]), [(crop, 3)], np.random.default_rng(seed), section
        )
        assert cls.tolist() == [0, 3] and xyxy[0].tolist() == existing[0].tolist()
        x0, y0, x1, y1 = xyxy[1].astype(int)
        assert (x1 - x0, y1 - y0) == (6, 10) and x0 >= 40  # right half only: no overlap allowed
        assert (out[y0:y1, x0:x1] == 200).all() and out.sum() == 200 * 6 * 10 * 3
    assert image.sum() == 0  # the input is not modified


def test_a_paste_with_no_free_place_is_skipped_and_scale_is_applied() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    full = np.array([[0, 0, 40, 40]], np.float32)
    section = CopyPasteSection(prob=1.0, scale=(1.0, 1.0), max_overlap=0.1)
    crop = np.full((8, 8, 3), 9, np.uint8)
    out, xyxy, cls = paste_objects(image, full, np.array([1]), [(crop, 2)], np.random.default_rng(0), section)
    assert len(xyxy) == 1 and cls.tolist() == [1] and out.sum() == 0
    too_big = np.full((50, 8, 3), 9, np.uint8)  # taller than the image: skipped, not clipped
    _, xyxy, _ = paste_objects(image, np.zeros((0, 4)), np.zeros(0), [(too_big, 2)], np.random.default_rng(0), section)
    assert len(xyxy) == 0
    doubled = CopyPasteSection(prob=1.0, scale=(2.0, 2.0))
    _, xyxy, _ = paste_objects(image, np.zeros((0, 4)), np.zeros(0), [(crop, 2)], np.random.default_rng(0), doubled)
    assert (xyxy[0, 2:] - xyxy[0, :2]).tolist() == [16.0, 16.0]


def test_the_bank_holds_only_the_named_classes_above_min_size() -> None:
    boxes = [
        (np.array([[0, 0, 10, 10], [0, 0, 3, 20]], np.float32), np.array([0, 1])),  # 3 px wide: left out
        (np.array([[5, 5, 20, 25], [1, 1, 9, 9]], np.float32), np.array([1, 0])),
    ]
    bank = CopyPaste(boxes, [1], CopyPasteSection(prob=1.0, min_size=4))
    assert bank.bank == [(1, 0)]
    assert len(CopyPaste(boxes, None, CopyPasteSection(prob=1.0, min_size=4))) == 3


def _items(tmp_path: Path) -> list[Item]:
    import cv2

    items = []
    for i, (value, cls) in enumerate(((60, 0), (220, 3))):
        path = tmp_path / f"{i}.png"
        image = np.full((64, 96, 3), 30, np.uint8)
        image[20:36, 40:52] = value
        cv2.imwrite(str(path), image)
        items.append(Item(path, np.array([[40, 20, 52, 36]], np.float32), np.array([cls])))
    return items


def test_the_training_set_pastes_bank_objects_deterministically_and_not_in_clean_epochs(tmp_path: Path) -> None:
    items = _items(tmp_path)
    section = CopyPasteSection(prob=1.0, max_objects=3, scale=(1.0, 1.0), max_overlap=0.0)
    paste = CopyPaste([(i.xyxy, i.class_id) for i in items], [3], section)
    augment = build_augment(AugmentationSection(hflip=0.0, scale=(1.0, 1.0), translate=0.0, color=0.0), SPEC.size_hw)
    data = DetectionTrainSet(items, SPEC, augment, seed=3, copy_paste=paste, augment_epochs=1)
    plain = DetectionTrainSet(items, SPEC, augment, seed=3)
    image, targets = data[(0, 0)]
    assert targets[:, 0].tolist().count(3) >= 1 and len(targets) >= 2  # item 0 has only a class-0 box
    assert len(plain[(0, 0)][1]) == 1
    again_image, again = data[(0, 0)]
    assert (image == again_image).all() and (targets == again).all()
    assert len(data[(1, 0)][1]) == 1  # epoch 1 is a clean epoch: nothing pasted
    for k in range(1, len(targets)):  # every pasted box shows the class-3 object's grey level
        x0, y0, x1, y1 = targets[k, 1:].round().int().tolist()
        assert int(image[0, y0:y1, x0:x1].float().mean()) == 220


def test_copy_paste_in_a_spec_builds_a_bank_and_bad_classes_are_one_line_errors(synth_sets: dict[str, Path]) -> None:
    def build(**copy_paste):
        data = tiny_spec(synth_sets["train"], augmentation={"mosaic": 0.0, "copy_paste": copy_paste})
        return build_experiment(load_spec(data=data), resolve_runtime("cpu"))

    exp = build(prob=0.5, classes=["car"])
    assert exp.train_set.copy_paste is not None and len(exp.train_set.copy_paste) > 0
    assert build(prob=0.0).train_set.copy_paste is None
    with pytest.raises(ConfigError, match=r"copy_paste.classes names \['cars'\].*did you mean 'car'"):
        build(prob=0.5, classes=["cars"])
    with pytest.raises(DataError, match="found no object"):
        build(prob=0.5, min_size=10_000)
    with pytest.raises(ConfigError, match=r"scale \[2.0, 1.0\] must be \[low, high\]"):
        build(prob=0.5, scale=[2.0, 1.0])
    with pytest.raises(ConfigError, match="max_object"):
        build(prob=0.5, max_object=2)


def test_the_module_example_runs() -> None:
    import doctest

    from lanner.train import copy_paste

    assert doctest.testmod(copy_paste).failed == 0
