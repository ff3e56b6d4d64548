"""``save_weights_only``: a training checkpoint without its optimizer, RNG and raw-weight copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lanner.core.errors import ConfigError
from lanner.models import create_model, load_checkpoint, load_extra_tensors, model_from_checkpoint, save_weights_only
from lanner.train.checkpointing import restore_training, save_training
from lanner.train.ema import ModelEMA


def test_weights_only_keeps_the_ema_weights_and_metadata_and_drops_the_training_state(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("resnet10", class_names=["cat", "dog"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()  # momentum buffers: optimizer state worth dropping
    ema = ModelEMA(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # the raw weights now differ from the EMA ones
    full = save_training(tmp_path / "best.safetensors", model, optimizer, ema, epoch=3, step=30, meta={"mAP50": 0.5})
    slim = save_weights_only(full, tmp_path / "slim.safetensors")

    assert slim.stat().st_size < full.stat().st_size / 2
    state, doc = load_checkpoint(slim)
    ema_state = ema.module.state_dict()
    assert set(state) == set(ema_state) and all(torch.equal(state[k], ema_state[k]) for k in state)
    assert load_extra_tensors(slim) == {} and doc["extra_tensors"] == []
    assert doc["meta"]["mAP50"] == 0.5 and doc["meta"]["epoch"] == 3
    assert not {"optimizer", "rng", "scaler", "ema_updates"} & set(doc["meta"])
    assert tuple(model_from_checkpoint(slim).info.class_names) == ("cat", "dog")
    with pytest.raises(ConfigError, match="no training state"):  # a weights file cannot resume
        restore_training(slim, model, optimizer, None)
