"""``lanner dataset preview``: the contact sheet it writes, its default name, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from lanner.cli.main import main


@pytest.fixture(scope="module")
def cars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("preview") / "cars"
    assert main(["-q", "dataset", "synth", "--out", str(root), "--images", "6", "--resolution", "160x96"]) == 0
    return root


def test_preview_writes_a_grid_of_the_asked_size(cars: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "sheet.png"
    assert main(["dataset", "preview", str(cars), "--count", "4", "--width", "100", "-o", str(target)]) == 0
    assert f"wrote {target} (4 of 6 images)" in capsys.readouterr().out
    sheet = cv2.imread(str(target))
    assert sheet.shape[1] % 100 == 0 and sheet.shape[1] // 100 in (2, 3)  # columns of 100 px tiles


def test_the_default_name_follows_the_dataset(cars: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dataset", "preview", str(cars), "--count", "2"]) == 0
    assert (tmp_path / "cars_preview.jpg").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "bus"], "classes ['bus'] are not in the dataset; choose from car, bicycle, person, road_sign"),
        (["--count", "0"], "--count must be at least 1"),
        (["-o", "sheet.txt"], "sheet.txt: cannot write a preview as .txt; use one of .jpg, .jpeg, .png, .webp, .bmp"),
        (["-o", "cars_file/x.png"], "cannot write the preview"),  # its folder is a file
    ],
)
def test_bad_arguments_are_one_line_errors(cars: Path, tmp_path: Path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cars_file").write_text("")
    assert main(["dataset", "preview", str(cars), *args]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_imagefolder_set_previews_its_images_by_class(tmp_path: Path, capsys) -> None:
    crops = tmp_path / "crops"
    assert main(["-q", "dataset", "synth", "--crops", "body_type", "--per-class", "2", "--out", str(crops)]) == 0
    names = sorted(p.name for p in crops.iterdir() if p.is_dir())
    target = tmp_path / "crops.png"
    args = ["dataset", "preview", str(crops), "--classes", names[0], "--width", "64", "-o", str(target)]
    assert main(args) == 0
    assert f"wrote {target} (2 of {2 * len(names)} images)" in capsys.readouterr().out
    assert cv2.imread(str(target)).shape[1] == 2 * 64  # the class's two crops side by side
