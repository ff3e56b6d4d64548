"""``lanner dataset ...`` through ``lanner.cli.main.main``: exit codes and output lines."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

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
