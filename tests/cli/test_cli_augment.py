"""``lanner dataset augment`` through ``lanner.cli.main.main``: output that validates, exit codes, error lines."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.cli.main import main
from lanner.core.detections import Detections
from lanner.data import DetectionDataset, Sample, read_dataset, write_dataset


@pytest.fixture
def cars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``cars/``: a 3-image KITTI set (64x48 noise PNGs, 5 boxes) in the working folder."""
    monkeypatch.chdir(tmp_path)
    samples = []
    for i in range(3):
        path = tmp_path / "raw" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8))
        boxes = Detections.from_arrays([[1, 2, 30, 40], [35, 5, 60, 30]][: 1 + i % 2], [0, 1][: 1 + i % 2])
        samples.append(Sample(f"{i:03d}", path, 64, 48, boxes))
    return write_dataset(DetectionDataset(tmp_path, ["car", "person"], samples), Path("cars"), "kitti")


@pytest.mark.parametrize("fmt", ["kitti", "coco", "yolo"])
def test_augment_writes_a_set_that_validates(cars: Path, fmt: str, capsys: pytest.CaptureFixture) -> None:
    args = ["dataset", "augment", "cars", "--out", "aug", "--copies", "2", "--format", fmt, "--keep-originals"]
    assert main([*args, "--set", "hflip=1.0", "--set", "translate=0", "--set", "scale=[1,1]"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    expected = f"cars -> aug ({fmt}): images 3 in, 9 out; boxes 4 in, 12 out, 0 dropped (min_visibility, <1 px)"
    assert summary == expected + "; 0 bad images skipped"
    assert main(["dataset", "validate", "aug"]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1] == f"aug ({fmt}): 9 images, 12 boxes: 0 errors, 0 warnings: ok"
    )
    flipped = next(s for s in read_dataset("aug").samples if s.image_id == "000_aug1")
    np.testing.assert_allclose(flipped.boxes.xyxy, [[64 - 30, 2, 64 - 1, 40]], atol=0.01)


def test_spec_file_and_seed(cars: Path, capsys: pytest.CaptureFixture) -> None:
    Path("aug.yaml").write_text("hflip: 0.5\nmosaic: 1.0\nnoise: 0.5\n")
    for out in ("a", "b"):
        assert main(["dataset", "augment", "cars", "--out", out, "--spec", "aug.yaml", "--seed", "4"]) == 0
    files = sorted(p.relative_to("a") for p in Path("a").rglob("*") if p.is_file())
    assert files and all((Path("a") / f).read_bytes() == (Path("b") / f).read_bytes() for f in files)


def test_unknown_spec_key_is_one_line_with_did_you_mean(cars: Path, capsys: pytest.CaptureFixture) -> None:
    Path("aug.yaml").write_text("hflip: 1.0\nmin_visiblity: 0.5\n")
    assert main(["dataset", "augment", "cars", "--out", "aug", "--spec", "aug.yaml"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: aug.yaml:2: min_visiblity: unknown key; did you mean 'min_visibility'?"
    )
    assert not Path("aug").exists()


def test_missing_and_empty_source(cars: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "augment", "nope", "--out", "aug"]) == 2
    assert "Path 'nope' does not exist" in capsys.readouterr().err
    Path("empty").mkdir()
    assert main(["dataset", "augment", "empty", "--out", "aug"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: empty: the dataset folder is empty; point SRC at a dataset with images"
    )


def test_corrupt_image_fails_or_is_skipped(cars: Path, capsys: pytest.CaptureFixture) -> None:
    Path("cars/images/001.png").write_bytes(b"garbage")
    assert main(["dataset", "augment", "cars", "--out", "aug"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "001.png: cannot read image" in err and "--skip-bad" in err
    assert len(err.splitlines()) == 1
    assert main(["dataset", "augment", "cars", "--out", "aug2", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped " in captured.err and "001.png" in captured.err
    assert captured.out.strip().endswith(
        "images 3 in, 2 out; boxes 2 in, 2 out, 0 dropped (min_visibility, <1 px); 1 bad images skipped"
    )


def test_non_empty_output_needs_force(cars: Path, capsys: pytest.CaptureFixture) -> None:
    Path("aug").mkdir()
    Path("aug/old.txt").write_text("x")
    assert main(["dataset", "augment", "cars", "--out", "aug"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: aug: the output folder exists and is not empty; pass --force to replace it"
    )
    assert main(["dataset", "augment", "cars", "--out", "aug", "--force"]) == 0
    assert not Path("aug/old.txt").exists() and len(read_dataset("aug")) == 3
