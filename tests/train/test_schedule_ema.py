"""LR schedules (cosine with warm-up, TAO soft-start annealing) and the weight EMA."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from lanner.train.ema import ModelEMA
from lanner.train.schedule import LRSchedule
from lanner.train.spec import TrainingSection


def test_cosine_warms_up_then_anneals_to_the_floor() -> None:
    s = LRSchedule(TrainingSection(epochs=10, warmup_epochs=2, min_lr_ratio=0.1), steps_per_epoch=10)
    assert s.factor(0) == 0.0 and s.factor(10) == pytest.approx(0.25) and s.factor(20) == pytest.approx(1.0)
    values = [s.factor(k) for k in range(20, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert s.factor(100) == pytest.approx(0.1) and s.factor(500) == pytest.approx(0.1)


def test_soft_start_ramps_holds_and_anneals() -> None:
    section = TrainingSection(epochs=10, schedule="soft_start", soft_start=0.2, annealing=0.3, min_lr_ratio=0.01)
    s = LRSchedule(section, steps_per_epoch=10)
    assert s.factor(0) == pytest.approx(0.01) and s.factor(10) == pytest.approx(0.1)
    assert s.factor(20) == s.factor(50) == s.factor(70) == 1.0
    assert s.factor(85) == pytest.approx(0.1) and s.factor(100) == pytest.approx(0.01)


def test_ema_ramps_its_decay_and_tracks_the_model() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked.fill_(7)
    start = ema.module[0].weight.clone()
    ema.update(model)
    d = 0.9 * (1 - torch.exp(torch.tensor(-1 / 2000))).item()
    expected = start * d + model[0].weight * (1 - d)
    assert torch.allclose(ema.module[0].weight, expected) and ema.module[1].num_batches_tracked.item() == 7
    assert not ema.module[0].weight.requires_grad and ema.updates == 1
