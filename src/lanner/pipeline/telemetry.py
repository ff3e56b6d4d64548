"""Pipeline telemetry: per-source FPS, per-stage latency, queue depths, drops and errors.

One ``Telemetry`` object is shared by the runner's threads (a lock guards it; every call is O(1)). It
feeds three outputs: a one-line status (``status_line``) and a rich table (``table``) printed every
``interval_s``, a Prometheus endpoint (``prometheus_port``; metrics are read at scrape time, so the hot
path never touches prometheus_client), and the end-of-run ``summary()`` written as ``summary.json``.

Example:
    >>> t = Telemetry(TelemetryConfig())
    >>> t.frame(0); t.frame(0); t.stage("infer", 0.010, frames=2)
    >>> t.snapshot()["sources"]["0"]["frames"], round(t.snapshot()["stages"]["infer"]["mean_ms"], 1)
    (2, 10.0)
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from lanner.core.config import Section

_LATENCY_WINDOW = 2000  # samples kept per stage for percentiles
_FPS_WINDOW_S = 5.0


@dataclass
class RunSummary:
    """What a run did: frames per source, FPS, stage latencies, sink counters, analytics counts, errors."""

    duration_s: float
    frames: int
    fps: float
    stopped_by: str  # "eos" | "duration" | "signal" | "stop" | "error"
    sources: dict[str, dict[str, Any]]
    stages: dict[str, dict[str, float]]
    sinks: dict[str, dict[str, Any]]
    queues_max: dict[str, int]
    analytics: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def dropped(self) -> int:
        """Frames dropped anywhere (sink queues and live sources)."""
        return sum(int(s.get("dropped", 0)) for s in self.sinks.values()) + sum(
            int(s.get("dropped", 0)) for s in self.sources.values()
        )


class TelemetryConfig(Section):
    """The ``telemetry`` section."""

    interval_s: float = Field(5.0, ge=0.0)  # print status every N seconds (0: never)
    prometheus_port: int | None = Field(None, ge=0, le=65535)  # None: no endpoint; 0: any free port
    summary_path: str | None = "summary.json"  # end-of-run JSON summary (None: not written)


class _Stage:
    def __init__(self) -> None:
        self.calls = 0
        self.frames = 0
        self.total_s = 0.0
        self.max_s = 0.0
        self.recent: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)

    def add(self, seconds: float, frames: int) -> None:
        self.calls += 1
        self.frames += frames
        self.total_s += seconds
        self.max_s = max(self.max_s, seconds)
        self.recent.append(seconds)

    def report(self) -> dict[str, float]:
        recent = np.asarray(self.recent) * 1000.0 if self.recent else np.zeros(1)
        return {
            "calls": self.calls,
            "frames": self.frames,
            "total_s": round(self.total_s, 4),
            "mean_ms": 1000.0 * self.total_s / max(self.calls, 1),
            "p50_ms": float(np.percentile(recent, 50)),
            "p95_ms": float(np.percentile(recent, 95)),
            "max_ms": 1000.0 * self.max_s,
        }


class _Source:
    def __init__(self, now: float) -> None:
        self.frames = 0
        self.first = now
        self.last = now
        self.times: collections.deque[float] = collections.deque()
        self.ended = False
        self.error: str | None = None


class Telemetry:
    """Thread-safe counters for a running pipeline (see the module docstring)."""

    def __init__(self, config: TelemetryConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or TelemetryConfig()
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._sources: dict[int, _Source] = {}
        self._stages: dict[str, _Stage] = {}
        self._drops: collections.Counter[str] = collections.Counter()
        self._queues: dict[str, Callable[[], int]] = {}
        self._drop_counters: dict[str, Callable[[], int]] = {}
        self._errors: list[str] = []
        self._server: Any = None
        self.prometheus_port: int | None = None

    def frame(self, source_id: int, n: int = 1) -> None:
        """Count ``n`` frames of ``source_id`` as fully processed."""
        now = self.clock()
        with self._lock:
            src = self._sources.get(source_id)
            if src is None:
                src = self._sources[source_id] = _Source(now)
            src.frames += n
            src.last = now
            src.times.append(now)
            while src.times and now - src.times[0] > _FPS_WINDOW_S:
                src.times.popleft()

    def source_ended(self, source_id: int, error: str | None = None) -> None:
        """Mark a source as ended (EOS, removed, or failed with ``error``)."""
        with self._lock:
            src = self._sources.setdefault(source_id, _Source(self.clock()))
            src.ended = True
            if error and src.error is None:
                src.error = error
                self._errors.append(f"source {source_id}: {error}")

    def stage(self, name: str, seconds: float, frames: int = 1) -> None:
        """Record one call of stage ``name`` that took ``seconds`` for ``frames`` frames."""
        with self._lock:
            stage = self._stages.get(name)
            if stage is None:
                stage = self._stages[name] = _Stage()
            stage.add(seconds, frames)

    def drop(self, where: str, n: int = 1) -> None:
        """Count ``n`` frames dropped at ``where`` (a queue or sink name)."""
        with self._lock:
            self._drops[where] += n

    def watch_queue(self, name: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the depth of queue ``name`` (read when telemetry is reported)."""
        with self._lock:
            self._queues[name] = depth

    def watch_drops(self, name: str, count: Callable[[], int]) -> None:
        """Report ``count()`` as the frames dropped at ``name`` (e.g. a sink's or a live source's own counter)."""
        with self._lock:
            self._drop_counters[name] = count

    def error(self, message: str) -> None:
        """Record an error line (a failing source, sink or stage)."""
        with self._lock:
            self._errors.append(message)

    def snapshot(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready data."""
        now = self.clock()
        with self._lock:
            sources = {str(sid): self._source_report(s, now) for sid, s in sorted(self._sources.items())}
            stages = {name: s.report() for name, s in self._stages.items()}
            queues = {name: int(depth()) for name, depth in self._queues.items()}
            return {
                "elapsed_s": round(now - self.started, 3),
                "frames": sum(s.frames for s in self._sources.values()),
                "sources": sources,
                "stages": stages,
                "queues": queues,
                "drops": dict(self._drops) | {name: int(count()) for name, count in self._drop_counters.items()},
                "errors": list(self._errors),
            }

    @staticmethod
    def _source_report(src: _Source, now: float) -> dict[str, Any]:
        span = (src.times[-1] - src.times[0]) if len(src.times) > 1 else 0.0
        fps_now = (len(src.times) - 1) / span if span > 0 else 0.0
        fps_avg = src.frames / max(src.last - src.first, 1e-9) if src.frames > 1 else 0.0
        return {"frames": src.frames, "fps": round(fps_now, 2), "fps_avg": round(fps_avg, 2),
                "ended": src.ended, "error": src.error}  # fmt: skip

    def status_line(self) -> str:
        """One line: total FPS, per-source FPS, inference latency, queue depths, drops."""
        snap = self.snapshot()
        fps = sum(s["fps"] for s in snap["sources"].values())
        per_source = " ".join(f"{sid}:{s['fps']:.0f}" for sid, s in snap["sources"].items())
        infer = snap["stages"].get("infer")
        latency = f" infer {infer['mean_ms']:.1f}ms" if infer else ""
        queues = " ".join(f"{k}={v}" for k, v in snap["queues"].items())
        drops = sum(snap["drops"].values())
        return (
            f"{snap['elapsed_s']:.0f}s {snap['frames']} frames {fps:.1f} fps [{per_source}]{latency} "
            f"queues[{queues}] drops {drops}"
        )

    def start_prometheus(self, port: int) -> int:
        """Serve the metrics on ``http://0.0.0.0:port/metrics``; returns the bound port (0: any free one)."""
        import prometheus_client
        from prometheus_client.core import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        server, _thread = prometheus_client.start_http_server(port, registry=registry)
        self._server = server
        self.prometheus_port = int(server.server_address[1])
        return self.prometheus_port

    def stop_prometheus(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Collector:
    """Builds Prometheus metric families from a telemetry snapshot at scrape time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.telemetry.snapshot()
        frames = CounterMetricFamily("lanner_frames", "Frames processed per source", labels=["source"])
        fps = GaugeMetricFamily("lanner_source_fps", "Frames per second per source (recent)", labels=["source"])
        for sid, src in snap["sources"].items():
            frames.add_metric([sid], src["frames"])
            fps.add_metric([sid], src["fps"])
        latency = GaugeMetricFamily("lanner_stage_latency_ms", "Stage latency per call", labels=["stage", "stat"])
        for name, stage in snap["stages"].items():
            for stat in ("mean_ms", "p50_ms", "p95_ms", "max_ms"):
                latency.add_metric([name, stat[:-3]], stage[stat])
        depth = GaugeMetricFamily("lanner_queue_depth", "Items waiting per queue", labels=["queue"])
        for name, value in snap["queues"].items():
            depth.add_metric([name], value)
        drops = CounterMetricFamily("lanner_dropped_frames", "Frames dropped per queue or sink", labels=["where"])
        for name, value in snap["drops"].items():
            drops.add_metric([name], value)
        errors = CounterMetricFamily("lanner_errors", "Errors reported (sources, sinks, stages)")
        errors.add_metric([], len(snap["errors"]))
        yield from (frames, fps, latency, depth, drops, errors)


def write_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the end-of-run summary as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return path
