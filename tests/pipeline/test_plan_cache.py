"""``runtime: lanner`` with an ONNX model: a plan built on first use, cached per model/batch/machine, reused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from test_infer import known_detector_onnx

from lanner.engine import build as engine_build
from lanner.engine.plan import read_plan
from lanner.pipeline.infer import Detector, DetectorConfig
from lanner.pipeline.infer.plan_cache import CACHE_ENV, cached_plan


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Plans go to a fresh cache directory; every build is recorded (profiles asked for)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    calls: list[str] = []
    real = engine_build.build_engine

    def counting(model, config=None, **kw):
        calls.append(",".join(config.batch) if config else "")
        return real(model, config, **kw)

    monkeypatch.setattr(engine_build, "build_engine", counting)
    return calls


def test_a_plan_is_built_on_first_use_and_reused(tmp_path: Path, builds: list[str]) -> None:
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    first = Detector(DetectorConfig(model=str(onnx_path), runtime="lanner", plan_batch=2))
    again = Detector(DetectorConfig(model=str(onnx_path), runtime="lanner", plan_batch=2))
    assert builds == ["1:2:2"]  # built once, at the asked batch
    assert type(first.runtime).__name__ == "PlanRuntime" and first.runtime.path == again.runtime.path
    assert first.runtime.path.parent == tmp_path / "cache" and first.runtime.path.suffix == ".plan"
    assert read_plan(first.runtime.path).profiles[0].opt == 2
    images = [np.zeros((100, 200, 3), np.uint8)] * 3
    reference = Detector(DetectorConfig(model=str(onnx_path))).detect(images)  # ONNX Runtime
    assert first.detect(images) == reference


def test_another_batch_or_model_gets_its_own_plan(tmp_path: Path, builds: list[str]) -> None:
    a = known_detector_onnx(tmp_path / "a.onnx", batch="n")
    b = known_detector_onnx(tmp_path / "b.onnx", batch="n", labels="bus,person")  # other metadata: other bytes
    paths = {cached_plan(p.read_bytes(), name=p.name, batch=n)[0] for p in (a, b) for n in (1, 4)}
    assert len(paths) == 4 and len(builds) == 4


def test_a_fixed_batch_model_is_built_without_profiles(tmp_path: Path, builds: list[str]) -> None:
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch=1)
    Detector(DetectorConfig(model=str(onnx_path), runtime="lanner"))
    assert builds == [""]


def test_an_unreadable_cached_plan_is_rebuilt_with_a_warning(
    tmp_path: Path, builds: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    path, _ = cached_plan(onnx_path.read_bytes(), name="d.onnx", batch=2)
    path.write_bytes(path.read_bytes()[:100])  # a half-written file
    with caplog.at_level(logging.WARNING, logger="lanner.pipeline"):
        again, _ = cached_plan(onnx_path.read_bytes(), name="d.onnx", batch=2)
    assert again == path and len(builds) == 2
    assert "unusable" in caplog.text
    read_plan(path)  # whole again
    assert not list(path.parent.glob("*.partial"))


def test_the_pipeline_tunes_the_plan_at_the_mux_batch(tmp_path: Path, builds: list[str]) -> None:
    from lanner.pipeline.config import load_pipeline_config
    from lanner.pipeline.runner import Pipeline

    frames = tmp_path / "frames"
    frames.mkdir()
    import cv2

    cv2.imwrite(str(frames / "000.png"), np.zeros((64, 64, 3), np.uint8))
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    data = {
        "sources": [{"uri": str(frames)}],
        "mux": {"batch_size": 3},
        "primary": {"model": str(onnx_path), "runtime": "lanner", "workers": 2},
    }
    pipeline = Pipeline(load_pipeline_config(data=data))
    assert builds == ["1:3:3"]  # two workers, one build: the second found it in the cache
    assert len({d.runtime.path for d in pipeline.detectors}) == 1


def test_a_plan_runtime_runs_on_the_configured_threads(tmp_path: Path, builds: list[str]) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
        for threads in (1, 2):
            Detector(DetectorConfig(model=str(onnx_path), runtime="lanner", threads=threads))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_an_unwritable_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lanner.core.errors import ConfigError

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "plans"))
    onnx_path = known_detector_onnx(tmp_path / "d.onnx", batch="n")
    with pytest.raises(ConfigError, match="cannot write the plan cache") as info:
        Detector(DetectorConfig(model=str(onnx_path), runtime="lanner"))
    assert CACHE_ENV in str(info.value) or CACHE_ENV in (info.value.fix or "")
