"""YOLO sets as Ultralytics and Roboflow write them: ``data.yaml`` splits, ``.txt`` lists, ``nc``, polygons."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_formats import write_png

from lanner.core.errors import DataError
from lanner.data import read_dataset
from lanner.data.io import detect_format, parse_dataset

BOX = "0 0.5 0.5 0.25 0.5\n"


def _label(path: Path, text: str = BOX) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _ultralytics(root: Path, yaml_text: str) -> Path:
    """``images/{train,val,extra}`` with labels beside them under ``labels/``, and ``data.yaml``."""
    for split in ("train", "val", "extra"):
        write_png(root / "images" / split / f"{split}1.png")
        _label(root / "labels" / split / f"{split}1.txt")
    (root / "data.yaml").write_text(yaml_text)
    return root


def test_only_the_splits_data_yaml_names_are_read(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "path: .\ntrain: images/train\nval: images/val\nnames: {0: car, 1: person}\n")
    ds = read_dataset(root)
    assert [s.image_id for s in ds.samples] == ["train/train1", "val/val1"]  # images/extra is in no split
    assert ds.classes == ["car", "person"] and ds.box_count() == 2


def test_roboflow_export_with_dot_dot_paths(tmp_path: Path) -> None:
    """Roboflow: ``train/images`` + ``train/labels`` per split, ``train: ../train/images`` in data.yaml."""
    root = tmp_path / "robo"
    for split in ("train", "valid", "test"):
        write_png(root / split / "images" / f"{split}_a.jpg")
        _label(root / split / "labels" / f"{split}_a.txt", "1 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 2\nnames: ['car', 'person']\n"
    )
    assert detect_format(root) == "yolo"
    ds = read_dataset(root)
    assert [s.image_id for s in ds.samples] == ["test/test_a", "train/train_a", "valid/valid_a"]
    assert all(s.boxes.class_id.tolist() == [1] for s in ds.samples)


def test_txt_image_lists_and_lists_of_folders(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: train.txt\nval: [images/val, images/extra]\nnames: [car]\n")
    (root / "train.txt").write_text("./images/train/train1.png\n\n")
    ds = read_dataset(root)
    assert [s.image_id for s in ds.samples] == ["extra/extra1", "train/train1", "val/val1"]
    assert ds.box_count() == 3


def test_a_missing_image_in_a_txt_list_names_the_list_and_line(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: train.txt\nval: images/val\nnames: [car]\n")
    (root / "train.txt").write_text("./images/train/train1.png\n./images/train/gone.png\n")
    with pytest.raises(DataError, match=r"train\.txt:2: missing_image: image \./images/train/gone\.png not found"):
        read_dataset(root)


def test_a_missing_split_folder_is_one_line_naming_data_yaml_and_the_key(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: images/train\nval: images/valid\nnames: [car]\n")
    with pytest.raises(DataError, match=r"data\.yaml: missing_image: val: images/valid: .*valid not found") as err:
        read_dataset(root)
    assert "\n" not in str(err.value)


def test_a_moved_dataset_falls_back_from_a_stale_absolute_path(tmp_path: Path) -> None:
    """lanner (like Ultralytics) writes ``path:`` absolute; after a move the data.yaml's folder is used."""
    root = _ultralytics(
        tmp_path / "u", f"path: {tmp_path / 'gone'}\ntrain: images/train\nval: images/val\nnames: [c]\n"
    )
    parsed = parse_dataset(root)
    assert [s.image_id for s in parsed.samples] == ["train/train1", "val/val1"]
    assert [p.kind for p in parsed.problems if p.severity == "warning"] == ["malformed"]
    assert "is not a folder; reading the splits from" in parsed.problems[0].message


def test_overlapping_splits_are_read_once_with_a_warning(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: images\nval: images/val\nnames: [car]\n")
    parsed = parse_dataset(root)
    assert sorted(s.image_id for s in parsed.samples) == ["extra/extra1", "train/train1", "val/val1"]
    overlap = [p for p in parsed.problems if "the splits overlap" in p.message]
    assert len(overlap) == 1 and overlap[0].severity == "warning"


def test_same_folder_for_train_and_val_is_silent(tmp_path: Path) -> None:
    """What lanner's own writer puts in data.yaml (``train: images``, ``val: images``)."""
    root = _ultralytics(tmp_path / "u", "train: images\nval: images\nnames: [car]\n")
    parsed = parse_dataset(root)
    assert len(parsed.samples) == 3 and parsed.problems == []


def test_nc_without_names_gives_ultralytics_class_names(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: images/train\nval: images/val\nnc: 3\n")
    assert read_dataset(root).classes == ["class_0", "class_1", "class_2"]


def test_background_images_polygons_and_missing_labels(tmp_path: Path) -> None:
    root = _ultralytics(tmp_path / "u", "train: images/train\nval: images/val\nnames: [car, person]\n")
    _label(root / "labels" / "train" / "train1.txt", "1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n")  # a -seg polygon
    _label(root / "labels" / "val" / "val1.txt", "")  # an empty label file: background
    write_png(root / "images" / "val" / "nolabel.png")  # no label file at all: background too
    ds = read_dataset(root)
    by_id = {s.image_id: s for s in ds.samples}
    assert by_id["train/train1"].boxes.xyxy[0].tolist() == pytest.approx([6.4, 4.8, 19.2, 19.2])
    assert len(by_id["val/val1"].boxes) == 0 and len(by_id["val/nolabel"].boxes) == 0


def test_label_path_replaces_the_last_images_folder() -> None:
    from lanner.data.formats.yolo_splits import label_path

    assert label_path(Path("/d/images/x/images/a.jpg")) == Path("/d/images/x/labels/a.txt")
    assert label_path(Path("/d/train/a.png")) == Path("/d/train/a.txt")


def test_one_split_folder_of_an_ultralytics_export(tmp_path: Path) -> None:
    """``images/val`` alone (a training spec's ``val:``): names from ``../../data.yaml``, labels in ``labels/val``."""
    root = _ultralytics(tmp_path / "u", "train: images/train\nval: images/val\nnames: [car, person]\n")
    _label(root / "labels" / "val" / "val1.txt", "1 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.1 0.1\n")
    val = root / "images" / "val"
    assert detect_format(val) == "yolo"
    ds = read_dataset(val)
    assert ds.classes == ["car", "person"]
    assert [s.image_id for s in ds.samples] == ["val/val1"] and ds.samples[0].boxes.class_id.tolist() == [1, 0]


def test_pose_lines_are_read_as_their_box(tmp_path: Path) -> None:
    """Ultralytics pose: ``class cx cy w h`` then ``kpt_shape`` keypoints (2 x 2: 9 columns, odd like a polygon)."""
    root = _ultralytics(tmp_path / "u", "train: images/train\nval: images/val\nkpt_shape: [2, 2]\nnames: [person]\n")
    _label(root / "labels" / "train" / "train1.txt", "0 0.5 0.5 0.25 0.5 0.45 0.4 0.55 0.6\n")
    _label(root / "labels" / "val" / "val1.txt", "0 0.5 0.5 0.25 0.5 0.45 0.4\n")
    parsed = parse_dataset(root)
    train = {s.image_id: s for s in parsed.samples}["train/train1"]
    assert train.boxes.xyxy[0].tolist() == pytest.approx([24.0, 12.0, 40.0, 36.0])
    (problem,) = parsed.problems
    assert problem.line == 1 and "expected 5 + 4 columns" in problem.message and problem.file.name == "val1.txt"
