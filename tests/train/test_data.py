"""Training data: class mapping, deterministic augmentation, mosaic, the rank-aware sampler, bad data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lanner.core.errors import DataError
from lanner.data.io import read_dataset
from lanner.data.preprocess import InputSpec, to_network_input, to_network_pixels
from lanner.train.augment import build_augment, mosaic
from lanner.train.data import (
    DetectionTrainSet,
    GlobalBatchSampler,
    class_mapping,
    collate_detection,
    detection_items,
    normalise_pixels,
    read_training_set,
)
from lanner.train.spec import AugmentationSection

SPEC = InputSpec(size_hw=(64, 96), resize="letterbox", color_order="BGR")


def test_class_mapping_by_name_and_missing_classes() -> None:
    assert class_mapping(["person", "car"], ["car", "truck", "person"], "d").tolist() == [2, 0]
    with pytest.raises(DataError, match=r"dataset classes \['bus'\] are not in the spec's classes"):
        class_mapping(["car", "bus"], ["car"], "data/train")


def dataset_items(synth_sets: dict[str, Path], classes: list[str] | None = None):
    ds = read_dataset(synth_sets["train"])
    return detection_items(ds, classes or ds.classes, "train")


def test_same_seed_same_batches_other_epoch_other_batches(synth_sets: dict[str, Path]) -> None:
    items = dataset_items(synth_sets)[:4]
    aug = build_augment(AugmentationSection(mosaic=0.5, blur=0.5, noise=0.5), SPEC.size_hw)

    def batch(epoch: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
        ds = DetectionTrainSet(items, SPEC, aug, mosaic_prob=0.5, seed=seed)
        ds.set_epoch(epoch)
        return collate_detection([ds[i] for i in range(len(ds))])

    a, b, c = batch(0), batch(0), batch(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (4, 3, 64, 96) and a[1].shape[2] == 5


def test_targets_are_letterboxed_boxes_in_spec_class_ids(synth_sets: dict[str, Path]) -> None:
    ds_disk = read_dataset(synth_sets["train"])
    classes = ["extra", *reversed(ds_disk.classes)]
    items = detection_items(ds_disk, classes, "train")
    image, targets = DetectionTrainSet(items, SPEC)[0]  # no augmentation
    sample = ds_disk.samples[0]
    scale = min(64 / sample.height, 96 / sample.width)
    np.testing.assert_allclose(targets[:, 1:].numpy(), sample.boxes.xyxy * scale, rtol=1e-5)
    expected_ids = [classes.index(ds_disk.classes[c]) for c in sample.boxes.class_id]
    assert targets[:, 0].long().tolist() == expected_ids
    assert image.shape == (3, 64, 96)


def test_horizontal_flip_mirrors_boxes() -> None:
    aug = build_augment(AugmentationSection(hflip=1.0, scale=(1.0, 1.0), translate=0.0, color=0.0), (64, 96))
    image = np.zeros((50, 100, 3), np.uint8)
    image[10:20, 5:25] = 255
    out, boxes, cls = aug(image, np.array([[5, 10, 25, 20]], np.float32), np.array([2]), seed=0)
    np.testing.assert_allclose(boxes, [[75, 10, 95, 20]])
    assert out[15, 80].tolist() == [255, 255, 255] and cls.tolist() == [2]


def test_scale_keeps_boxes_inside_and_drops_cut_ones() -> None:
    aug = build_augment(AugmentationSection(hflip=0.0, scale=(1.5, 2.0), translate=0.3, color=0.0), (64, 96))
    boxes = np.array([[0, 0, 10, 10], [40, 20, 60, 30], [90, 40, 100, 50]], np.float32)
    for seed in range(5):
        _out, kept, cls = aug(np.zeros((50, 100, 3), np.uint8), boxes, np.array([0, 1, 2]), seed=seed)
        assert len(kept) == len(cls) <= 3
        assert (kept[:, [0, 2]] <= 100).all() and (kept[:, [1, 3]] <= 50).all() and (kept >= 0).all()


def test_mosaic_offsets_boxes_per_quadrant() -> None:
    images = [np.full((32, 48, 3), k * 40, np.uint8) for k in range(4)]
    boxes = [np.array([[0, 0, 24, 16]], np.float32)] * 4
    canvas, xyxy, origin = mosaic(images, boxes, (64, 96))  # each image scales by 2 into a 64x96 quadrant
    assert canvas.shape == (128, 192, 3)
    np.testing.assert_allclose(xyxy, [[0, 0, 48, 32], [96, 0, 144, 32], [0, 64, 48, 96], [96, 64, 144, 96]])
    assert origin.tolist() == [0, 1, 2, 3] and canvas[100, 150, 0] == 120


def test_two_ranks_split_each_global_batch() -> None:
    single = list(GlobalBatchSampler(10, batch_size=4, seed=5))
    ranks = [list(GlobalBatchSampler(10, batch_size=2, seed=5, world_size=2, rank=r)) for r in range(2)]
    assert len(single) == 2 == len(ranks[0]) == len(ranks[1])
    for step, batch in enumerate(single):
        assert batch == ranks[0][step] + ranks[1][step]
    other_epoch = GlobalBatchSampler(10, batch_size=4, seed=5)
    other_epoch.set_epoch(1)
    assert list(other_epoch) != single
    assert next(iter(GlobalBatchSampler(3, batch_size=4, seed=0))).__len__() == 4  # small sets repeat to fill


def test_empty_and_corrupt_datasets(tmp_path: Path, synth_sets: dict[str, Path]) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    with pytest.raises(DataError):
        read_training_set(tmp_path / "empty")
    items = dataset_items(synth_sets)[:1]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    bad = [type(items[0])(broken, items[0].xyxy, items[0].class_id)]
    with pytest.raises(DataError, match=r"broken\.jpg: cannot read image"):
        DetectionTrainSet(bad, SPEC)[0]
    assert cv2.imread(str(broken)) is None


@pytest.mark.parametrize("box", ["30.00 20.00 10.00 40.00", "10.00 20.00 10.00 40.00"], ids=["inverted", "zero_width"])
def test_training_refuses_inverted_or_empty_boxes_with_file_and_line(
    tmp_path: Path, synth_sets: dict[str, Path], box: str
) -> None:
    import shutil

    root = shutil.copytree(synth_sets["train"], tmp_path / "train")
    label = sorted((root / "labels").glob("*.txt"))[1]
    lines = label.read_text().splitlines()
    fields = lines[0].split()
    fields[4:8] = box.split()
    lines[0] = " ".join(fields)
    label.write_text("\n".join(lines) + "\n")
    read_dataset(root)  # reading (convert, stats) keeps the box as it is
    with pytest.raises(DataError, match=r"invalid_box: inverted or zero-size box .*lanner dataset validate") as info:
        read_training_set(root)
    assert f"{label.name}:1: " in str(info.value) and "\n" not in str(info.value)


def test_an_imagefolder_image_that_is_not_an_image_is_refused_before_training(tmp_path: Path) -> None:
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "pets" / name / "1.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "pets" / "dog" / "2.png").write_bytes(b"")
    with pytest.raises(
        DataError, match=r"2\.png: corrupt_image: cannot read the image header.*lanner dataset validate"
    ):
        read_training_set(tmp_path / "pets")


def test_sampler_keys_carry_the_epoch_for_persistent_workers(synth_sets: dict[str, Path]) -> None:
    items = dataset_items(synth_sets)[:4]
    aug = build_augment(AugmentationSection(), SPEC.size_hw)
    sampler = GlobalBatchSampler(4, batch_size=2, seed=0, with_epoch=True)
    sampler.set_epoch(3)
    keys = next(iter(sampler))
    assert all(epoch == 3 for epoch, _ in keys)
    worker_copy = DetectionTrainSet(items, SPEC, aug, seed=1)  # a worker's dataset never sees set_epoch
    main_copy = DetectionTrainSet(items, SPEC, aug, seed=1)
    main_copy.set_epoch(3)
    for key in keys:
        assert torch.equal(worker_copy[key][0], main_copy[key[1]][0])


@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
def test_uint8_pixels_normalised_on_device_equal_to_network_input(color_order: str) -> None:
    spec = InputSpec(size_hw=(32, 48), color_order=color_order, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))
    image = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    pixels, scales = to_network_pixels([image], spec)
    expected, expected_scales = to_network_input([image], spec)
    assert pixels.dtype == np.uint8 and scales == expected_scales
    assert torch.equal(normalise_pixels(torch.from_numpy(pixels), spec), torch.from_numpy(expected))  # same bits


def test_ram_cache_gives_the_same_samples(synth_sets: dict[str, Path]) -> None:
    items = dataset_items(synth_sets)[:4]
    aug = build_augment(AugmentationSection(mosaic=0.5), SPEC.size_hw)
    disk = DetectionTrainSet(items, SPEC, aug, mosaic_prob=0.5, seed=2)
    ram = DetectionTrainSet(items, SPEC, aug, mosaic_prob=0.5, seed=2, cache=True)
    assert ram.cached is not None and len(ram.cached) == 4
    for i in range(4):
        assert torch.equal(disk[i][0], ram[i][0]) and torch.equal(disk[i][1], ram[i][1])
    assert disk[0][0].dtype == torch.uint8


def test_no_aug_epochs_give_clean_images_at_the_end(synth_sets: dict[str, Path]) -> None:
    items = dataset_items(synth_sets)[:3]
    aug = build_augment(AugmentationSection(mosaic=1.0, color=1.0), SPEC.size_hw)
    ds = DetectionTrainSet(items, SPEC, aug, mosaic_prob=1.0, seed=0, augment_epochs=2)
    clean = DetectionTrainSet(items, SPEC)
    for i in range(3):
        assert not torch.equal(ds[(1, i)][0], clean[i][0])  # epoch 1: mosaic + colour
        assert torch.equal(ds[(2, i)][0], clean[i][0]) and torch.equal(ds[(2, i)][1], clean[i][1])
