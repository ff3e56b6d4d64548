"""Resuming from a checkpoint of another run: one ``ConfigError`` line, never torch's multi-line dump."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lanner.core.errors import ConfigError
from lanner.models import create_model
from lanner.train.checkpointing import restore_training, save_training


def _saved(tmp_path: Path) -> Path:
    """A training checkpoint of a 2-class resnet10 ('cat', 'dog') with SGD state."""
    model = create_model("resnet10", class_names=["cat", "dog"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return save_training(tmp_path / "last.safetensors", model, optimizer, None, epoch=1, step=5)


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    restore_training(path, model, optimizer, None)


def _no_bias_head(model: nn.Module) -> nn.Module:
    model.fc = nn.Linear(model.fc.in_features, model.fc.out_features, bias=False)
    return model


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: create_model("resnet18", class_names=["cat", "dog"]),
            r"checkpoint is a 'resnet10'.*builds a 'resnet18'",
        ),
        (lambda: create_model("resnet10", class_names=["cat", "dog", "bird"]), r"for classes \['cat', 'dog'\]"),
        (lambda: create_model("resnet10", class_names=["dog", "cat"]), r"for classes \['cat', 'dog'\]"),
        (lambda: _no_bias_head(create_model("resnet10", class_names=["cat", "dog"])), r"does not fit this run"),
    ],
    ids=["other_model", "more_classes", "other_class_order", "other_layers"],
)
def test_resume_into_another_model_is_one_config_error(tmp_path: Path, make, message: str) -> None:
    path = _saved(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        _resume(path, make())
    assert str(path) in str(info.value) and "\n" not in str(info.value) and "spec.yaml" in str(info.value)


def test_resume_with_other_optimizer_groups_is_one_config_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    model = create_model("resnet10", class_names=["cat", "dog"])
    frozen_stem = [p for n, p in model.named_parameters() if not n.startswith("conv1")]
    with pytest.raises(ConfigError, match="does not fit this run") as info:
        _resume(path, model, torch.optim.SGD(frozen_stem, lr=0.1, momentum=0.9))
    assert "\n" not in str(info.value)


def test_resume_into_the_same_model_still_works(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    model = create_model("resnet10", class_names=["cat", "dog"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert restore_training(path, model, optimizer, None)[:2] == (1, 5)
