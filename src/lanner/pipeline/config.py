"""``PipelineConfig``: the one YAML file that describes a streaming pipeline.

Sections (each a ``Section``: unknown keys are errors with file:line and a did-you-mean):

- ``sources``: list of inputs (``lanner.pipeline.sources.SourceConfig``),
- ``mux``: batching (``MuxConfig``),
- ``primary``: the detector (``DetectorConfig``), ``secondary``: classifiers on object crops,
- ``tracker``: ``type`` (iou | sort | bytetrack) and that tracker's ``params``,
- ``analytics``, ``osd``, ``tiler``: counting lines/ROIs, overlays, the mosaic,
- ``sinks``: outputs (video, jsonl, mqtt, kafka, redis), each behind its own bounded queue,
- ``telemetry``: status interval, Prometheus port, summary file,
- ``queue_size`` (frames between stages), ``duration_s`` (stop after), ``control_port`` (REST add/remove).

Example:
    >>> cfg = load_pipeline_config(data={"sources": [{"uri": "cam0.mp4"}], "tracker": {"type": "sort"}},
    ...                            overrides=["mux.batch_size=2"])
    >>> cfg.mux.batch_size, cfg.tracker.type
    (2, 'sort')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from lanner.core.assets import resolve_asset
from lanner.core.config import Section, load_config
from lanner.core.errors import ConfigError
from lanner.pipeline.analytics import AnalyticsConfig
from lanner.pipeline.draw.config import OsdConfig, TilerConfig
from lanner.pipeline.infer import DetectorConfig, SecondaryConfig
from lanner.pipeline.mux import MuxConfig
from lanner.pipeline.sinks.config import SinkConfig
from lanner.pipeline.sources import SourceConfig
from lanner.pipeline.telemetry import TelemetryConfig
from lanner.pipeline.track import create_tracker, tracker_names


class TrackerConfig(Section):
    """The ``tracker`` section: which tracker, and its own keys under ``params`` (checked on load)."""

    type: str = "bytetrack"
    params: dict[str, Any] = {}

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in tracker_names():
            raise ValueError(f"unknown tracker {value!r}; use one of {', '.join(tracker_names())}")
        return value

    @model_validator(mode="after")
    def _params(self) -> TrackerConfig:
        try:
            create_tracker(self.type, self.params)
        except ConfigError as exc:
            raise ValueError(f"tracker.params: {exc.what}" + (f" ({exc.where})" if exc.where else "")
                             + (f"; {exc.fix}" if exc.fix else "")) from None  # fmt: skip
        return self


class PipelineConfig(Section):
    """A whole pipeline (see the module docstring)."""

    sources: list[SourceConfig] = []
    mux: MuxConfig = MuxConfig()
    primary: DetectorConfig | None = None
    secondary: list[SecondaryConfig] = []
    tracker: TrackerConfig | None = None
    analytics: AnalyticsConfig | None = None
    osd: OsdConfig | None = None
    tiler: TilerConfig | None = None
    sinks: list[SinkConfig] = []
    telemetry: TelemetryConfig = TelemetryConfig()
    queue_size: int = Field(4, ge=1)  # batches waiting between two stages (bounded: memory stays flat)
    duration_s: float | None = Field(None, gt=0)
    control_port: int | None = Field(None, ge=0, le=65535)

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if not self.sources and self.control_port is None:
            raise ValueError("no sources; add at least one under 'sources' (or set control_port to add them later)")
        if self.analytics is not None:  # sources may be added later through control_port: no bound then
            self.analytics.check_ids(num_sources=len(self.sources) if self.control_port is None else None)
        if self.secondary and self.primary is None:
            raise ValueError("secondary classifiers need a primary detector; add a 'primary' section")
        names = [s.name or resolve_asset(s.model).stem for s in self.secondary]
        if len(set(names)) != len(names):
            raise ValueError(f"secondary classifiers need distinct names, got {names}; set 'name' on each")
        return self


def load_pipeline_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), data: Mapping[str, Any] | None = None
) -> PipelineConfig:
    """Defaults, then the YAML file (or ``data``), then ``a.b=c`` overrides, validated."""
    return load_config(PipelineConfig, path, overrides, data=data)


def missing_inputs(config: PipelineConfig) -> list[str]:
    """The files ``config`` names that are not there (file sources, image folders, models), one line each.

    Validation checks values, not the file system (a camera may be plugged in later); ``lanner run --check``
    adds this so a config can be checked before it is deployed. URLs (rtsp://, http://) are not probed.
    """
    problems = []
    for i, source in enumerate(config.sources):
        if source.kind in ("file", "images") and "://" not in source.path and not Path(source.path).exists():
            problems.append(f"sources[{i}] {source.uri}: not found")
    models = [("primary", config.primary.model)] if config.primary is not None else []
    models += [(f"secondary[{i}]", s.model) for i, s in enumerate(config.secondary)]
    for where, model in models:
        if not resolve_asset(model).is_file():
            problems.append(f"{where}.model {model}: not found")
    return problems
