"""``lanner dataset ...`` through ``lanner.cli.main.main``: exit codes and output lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.cli import app
from lanner.cli.main import main
from lanner.core.detections import Detections
from lanner.data import DetectionDataset, Sample, read_dataset, write_dataset


@pytest.fixture
def kitti(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``cars/``: a 3-image KITTI set in the working folder (images 64x48, classes car and person)."""
    monkeypatch.chdir(tmp_path)
    samples = []
    for i in range(3):
        path = tmp_path / "src" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((48, 64, 3), 40 * i, np.uint8))
        boxes = Detections.from_arrays([[1, 2, 30, 40], [5, 5, 9, 9]][: i + 1], [0, 1][: i + 1])
        samples.append(Sample(f"{i:03d}", path, 64, 48, boxes))
    return write_dataset(DetectionDataset(tmp_path, ["car", "person"], samples), Path("cars"), "kitti")


def test_convert_defaults_to_a_sibling_folder(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "convert", "cars", "--to", "coco"]) == 0
    assert "wrote cars_coco (coco)" in capsys.readouterr().out
    assert read_dataset("cars_coco").box_count() == 5
    assert main(["dataset", "convert", "cars_coco", "--to", "yolo", "--from", "coco", "--out", "y"]) == 0
    assert Path("y/data.yaml").is_file()


