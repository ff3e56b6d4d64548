"""One case per validation problem: break a small dataset one way, find that problem where it is,
and still find the unrelated problem planted in every case (validation never stops at the first)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures_formats import kitti_line, write_format, write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lanner.core.errors import DataError
from lanner.data import read_dataset, validate


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")


def _replace_line(path: Path, line_no: int, line: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = line
    path.write_text("\n".join(lines) + "\n")


# ---- KITTI: make_dataset gives 000000 (1 box), 000001 (2), 000002 (3), 000003 (1); classes car/person/bicycle.
# Planted in every KITTI case: labels/000000.txt:2 names the class 'truck'.
def _kitti_plant(root: Path) -> tuple[str, str, int | None]:
    _append(root / "labels" / "000000.txt", kitti_line("truck", (1, 1, 5, 5)))
    return "unknown_class", "labels/000000.txt", 2


def _truncated_png(root: Path) -> None:
    path = root / "images" / "000001.png"
    path.write_bytes(path.read_bytes()[:-60])


KITTI_CASES: dict[str, tuple[Callable[[Path], None], str, str, int | None]] = {
    "label_without_image": (
        lambda r: (r / "images" / "000001.png").unlink(),
        "label_without_image",
        "labels/000001.txt",
        None,
    ),
    "corrupt_header": (
        lambda r: (r / "images" / "000001.png").write_bytes(b"not a png"),
        "corrupt_image",
        "images/000001.png",
        None,
    ),
    "corrupt_pixels": (_truncated_png, "corrupt_image", "images/000001.png", None),
    "box_outside_image": (
        lambda r: _replace_line(r / "labels" / "000001.txt", 2, kitti_line("car", (10, 5, 70, 20))),
        "box_outside_image",
        "labels/000001.txt",
        2,
    ),
    "inverted_box": (
        lambda r: _replace_line(r / "labels" / "000002.txt", 3, kitti_line("car", (30, 5, 10, 20))),
        "invalid_box",
        "labels/000002.txt",
        3,
    ),
    "zero_size_box": (
        lambda r: _replace_line(r / "labels" / "000002.txt", 1, kitti_line("car", (10, 5, 20, 5))),
        "invalid_box",
        "labels/000002.txt",
        1,
    ),
    "unknown_class": (
        lambda r: _replace_line(r / "labels" / "000003.txt", 1, kitti_line("bus", (1, 1, 9, 9))),
        "unknown_class",
        "labels/000003.txt",
        1,
    ),
    "duplicate_stem": (
        lambda r: shutil.copy(r / "images" / "000001.png", r / "images" / "000001.jpg"),
        "duplicate_id",
        "images/000001.png",
        None,
    ),
    "column_count": (
        lambda r: _append(r / "labels" / "000001.txt", "car 0.00 0 1.0 2.0"),
        "malformed",
        "labels/000001.txt",
        3,
    ),
    "non_numeric": (
        lambda r: _replace_line(
            r / "labels" / "000001.txt", 1, kitti_line("car", (1, 1, 9, 9)).replace("9.00", "nine", 1)
        ),
        "malformed",
        "labels/000001.txt",
        1,
    ),
    "occluded_too_big_for_an_int": (
        lambda r: _replace_line(
            r / "labels" / "000001.txt", 1, kitti_line("car", (1, 1, 9, 9)).replace(" 0 ", " 1e30 ", 1)
        ),
        "malformed",
        "labels/000001.txt",
        1,
    ),
    "occluded_not_whole": (
        lambda r: _replace_line(
            r / "labels" / "000001.txt", 1, kitti_line("car", (1, 1, 9, 9)).replace(" 0 ", " 1.7 ", 1)
        ),
        "malformed",
        "labels/000001.txt",
        1,
    ),
    "beyond_float32": (
        lambda r: _replace_line(
            r / "labels" / "000001.txt", 1, kitti_line("car", (1, 1, 9, 9)).replace("9.00", "1e40", 1)
        ),
        "malformed",
        "labels/000001.txt",
        1,
    ),
    "duplicate_class_name": (
        lambda r: (r / "classes.txt").write_text("car\nperson\nbicycle\ncar\n"),
        "duplicate_id",
        "classes.txt",
        None,
    ),
    "image_without_label": (
        lambda r: (r / "labels" / "000003.txt").unlink(),
        "image_without_label",
        "images/000003.png",
        None,
    ),
}


def _check(report, root: Path, kind: str, file: str, line: int | None) -> None:
    found = [(p.kind, p.file and Path(p.file).resolve(), p.line) for p in report.problems]
    assert (kind, (root / file).resolve(), line) in found, report.problems


@pytest.mark.parametrize("case", list(KITTI_CASES))
def test_kitti_problem_is_reported_with_file_and_line(tmp_path: Path, case: str) -> None:
    root = write_format(tmp_path, "kitti")
    planted = _kitti_plant(root)
    breaker, kind, file, line = KITTI_CASES[case]
    breaker(root)
    report = validate(root)
    _check(report, root, kind, file, line)
    _check(report, root, *planted)
    assert not report.ok
    severities = {p.kind: p.severity for p in report.problems}
    assert severities[kind] == ("warning" if kind == "image_without_label" else "error")


# ---- YOLO. Planted: labels/000000.txt:2 has class index 7 (only 0..2 exist).
YOLO_CASES: dict[str, tuple[str, str, str, int]] = {
    "class_not_integer": ("1.5 0.5 0.5 0.1 0.1", "malformed", "labels/000001.txt", 3),
    "column_count": ("1 0.5 0.5 0.1", "malformed", "labels/000001.txt", 3),
    "box_outside_image": ("1 0.95 0.5 0.2 0.1", "box_outside_image", "labels/000001.txt", 3),
    "zero_size_box": ("1 0.5 0.5 0.0 0.1", "invalid_box", "labels/000001.txt", 3),
    "beyond_float32": ("1 0.5 0.5 1e40 0.1", "malformed", "labels/000001.txt", 3),
}


@pytest.mark.parametrize("case", list(YOLO_CASES))
def test_yolo_problem_is_reported_with_file_and_line(tmp_path: Path, case: str) -> None:
    root = write_format(tmp_path, "yolo")
    _append(root / "labels" / "000000.txt", "7 0.5 0.5 0.1 0.1")
    text, kind, file, line = YOLO_CASES[case]
    _append(root / "labels" / "000001.txt", text)
    report = validate(root)
    _check(report, root, kind, file, line)
    _check(report, root, "unknown_class", "labels/000000.txt", 2)


# ---- COCO. Planted: one more annotation whose bbox has a negative width (invalid_box).
def _edit_coco(root: Path, edit: Callable[[dict], None]) -> None:
    path = root / "annotations.json"
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, 5]})
    edit(doc)
    path.write_text(json.dumps(doc))


def _set(items: str, index: int, **values) -> Callable[[dict], None]:
    return lambda doc: doc[items][index].update(values)


COCO_CASES: dict[str, tuple[Callable[[dict], None], str, str]] = {
    "missing_image": (_set("images", 1, file_name="gone.png"), "missing_image", "gone.png"),
    "duplicate_image_id": (_set("images", 2, id=1), "duplicate_id", "image id 1"),
    "duplicate_annotation_id": (_set("annotations", 1, id=1), "duplicate_id", "annotation id 1"),
    "unknown_category": (_set("annotations", 0, category_id=9), "unknown_class", "category_id 9"),
    "annotation_without_image": (_set("annotations", 0, image_id=77), "label_without_image", "image_id 77"),
    "bbox_not_numbers": (_set("annotations", 0, bbox=[1, 2, "x", 4]), "malformed", "bbox must be 4 numbers"),
    "box_outside_image": (_set("annotations", 0, bbox=[50, 10, 30, 5]), "box_outside_image", "outside the 64x48"),
    "duplicate_category_name": (
        lambda d: d["categories"].append({"id": 4, "name": "car"}),
        "duplicate_id",
        "class name 'car' is listed twice",
    ),
    "size_mismatch": (_set("images", 0, width=65), "size_mismatch", "labelled 65x48"),
    "iscrowd_too_big_for_an_int": (_set("annotations", 0, iscrowd=1e30), "malformed", "iscrowd must be 0 or 1"),
    "iscrowd_not_a_flag": (_set("annotations", 0, iscrowd=0.5), "malformed", "iscrowd must be 0 or 1"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_coco_problem_is_reported(tmp_path: Path, case: str) -> None:
    root = write_format(tmp_path, "coco")
    edit, kind, text = COCO_CASES[case]
    _edit_coco(root, edit)
    report = validate(root)
    assert any(p.kind == kind and text in p.message for p in report.problems), report.problems
    assert any(p.kind == "invalid_box" and "(id 99)" in p.message for p in report.problems)


def test_coco_invalid_json_points_at_the_line(tmp_path: Path) -> None:
    root = write_format(tmp_path, "coco")
    (root / "annotations.json").write_text('{\n  "images": [\n    {"id": 1,,}\n  ]\n}\n')
    report = validate(root)
    assert [(p.kind, p.line) for p in report.errors] == [("malformed", 3)]


def test_classes_override_flags_other_names(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti")
    report = validate(root, classes=["car"])
    unknown = {p.message.split("'")[1] for p in report.errors if p.kind == "unknown_class"}
    assert unknown == {"person", "bicycle"}


def test_clean_dataset_and_json_report(tmp_path: Path) -> None:
    root = write_format(tmp_path, "kitti")
    report = validate(root)
    assert report.ok and not report.problems
    assert (report.images, report.boxes) == (4, 7)
    _kitti_plant(root)
    doc = json.loads(validate(root).to_json())
    assert doc["ok"] is False and doc["kinds"] == {"unknown_class": 1}
    assert doc["problems"][0]["line"] == 2 and doc["problems"][0]["file"].endswith("000000.txt")


@pytest.mark.parametrize("fmt", ["kitti", "yolo", "coco"])
def test_read_refuses_what_validate_reports(tmp_path: Path, fmt: str) -> None:
    root = write_format(tmp_path, fmt)
    if fmt == "coco":
        _edit_coco(root, _set("annotations", 0, category_id=9))
    else:
        _append(root / "labels" / "000001.txt", "garbage")
    with pytest.raises(DataError, match="lanner dataset validate"):
        read_dataset(root)


def test_imagefolder_validation(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    write_png(root / "cat" / "1.png")
    write_png(root / "dog" / "1.png").write_bytes(b"\x89PNG broken")
    (root / "dog" / "readme.md").write_text("x")
    (root / "bird").mkdir()
    report = validate(root)
    assert report.fmt == "imagefolder" and report.images == 2
    found = {(p.kind, p.severity, Path(p.file).name) for p in report.problems}
    assert found == {
        ("corrupt_image", "error", "1.png"),
        ("not_an_image", "warning", "readme.md"),
        ("empty_class", "warning", "bird"),
    }


# ---- Fuzz: whatever the label files hold, reading raises DataError or works, and validate reports.
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_tokens = st.sampled_from(["car", "person", "0", "1", "-1", "0.5", "1e9", "nan", "x", "", "\t", "12.25", "3"])
_label_text = st.lists(st.lists(_tokens, max_size=17).map(" ".join), max_size=4).map("\n".join)


@pytest.fixture(scope="module")
def clean_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("fuzz")
    return {fmt: write_format(tmp, fmt, n_images=2) for fmt in ("kitti", "yolo", "coco")}


def _read_or_data_error(root: Path) -> None:
    try:
        read_dataset(root)
    except DataError as exc:
        assert "lanner dataset validate" in str(exc) or "cannot tell" in str(exc)
    report = validate(root, decode=False)
    assert report.ok == (not report.errors)


@FUZZ
@given(text=_label_text, fmt=st.sampled_from(["kitti", "yolo"]))
def test_any_label_text_gives_data_error_or_a_dataset(clean_sets: dict[str, Path], text: str, fmt: str) -> None:
    label = clean_sets[fmt] / "labels" / "000001.txt"
    original = label.read_text()
    try:
        label.write_text(text)
        _read_or_data_error(clean_sets[fmt])
    finally:
        label.write_text(original)


COCO_KEYS = ["id", "image_id", "category_id", "bbox", "file_name", "width", "height", "name", "area", "iscrowd"]
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-5, 70)
    | st.floats()
    | st.sampled_from(["car", "000000.png"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(COCO_KEYS), inner, max_size=5),
    max_leaves=25,
)


@FUZZ
@given(section=st.sampled_from(["images", "annotations", "categories"]), value=_json)
def test_any_coco_json_gives_data_error_or_a_dataset(clean_sets: dict[str, Path], section: str, value) -> None:
    path = clean_sets["coco"] / "annotations.json"
    original = path.read_text()
    try:
        doc = json.loads(original)
        doc[section] = value if not isinstance(value, list) else doc[section] + value
        path.write_text(json.dumps(doc))
        _read_or_data_error(clean_sets["coco"])
    finally:
        path.write_text(original)
