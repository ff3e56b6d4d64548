"""Telemetry: per-source FPS, stage latency percentiles, queues, drops, errors, Prometheus text, summary file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lanner.pipeline.telemetry import Telemetry, TelemetryConfig, _Collector, write_summary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fps_latency_queues_drops_errors() -> None:
    clock = Clock()
    t = Telemetry(TelemetryConfig(), clock=clock)
    for _ in range(31):  # source 0 at 30 fps for 1 s, source 1 at 10 fps
        t.frame(0)
        clock.now += 1 / 30
    for _ in range(3):
        t.frame(1)
        clock.now += 0.1
    for ms in range(1, 101):
        t.stage("infer", ms / 1000, frames=2)
    t.watch_queue("q", lambda: 7)
    t.drop("sink:x", 1)
    t.watch_drops("sink:x", lambda: 2)  # a counter read at report time replaces the pushed one
    t.watch_drops("source:cam", lambda: 0)
    t.source_ended(1, "decode failed")
    t.source_ended(1, "second error is not repeated")
    snap = t.snapshot()
    assert snap["frames"] == 34
    assert snap["sources"]["0"]["fps"] == pytest.approx(30, rel=1e-6)
    assert snap["sources"]["1"]["fps"] == pytest.approx(10, rel=1e-6) and snap["sources"]["1"]["ended"]
    infer = snap["stages"]["infer"]
    assert (infer["calls"], infer["frames"]) == (100, 200)
    assert infer["mean_ms"] == pytest.approx(50.5) and infer["max_ms"] == pytest.approx(100)
    assert infer["p50_ms"] == pytest.approx(50.5) and infer["p95_ms"] == pytest.approx(95.05)
    assert snap["queues"] == {"q": 7} and snap["drops"] == {"sink:x": 2, "source:cam": 0}
    assert snap["errors"] == ["source 1: decode failed"]
    line = t.status_line()
    assert "34 frames" in line and "0:30 1:10" in line and "q=7" in line and "drops 2" in line


def test_fps_window_forgets_old_frames() -> None:
    clock = Clock()
    t = Telemetry(clock=clock)
    for _ in range(10):
        t.frame(0)
        clock.now += 0.1
    clock.now += 60  # a long stall: the recent rate must not remember the old frames
    t.frame(0)
    assert t.snapshot()["sources"]["0"]["fps"] == 0.0
    assert t.snapshot()["sources"]["0"]["frames"] == 11


def test_counters_are_thread_safe() -> None:
    t = Telemetry()
    workers = [
        threading.Thread(target=lambda: [t.frame(0) or t.stage("s", 0.001) for _ in range(2000)]) for _ in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert t.snapshot()["frames"] == 8000 and t.snapshot()["stages"]["s"]["calls"] == 8000


def test_prometheus_metrics_text() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.core import CollectorRegistry

    t = Telemetry()
    t.frame(3, n=5)
    t.stage("infer", 0.02)
    t.watch_queue("infer->post", lambda: 2)
    t.drop("sink:mqtt", 4)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(t))
    text = prometheus_client.generate_latest(registry).decode()
    assert 'lanner_frames_total{source="3"} 5.0' in text
    assert 'lanner_stage_latency_ms{stage="infer",stat="mean"} 20.0' in text
    assert 'lanner_queue_depth{queue="infer->post"} 2.0' in text
    assert 'lanner_dropped_frames_total{where="sink:mqtt"} 4.0' in text
    port = t.start_prometheus(0)
    assert port > 0
    t.stop_prometheus()


def test_write_summary(tmp_path: Path) -> None:
    path = write_summary({"frames": 3, "path": Path("x")}, tmp_path / "out" / "summary.json")
    assert json.loads(path.read_text()) == {"frames": 3, "path": "x"}
