"""The whole CPU path on a tiny synthetic set: render → train → evaluate → export ONNX → evaluate the ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import render, tiny_spec

from lanner.models import export_onnx, model_from_checkpoint
from lanner.train.evaluate import evaluate_model
from lanner.train.spec import load_spec
from lanner.train.trainer import train


@pytest.mark.slow
def test_synth_train_evaluate_export(tmp_path: Path) -> None:
    train_set, val_set = render(tmp_path / "train", 24, seed=3), render(tmp_path / "val", 8, seed=4)
    data = tiny_spec(
        train_set,
        val_set,
        model={"input_size": [128, 224]},
        training={"epochs": 2, "batch_size": 8, "max_steps_per_epoch": 2, "lr": 0.005},
    )
    result = train(load_spec(data=data), tmp_path / "results")
    assert result.best is not None and result.best.is_file() and len(result.history) == 2

    report = evaluate_model(result.best, val_set, tmp_path / "eval", batch_size=8)
    assert report.task == "detection" and 0.0 <= report.metrics.map50 <= 1.0

    model = model_from_checkpoint(result.best).eval()
    exported = export_onnx(model, tmp_path / "model.onnx")
    assert max(exported.max_abs_diff.values()) < 1e-2
    assert exported.input_shape == (1, 3, 128, 224)
    onnx_report = evaluate_model(exported.path, val_set, batch_size=8)
    assert onnx_report.metrics.map50 == pytest.approx(report.metrics.map50, abs=0.02)
