"""Offline augmentation (``lanner.train.offline_augment``): boxes follow the pixels, seeds repeat, bad input is told."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.core.detections import Detections
from lanner.core.errors import ConfigError, DataError, UsageError
from lanner.data import DetectionDataset, Sample, read_dataset, write_dataset
from lanner.data.dataset import kitti_defaults
from lanner.data.formats.imagefolder import read_imagefolder
from lanner.data.validate import validate
from lanner.train.offline_augment import AugmentOptions, augment_dataset, load_augmentation

W, H = 64, 48
# Only a horizontal flip: every other step off, so boxes and pixels can be checked exactly.
FLIP_ONLY = ["hflip=1.0", "scale=[1.0, 1.0]", "translate=0.0", "color=0.0"]


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def make_kitti(root: Path, n: int = 4, fmt: str = "kitti") -> Path:
    """``root/src``: ``n`` random-noise PNGs (64x48) with 1-2 boxes each (classes car, person)."""
    samples = []
    for i in range(n):
        path = root / "raw" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), _image(i))
        xyxy = [[2 + i, 3, 30 + i, 40], [40, 10, 60, 20]][: 1 + i % 2]
        extras = kitti_defaults(len(xyxy))
        extras["occluded"] = np.arange(1, len(xyxy) + 1)
        extras["rotation_y"] = np.full(len(xyxy), 1.5, np.float32)
        samples.append(Sample(f"{i:03d}", path, W, H, Detections.from_arrays(xyxy, [0, 1][: len(xyxy)], data=extras)))
    return write_dataset(DetectionDataset(root, ["car", "person"], samples), root / "src", fmt)


def test_flip_moves_boxes_and_pixels_exactly(tmp_path: Path) -> None:
    src = make_kitti(tmp_path)
    report = augment_dataset(src, tmp_path / "out", load_augmentation(overrides=FLIP_ONLY), AugmentOptions(copies=2))
    before, after = read_dataset(src), read_dataset(tmp_path / "out")
    assert [s.image_id for s in after.samples] == [f"{i:03d}_aug{k}" for i in range(4) for k in range(2)]
    for sample in after.samples:
        source = before.samples[int(sample.image_id[:3])]
        mirrored = source.boxes.xyxy[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [W, 0, W, 0]
        np.testing.assert_allclose(sample.boxes.xyxy, mirrored, atol=0.01)
        np.testing.assert_array_equal(sample.boxes.class_id, source.boxes.class_id)
        np.testing.assert_array_equal(cv2.imread(str(sample.image_path)), cv2.imread(str(source.image_path))[:, ::-1])
        np.testing.assert_array_equal(sample.boxes.data["occluded"], source.boxes.data["occluded"])  # follows its box
        np.testing.assert_array_equal(sample.boxes.data["rotation_y"], 0)  # 3D no longer holds: TAO's default
    assert (report.images_in, report.images_out, report.boxes_in, report.boxes_out) == (4, 8, 6, 12)
    assert report.boxes_dropped == 0 and not report.skipped


@pytest.mark.parametrize("mosaic", [0.0, 1.0])
def test_boxes_stay_inside_images_and_drops_are_counted(tmp_path: Path, mosaic: float) -> None:
    src = make_kitti(tmp_path)
    section = load_augmentation(overrides=["translate=0.5", "scale=[0.5, 2.0]", f"mosaic={mosaic}", "noise=0.5"])
    report = augment_dataset(src, tmp_path / "out", section, AugmentOptions(copies=6, seed=3))
    out = read_dataset(tmp_path / "out")
    boxes = np.concatenate([s.boxes.xyxy for s in out.samples])
    assert len(boxes) == report.boxes_out and report.boxes_dropped > 0
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()
    assert (boxes[:, 2] - boxes[:, 0] >= 1).all() and (boxes[:, 3] - boxes[:, 1] >= 1).all()
    assert {(s.width, s.height) for s in out.samples} == {(W, H)}  # mosaic keeps the source size
    if mosaic == 0.0:  # each copy starts from its own boxes: what is not written was dropped
        assert report.boxes_out + report.boxes_dropped == 6 * report.boxes_in
    else:  # tiles of 4 images: more boxes per image than any source image has
        assert max(len(s.boxes) for s in out.samples) > 2
    assert validate(tmp_path / "out").ok


def test_boxes_under_one_pixel_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "raw.png"
    cv2.imwrite(str(path), _image(0))
    thin = Detections.from_arrays(
        [[10, 5, 10.6, 40], [20, 5, 30, 40]], [0, 0]
    )  # 0.6 px wide, 21 px2: albumentations keeps it
    src = write_dataset(DetectionDataset(tmp_path, ["car"], [Sample("a", path, W, H, thin)]), tmp_path / "src", "kitti")
    report = augment_dataset(src, tmp_path / "out", load_augmentation(overrides=FLIP_ONLY))
    np.testing.assert_allclose(read_dataset(tmp_path / "out").samples[0].boxes.xyxy, [[W - 30, 5, W - 20, 40]])
    assert (report.boxes_in, report.boxes_out, report.boxes_dropped) == (2, 1, 1)


def test_mosaic_boxes_land_on_their_pixels(tmp_path: Path) -> None:
    samples = []
    for i in range(4):  # grey images, each with one white box somewhere else
        x, y = 4 + 8 * i, 2 + 6 * i
        image = np.full((H, W, 3), 60, np.uint8)
        image[y : y + 16, x : x + 20] = 255
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        samples.append(
            Sample(f"{i}", tmp_path / f"{i}.png", W, H, Detections.from_arrays([[x, y, x + 20, y + 16]], [0]))
        )
    src = write_dataset(DetectionDataset(tmp_path, ["car"], samples), tmp_path / "src", "kitti")
    section = load_augmentation(overrides=["hflip=0", "scale=[1, 1]", "translate=0", "color=0", "mosaic=1"])
    augment_dataset(src, tmp_path / "out", section, AugmentOptions(copies=2))
    for sample in read_dataset(tmp_path / "out").samples:
        image = cv2.imread(str(sample.image_path))
        assert image.shape == (H, W, 3) and len(sample.boxes) == 4  # four tiles, one box each
        for x1, y1, x2, y2 in sample.boxes.xyxy.round().astype(int):
            assert image[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].min() > 200  # inside: the white patch
            assert image[y1 - 1, x1 - 1].max() < 200  # just outside: not


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_the_same_files_and_another_seed_does_not(tmp_path: Path) -> None:
    src = make_kitti(tmp_path)
    section = load_augmentation(overrides=["mosaic=0.5", "blur=0.5", "noise=0.5"])
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        augment_dataset(src, tmp_path / name, section, AugmentOptions(copies=3, seed=seed))
    a, b, c = (_snapshot(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    src = make_kitti(tmp_path, n=6)
    data = (src / "images" / "004.png").read_bytes()
    (src / "images" / "004.png").write_bytes(data[: len(data) // 2])  # a bad mosaic partner for some copies
    section = load_augmentation(overrides=["mosaic=0.7", "noise=0.5"])
    reports = [
        augment_dataset(src, tmp_path / f"w{n}", section, AugmentOptions(copies=3, seed=2, skip_bad=True, workers=n))
        for n in (1, 2)
    ]
    assert _snapshot(tmp_path / "w1") == _snapshot(tmp_path / "w2")
    # replace the output folder's path only: pytest's tmp path may itself contain "w1" (popen-gw1)
    w1, w2 = str(tmp_path / "w1"), str(tmp_path / "w2")
    assert reports[0].summary().replace(w1, w2) == reports[1].summary()
    assert [p.name for p in reports[1].skipped] == ["004.png"] and reports[1].images_out == 15


def test_an_output_name_taken_by_a_source_image_is_an_error(tmp_path: Path) -> None:
    src = make_kitti(tmp_path, n=2)
    (src / "images" / "001.png").rename(src / "images" / "000_aug0.png")
    (src / "labels" / "001.txt").rename(src / "labels" / "000_aug0.txt")
    with pytest.raises(DataError, match="output image '000_aug0' would be written twice"):
        augment_dataset(src, tmp_path / "out", load_augmentation(), AugmentOptions(keep_originals=True))
    assert not (tmp_path / "out").exists()


def test_keep_originals_and_another_format(tmp_path: Path) -> None:
    src = make_kitti(tmp_path)
    options = AugmentOptions(copies=1, out_format="coco", keep_originals=True)
    report = augment_dataset(src, tmp_path / "out", load_augmentation(overrides=FLIP_ONLY), options)
    out = read_dataset(tmp_path / "out")
    assert report.fmt == "coco" and (tmp_path / "out" / "annotations.json").is_file()
    ids = [s.image_id for s in out.samples]
    assert ids == sorted([f"{i:03d}" for i in range(4)] + [f"{i:03d}_aug0" for i in range(4)])
    original = next(s for s in out.samples if s.image_id == "001")
    np.testing.assert_allclose(original.boxes.xyxy, read_dataset(src).samples[1].boxes.xyxy)
    assert report.images_out == 8 and report.boxes_out == 12


def test_imagefolder_images_are_augmented_into_the_same_classes(tmp_path: Path) -> None:
    for cls, seeds in (("cat", [0, 1]), ("dog", [2])):
        for seed in seeds:
            (tmp_path / "src" / cls).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "src" / cls / f"{seed}.png"), _image(seed))
    section = load_augmentation(overrides=[*FLIP_ONLY, "mosaic=0.5"])
    options = AugmentOptions(copies=2, keep_originals=True)
    report = augment_dataset(tmp_path / "src", tmp_path / "out", section, options)
    out = read_imagefolder(tmp_path / "out")
    assert out.classes == ["cat", "dog"] and out.class_counts() == {"cat": 6, "dog": 3}
    flipped = cv2.imread(str(tmp_path / "out" / "dog" / "2_aug1.png"))
    np.testing.assert_array_equal(flipped, _image(2)[:, ::-1])
    assert (report.images_in, report.images_out) == (3, 9)
    assert report.warnings == ["mosaic is ignored for a classification set (it would mix classes)"]
    with pytest.raises(UsageError, match="cannot write the imagefolder dataset as kitti"):
        augment_dataset(tmp_path / "src", tmp_path / "o2", section, AugmentOptions(out_format="kitti"))


def test_spec_file_keys_and_typos(tmp_path: Path) -> None:
    (tmp_path / "aug.yaml").write_text("hflip: 1.0\nmosaic: 0.25\n")
    assert load_augmentation(tmp_path / "aug.yaml", ["noise=0.5"]).model_dump(include={"hflip", "mosaic", "noise"}) == {
        "hflip": 1.0,
        "mosaic": 0.25,
        "noise": 0.5,
    }
    (tmp_path / "train.yaml").write_text("dataset:\n  train: d\naugmentation:\n  blur: 0.5\n")
    assert load_augmentation(tmp_path / "train.yaml", ["hflip=0.0"]).blur == 0.5  # a whole training spec works
    (tmp_path / "typo.yaml").write_text("hflip: 1.0\nmosiac: 0.5\n")
    with pytest.raises(ConfigError, match=r"typo.yaml:2: mosiac: unknown key; did you mean 'mosaic'\?"):
        load_augmentation(tmp_path / "typo.yaml")
    with pytest.raises(ConfigError, match="did you mean 'hflip'"):
        load_augmentation(tmp_path / "train.yaml", ["hflp=1"])


def test_corrupt_images_fail_naming_the_file_or_are_skipped(tmp_path: Path) -> None:
    src = make_kitti(tmp_path)
    (src / "images" / "001.png").write_bytes(b"not an image")  # header unreadable: caught when reading labels
    data = (src / "images" / "002.png").read_bytes()
    (src / "images" / "002.png").write_bytes(data[: len(data) // 2])  # header fine, pixels truncated
    section = load_augmentation()
    with pytest.raises(DataError, match=r"001.png: cannot read image: .*; .*--skip-bad"):
        augment_dataset(src, tmp_path / "out", section)
    (src / "images" / "001.png").write_bytes((src / "images" / "000.png").read_bytes())
    with pytest.raises(DataError, match=r"002.png: cannot decode image \(corrupt or truncated\); .*--skip-bad"):
        augment_dataset(src, tmp_path / "out2", section)
    (src / "images" / "001.png").write_bytes(b"not an image")
    report = augment_dataset(src, tmp_path / "out3", section, AugmentOptions(copies=2, skip_bad=True))
    assert sorted(p.name for p in report.skipped) == ["001.png", "002.png"] and len(report.warnings) == 2
    assert [s.image_id for s in read_dataset(tmp_path / "out3").samples] == [
        "000_aug0",
        "000_aug1",
        "003_aug0",
        "003_aug1",
    ]
    assert (report.images_in, report.images_out) == (4, 4)


def test_output_folder_rules(tmp_path: Path) -> None:
    src = make_kitti(tmp_path)
    section = load_augmentation()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.png").write_bytes(b"x")
    with pytest.raises(UsageError, match="out: the output folder exists and is not empty; pass --force"):
        augment_dataset(src, tmp_path / "out", section)
    augment_dataset(src, tmp_path / "out", section, AugmentOptions(force=True))
    assert not (tmp_path / "out" / "stale.png").exists() and len(read_dataset(tmp_path / "out")) == 4
    with pytest.raises(UsageError, match="the output folder holds the input"):
        augment_dataset(src, tmp_path, section, AugmentOptions(force=True))
    assert src.is_dir()
    images = sorted(p.name for p in (src / "images").iterdir())
    with pytest.raises(UsageError, match="the output folder is inside the input dataset"):
        augment_dataset(src, src / "images", section, AugmentOptions(force=True))  # --force would delete them
    assert sorted(p.name for p in (src / "images").iterdir()) == images


def test_empty_source_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: the dataset folder is empty"):
        augment_dataset(tmp_path / "empty", tmp_path / "out", load_augmentation())
    (tmp_path / "other" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match=r"cannot tell the dataset format .*; pass the source format \(--from kitti"):
        augment_dataset(tmp_path / "other", tmp_path / "out", load_augmentation())
    (tmp_path / "none.json").write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}]}')
    with pytest.raises(DataError, match=r"none\.json: the dataset has no images"):
        augment_dataset(tmp_path / "none.json", tmp_path / "out", load_augmentation())
    with pytest.raises(UsageError, match="copies must be at least 1"):
        AugmentOptions(copies=0)


def test_copy_paste_writes_pasted_boxes_on_their_pixels_and_checks_classes_first(tmp_path: Path) -> None:
    samples = []
    for i in range(3):  # grey images with a white car; image 0 also holds a mid-grey person
        image = np.full((H, W, 3), 40, np.uint8)
        image[4:20, 4:20] = 255
        xyxy, cls = [[4, 4, 20, 20]], [0]
        if i == 0:
            image[30:42, 40:48] = 150
            xyxy, cls = [*xyxy, [40, 30, 48, 42]], [0, 1]
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        samples.append(Sample(f"{i}", tmp_path / f"{i}.png", W, H, Detections.from_arrays(xyxy, cls)))
    src = write_dataset(DetectionDataset(tmp_path, ["car", "person"], samples), tmp_path / "src", "kitti")
    keys = ["hflip=0", "scale=[1, 1]", "translate=0", "color=0", "copy_paste.prob=1.0", "copy_paste.scale=[1, 1]"]
    section = load_augmentation(overrides=[*keys, "copy_paste.classes=[person]", "copy_paste.max_overlap=0"])
    report = augment_dataset(src, tmp_path / "out", section, AugmentOptions(copies=2))
    out = read_dataset(tmp_path / "out")
    for sample in out.samples:
        source = read_dataset(src).samples[int(sample.image_id[0])]
        added = len(sample.boxes) - len(source.boxes)
        assert added >= 1 and list(sample.boxes.class_id[len(source.boxes) :]) == [1] * added
        image = cv2.imread(str(sample.image_path))
        for x1, y1, x2, y2 in sample.boxes.xyxy[sample.boxes.class_id == 1].round().astype(int):
            assert (image[y1:y2, x1:x2] == 150).all()  # every person box shows the person's pixels
        assert (sample.boxes.data["occluded"] == 0).all()  # pasted rows get KITTI's 2D defaults
    assert report.boxes_out > report.boxes_in * 2
    with pytest.raises(ConfigError, match=r"copy_paste.classes names \['dog'\]"):
        augment_dataset(
            src, tmp_path / "out2", load_augmentation(overrides=["copy_paste.prob=1", "copy_paste.classes=[dog]"])
        )
    assert not (tmp_path / "out2").exists()  # refused before anything was written
    tiny = load_augmentation(overrides=["copy_paste.prob=1", "copy_paste.classes=[person]", "copy_paste.min_size=13"])
    with pytest.raises(DataError, match=r"copy_paste found no object of \['person'\] at least 13 px"):
        augment_dataset(src, tmp_path / "out3", tiny)  # the one person is 8 x 12 px: nothing would be pasted
    assert not (tmp_path / "out3").exists()


def test_dontcare_regions_move_with_the_pixels_and_are_written_back(tmp_path: Path) -> None:
    root = make_kitti(tmp_path, n=2)
    ds = read_dataset(root)
    ds.samples[0].ignore_regions = np.array([[50, 30, 64, 48]], np.float32)  # the bottom-right corner
    src = write_dataset(ds, tmp_path / "with_dc", "kitti")
    report = augment_dataset(src, tmp_path / "out", load_augmentation(overrides=FLIP_ONLY), AugmentOptions(copies=1))
    copy = next(s for s in read_dataset(tmp_path / "out").samples if s.image_id == "000_aug0")
    np.testing.assert_allclose(copy.ignore_regions, [[0, 30, 14, 48]], atol=0.01)  # mirrored with the image
    assert "DontCare" in (tmp_path / "out" / "labels" / "000_aug0.txt").read_text()
    assert report.boxes_dropped == 0 and report.boxes_out == report.boxes_in  # regions are not counted as boxes


def test_dontcare_regions_past_the_edge_stay_in_their_own_mosaic_tile(tmp_path: Path) -> None:
    root = make_kitti(tmp_path, n=2)
    ds = read_dataset(root)
    ds.samples[0].ignore_regions = np.array([[50, 30, 640, 480], [900, 0, 990, 10]], np.float32)
    src = write_dataset(ds, tmp_path / "with_dc", "kitti")
    section = load_augmentation(overrides=["hflip=0", "scale=[1, 1]", "translate=0", "color=0", "mosaic=1"])
    augment_dataset(src, tmp_path / "out", section, AugmentOptions(copies=1))
    copy = next(s for s in read_dataset(tmp_path / "out").samples if s.image_id == "000_aug0")
    x1, y1, x2, y2 = copy.ignore_regions.T
    assert len(copy.ignore_regions) and (x1 < W / 2).any()  # at least the copy's own tile has it
    assert ((x2 <= W / 2 + 0.01) | (x1 >= W / 2 - 0.01)).all() and ((y2 <= H / 2 + 0.01) | (y1 >= H / 2 - 0.01)).all()
