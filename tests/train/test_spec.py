"""The experiment spec: defaults, overrides, typo errors with did-you-mean, conflicting options."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.core.errors import ConfigError
from lanner.train.spec import ExperimentSpec, load_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_defaults_file_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "dataset:\n  train: data/train\ntraining:\n  epochs: 3\n")
    spec = load_spec(path, ["training.lr=0.002", "model.input_size=[320, 640]"])
    assert spec.training.epochs == 3 and spec.training.lr == 0.002
    assert spec.model.input_size == (320, 640)
    assert spec.training.schedule == "cosine" and spec.augmentation.hflip == 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "dataset:\n  train: d\ntraining:\n  epoch: 3\n",
            "spec.yaml:4: training.epoch: unknown key; did you mean 'epochs'?",
        ),
        ("dataset:\n  train: d\nmodle:\n  name: x\n", "spec.yaml:3: modle: unknown key; did you mean 'model'?"),
        ("dataset:\n  train: d\ntraining:\n  optimizer: adam\n", "training.optimizer"),
        ("model:\n  name: yolox_s\n", "dataset: required key is missing"),
    ],
)
def test_bad_specs_give_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, text))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_pretrained_and_extend_from_conflict() -> None:
    with pytest.raises(ConfigError, match="either pretrained or extend_from"):
        load_spec(data={"dataset": {"train": "d"}, "model": {"pretrained": "a", "extend_from": "b"}})


def test_resolved_spec_round_trips(tmp_path: Path) -> None:
    from lanner.core.config import save_config

    spec = load_spec(data={"dataset": {"train": "d", "classes": ["car"]}}, overrides=["training.seed=7"])
    saved = save_config(spec, tmp_path / "out" / "spec.yaml")
    again = load_spec(saved)
    assert again == spec and isinstance(again, ExperimentSpec)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs" / "train").glob("*.yaml")), ids=str)
def test_every_shipped_training_spec_is_valid(path: Path) -> None:
    spec = load_spec(path)  # unknown keys, wrong types and bad values would raise here
    assert spec.training.epochs >= 1 and spec.dataset.train