def test_convert_says_what_it_wrote_and_what_comes_next(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "convert", "cars", "--to", "coco"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == (
        "wrote cars_coco (coco) from cars (kitti): 3 images hard-linked into cars_coco/images, "
        "5 boxes (car 3, person 2)"
    )
    assert Path("cars_coco/images/000.png").stat().st_nlink == 2  # what it says is what happened
    assert captured.err.splitlines()[-1] == "next: lanner dataset validate cars_coco"
    assert main(["-q", "dataset", "convert", "cars", "--to", "yolo", "--out", "y", "--images", "copy"]) == 0
    captured = capsys.readouterr()
    assert "3 images copied into y/images, 5 boxes" in captured.out and captured.err == ""
    assert Path("y/images/000.png").stat().st_nlink == 1


@pytest.mark.parametrize(
    ("linkable", "placed"),
    [
        ({"000.png", "002.png"}, "3 images into c/images (2 hard-linked, 1 copied)"),
        (set(), "3 images copied into c/images (no hard links across filesystems)"),
    ],
)
def test_convert_reports_images_copied_where_a_hard_link_failed(
    kitti: Path, capsys, monkeypatch: pytest.MonkeyPatch, linkable: set[str], placed: str
) -> None:
    link = os.link

    def link_some(src: str, dst: str) -> None:  # as on another filesystem for the others: EXDEV
        if Path(src).name not in linkable:
            raise OSError(18, "Invalid cross-device link")
        link(src, dst)

    monkeypatch.setattr(os, "link", link_some)
    assert main(["dataset", "convert", "cars", "--to", "coco", "--out", "c"]) == 0
    assert placed + ", 5 boxes" in capsys.readouterr().out


@pytest.fixture
def ignores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cars, one crowd car and two class-less regions, written as ``k/`` (KITTI: 3 DontCare lines) and
    ``c/`` (COCO: the crowd car as iscrowd 1; the class-less regions have no COCO form)."""
    monkeypatch.chdir(tmp_path)
    samples = []
    for i in range(2):
        path = tmp_path / "src" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.zeros((48, 64, 3), np.uint8))
        boxes = Detections.from_arrays([[1, 2, 30, 40], [40, 5, 60, 20]][: 2 - i], [0, 0][: 2 - i])
        boxes.data["iscrowd"] = np.asarray([0, 1][: 2 - i])
        samples.append(Sample(str(i), path, 64, 48, boxes, ignore_regions=np.asarray([[2, 2, 9, 9]], np.float32)))
    for name, fmt in (("k", "kitti"), ("c", "coco")):
        write_dataset(DetectionDataset(tmp_path, ["car"], samples), Path(name), fmt)


@pytest.mark.parametrize(
    ("src", "to", "written", "warning"),
    [
        ("k", "kitti", "2 boxes (car 2), 3 ignore regions", ""),
        ("k", "coco", "2 boxes (car 2)", "3 ignore regions not written: COCO has no form for KITTI's class-less"),
        ("c", "kitti", "2 boxes (car 2), 1 ignore regions", ""),
        ("c", "coco", "2 boxes (car 2), 1 ignore regions", ""),
        ("c", "yolo", "2 boxes (car 2)", "1 ignore regions not written: YOLO cannot mark a box as ignored"),
    ],
)
def test_convert_counts_ignore_regions_and_warns_when_the_format_drops_them(
    ignores: None, capsys, src: str, to: str, written: str, warning: str
) -> None:
    assert main(["-q", "dataset", "convert", src, "--to", to, "--out", "out"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith(f"2 images hard-linked into out/images, {written}")
    assert captured.err.startswith(f"warning: {warning}") if warning else captured.err == ""  # even with -q
    if warning:
        assert captured.err.strip().endswith("; --to kitti keeps them as DontCare lines")


def test_validate_clean_exits_0(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "validate", "cars", "--classes", "car,person"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["cars (kitti): 3 images, 5 boxes: 0 errors, 0 warnings: ok"]


def test_validate_prints_every_problem_and_exits_1(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    Path("cars/labels/001.txt").write_text("car 0 0 0 1 2 99 40 0 0 0 0 0 0 0\ncar 1 2\n")
    Path("cars/labels/002.txt").unlink()
    assert main(["dataset", "validate", "cars", "--json", "report.json"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert "cars/labels/001.txt:1: box_outside_image: box [1.00, 2.00, 99.00, 40.00] extends outside" in lines[1]
    assert lines[2] == "cars/labels/001.txt:2: malformed: expected 15 KITTI columns (16 with score), got 3"
    assert lines[0].endswith("002.png: warning: image_without_label: no label file 002.txt under cars/labels")
    assert lines[-1] == "cars (kitti): 3 images, 2 boxes: 2 errors, 1 warnings: FAILED"
    assert "error: cars: 2 errors" in captured.err
    assert json.loads(Path("report.json").read_text())["errors"] == 2


def test_stats_prints_tables_and_writes_json_and_plot(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "stats", "cars", "--json", "s.json", "--plot", "s.png"]) == 0
    out = capsys.readouterr().out
    assert "car" in out and "person" in out and "64x48" in out
    assert json.loads(Path("s.json").read_text())["classes"] == {"car": 3, "person": 2}
    assert Path("s.png").stat().st_size > 1000


def test_split_writes_parts(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "split", "cars", "--out", "parts", "--val", "0.34", "--seed", "1", "--to", "yolo"]) == 0
    out = capsys.readouterr().out
    assert "train: 2 images -> parts/train" in out and "val: 1 images -> parts/val" in out
    assert len(read_dataset("parts/train")) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["dataset", "convert", "cars", "--to", "voc"], 2, "Invalid value for '--to'"),
        (["dataset", "convert", "missing", "--to", "coco"], 2, "does not exist"),
        (["dataset", "split", "cars", "--out", "p", "--val", "0.7", "--test", "0.5"], 2, "split fractions"),
        (["dataset", "stats", "src"], 1, "cannot tell the dataset format"),
        (["dataset", "convert", "cars", "--to", "yolo", "--out", "cars"], 2, "the output folder is the input"),
    ],
)
def test_errors_are_one_line_with_exit_codes(kitti: Path, capsys, args: list[str], code: int, message: str) -> None:
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["convert", "validate", "stats", "split"])
def test_help(command: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", command, "--help"]) == 0
    assert "Usage: lanner dataset " + command in capsys.readouterr().out


def test_imagefolder_stats_and_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for name, n in (("cat", 4), ("dog", 2)):
        for i in range(n):
            (tmp_path / "pets" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "pets" / name / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["dataset", "stats", "pets"]) == 0
    out = capsys.readouterr().out
    assert "class (images)" in out and "cat" in out and "8x8" in out
    assert main(["dataset", "split", "pets", "--out", "parts", "--val", "0.5"]) == 0
    assert "val: 3 images -> parts/val" in capsys.readouterr().out
    assert main(["dataset", "validate", "pets"]) == 0


def next_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("next: ")]


def test_validate_suggests_the_split_only_when_the_set_is_ok(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "validate", "cars"]) == 0
    assert next_lines(capsys.readouterr().err) == ["next: lanner dataset split cars --out cars_split --val 0.2"]
    assert main(["dataset", "validate", "cars/", "--format", "kitti"]) == 0  # the split must read it the same way
    assert next_lines(capsys.readouterr().err)[0].endswith(" --out cars_split --val 0.2 --format kitti")
    Path("cars/labels/001.txt").write_text("car 1 2\n")
    assert main(["dataset", "validate", "cars"]) == 1
    assert next_lines(capsys.readouterr().err) == []  # the error line says what to fix


def test_split_suggests_training_on_its_parts(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "split", "cars", "--out", "my parts", "--val", "0.34"]) == 0
    assert next_lines(capsys.readouterr().err) == [
        "next: lanner train -e spec.yaml -r results/ --set dataset.train='my parts/train'"
        " --set dataset.val='my parts/val'"  # quoted: the line pastes into a shell as is
    ]
    assert main(["dataset", "split", "cars", "--out", "p0", "--val", "0"]) == 0  # no val images: no dataset.val
    assert next_lines(capsys.readouterr().err) == [
        "next: lanner train -e spec.yaml -r results/ --set dataset.train=p0/train"
    ]
    assert main(["-q", "dataset", "split", "cars", "--out", "q"]) == 0
    assert capsys.readouterr().err == ""


def test_augment_suggests_training_on_its_output_and_stats_suggests_nothing(kitti: Path, capsys) -> None:
    assert main(["dataset", "augment", "cars", "--out", "aug"]) == 0
    assert next_lines(capsys.readouterr().err) == [
        "next: lanner train -e spec.yaml -r results/ --set dataset.train=aug"
    ]
    assert main(["dataset", "stats", "cars"]) == 0
    assert next_lines(capsys.readouterr().err) == []


def test_without_a_terminal_convert_and_stats_print_progress_lines_with_totals(
    kitti: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "PLAIN_INTERVAL_S", 0.0)  # every step is "long": a line each
    assert main(["dataset", "convert", "cars", "--to", "coco"]) == 0
    err = capsys.readouterr().err.splitlines()
    read = [i for i, line in enumerate(err) if line.startswith("reading: ")]  # before the count is known
    assert [err[i].split(" (")[0] for i in read] == ["reading: 1 done", "reading: 2 done", "reading: 3 done"]
    assert err[read[-1] + 1].startswith("writing coco: 1/3 (33%, ")
    assert any(line.startswith("writing coco: 3/3 (100%, ") for line in err)
    for name in ("cat", "dog"):  # an ImageFolder set: stats reads every image's header
        for i in range(2):
            (Path("pets") / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(f"pets/{name}/{i}.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["dataset", "stats", "pets"]) == 0
    assert any(line.startswith("measuring images: 4/4 (100%, ") for line in capsys.readouterr().err.splitlines())
    assert main(["-q", "dataset", "stats", "pets"]) == 0
    assert capsys.readouterr().err == ""


def test_convert_of_images_without_labels_says_0_boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bare/images").mkdir(parents=True)
    cv2.imwrite("bare/images/a.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["dataset", "convert", "bare", "--to", "coco"]) == 0
    assert capsys.readouterr().out.strip().endswith(": 1 images hard-linked into bare_coco/images, 0 boxes")
