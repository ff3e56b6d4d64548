"""``lanner dataset convert`` KITTI -> COCO -> YOLO -> KITTI on a set laid out as the KITTI benchmark ships it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanner.cli.main import main
from lanner.data import read_dataset

NAMES = ["Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc"]
DONTCARE = "DontCare -1 -1 -10 {:.2f} {:.2f} {:.2f} {:.2f} -1 -1 -1 -1000 -1000 -1000 -10"


@pytest.fixture
def kitti(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``kitti/training/{image_2,label_2}``: 4 images 375x124 with every benchmark class and DontCare lines."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    root = Path("kitti") / "training"
    for folder in ("image_2", "label_2"):
        (root / folder).mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "image_2" / f"{i:06d}.png"), rng.integers(0, 255, (124, 375, 3), np.uint8))
        lines = []
        for j in range(3):
            x1, y1 = rng.uniform(0, 300), rng.uniform(0, 80)
            box = (x1, y1, x1 + rng.uniform(5, 70), y1 + rng.uniform(5, 40))
            name = NAMES[(3 * i + j) % len(NAMES)]
            lines.append(f"{name} 0.00 1 -1.57 " + " ".join(f"{v:.2f}" for v in box) + " 1.5 1.6 3.9 1 1.7 20 0.1")
        lines.append(DONTCARE.format(300, 10, 370.5, 50))
        (root / "label_2" / f"{i:06d}.txt").write_text("\n".join(lines) + "\n")
    return Path("kitti")


def test_kitti_coco_yolo_kitti_through_the_cli(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    for src, fmt, dst in [(kitti, "coco", "c"), (Path("c"), "yolo", "y"), (Path("y"), "kitti", "k")]:
        assert main(["dataset", "convert", str(src), "--to", fmt, "--out", dst]) == 0, capsys.readouterr()
    first, last = read_dataset(kitti), read_dataset("k")
    assert first.classes == last.classes == sorted(NAMES)  # DontCare is no class at any step
    assert Path("k/classes.txt").read_text().split() == sorted(NAMES)
    assert [s.image_id for s in last.samples] == [s.image_id for s in first.samples]
    for a, b in zip(first.samples, last.samples, strict=True):
        assert b.boxes.class_id.tolist() == a.boxes.class_id.tolist()
        assert np.abs(b.boxes.xyxy - a.boxes.xyxy).max() <= 0.5
        assert b.image_path.is_file() and os.path.samefile(b.image_path, a.image_path)  # hard links, not lost
    assert sorted(p.name for p in Path("y/images").iterdir()) == [f"{i:06d}.png" for i in range(4)]


def test_roboflow_yolo_to_kitti_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for split in ("train", "valid"):
        (Path("robo") / split / "images").mkdir(parents=True)
        cv2.imwrite(f"robo/{split}/images/{split}_1.jpg", np.zeros((80, 100, 3), np.uint8))
        (Path("robo") / split / "labels").mkdir()
        Path(f"robo/{split}/labels/{split}_1.txt").write_text("1 0.5 0.5 0.2 0.25\n")
    Path("robo/data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['bus', 'car']\n")
    assert main(["dataset", "convert", "robo", "--to", "kitti", "--out", "k"]) == 0
    assert Path("k/labels/train/train_1.txt").read_text().startswith("car 0.00 0 0.00 40.00 30.00 60.00 50.00")
    assert Path("k/classes.txt").read_text().split() == ["bus", "car"]


def test_stats_show_dontcare_as_ignore_regions(kitti: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dataset", "stats", str(kitti)]) == 0
    printed = capsys.readouterr().out
    assert "ignore regions" in printed and "DontCare" not in printed
