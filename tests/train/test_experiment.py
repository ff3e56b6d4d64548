"""Spec → experiment: replay of old-class images, task/dataset mismatch, and classification training."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import tiny_spec

from lanner.core.errors import ConfigError
from lanner.train.distributed import resolve_runtime
from lanner.train.experiment import build_experiment
from lanner.train.spec import load_spec
from lanner.train.trainer import train


def test_replay_adds_a_seeded_subset(synth_sets: dict[str, Path]) -> None:
    data = tiny_spec(synth_sets["train"], dataset={"replay": str(synth_sets["val"]), "replay_images": 3})
    exp = build_experiment(load_spec(data=data), resolve_runtime("cpu"))
    again = build_experiment(load_spec(data=data), resolve_runtime("cpu"))
    assert exp.sampler.n == 12 + 3 and len(exp.train_set.items) == 15
    assert [i.image_path for i in exp.train_set.items] == [i.image_path for i in again.train_set.items]
    assert all(i.image_path.parent.parent == synth_sets["val"] for i in exp.train_set.items[12:])


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``red/`` and ``blue/`` folders of 6 noisy 32x32 images each."""
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    for name, bgr in (("blue", (200, 40, 40)), ("red", (40, 40, 200))):
        (root / name).mkdir()
        for i in range(6):
            noise = rng.integers(-30, 30, (32, 32, 3))
            cv2.imwrite(str(root / name / f"{i}.png"), np.clip(np.array(bgr) + noise, 0, 255).astype(np.uint8))
    return root


def test_classifier_trains_on_image_folders(image_folder: Path, tmp_path: Path) -> None:
    data = {
        "dataset": {"train": str(image_folder), "val": str(image_folder)},
        "model": {"name": "resnet10", "input_size": [32, 32]},
        "training": {"epochs": 2, "batch_size": 4, "workers": 0, "device": "cpu", "lr": 0.05, "warmup_epochs": 0},
    }
    result = train(load_spec(data=data), tmp_path / "run")
    assert result.metrics is not None and {"top1", "top5", "confusion_matrix"} <= set(result.metrics)
    assert [h["epoch"] for h in result.history] == [1, 2] and "top1" in result.history[-1]
    assert (tmp_path / "run" / "plots" / "confusion.png").is_file()


def test_detector_on_image_folders_is_a_clear_error(image_folder: Path) -> None:
    data = tiny_spec(image_folder)
    with pytest.raises(ConfigError, match="a detection model needs a detection dataset"):
        build_experiment(load_spec(data=data), resolve_runtime("cpu"))
