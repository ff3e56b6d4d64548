"""The runner end to end on short synthetic videos: every frame through every stage, summary counts,
a blocked sink that must not stall the run, a failing source that must not stop the others, the
detector interval, duration and Ctrl-C stops."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from test_infer import colour_classifier_onnx, known_detector_onnx, small_yolox

from lanner.core.errors import SourceError
from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.runner import Pipeline
from lanner.pipeline.sinks.queued import QueuedSink
from lanner.pipeline.sources import SourceConfig

video = pytest.importorskip("lanner.data.synth.video")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    config = video.VideoSynthConfig(cameras=2, seconds=1.5, fps=10, width=160, height=96, seed=3)
    return video.generate_videos(config, tmp_path_factory.mktemp("clips"), workers=1)


@pytest.fixture(scope="module")
def frame_counts(clips: list[Path]) -> list[int]:
    counts = []
    for path in clips:
        with av.open(str(path)) as container:
            counts.append(sum(1 for _ in container.decode(video=0)))
    return counts


@pytest.fixture(scope="module")
def known_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return known_detector_onnx(tmp_path_factory.mktemp("model") / "known.onnx", batch="n")


def base_config(clips: list[Path], model: Path, out: Path, **extra: object) -> dict:
    return {
        "sources": [{"uri": str(p)} for p in clips],
        "mux": {"batch_size": 2, "batched_push_timeout_ms": 20},
        "primary": {"model": str(model), "conf_threshold": 0.3},
        "tracker": {"type": "bytetrack"},
        "sinks": [{"type": "jsonl", "path": str(out / "events.jsonl")}],
        "telemetry": {"interval_s": 0, "summary_path": str(out / "summary.json")},
    } | extra


class Recorder:
    """A sink that keeps (source, frame, inferred boxes, track ids) of what it gets."""

    name = "recorder"

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int, list[int] | None]] = []

    def write(self, frame) -> None:
        ids = frame.detections.tracker_id
        self.frames.append(
            (frame.source_id, frame.frame_idx, len(frame.detections), None if ids is None else ids.tolist())
        )

    def close(self) -> None:
        pass


class Blocked:
    """A sink whose write blocks until close (a broker that hangs)."""

    name = "blocked"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def write(self, frame) -> None:
        self.calls += 1
        self.release.wait()

    def close(self) -> None:
        self.release.set()


@pytest.mark.slow
def test_full_run_random_yolox(
    clips: list[Path], frame_counts: list[int], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = small_yolox(tmp_path_factory)
    data = base_config(clips, model, tmp_path)
    data["primary"] |= {"conf_threshold": 1e-5, "max_det": 20}  # random weights: scores are tiny; keep some boxes
    data["analytics"] = {"lines": [{"name": "mid", "p1": [0, 48], "p2": [160, 48]}]}
    data["osd"] = {}
    data["tiler"] = {"rows": 1, "columns": 2, "width": 320, "height": 96}
    data["sinks"].append({"type": "video", "path": str(tmp_path / "tiled.mp4"), "fps": 10, "preset": "ultrafast"})
    summary = Pipeline(load_pipeline_config(data=data)).run()
    assert summary.stopped_by == "eos" and summary.errors == []
    assert summary.frames == sum(frame_counts)
    assert [summary.sources[str(i)]["frames"] for i in range(2)] == frame_counts
    assert [summary.sources[str(i)]["inferred"] for i in range(2)] == frame_counts
    assert summary.stages["infer"]["frames"] == sum(frame_counts)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == sum(frame_counts)
    assert {json.loads(line)["source"] for line in lines} == {0, 1}
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["frames"] == sum(frame_counts) and "mid" in written["analytics"]["lines"]
    assert written["config"]["primary"]["max_det"] == 20  # the resolved config travels with the results
    with av.open(str(tmp_path / "tiled.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (320, 96)
        assert sum(1 for _ in container.decode(stream)) >= max(frame_counts)


def test_tracks_flow_to_sinks_and_blocked_sink_only_drops(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    recorder, blocked = Recorder(), Blocked()
    config = load_pipeline_config(data=base_config(clips, known_model, tmp_path))
    blocked_queue = QueuedSink(blocked, queue_size=2, timeout_s=0.2)
    pipeline = Pipeline(config, sinks=[recorder, blocked_queue])
    summary = pipeline.run()
    total = sum(frame_counts)
    assert summary.frames == total and len(recorder.frames) == total
    assert summary.sinks["blocked"]["dropped"] == total - 1  # one frame is stuck in write, the rest dropped
    assert summary.sinks["recorder"]["dropped"] == 0
    assert summary.dropped == total - 1
    assert pipeline.telemetry.snapshot()["drops"]["sink:blocked"] == total - 1  # also on Prometheus
    # the constant detector gives 2 boxes per frame; ByteTrack confirms them as tracks 1 and 2 per source
    late = [f for f in recorder.frames if f[1] >= 3]
    assert late and all(sorted(ids) == [1, 2] for *_, ids in late)
    per_source = {s: [f[1] for f in recorder.frames if f[0] == s] for s in (0, 1)}
    assert [per_source[s] for s in (0, 1)] == [list(range(n)) for n in frame_counts]  # in order, none lost


def test_interval_fills_skipped_frames_from_tracks(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    data = base_config(clips, known_model, tmp_path)
    data["primary"]["interval"] = 2
    recorder = Recorder()
    summary = Pipeline(load_pipeline_config(data=data), sinks=[recorder]).run()
    assert [summary.sources[str(i)]["inferred"] for i in range(2)] == [-(-n // 3) for n in frame_counts]
    assert summary.frames == sum(frame_counts)
    skipped = [f for f in recorder.frames if f[1] % 3 and f[1] > 6]
    assert skipped and all(n == 2 and sorted(ids) == [1, 2] for _, _, n, ids in skipped)


def test_failing_source_is_reported_and_others_finish(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    data = clips[0].read_bytes()
    broken.write_bytes(data[: len(data) // 3])  # truncated: the index (moov) is gone
    cfg = load_pipeline_config(data=base_config([clips[0], broken, clips[1]], known_model, tmp_path))
    summary = Pipeline(cfg).run()
    assert summary.frames == sum(frame_counts)
    assert [summary.sources[str(i)]["frames"] for i in (0, 2)] == frame_counts
    assert len(summary.errors) == 1 and "broken.mp4" in summary.errors[0]
    assert summary.sources["1"]["error"]
    every = base_config([broken], known_model, tmp_path)
    with pytest.raises(SourceError, match=r"broken\.mp4"):
        Pipeline(load_pipeline_config(data=every))


def test_duration_and_sigint_stop_and_drain(clips: list[Path], known_model: Path, tmp_path: Path) -> None:
    data = base_config(clips[:1], known_model, tmp_path)
    data["sources"][0]["loop"] = True  # endless
    data["duration_s"] = 0.5
    data["telemetry"]["prometheus_port"] = 0  # any free port
    pipeline = Pipeline(load_pipeline_config(data=data))
    summary = pipeline.run()
    assert pipeline.telemetry.prometheus_port > 0
    assert summary.stopped_by == "duration" and summary.frames > 0
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == summary.frames  # drained, closed
    del data["duration_s"]
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when pytest runs in the background
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    summary = Pipeline(load_pipeline_config(data=data)).run()
    timer.join()
    assert summary.stopped_by == "signal" and summary.frames > 0
    assert signal.getsignal(signal.SIGINT) is before  # the run's own handler is gone again


def test_stage_failure_ends_the_run_with_the_error(clips: list[Path], known_model: Path, tmp_path: Path) -> None:
    class Boom(RuntimeError):
        pass

    pipeline = Pipeline(load_pipeline_config(data=base_config(clips, known_model, tmp_path)))

    def explode(*args: object) -> None:
        raise Boom("tracking exploded")

    pipeline.gaps.observe = explode  # the post stage fails on its first frame
    with pytest.raises(Boom):
        pipeline.run()
    assert np.isfinite(pipeline.summary().duration_s)


def test_sources_added_and_removed_while_running(clips: list[Path], known_model: Path, tmp_path: Path) -> None:
    data = base_config(clips[:1], known_model, tmp_path)
    data["sources"][0]["loop"] = True
    recorder = Recorder()
    pipeline = Pipeline(load_pipeline_config(data=data), sinks=[recorder])
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("summary", pipeline.run()))
    runner.start()

    def wait_for(condition, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert condition()

    wait_for(lambda: len(recorder.frames) > 5)
    added = pipeline.add_source(SourceConfig(uri=str(clips[1]), loop=True))
    assert added == 1
    wait_for(lambda: sum(f[0] == added for f in recorder.frames) > 5)
    pipeline.remove_source(added)
    wait_for(lambda: pipeline.telemetry.snapshot()["sources"][str(added)]["ended"])
    seen = len(recorder.frames)
    wait_for(lambda: len(recorder.frames) > seen + 5)  # source 0 goes on
    pipeline.stop()
    runner.join(timeout=20)
    summary = result["summary"]
    assert summary.stopped_by == "stop" and summary.errors == []
    assert summary.sources["1"]["frames"] > 5 and summary.sources["0"]["frames"] > summary.sources["1"]["frames"]


def test_failing_sink_is_reported_and_isolated(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    class Failing(Recorder):
        name = "failing"

        def write(self, frame) -> None:
            raise ConnectionError("broker went away")

    recorder = Recorder()
    summary = Pipeline(
        load_pipeline_config(data=base_config(clips, known_model, tmp_path)), sinks=[Failing(), recorder]
    ).run()
    assert summary.frames == sum(frame_counts) == len(recorder.frames)
    assert summary.sinks["failing"]["failed"] == sum(frame_counts)
    assert summary.errors == ["sink failing: write failed: broker went away"]


def test_secondary_results_reach_the_sinks(clips: list[Path], known_model: Path, tmp_path: Path) -> None:
    data = base_config(clips[:1], known_model, tmp_path)
    colour = colour_classifier_onnx(tmp_path / "colour.onnx")
    data["secondary"] = [{"model": str(colour), "operate_on_class_ids": [0], "min_width": 1, "min_height": 1}]
    summary = Pipeline(load_pipeline_config(data=data)).run()
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    objects = [o for r in records for o in r["objects"]]
    assert len(records) == summary.frames and objects
    assert all((o["colour_class_id"] >= 0) == (o["class_id"] == 0) for o in objects)


class Keeper:
    """A sink that keeps every frame object it gets (EndOfStream messages included)."""

    name = "keeper"

    def __init__(self, stop_after: int | None = None, pipeline: Pipeline | None = None) -> None:
        self.frames: list = []
        self.stop_after, self.pipeline = stop_after, pipeline

    def write(self, frame) -> None:
        self.frames.append(frame)
        if self.stop_after is not None and len(self.frames) == self.stop_after:
            self.pipeline.stop()

    def close(self) -> None:
        pass


EVERYWHERE = [[-1, -1], [1000, -1], [1000, 1000], [-1, 1000]]


def test_dwell_pending_at_eos_reaches_every_sink_after_the_last_frame(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    from lanner.pipeline.sinks import EndOfStream

    data = base_config(clips, known_model, tmp_path, analytics={"rois": [{"name": "all", "polygon": EVERYWHERE}]})
    keeper = Keeper()
    summary = Pipeline(load_pipeline_config(data=data), sinks=[keeper]).run()
    assert summary.stopped_by == "eos" and summary.frames == sum(frame_counts)
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    for sid, count in enumerate(frame_counts):
        mine = [r for r in records if r["source"] == sid]
        assert len(mine) == count + 1 and all("end_of_stream" not in r for r in mine[:-1])
        last = mine[-1]  # the two constant boxes are tracks 1 and 2, inside the ROI until the file ends
        assert last["end_of_stream"] is True and last["frame"] == count - 1
        dwell = [e for e in last["events"] if e["type"] == "dwell"]
        assert sorted(e["tracker_id"] for e in dwell) == [1, 2]
        assert all(e["end_of_stream"] and e["dwell_s"] > 0 and e["source_id"] == sid for e in dwell)
        assert sorted(o["track_id"] for o in last["objects"]) == [1, 2]
        kept = [f for f in keeper.frames if f.source_id == sid]
        assert isinstance(kept[-1], EndOfStream) and not any(isinstance(f, EndOfStream) for f in kept[:-1])
    assert not any(e["type"] == "dwell" for r in records if "end_of_stream" not in r for e in r["events"])


def test_stop_flushes_pending_dwell_before_the_sinks_close(
    clips: list[Path], known_model: Path, tmp_path: Path
) -> None:
    from lanner.pipeline.sinks import EndOfStream

    data = base_config(clips, known_model, tmp_path, analytics={"rois": [{"name": "all", "polygon": EVERYWHERE}]})
    pipeline = Pipeline(load_pipeline_config(data=data))
    keeper = Keeper(stop_after=8, pipeline=pipeline)
    pipeline.frame_sinks.append(QueuedSink(keeper, 1000))
    summary = pipeline.run()
    assert summary.stopped_by == "stop"
    ends = [f for f in keeper.frames if isinstance(f, EndOfStream)]
    assert sorted(f.source_id for f in ends) == [0, 1]
    assert all(sorted(e["tracker_id"] for e in f.events) == [1, 2] for f in ends)


def test_parallel_inference_workers_keep_stream_order_and_the_interval(
    clips: list[Path], frame_counts: list[int], known_model: Path, tmp_path: Path
) -> None:
    data = base_config(clips, known_model, tmp_path, mux={"batch_size": 1, "batched_push_timeout_ms": 0})
    data["primary"] |= {"workers": 3, "threads": 1, "interval": 1}
    recorder = Recorder()
    pipeline = Pipeline(load_pipeline_config(data=data), sinks=[recorder])
    assert len(pipeline.detectors) == 3 and len({id(d.runtime) for d in pipeline.detectors}) == 3
    summary = pipeline.run()
    assert summary.stopped_by == "eos" and summary.frames == sum(frame_counts)
    assert [summary.sources[str(i)]["inferred"] for i in range(2)] == [-(-n // 2) for n in frame_counts]
    assert summary.stages["infer"]["frames"] == sum(-(-n // 2) for n in frame_counts)
    per_source = {s: [f[1] for f in recorder.frames if f[0] == s] for s in (0, 1)}
    assert [per_source[s] for s in (0, 1)] == [list(range(n)) for n in frame_counts]  # in order despite 3 workers
    late = [f for f in recorder.frames if f[1] >= 3]
    assert late and all(sorted(ids) == [1, 2] for *_, ids in late)  # the tracker saw the frames in order


def test_post_stage_restores_mux_order_of_batches_finished_out_of_order(
    clips: list[Path], known_model: Path, tmp_path: Path
) -> None:
    from lanner.core.frame import Batch, Frame
    from lanner.pipeline.runner import _END, _Item

    pipeline = Pipeline(load_pipeline_config(data=base_config(clips, known_model, tmp_path, queue_size=8)))
    image = np.zeros((8, 8, 3), np.uint8)
    for seq in (2, 0, 3, 1):  # how three workers might finish
        pipeline._queues[0].put(_Item(Batch([Frame(0, seq, seq, image)]), [True], [], {}, seq))
    pipeline._queues[0].put(_END)
    pipeline._post_loop()
    out = [pipeline._queues[1].get_nowait().batch.frames[0].frame_idx for _ in range(4)]
    assert out == [0, 1, 2, 3]


def test_sigterm_drains_like_ctrl_c(clips: list[Path], known_model: Path, tmp_path: Path) -> None:
    """``docker stop`` / systemd send SIGTERM: the run drains and closes its sinks instead of dying mid-file."""
    data = base_config(clips[:1], known_model, tmp_path)
    data["sources"][0]["loop"] = True  # endless
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    summary = Pipeline(load_pipeline_config(data=data)).run()
    timer.join()
    assert summary.stopped_by == "signal" and summary.frames > 0
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == summary.frames  # drained, closed
    assert signal.getsignal(signal.SIGTERM) is before
