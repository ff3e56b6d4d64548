"""KITTI and COCO as the benchmark and the labelling tools (CVAT, Roboflow, Label Studio) ship them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_formats import write_png

from lanner.core.errors import DataError
from lanner.data import read_dataset, write_dataset
from lanner.data.io import detect_format, parse_dataset

# Lines as in KITTI's training/label_2 (DontCare with the devkit's -1 / -10 / -1000 placeholders).
KITTI_LINES = [
    "Pedestrian 0.00 0 -0.20 12.00 10.00 40.00 90.00 1.89 0.48 1.20 1.84 1.47 8.41 0.01",
    "DontCare -1 -1 -10 150.00 20.00 190.00 40.00 -1 -1 -1 -1000 -1000 -1000 -10",
    "Car 0.88 3 -0.69 0.00 19.00 30.50 80.00 1.52 1.58 3.69 -4.00 1.50 6.77 -1.20",
    "dontcare -1 -1 -10 100.00 80.00 120.00 99.00 -1 -1 -1 -1000 -1000 -1000 -10",
]


def _kitti(root: Path, lines: list[str], classes: list[str] | None = None) -> Path:
    write_png(root / "training" / "image_2" / "000000.png", 200, 100)
    label = root / "training" / "label_2" / "000000.txt"
    label.parent.mkdir(parents=True)
    label.write_text("\n".join(lines) + "\n")
    if classes is not None:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def test_kitti_dontcare_is_an_ignore_region_not_a_class(tmp_path: Path) -> None:
    ds = read_dataset(_kitti(tmp_path / "k", KITTI_LINES))
    assert ds.classes == ["Car", "Pedestrian"]
    (sample,) = ds.samples
    assert sample.boxes.class_id.tolist() == [1, 0]
    assert sample.ignore_regions.tolist() == [[150, 20, 190, 40], [100, 80, 120, 99]]


def test_kitti_dontcare_in_classes_txt_is_not_a_class_either(tmp_path: Path) -> None:
    """Older lanner versions wrote DontCare into classes.txt."""
    ds = read_dataset(_kitti(tmp_path / "k", KITTI_LINES, ["Car", "DontCare", "Pedestrian"]))
    assert ds.classes == ["Car", "Pedestrian"] and len(ds.samples[0].ignore_regions) == 2


def test_kitti_dontcare_lines_survive_kitti_to_kitti_and_stay_out_of_yolo(tmp_path: Path) -> None:
    ds = read_dataset(_kitti(tmp_path / "k", KITTI_LINES))
    out = write_dataset(ds, tmp_path / "k2", "kitti")
    lines = (out / "labels" / "000000.txt").read_text().splitlines()
    assert lines[2:] == [
        "DontCare -1 -1 -10 150.00 20.00 190.00 40.00 -1 -1 -1 -1000 -1000 -1000 -10",
        "DontCare -1 -1 -10 100.00 80.00 120.00 99.00 -1 -1 -1 -1000 -1000 -1000 -10",
    ]
    assert (out / "classes.txt").read_text().split() == ["Car", "Pedestrian"]
    yolo = write_dataset(ds, tmp_path / "y", "yolo")
    assert len((yolo / "labels" / "000000.txt").read_text().splitlines()) == 2


def test_kitti_all_benchmark_classes_and_a_results_score_column(tmp_path: Path) -> None:
    names = ["Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc"]
    box = "0.00 1 1.00 10.00 20.00 30.00 70.00 1.00 0.50 0.50 1.00 1.50 20.00 1.10"
    ds = read_dataset(_kitti(tmp_path / "k", [f"{n} {box} 0.{i + 1}" for i, n in enumerate(names)]))
    assert ds.classes == sorted(names)
    assert sorted(ds.samples[0].boxes.confidence.round(2).tolist()) == pytest.approx([i / 10 for i in range(1, 9)])


def _coco(root: Path, annotations: list[dict], categories: list[dict], name: str = "annotations.json") -> Path:
    """A CVAT-style COCO export: images in ``images/`` (one in a sub-folder, one unlabelled), no info/licenses."""
    write_png(root / "images" / "sub" / "a.jpg", 100, 80)
    write_png(root / "images" / "b.jpg", 100, 80, seed=1)
    images = [
        {"id": 1, "file_name": "sub/a.jpg", "width": 100, "height": 80},
        {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
    ]
    file = root / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


CATEGORIES = [{"id": 0, "name": "sign"}, {"id": 3, "name": "car"}, {"id": 7, "name": "person"}]
POLYGON = [[10, 10, 30, 10, 30, 30, 10, 30]]
RLE = {"counts": [0, 10, 5], "size": [80, 100]}
ANNOTATIONS = [
    {
        "id": 1,
        "image_id": 1,
        "category_id": 3,
        "bbox": [10, 10, 20, 20],
        "area": 400,
        "iscrowd": 0,
        "segmentation": POLYGON,
    },
    {
        "id": 2,
        "image_id": 1,
        "category_id": 7,
        "bbox": [50, 10, 40, 60],
        "area": 2400,
        "iscrowd": 1,
        "segmentation": RLE,
    },
    {"id": 3, "image_id": 1, "category_id": 0, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0},
]


def test_coco_tool_export_reads_ids_subfolders_and_unlabelled_images(tmp_path: Path) -> None:
    ds = read_dataset(_coco(tmp_path / "c", ANNOTATIONS, CATEGORIES))
    assert ds.classes == ["sign", "car", "person"]  # ids 0, 3, 7 in id order
    by_id = {s.image_id: s for s in ds.samples}
    assert sorted(by_id) == ["b", "sub/a"] and len(by_id["b"].boxes) == 0
    assert by_id["sub/a"].boxes.class_id.tolist() == [1, 2, 0]


def test_coco_crowd_boxes_are_ignore_regions(tmp_path: Path) -> None:
    parsed = parse_dataset(_coco(tmp_path / "c", ANNOTATIONS, CATEGORIES))
    boxes = {s.image_id: s for s in parsed.samples}["sub/a"].boxes
    assert boxes.data["ignore"].tolist() == [False, True, False]
    assert [p.kind for p in parsed.problems] == ["ignore_region"] and parsed.problems[0].severity == "warning"


def test_coco_crowd_boxes_are_not_trained_on(tmp_path: Path) -> None:
    from lanner.data.dataset import crowd_class
    from lanner.train.data import detection_items

    ds = read_dataset(_coco(tmp_path / "c", ANNOTATIONS, CATEGORIES))
    items = {Path(i.image_path).stem: i for i in detection_items(ds, ds.classes, "test")}
    # the crowd "person" region is no object to learn: an ignore row after the objects (the loss spares it)
    assert items["a"].class_id.tolist() == [1, 0, crowd_class(ds.classes.index("person"))]


def test_coco_crowd_boxes_stay_crowd_in_coco_become_dontcare_in_kitti_and_vanish_in_yolo(tmp_path: Path) -> None:
    ds = read_dataset(_coco(tmp_path / "c", ANNOTATIONS, CATEGORIES))
    coco = json.loads((write_dataset(ds, tmp_path / "c2", "coco") / "annotations.json").read_text())
    assert sorted(a["iscrowd"] for a in coco["annotations"]) == [0, 0, 1]
    kitti = (write_dataset(ds, tmp_path / "k", "kitti") / "labels" / "sub" / "a.txt").read_text().splitlines()
    assert [line.split()[0] for line in kitti] == ["car", "sign", "DontCare"]
    yolo = (write_dataset(ds, tmp_path / "y", "yolo") / "labels" / "sub" / "a.txt").read_text().splitlines()
    assert [line.split()[0] for line in yolo] == ["1", "0"]


@pytest.mark.parametrize(
    "name", ["_annotations.coco.json", "result.json", "annotations/instances_default.json"], ids=str
)
def test_coco_export_folders_of_roboflow_label_studio_and_cvat(tmp_path: Path, name: str) -> None:
    root = _coco(tmp_path / "c", ANNOTATIONS[:1], CATEGORIES, name)  # CVAT: annotations/ next to images/
    assert detect_format(root) == "coco"
    assert read_dataset(root).box_count() == 1


def test_coco_folder_with_two_instances_files_asks_for_one(tmp_path: Path) -> None:
    root = _coco(tmp_path / "c", ANNOTATIONS[:1], CATEGORIES, "annotations/instances_train.json")
    (root / "annotations" / "instances_val.json").write_text(
        (root / "annotations" / "instances_train.json").read_text()
    )
    with pytest.raises(DataError, match=r"several COCO files \(annotations/instances_train\.json, annotations/") as err:
        read_dataset(root)
    assert "\n" not in str(err.value)


def test_roboflow_group_category_is_not_a_class(tmp_path: Path) -> None:
    categories = [
        {"id": 0, "name": "vehicles", "supercategory": "none"},
        {"id": 1, "name": "car", "supercategory": "vehicles"},
        {"id": 2, "name": "person", "supercategory": "person"},  # COCO style: its own supercategory
    ]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}]
    parsed = parse_dataset(_coco(tmp_path / "c", annotations, categories))
    assert parsed.classes == ["car", "person"]
    assert [p.severity for p in parsed.problems] == ["warning"] and "'vehicles'" in parsed.problems[0].message


def test_coco_zero_width_box_is_kept_by_read_and_flagged_by_validate(tmp_path: Path) -> None:
    from lanner.data.validate import validate

    zero = {"id": 9, "image_id": 2, "category_id": 3, "bbox": [5, 5, 0, 10], "area": 0, "iscrowd": 0}
    root = _coco(tmp_path / "c", [*ANNOTATIONS, zero], CATEGORIES)
    assert read_dataset(root).box_count() == 4
    report = validate(root, decode=False)
    assert [p.kind for p in report.errors] == ["invalid_box"] and "annotations[3]" in report.errors[0].message


def test_evaluation_on_coco_ground_truth_with_crowd_matches_pycocotools(tmp_path: Path) -> None:
    """Read a COCO file with crowd boxes and ids 0/3/7; lanner's mAP equals COCOeval on the same file."""
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from lanner.core.detections import Detections
    from lanner.train.evaluate import ground_truth_for
    from lanner.train.metrics import evaluate_detections

    root = _coco(tmp_path / "c", ANNOTATIONS, CATEGORIES)
    ds = read_dataset(root)
    ids = {"sub/a": 1, "b": 2}
    cat_of = [0, 3, 7]  # class index -> category id
    dets = {  # per image: xyxy, class index, score; one inside the crowd region, one false positive
        "sub/a": (
            [[10, 10, 30, 31], [55, 15, 85, 60], [1, 1, 6, 6], [70, 60, 90, 79]],
            [1, 2, 0, 1],
            [0.9, 0.8, 0.7, 0.6],
        ),
        "b": ([[10, 10, 40, 40]], [2], [0.5]),
    }
    preds = [Detections.from_arrays(*dets[s.image_id][:2], confidence=dets[s.image_id][2]) for s in ds.samples]
    ours = evaluate_detections(preds, ground_truth_for(ds, np.arange(3)), ds.classes)
    results = [
        {"image_id": ids[i], "category_id": cat_of[c], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
        for i, (xyxy, cls, scores) in dets.items()
        for (x1, y1, x2, y2), c, s in zip(xyxy, cls, scores, strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(root / "annotations.json"))
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert [ours.map, ours.map50, ours.map75] == pytest.approx(list(ev.stats[:3]), abs=1e-4)
    assert 0 < ours.map < ours.map50 < 1  # not a degenerate case: the crowd detection would be a false positive


def test_stats_count_ignore_regions(tmp_path: Path) -> None:
    from lanner.data import compute_stats

    kitti = compute_stats(read_dataset(_kitti(tmp_path / "k", KITTI_LINES)))
    assert (kitti.boxes, kitti.ignore_regions, kitti.classes) == (2, 2, {"Car": 1, "Pedestrian": 1})
    assert compute_stats(read_dataset(_coco(tmp_path / "c", ANNOTATIONS, CATEGORIES))).ignore_regions == 1
