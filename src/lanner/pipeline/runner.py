"""``Pipeline``: run a ``PipelineConfig`` end to end with threads and bounded queues.

Stages, each in its own thread, joined by bounded queues (so memory stays flat and a file source is
paced by the slowest stage instead of piling frames up)::

    sources (1 thread each) -> [mux] -> q -> [infer] x workers -> q -> [track + secondary + analytics]
                                                        -> q -> [draw + sinks] -> each sink: QueuedSink thread

The mux thread batches, letterboxes and normalises the next batch while the current one is inferred,
and decides which frames are due (``interval``) in stream order. ``primary.workers`` inference threads
(each with its own model runtime) take batches as they come; the post stage puts them back in order
(a sequence number per batch) before tracking.

Files are never dropped (back-pressure reaches the decoder); live sources drop their oldest frames
(the source's policy); a sink drops from its own queue when it cannot keep up, so a slow or blocked
sink never stalls inference. A source that fails is reported (one line) and the others go on; a sink
that fails is reported and counted. When a source ends, what the analytics still hold for it (tracks
inside an ROI) is flushed as events that reach every sink after that source's last frame, as an
``EndOfStream`` message. ``stop()`` (SIGINT, SIGTERM, ``duration_s``) stops reading, drains what is in flight
through every stage, flushes the sources that did not end, then closes the sinks. ``run()`` returns a
``RunSummary`` and writes ``summary.json``.

Example:
    >>> cfg = load_pipeline_config("my_pipeline.yaml")  # doctest: +SKIP
    >>> summary = Pipeline(cfg).run()  # doctest: +SKIP
    >>> summary.frames, summary.fps  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanner.core.errors import ConfigError, LannerError, SourceError
from lanner.core.frame import Batch, Frame
from lanner.core.signals import handle_once
from lanner.data.preprocess import opencv_single_threaded
from lanner.pipeline.config import PipelineConfig, load_pipeline_config
from lanner.pipeline.infer import Detector, GapFiller, SecondaryClassifier
from lanner.pipeline.mux import Muxer
from lanner.pipeline.sinks.base import Sink, end_of_stream_frame
from lanner.pipeline.sinks.build import queued
from lanner.pipeline.sinks.queued import QueuedSink
from lanner.pipeline.sources import SourceConfig, open_source
from lanner.pipeline.telemetry import RunSummary, Telemetry, write_summary
from lanner.pipeline.track import PerSourceTrackers

log = logging.getLogger("lanner.pipeline")

__all__ = ["Pipeline", "RunSummary", "load_pipeline_config"]

_POLL_S = 0.1
_END = object()  # the sentinel that flows down the queues after the last batch


@dataclass
class _Item:
    """One batch on its way down the stages."""

    batch: Batch
    inferred: list[bool]
    eos: list[int]
    failed: dict[int, str]
    seq: int = 0  # batch number from the mux: the post stage restores this order after parallel inference
    flushed: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # source -> events at its end


class Pipeline:
    """A running pipeline built from a ``PipelineConfig`` (see the module docstring).

    ``sinks`` adds sinks made in code (a ``Sink`` is wrapped in a ``QueuedSink`` of 16 frames); they
    receive every source frame, like the JSONL sink.
    """

    def __init__(self, config: PipelineConfig, sinks: Sequence[Sink | QueuedSink] = ()) -> None:
        self.config = config
        self.telemetry = Telemetry(config.telemetry)
        workers = config.primary.workers if config.primary else 1
        primary = config.primary
        if primary is not None and primary.plan_batch is None:  # a plan built from the ONNX is tuned at the mux batch
            primary = primary.model_copy(update={"plan_batch": config.mux.batch_size})
        self.detectors = [Detector(primary) for _ in range(workers)] if primary else []
        self.detector = self.detectors[0] if self.detectors else None  # schedule, labels, input size
        self.class_names = list(self.detector.class_names) if self.detector else []
        _check_class_ids(config, self.class_names)  # the labels come from the model
        self.secondary = [SecondaryClassifier(c) for c in config.secondary]
        self.trackers = PerSourceTrackers(config.tracker.type, config.tracker.params) if config.tracker else None
        self.gaps = GapFiller()
        self.analytics = self._build_analytics()
        self.osd, self.tiler = self._build_draw()
        self.mux = Muxer(config.mux, self.detector.input_spec if self.detector else None)
        self._next_id = 0
        self._lock = threading.Lock()
        self._sources: dict[int, SourceConfig] = {}
        self._open_sources(config.sources)
        self.frame_sinks, self.tiled_sinks = self._build_sinks(sinks)
        self._stop = threading.Event()
        self._stopped_by: str | None = None
        self._queues = [queue.Queue(config.queue_size) for _ in range(2)]
        self._batches: queue.Queue = queue.Queue(workers)  # mux -> inference: one batch ready per worker
        self._workers_left = workers
        self._queue_max = [0, 0]
        self._failures: list[BaseException] = []
        self._inferred: dict[int, int] = {}
        self._last_images: dict[int, np.ndarray] = {}
        self._last_seen: dict[int, Frame] = {}  # source -> its last frame (the picture of its EndOfStream)
        self._tiles = 0

    # -- building ------------------------------------------------------------------------------------
    def _build_analytics(self) -> Any:
        if self.config.analytics is None:
            return None
        from lanner.pipeline.analytics import Analytics

        return Analytics(self.config.analytics, self.class_names)

    def _build_draw(self) -> tuple[Any, Any]:
        from lanner.pipeline.draw import Osd, Tiler

        osd_cfg, tiler_cfg = self.config.osd, self.config.tiler
        attributes = {sgie.name: sgie.class_names for sgie in self.secondary}
        osd = Osd(osd_cfg, self.analytics, self.class_names, attributes) if osd_cfg and osd_cfg.enable else None
        tiler = Tiler(tiler_cfg) if tiler_cfg and tiler_cfg.enable else None
        return osd, tiler

    def _build_sinks(self, extra: Sequence[Sink | QueuedSink]) -> tuple[list[QueuedSink], list[QueuedSink]]:
        """Video sinks without ``per_source`` get the tiler's mosaic (when there is a tiler); the rest every frame."""
        frame_sinks: list[QueuedSink] = []
        tiled_sinks: list[QueuedSink] = []
        for cfg in self.config.sinks:
            sink = queued(cfg, self.class_names)
            mosaic = cfg.type == "video" and not cfg.per_source and self.tiler is not None
            if cfg.type == "video" and not cfg.per_source and self.tiler is None and len(self.config.sources) > 1:
                log.warning("sink %s: several sources into one video without a tiler; add a 'tiler' section "
                            "or set per_source: true", sink.name)  # fmt: skip
            (tiled_sinks if mosaic else frame_sinks).append(sink)
        for sink in extra:
            frame_sinks.append(sink if isinstance(sink, QueuedSink) else QueuedSink(sink, 16))
        for sink in frame_sinks + tiled_sinks:
            self.telemetry.watch_queue(f"sink:{sink.name}", lambda s=sink: s.depth)
            self.telemetry.watch_drops(f"sink:{sink.name}", lambda s=sink: s.dropped)
        return frame_sinks, tiled_sinks

    def _open_sources(self, configs: Sequence[SourceConfig]) -> None:
        """Open every source; one that cannot be opened is reported and left out, unless none can."""
        failures: list[SourceError] = []
        for source_config in configs:
            try:
                self.add_source(source_config)
            except SourceError as exc:
                failures.append(exc)
                source_id = self._next_id - 1
                self._sources[source_id] = source_config
                self.telemetry.source_ended(source_id, str(exc))
                log.error("%s", exc)
        if failures and len(failures) == len(configs):
            raise failures[0]

    # -- control -------------------------------------------------------------------------------------
    def add_source(self, config: SourceConfig) -> int:
        """Open and register a source (started at once when the pipeline runs); returns its id."""
        with self._lock:
            source_id = self._next_id
            self._next_id += 1
        source = open_source(config, source_id)
        self.mux.add_source(source)
        self.telemetry.watch_drops(f"source:{source.name}", lambda: source.dropped)
        self._sources[source_id] = config
        return source_id

    def remove_source(self, source_id: int) -> None:
        """Stop a source; its tracker and analytics state are finished when its EOS comes through."""
        self.mux.remove_source(source_id)

    def stop(self, reason: str = "stop") -> None:
        """Stop reading sources; what is in flight is drained through the stages, then sinks close."""
        if self._stopped_by is None:
            self._stopped_by = reason
        self._stop.set()

    # -- running ---------------------------------------------------------------------------------------
    def run(self, duration_s: float | None = None, on_status: Callable[[Telemetry], None] | None = None) -> RunSummary:
        """Run until every source ends, ``duration_s`` passes, ``stop()``, Ctrl-C or SIGTERM; return the summary."""
        duration_s = duration_s if duration_s is not None else self.config.duration_s
        port = self.config.telemetry.prometheus_port
        if port is not None:
            log.info("prometheus metrics on port %d", self.telemetry.start_prometheus(port))
        control = self._start_control()
        restore = self._install_sigint()
        stages: list[tuple[str, Callable[[], None], queue.Queue | None]] = [("mux", self._mux_loop, self._batches)]
        for k, detector in enumerate(self.detectors or [None]):
            stages.append((f"infer{k}" if k else "infer", lambda d=detector: self._infer_loop(d), None))
        stages += [("post", self._post_loop, self._queues[1]), ("output", self._output_loop, None)]
        threads = [
            threading.Thread(target=self._guard, args=(loop, out), name=f"lanner-{name}", daemon=True)
            for name, loop, out in stages
        ]
        self.telemetry.watch_queue("mux->infer", self._batches.qsize)
        for i, q in enumerate(self._queues):
            self.telemetry.watch_queue(("infer->post", "post->output")[i], q.qsize)
        restore_opencv = opencv_single_threaded()  # the stages are the parallelism
        try:
            self.mux.start()
            for t in threads:
                t.start()
            self._wait(threads, duration_s, on_status)
        finally:
            self.stop("stop")
            self.mux.stop()
            for t in threads:
                t.join(timeout=30)
            if not any(t.is_alive() for t in threads):
                self._flush_open_sources()
            for sink in self.frame_sinks + self.tiled_sinks:
                sink.close()  # a queued sink writes its last frames here, still part of the run
            restore_opencv()
            restore()
            if control is not None:
                control.stop()
            self.telemetry.stop_prometheus()
        summary = self.summary()
        if self.config.telemetry.summary_path:  # with the resolved config, so the run can be repeated
            record = summary.to_dict() | {"config": self.config.model_dump(mode="json")}
            write_summary(record, self.config.telemetry.summary_path)
        if self._failures:
            raise self._failures[0]
        return summary

    def _wait(self, threads: list[threading.Thread], duration_s: float | None, on_status: Any) -> None:
        start = time.monotonic()
        last_status = start
        interval = self.config.telemetry.interval_s
        while any(t.is_alive() for t in threads):
            threads[-1].join(timeout=_POLL_S)
            now = time.monotonic()
            for i, q in enumerate(self._queues):
                self._queue_max[i] = max(self._queue_max[i], q.qsize())
            if duration_s is not None and now - start >= duration_s and not self._stop.is_set():
                self.stop("duration")
            if interval and now - last_status >= interval:
                last_status = now
                (on_status or (lambda t: log.info("%s", t.status_line())))(self.telemetry)

    def _guard(self, loop: Callable[[], None], out: queue.Queue | None) -> None:
        """Run a stage loop; an unexpected error stops the pipeline (and is raised by ``run``)."""
        try:
            loop()
        except BaseException as exc:  # a stage bug must end the run cleanly, not hang it
            self._failures.append(exc)
            self.telemetry.error(f"{threading.current_thread().name}: {exc}")
            self.stop("error")
            if not isinstance(exc, LannerError):
                log.exception("pipeline stage failed")
            if loop == self._output_loop:  # the last stage failed: keep consuming so upstream stages can finish
                self._consume_until_end(self._queues[1])
        finally:
            if out is not None:
                self._put(out, _END, force=True)

    def _consume_until_end(self, q: queue.Queue) -> None:
        while q.get() is not _END:
            pass

    def _put(self, q: queue.Queue, item: Any, force: bool = False) -> None:
        """Blocking put (back-pressure); gives up only when the pipeline failed and nobody consumes."""
        while True:
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self._failures and not force:
                    return
                if self._failures and force:
                    _drain(q)

    def _mux_loop(self) -> None:
        """Batches from the muxer, numbered, with the frames due for inference (in stream order)."""
        seq = 0
        while not self._stop.is_set():
            batch = self.mux.next_batch(timeout_s=_POLL_S)
            if batch is None:
                if self.mux.done:
                    self._stopped_by = self._stopped_by or "eos"
                    return
                continue
            eos, failed = list(batch.meta.get("eos", [])), dict(batch.meta.get("failed", {}))
            due = self.detector.schedule(batch) if self.detector is not None else [False] * len(batch)
            for frame, ran in zip(batch.frames, due):
                self._inferred[frame.source_id] = self._inferred.get(frame.source_id, 0) + ran
            for sid in eos:
                if self.detector is not None:
                    self.detector.reset_source(sid)
            self._put(self._batches, _Item(batch, due, eos, failed, seq))
            seq += 1

    def _infer_loop(self, detector: Detector | None) -> None:
        """One inference worker: runs the due frames of each batch it takes (batches in flight are finished
        at stop); the last worker to end passes the end marker on."""
        try:
            while (item := self._batches.get()) is not _END:
                if detector is not None and any(item.inferred):
                    t0 = time.perf_counter()
                    detector.infer(item.batch, item.inferred)
                    self.telemetry.stage("infer", time.perf_counter() - t0, frames=sum(item.inferred))
                self._put(self._queues[0], item)
            self._batches.put(_END)  # for the other workers (the mux made only one)
        finally:
            with self._lock:
                self._workers_left -= 1
                last = self._workers_left == 0
            if last:
                self._put(self._queues[0], _END, force=True)

    def _post_loop(self) -> None:
        """Batches back in mux order (workers finish out of order), then ``_post``."""
        waiting: dict[int, _Item] = {}
        next_seq = 0
        while (item := self._queues[0].get()) is not _END:
            waiting[item.seq] = item
            while next_seq in waiting:
                self._post(waiting.pop(next_seq))
                next_seq += 1
        for seq in sorted(waiting):  # after a failed worker: what is left, in order
            self._post(waiting.pop(seq))

    def _post(self, item: _Item) -> None:
        """Track, classify and count one batch, then hand it to the output stage."""
        t0 = time.perf_counter()
        for frame, ran in zip(item.batch.frames, item.inferred):
            self._track(frame, ran)
        for sgie in self.secondary:  # one model call for the crops of the whole batch
            sgie.process_batch(item.batch.frames)
        if self.analytics is not None:
            for frame in item.batch.frames:
                self.analytics.process(frame)
        for sid in item.eos:
            item.flushed[sid] = self._end_source(sid, item.failed.get(sid))
        if len(item.batch):
            self.telemetry.stage("post", time.perf_counter() - t0, frames=len(item.batch))
        self._put(self._queues[1], item)

    def _track(self, frame: Frame, inferred: bool) -> None:
        if self.trackers is None:
            return
        if inferred or self.detector is None:
            frame.detections = self.trackers.update(frame.source_id, frame.detections, frame.frame_idx)
            self.gaps.observe(frame.source_id, frame.frame_idx, frame.detections)
        else:
            frame.detections = self.gaps.fill(frame.source_id, frame.frame_idx, frame.hw)

    def _end_source(self, source_id: int, error: str | None) -> list[dict[str, Any]]:
        """Forget a source's tracks; return the analytics events its end flushes (for the sinks)."""
        if self.trackers is not None:
            self.trackers.remove(source_id)
        self.gaps.remove(source_id)
        events = self.analytics.end_source(source_id) if self.analytics is not None else []
        self.telemetry.source_ended(source_id, error)
        if error:
            log.error("source %d failed: %s", source_id, error)
        return events

    def _flush_open_sources(self) -> None:
        """At stop, after the stages finished: sources that did not reach EOS flush their events too."""
        if self.analytics is None:
            return
        for source_id in list(self._sources):
            self._write_end_of_stream(source_id, self.analytics.end_source(source_id))

    def _write_end_of_stream(self, source_id: int, events: list[dict[str, Any]]) -> None:
        """Give every sink the ``EndOfStream`` of a source (when it has events), after its last frame."""
        last = self._last_seen.pop(source_id, None)
        if not events:
            return
        # a source that ended before any frame reached the output gets a tiny blank picture
        image = last.image if last is not None else np.zeros((2, 2, 3), np.uint8)
        eos = end_of_stream_frame(source_id, events, image)
        for sink in self.frame_sinks + self.tiled_sinks:
            sink.write(eos)

    def _output_loop(self) -> None:
        while (item := self._queues[1].get()) is not _END:
            if len(item.batch):
                t0 = time.perf_counter()
                for frame in item.batch.frames:
                    drawn = self._draw(frame)
                    for sink in self.frame_sinks:
                        sink.write(drawn)
                    self._last_seen[frame.source_id] = frame  # its picture converts only if an EOS needs it
                    self.telemetry.frame(frame.source_id)
                if self.tiled_sinks:
                    self._write_mosaic(item.batch)
                self.telemetry.stage("output", time.perf_counter() - t0, frames=len(item.batch))
            for sid in item.eos:
                self._write_end_of_stream(sid, item.flushed.get(sid, []))

    def _draw(self, frame: Frame) -> Frame:
        """The frame as sinks see it: with the OSD drawn on a copy when there is an OSD."""
        if self.osd is None:
            if self.tiled_sinks:
                self._last_images[frame.source_id] = frame.image
            return frame
        image = self.osd.draw(frame)
        self._last_images[frame.source_id] = image
        return dataclasses.replace(frame, image=image)

    def _write_mosaic(self, batch: Batch) -> None:
        mosaic = self.tiler.compose(dict(self._last_images))
        pts = max(f.pts_ns for f in batch.frames)
        tile = Frame(source_id=-1, frame_idx=self._tiles, pts_ns=pts, image=mosaic)
        self._tiles += 1
        for sink in self.tiled_sinks:
            sink.write(tile)

    # -- plumbing ------------------------------------------------------------------------------------
    def _install_sigint(self) -> Callable[[], None]:
        """Ctrl-C (SIGINT) or SIGTERM (``docker stop``, systemd, Kubernetes) stops reading and drains, so sinks
        close their files (a playable MP4, the summary); a second signal of the same kind acts as usual."""

        def drain(signum: int) -> None:
            name, again = ("Ctrl-C", "Ctrl-C again") if signum == signal.SIGINT else ("SIGTERM", "a second SIGTERM")
            log.warning("%s: draining the pipeline and closing sinks (%s to abort)", name, again)
            self.stop("signal")

        return handle_once((signal.SIGINT, signal.SIGTERM), drain)

    def _start_control(self) -> Any:
        if self.config.control_port is None:
            return None
        from lanner.pipeline.control import ControlServer

        server = ControlServer(self.config.control_port, self.add_source, self.remove_source)
        server.start()
        return server

    def summary(self) -> RunSummary:
        """The summary of the run so far (``run`` returns the final one)."""
        snap = self.telemetry.snapshot()
        mux_stats = self.mux.stats() if hasattr(self.mux, "stats") else {}
        sources = {}
        for sid, cfg in self._sources.items():
            seen = snap["sources"].get(str(sid), {})
            stats = mux_stats.get(sid, {})
            sources[str(sid)] = {
                "name": cfg.name or f"source{sid}",
                "uri": cfg.uri,
                "frames": seen.get("frames", 0),
                "inferred": self._inferred.get(sid, 0),
                "fps": seen.get("fps_avg", 0.0),
                **{k: stats[k] for k in ("state", "decoded", "skipped", "dropped") if k in stats},
                "error": seen.get("error") or stats.get("error"),
            }
        sinks = {s.name: s.stats() for s in self.frame_sinks + self.tiled_sinks}
        errors = list(snap["errors"]) + [s["error"] for s in sinks.values() if s.get("error")]
        analytics = {}
        if self.analytics is not None:
            analytics = {"lines": self.analytics.line_totals(), "per_source": self.analytics.counts()}
        return RunSummary(
            duration_s=snap["elapsed_s"],
            frames=snap["frames"],
            fps=round(snap["frames"] / max(snap["elapsed_s"], 1e-9), 2),
            stopped_by=self._stopped_by or "running",
            sources=sources,
            stages=snap["stages"],
            sinks=sinks,
            queues_max={"infer->post": self._queue_max[0], "post->output": self._queue_max[1]},
            analytics=analytics,
            errors=errors,
        )


def _check_class_ids(config: PipelineConfig, class_names: Sequence[str]) -> None:
    """``ConfigError`` for a class id the detector does not have: that line, ROI or classifier would never fire."""
    if config.analytics is not None:
        config.analytics.check_ids(class_names=class_names)
    for i, sgie in enumerate(config.secondary):
        bad = [c for c in sgie.operate_on_class_ids or () if c < 0 or (class_names and c >= len(class_names))]
        if bad:
            names = ", ".join(f"{k}={name}" for k, name in enumerate(class_names))
            fix = f"the detector's classes are {names}" if names else "class ids start at 0"
            raise ConfigError(f"class id(s) {bad} do not exist", where=f"secondary.{i}.operate_on_class_ids", fix=fix)


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
