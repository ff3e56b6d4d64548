"""Bad input on the data / model side of the CLI: one clear line, the right exit code, nothing written by mistake.

Each case broke the CLI before: a traceback-like ``error: ValueError: ...`` line, a warning lost under
``--quiet`` while the final line says "listed above", or a file written where the user did not ask.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lanner.cli.main import main
from lanner.core.detections import Detections
from lanner.data import DetectionDataset, Sample, write_dataset
from lanner.models import create_model, save_checkpoint


@pytest.fixture
def cars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``cars/``: a 3-image KITTI set (64x48 noise PNGs) in the working folder."""
    monkeypatch.chdir(tmp_path)
    samples = []
    for i in range(3):
        path = tmp_path / "raw" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8))
        samples.append(Sample(f"{i:03d}", path, 64, 48, Detections.from_arrays([[1, 2, 30, 40]], [i % 2])))
    return write_dataset(DetectionDataset(tmp_path, ["car", "person"], samples), Path("cars"), "kitti")


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random yolox_nano checkpoint at 64x64 (the predictions do not matter here)."""
    torch.manual_seed(0)
    model = create_model("yolox_nano", class_names=["car", "person"])
    model.info = model.info.replace(input_size=(64, 64))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "det.safetensors", model.eval())


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Error:" not in lines[0], err  # a LannerError, not the last-resort handler
    return lines[0]


@pytest.mark.parametrize(
    ("plot", "message"),
    [("plots", "the plot path is a folder"), ("s.xyz", "cannot tell the image format of 's.xyz'")],
)
def test_stats_plot_path_is_checked_before_reading(cars: Path, capsys, plot: str, message: str) -> None:
    Path("plots").mkdir()
    assert main(["dataset", "stats", "cars", "--plot", plot]) == 2
    captured = capsys.readouterr()
    assert message in _one_error_line(captured.err) and ".png" in captured.err
    assert captured.out == ""  # failed before the tables, and matplotlib wrote no plots.png
    assert sorted(p.name for p in Path().iterdir()) == ["cars", "plots", "raw"]


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_report_file_under_a_file_is_one_line(cars: Path, capsys, option: str) -> None:
    Path("notes").write_text("x")
    command = "validate" if option == "--json" else "stats"
    assert main(["dataset", command, "cars", option, "notes/out.png"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "notes/out.png: cannot write the" in line and "notes is a file, not a folder" in line


@pytest.mark.parametrize("command", ["infer", "evaluate"])
@pytest.mark.parametrize(("option", "value"), [("--batch-size", "0"), ("--conf", "2"), ("--iou", "0")])
def test_numeric_options_out_of_range_are_usage_errors(cars, detector, capsys, command, option, value) -> None:
    args = ["-i", "cars/images", "-o", "pred"] if command == "infer" else ["-d", "cars"]
    assert main([command, "-m", str(detector), *args, option, value]) == 2
    err = capsys.readouterr().err
    assert option in err and "range" in err and "ValueError" not in err
    assert not Path("pred").exists()


def test_infer_quiet_still_names_the_skipped_images(cars, detector, capsys) -> None:
    Path("cars/images/001.png").write_bytes(b"")
    Path("cars/images/[x] 002.png").write_bytes(b"not a png")  # brackets are not rich markup
    assert main(["-q", "infer", "-m", str(detector), "-i", "cars/images", "-o", "pred"]) == 1
    err = capsys.readouterr().err
    assert "warning: cars/images/001.png: cannot read image" in err
    assert "warning: cars/images/[x] 002.png: cannot read image" in err
    assert "2 of 4 images could not be read (listed above)" in _one_error_line(err)
    assert sorted(p.name for p in Path("pred/annotated").iterdir()) == ["000.png", "002.png"]


def test_augment_quiet_still_names_the_skipped_images(cars: Path, capsys) -> None:
    Path("cars/images/001.png").write_bytes(b"garbage")
    assert main(["-q", "dataset", "augment", "cars", "--out", "aug", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped " in captured.err and "001.png" in captured.err
    assert captured.out.strip().endswith("1 bad images skipped")


def test_split_of_one_image_reports_an_empty_val_part(cars: Path, capsys) -> None:
    for name in ("001", "002"):
        Path(f"cars/images/{name}.png").unlink()
        Path(f"cars/labels/{name}.txt").unlink()
    assert main(["dataset", "split", "cars", "--out", "parts"]) == 0
    out = capsys.readouterr().out  # labels/ and classes.txt of the empty part are not images
    assert "train: 1 images -> parts/train" in out and "val: 0 images -> parts/val" in out


@pytest.mark.parametrize("command", ["convert", "split", "augment"])
def test_output_inside_the_input_is_refused(cars: Path, capsys, command: str) -> None:
    args = ["--to", "coco"] if command == "convert" else ["--force"] if command == "augment" else []
    assert main(["dataset", command, "cars", "--out", "cars/images", *args]) == 2
    assert "the output folder is inside the input dataset" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in Path("cars/images").iterdir()) == ["000.png", "001.png", "002.png"]


def test_infer_names_a_truncated_jpeg_and_still_predicts_on_it(tmp_path: Path, detector, capsys) -> None:
    folder = tmp_path / "jpegs"
    folder.mkdir()
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name in ("whole.jpg", "cut.jpg"):
        cv2.imwrite(str(folder / name), image)
    cut = folder / "cut.jpg"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    assert main(["-q", "infer", "-m", str(detector), "-i", str(folder), "-o", str(tmp_path / "pred")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {cut}: the JPEG data ends early (truncated file?); the rest is grey"]
    assert sorted(p.name for p in (tmp_path / "pred" / "annotated").iterdir()) == ["cut.jpg", "whole.jpg"]


@pytest.mark.parametrize(
    ("command", "output", "code", "message"),
    [
        ("infer", "notes", 2, "notes: the output path is a file; pass a folder to -o/--output"),
        ("evaluate", "notes/eval", 1, "notes/eval: cannot create the output folder: a parent of it is a file"),
    ],
)
def test_an_output_path_under_a_file_fails_first(cars, detector, capsys, command, output, code, message) -> None:
    Path("notes").write_text("x")
    data = ["-i", "cars/images"] if command == "infer" else ["-d", "cars"]
    assert main([command, "-m", str(detector), *data, "-o", output]) == code
    assert message in _one_error_line(capsys.readouterr().err)
    assert Path("notes").read_text() == "x"
