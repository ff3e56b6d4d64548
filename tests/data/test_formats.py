"""Format detection, reader details, image placement and ImageFolder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures_formats import CLASSES, kitti_line, make_dataset, write_format, write_png

from lanner.core.errors import DataError, UsageError
from lanner.data import (
    ClassificationDataset,
    ClassificationSample,
    convert,
    detect_format,
    read_dataset,
    read_imagefolder,
    write_dataset,
    write_imagefolder,
)


def _kitti_image2(tmp: Path) -> Path:
    root = write_format(tmp, "kitti")
    (root / "images").rename(root / "image_2")
    (root / "labels").rename(root / "label_2")
    return root


def _kitti_training(tmp: Path) -> Path:
    root = _kitti_image2(tmp)
    (root / "training").mkdir()
    for name in ("image_2", "label_2"):
        (root / name).rename(root / "training" / name)
    return root


def _yolo_classes_txt(tmp: Path) -> Path:
    root = write_format(tmp, "yolo")
    (root / "data.yaml").unlink()
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def _coco_json_file(tmp: Path) -> Path:
    root = write_format(tmp, "coco")
    return (root / "annotations.json").rename(root / "instances_val.json")


def _images_only(tmp: Path) -> Path:
    write_png(tmp / "bare" / "images" / "a.png")
    return tmp / "bare"


def _imagefolder(tmp: Path) -> Path:
    for name in ("cat", "dog"):
        write_png(tmp / "pets" / name / "1.png")
    return tmp / "pets"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda t: write_format(t, "kitti"), "kitti"),
        (_kitti_image2, "kitti"),
        (_kitti_training, "kitti"),
        (lambda t: write_format(t, "coco"), "coco"),
        (_coco_json_file, "coco"),
        (lambda t: write_format(t, "yolo"), "yolo"),
        (_yolo_classes_txt, "yolo"),
        (_images_only, "kitti"),
        (_imagefolder, "imagefolder"),
    ],
)
def test_detect_format(tmp_path: Path, build, expected: str) -> None:
    path = build(tmp_path)
    assert detect_format(path) == expected
    if expected != "imagefolder":
        assert len(read_dataset(path)) >= 1


@pytest.mark.parametrize("make", [lambda t: t / "nothing", lambda t: (t / "empty").mkdir() or t / "empty"])
def test_detect_format_fails_with_a_fix(tmp_path: Path, make) -> None:
    with pytest.raises(DataError, match=r"no such|cannot tell"):
        detect_format(make(tmp_path))


def test_kitti_score_column_and_sorted_classes_without_classes_txt(tmp_path: Path) -> None:
    write_png(tmp_path / "images" / "b.png")
    write_png(tmp_path / "images" / "a.png")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "b.png").write_text("not a label")  # ignored: only *.txt are labels
    (tmp_path / "labels" / "a.txt").write_text(kitti_line("van", (1, 2, 3, 4)) + " 0.75\n")
    (tmp_path / "labels" / "b.txt").write_text(kitti_line("Car", (5, 6, 7, 8)) + " 1.0\n\n")
    ds = read_dataset(tmp_path)
    assert ds.classes == ["Car", "van"]
    assert [s.image_id for s in ds.samples] == ["a", "b"]
    assert ds.samples[0].boxes.confidence.tolist() == [0.75]
    out = write_dataset(ds, tmp_path / "out", "kitti")
    assert (out / "labels" / "a.txt").read_text().split()[-1] == "0.7500"  # score column kept


@pytest.mark.parametrize("names", ["[car, person, bicycle]", "{0: car, 1: person, 2: bicycle}"])
def test_yolo_names_list_or_dict(tmp_path: Path, names: str) -> None:
    root = write_format(tmp_path, "yolo")
    (root / "data.yaml").write_text(f"path: .\ntrain: images\nval: images\nnames: {names}\n")
    assert read_dataset(root).classes == CLASSES


def test_yolo_names_dict_with_more_than_ten_classes_keeps_numeric_order(tmp_path: Path) -> None:
    root = write_format(tmp_path, "yolo")
    names = CLASSES + [f"extra{i}" for i in range(9)]  # 12 classes, as COCO's 80-class coco.yaml: 10 < 2 as text
    (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(names)))
    assert read_dataset(root).classes == names


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("nc: 2\nnames: [car, person, bicycle]\n", "nc is 2 but 'names' lists 3 classes"),
        ("path: .\n", "no 'names' \\(the class list\\) in it"),
    ],
)
def test_yolo_data_yaml_problems_name_the_file(tmp_path: Path, yaml_text: str, message: str) -> None:
    root = write_format(tmp_path, "yolo")
    (root / "data.yaml").write_text(yaml_text)
    with pytest.raises(DataError, match=f"data.yaml: malformed: {message}"):
        read_dataset(root)


def test_yolo_denormalizes_to_pixels(tmp_path: Path) -> None:
    write_png(tmp_path / "images" / "x.png", width=100, height=50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    boxes = read_dataset(tmp_path, "yolo").samples[0].boxes
    np.testing.assert_allclose(boxes.xyxy, [[40, 15, 60, 35]], atol=1e-4)
    assert boxes.class_id.tolist() == [1]


def test_coco_category_ids_map_in_id_order_and_write_one_based(tmp_path: Path) -> None:
    write_png(tmp_path / "imgs" / "p.png")
    doc = {
        "images": [{"id": 42, "file_name": "imgs/p.png", "width": 64, "height": 48}],
        "annotations": [
            {"id": 9, "image_id": 42, "category_id": 7, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0},
            {"id": 3, "image_id": 42, "category_id": 3, "bbox": [5, 6, 7, 8], "area": 56, "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "truck"}, {"id": 3, "name": "bus"}],
    }
    (tmp_path / "labels.json").write_text(json.dumps(doc))
    ds = read_dataset(tmp_path / "labels.json")
    assert ds.classes == ["bus", "truck"]
    assert ds.samples[0].image_id == "imgs/p"
    assert ds.samples[0].boxes.class_id.tolist() == [1, 0]
    out = write_dataset(ds, tmp_path / "out", "coco")
    written = json.loads((out / "annotations.json").read_text())
    assert written["categories"] == [{"id": 1, "name": "bus"}, {"id": 2, "name": "truck"}]
    assert [a["category_id"] for a in written["annotations"]] == [2, 1]
    assert [a["iscrowd"] for a in written["annotations"]] == [0, 1]
    assert written["images"][0]["file_name"] == "imgs/p.png"
    assert (out / "images" / "imgs" / "p.png").is_file()


@pytest.mark.parametrize(("mode", "same_inode"), [("link", True), ("copy", False)])
def test_image_modes(tmp_path: Path, mode: str, same_inode: bool) -> None:
    ds = make_dataset(tmp_path, 2)
    out = write_dataset(ds, tmp_path / "out", "kitti", images=mode)
    src, dst = ds.samples[0].image_path, out / "images" / "000000.png"
    assert dst.read_bytes() == src.read_bytes()
    assert os.path.samefile(src, dst) is same_inode


def test_keep_mode_leaves_images_and_coco_points_at_them(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path, 2)
    out = write_dataset(ds, tmp_path / "out", "coco", images="keep")
    assert not (out / "images").exists()
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["images"][0]["file_name"] == "../source/000000.png"
    assert read_dataset(out).samples[0].image_path == ds.samples[0].image_path


def test_writing_into_the_own_root_skips_images_already_there(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti")
    before = (root / "images" / "000000.png").stat().st_mtime_ns
    write_dataset(read_dataset(root), root, "yolo", images="copy")
    assert (root / "images" / "000000.png").stat().st_mtime_ns == before
    assert len(read_dataset(root, "yolo")) == 4


def test_convert_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti")
    with pytest.raises(UsageError, match="input folder"):
        convert(root, root, "yolo")


@pytest.mark.parametrize("write", ["convert", "split"])
def test_output_inside_the_input_is_refused_and_the_input_untouched(tmp_path: Path, write: str) -> None:
    from lanner.data import write_split

    root = write_format(tmp_path, "kitti")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(UsageError, match="the output folder is inside the input dataset"):
        if write == "convert":
            convert(root, root / "images" / "coco", "coco")  # would add 4 unlabelled images to the input
        else:
            write_split(root, root / "parts")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert len(read_dataset(root)) == 4


@pytest.mark.parametrize("occluded", [1e30, 2.5, 7])
def test_coco_kitti_attributes_with_an_impossible_occluded_are_ignored(tmp_path: Path, occluded: float) -> None:
    import warnings

    root = write_format(tmp_path, "coco")
    doc = json.loads((root / "annotations.json").read_text())
    doc["annotations"][0]["attributes"]["occluded"] = occluded
    doc["annotations"][0]["attributes"]["alpha"] = 1.25
    (root / "annotations.json").write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in cast" is the bug
        ds = read_dataset(root)
    first = ds.samples[0].boxes.data
    assert first["occluded"][0] == 0 and first["alpha"][0] == 0.0  # the defaults: all of the attributes or none


def test_malformed_read_names_file_line_and_validate(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti")
    with (root / "labels" / "000002.txt").open("a") as f:
        f.write("car 1 2\n")
    with pytest.raises(DataError) as info:
        read_dataset(root)
    message = str(info.value)
    assert "labels/000002.txt:4" in message
    assert f"run `lanner dataset validate {root}` for the full report" in message


def test_imagefolder_round_trip(tmp_path: Path) -> None:
    root = _imagefolder(tmp_path)
    write_png(root / "dog" / "2.jpg", seed=3)
    (root / "notes.txt").write_text("ignored")
    ds = read_imagefolder(root)
    assert ds.classes == ["cat", "dog"]
    assert ds.class_counts() == {"cat": 1, "dog": 2}
    out = write_imagefolder(ds, tmp_path / "copy", images="link")
    again = read_imagefolder(out)
    assert again.classes == ds.classes
    assert [(s.image_path.name, s.class_id) for s in again.samples] == [
        (s.image_path.name, s.class_id) for s in ds.samples
    ]


def test_imagefolder_write_from_memory_and_errors(tmp_path: Path) -> None:
    a = write_png(tmp_path / "src" / "a.png")
    ds = ClassificationDataset(tmp_path, ["x", "y"], [ClassificationSample(a, 1)])
    out = write_imagefolder(ds, tmp_path / "out")
    assert (out / "y" / "a.png").is_file() and (out / "x").is_dir()
    with pytest.raises(DataError, match="no class folders"):
        read_imagefolder(tmp_path / "src")
    shutil.rmtree(out / "x")
    with pytest.raises(UsageError, match="classification"):
        read_dataset(out, "imagefolder")


def test_yolo_segment_polygons_read_as_their_bounding_box(tmp_path: Path) -> None:
    write_png(tmp_path / "images" / "s.png", width=100, height=50)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "s.txt").write_text("0 0.1 0.2 0.5 0.1 0.3 0.9 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("road\n")
    assert detect_format(tmp_path) == "yolo"
    np.testing.assert_allclose(read_dataset(tmp_path).samples[0].boxes.xyxy, [[10, 5, 50, 45]], atol=1e-4)


def test_yolo_split_folder_uses_the_parent_data_yaml(tmp_path: Path) -> None:
    root = write_format(tmp_path, "yolo")
    (root / "train").mkdir()
    for name in ("images", "labels"):
        (root / name).rename(root / "train" / name)
    ds = read_dataset(root / "train")
    assert ds.classes == CLASSES and ds.box_count() == 7


def test_write_refuses_class_ids_outside_the_class_list(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path, 3)
    ds.classes = ds.classes[:2]  # image 000001 has a box of class 2
    with pytest.raises(DataError, match=r"sample '000001': class_id 2 is outside 0..1"):
        write_dataset(ds, tmp_path / "out", "kitti")


def test_image_ids_with_dots_and_folders_survive(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path, 2)
    ds.samples[0].image_id, ds.samples[1].image_id = "cam.1/frame.001", "cam.1/frame.002"
    for fmt in ("kitti", "coco", "yolo"):
        back = read_dataset(write_dataset(ds, tmp_path / fmt, fmt))
        assert [s.image_id for s in back.samples] == ["cam.1/frame.001", "cam.1/frame.002"]
        assert back.box_count() == 3


def test_coco_official_layout(tmp_path: Path) -> None:
    write_png(tmp_path / "coco" / "val2017" / "000000000139.jpg")
    doc = {
        "images": [{"id": 139, "file_name": "000000000139.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 139, "category_id": 62, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}],
        "categories": [{"supercategory": "furniture", "id": 62, "name": "chair"}],
    }
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    ds = read_dataset(tmp_path / "coco" / "annotations" / "instances_val2017.json")
    assert ds.classes == ["chair"] and ds.samples[0].image_id == "000000000139"
