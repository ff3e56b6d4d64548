"""Synthetic datasets on disk: images + labels through lanner.data.io, crops in ImageFolder layout, the CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from lanner.cli.dataset import dataset
from lanner.cli.main import main
from lanner.cli.synth import parse_resolution, parse_time_mix, synth
from lanner.core.errors import UsageError
from lanner.data.io import read_dataset
from lanner.data.synth.crops import generate_crops
from lanner.data.synth.images import SynthConfig, generate_images
from lanner.data.synth.world import BODY_TYPES, CLASSES, COLORS

SMALL = {"width": 256, "height": 160}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    config = SynthConfig(images=5, seed=3, **SMALL)
    generate_images(config, tmp_path / "a")
    generate_images(config, tmp_path / "b")
    generate_images(config.model_copy(update={"seed": 4}), tmp_path / "c")
    a, b, c = (tree_bytes(tmp_path / k) for k in "abc")
    assert a == b
    assert a["images/000000.jpg"] != c["images/000000.jpg"]


def test_any_image_renders_the_same_alone(tmp_path):
    full = SynthConfig(images=6, seed=1, **SMALL)
    generate_images(full, tmp_path / "all")
    from lanner.data.synth.images import render_sample

    image, _, _, _ = render_sample(full, 5)
    written = cv2.imread(str(tmp_path / "all/images/000005.jpg"))
    assert written.shape == image.shape
    assert abs(float(written.mean()) - float(image.mean())) < 2.0  # same picture (JPEG round trip aside)


@pytest.mark.parametrize("fmt", ["kitti", "coco", "yolo"])
def test_written_dataset_reads_back(tmp_path, fmt):
    ds = generate_images(SynthConfig(images=4, **SMALL), tmp_path, fmt)
    back = read_dataset(tmp_path, fmt)
    assert len(back) == 4 and back.box_count() == ds.box_count() > 0
    assert list(back.classes)[: len(CLASSES)] == list(CLASSES)


def test_kitti_labels_carry_truncation_occlusion_and_3d(tmp_path):
    ds = generate_images(SynthConfig(images=6, **SMALL), tmp_path, "kitti")
    back = read_dataset(tmp_path, "kitti")
    written = {s.image_id: s.boxes for s in ds.samples}
    for sample in back.samples:
        boxes = sample.boxes
        assert (boxes.data["occluded"] == written[sample.image_id].data["occluded"]).all()
        assert (boxes.data["dimensions"][:, 0] > 0).all()  # height in metres
        assert (boxes.data["location"][:, 2] > 0).all()  # in front of the camera
    assert any((s.boxes.data["truncated"] > 0).any() for s in back.samples)


def test_crops_fill_every_class_in_imagefolder_layout(tmp_path):
    counts = generate_crops(SynthConfig(width=480, height=288), tmp_path, by="body_type", per_class=2, size=32)
    assert counts == dict.fromkeys(BODY_TYPES, 2)
    for label in BODY_TYPES:
        files = sorted((tmp_path / label).glob("*.jpg"))
        assert [f.name for f in files] == ["00000.jpg", "00001.jpg"]
        assert cv2.imread(str(files[0])).shape == (32, 32, 3)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("640x384", True), ("1920x1080", True), ("640", False), ("2000x1080", False), ("0x10", False), ("axb", False)],
)
def test_parse_resolution(text, ok):
    if ok:
        assert parse_resolution(text) == tuple(int(v) for v in text.split("x"))
    else:
        with pytest.raises(UsageError):
            parse_resolution(text)


def test_parse_time_mix():
    assert parse_time_mix("day,night") == {"day": 0.6, "night": 0.2}
    assert parse_time_mix("dusk=1") == {"dusk": 1.0}
    for bad in ("noon", "day=x", ""):
        with pytest.raises(UsageError):
            parse_time_mix(bad)


@pytest.fixture
def synth_cli():
    """Register ``synth`` under ``lanner dataset`` for the test if the lead has not done it yet."""
    added = "synth" not in dataset.commands
    if added:
        dataset.add_command(synth)
    yield
    if added:
        dataset.commands.pop("synth")


@pytest.mark.parametrize(
    "args",
    [
        ["--resolution", "big"],
        ["--resolution", "3840x2160"],
        ["--time", "noon"],
        ["--video", "--crops", "color"],
        ["--images", "0"],
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, synth_cli, args, capsys):
    assert main(["dataset", "synth", "--out", str(tmp_path / "out"), *args]) == 2
    assert not (tmp_path / "out").exists()


def test_cli_refuses_non_empty_out_without_force(tmp_path, synth_cli, capsys):
    (tmp_path / "keep.txt").write_text("x")
    args = ["dataset", "synth", "--out", str(tmp_path), "--images", "2", "--resolution", "128x96"]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_cli_writes_a_dataset_and_a_summary(tmp_path, synth_cli, capsys):
    out = tmp_path / "ds"
    code = main(
        [
            "-q",
            "dataset",
            "synth",
            "--out",
            str(out),
            "--images",
            "3",
            "--resolution",
            "160x96",
            "--format",
            "yolo",
            "--time",
            "night",
            "--png",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    summary = capsys.readouterr().out
    assert "wrote 3 images" in summary and "images/s" in summary


def test_workers_do_not_change_the_bytes(tmp_path):
    config = SynthConfig(images=4, seed=2, images_per_scene=2, **SMALL)
    generate_images(config, tmp_path / "one")
    generate_images(config.model_copy(update={"workers": 2}), tmp_path / "two")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_colour_crops_are_cars_of_every_colour(tmp_path):
    counts = generate_crops(SynthConfig(width=480, height=288, seed=5), tmp_path, by="color", per_class=1, size=24)
    assert counts == dict.fromkeys(COLORS, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(COLORS)


def test_cli_video_calls_the_video_generator(tmp_path, synth_cli, capsys):
    out = tmp_path / "videos"
    args = ["-q", "dataset", "synth", "--out", str(out), "--video", "--cameras", "1", "--seconds", "0.2"]
    assert main([*args, "--resolution", "128x96", "--fps", "10"]) == 0
    assert (out / "cam0.mp4").is_file()
    assert "video(s)" in capsys.readouterr().out
