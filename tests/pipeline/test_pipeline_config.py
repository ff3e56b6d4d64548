"""``PipelineConfig``: sections compose, unknown keys point at file:line with a did-you-mean, cross-checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanner.core.errors import ConfigError
from lanner.pipeline.config import PipelineConfig, load_pipeline_config
from lanner.pipeline.demo import bundled_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_configs_load() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        config = load_pipeline_config(path)
        assert isinstance(config, PipelineConfig) and config.sources, path


def test_demo_config_has_the_demo_stages() -> None:
    config = load_pipeline_config(data=bundled_config())  # lanner/assets/demo.yaml (`lanner demo`)
    assert len(config.sources) == 4 and config.tracker.type == "bytetrack"
    assert config.analytics.lines and config.osd and config.tiler
    assert {s.type for s in config.sinks} == {"video", "jsonl"}


def test_unknown_key_names_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("sources:\n  - uri: a.mp4\nmux:\n  batch_sise: 4\n")
    with pytest.raises(ConfigError, match=r"p.yaml:4: mux.batch_sise: unknown key; did you mean 'batch_size'\?"):
        load_pipeline_config(path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "no sources"),
        ({"sources": [{"uri": "a.mp4"}], "tracker": {"type": "deepsort"}}, "unknown tracker 'deepsort'"),
        ({"sources": [{"uri": "a.mp4"}], "tracker": {"params": {"trak_thresh": 0.5}}}, "did you mean 'track_thresh'"),
        ({"sources": [{"uri": "a.mp4"}], "secondary": [{"model": "c.onnx"}]}, "need a primary detector"),
        ({"sources": [{"uri": "a.mp4"}], "primary": {"model": "d.onnx", "interval": -1}}, "primary.interval"),
        ({"sources": [{"uri": "a.mp4"}], "sinks": [{"type": "ftp"}]}, "sinks.0"),
        (
            {"sources": [{"uri": "a.mp4"}], "primary": {"model": "d.onnx"},
             "secondary": [{"model": "x/c.onnx"}, {"model": "y/c.onnx"}]},
            "distinct names",
        ),
    ],
)  # fmt: skip
def test_bad_configs(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_pipeline_config(data=data)


def test_overrides_and_defaults() -> None:
    config = load_pipeline_config(
        data={"sources": [{"uri": "a.mp4"}]}, overrides=["primary.model=d.onnx", "primary.interval=2", "queue_size=8"]
    )
    assert config.primary.interval == 2 and config.queue_size == 8
    assert config.tracker is None and config.sinks == [] and config.telemetry.summary_path == "summary.json"
    assert load_pipeline_config(data={"control_port": 9000}).sources == []  # sources may come over REST
