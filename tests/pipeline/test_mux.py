"""Muxer: batching by size and by timeout, per-source cap, round-robin fairness, EOS, add/remove, letterbox."""

from __future__ import annotations

import queue
from pathlib import Path

import av
import numpy as np
import pytest
from test_sources_media import frame_image, frame_number, write_video

from lanner.core.errors import ConfigError, SourceError, UsageError
from lanner.data.preprocess import InputSpec, to_network_input
from lanner.data.synth import VideoSynthConfig, generate_videos
from lanner.pipeline.mux import MuxConfig, Muxer
from lanner.pipeline.sources import FailedSource, Source, SourceConfig, open_source
from lanner.pipeline.sources.picture import frame_to_bgr

END = object()


class ManualSource(Source):
    """A source the test feeds by hand: ``push(n)`` numbered frames, ``end()`` for EOS."""

    def __init__(self, source_id: int, live: bool = False, queue_size: int = 64) -> None:
        super().__init__(SourceConfig(uri=f"manual{source_id}.mp4", live=live, queue_size=queue_size), source_id)
        self._feed: queue.Queue = queue.Queue()
        self._next = 0

    def push(self, n: int = 1) -> ManualSource:
        for _ in range(n):
            self._feed.put(self._next)
            self._next += 1
        return self

    def end(self) -> ManualSource:
        self._feed.put(END)
        return self

    def _decode(self):
        while not self._stop.is_set():
            try:
                i = self._feed.get(timeout=0.01)
            except queue.Empty:
                continue
            if i is END:
                return
            yield int(i * 1e9 / 30), frame_image(i)


def mux_of(sources, **config) -> Muxer:
    mux = Muxer(MuxConfig(**config))
    for src in sources:
        mux.add_source(src)
    mux.start()
    return mux


def wait_queued(sources, n: int = 1) -> None:
    """Block until each source has at least ``n`` frames queued (decoding is in their threads)."""
    for src in sources:
        with src._cond:
            assert src._cond.wait_for(lambda s=src: s.queued >= n or s.ended, timeout=10)


def ids(batch) -> list[tuple[int, int]]:
    return [(f.source_id, f.frame_idx) for f in batch.frames]


def test_full_batch_one_frame_per_source() -> None:
    srcs = [ManualSource(i).push(3) for i in range(4)]
    mux = mux_of(srcs, batch_size=4, batched_push_timeout_ms=10_000)
    wait_queued(srcs, 3)
    batch = mux.next_batch(timeout_s=10)
    assert ids(batch) == [(0, 0), (1, 0), (2, 0), (3, 0)] and batch.tensor_nchw is None
    mux.stop()


def test_partial_batch_is_pushed_after_the_timeout() -> None:
    srcs = [ManualSource(0).push(1), ManualSource(1)]  # source 1 is running but has no frame yet
    mux = mux_of(srcs, batch_size=4, batched_push_timeout_ms=20)
    wait_queued(srcs[:1])
    assert ids(mux.next_batch(timeout_s=10)) == [(0, 0)]
    assert mux.next_batch(timeout_s=0.05) is None  # nothing queued: None after timeout_s
    mux.stop()


def test_batch_pushed_early_when_waiting_cannot_fill_it() -> None:
    srcs = [ManualSource(0).push(5), ManualSource(1).push(5)]
    mux = mux_of(srcs, batch_size=8, batched_push_timeout_ms=60_000, max_frames_per_source=2)
    wait_queued(srcs, 5)
    assert ids(mux.next_batch(timeout_s=10)) == [(0, 0), (1, 0), (0, 1), (1, 1)]  # not after 60 s
    mux.stop()


def test_at_most_k_frames_per_source() -> None:
    srcs = [ManualSource(0).push(10), ManualSource(1)]
    mux = mux_of(srcs, batch_size=4, batched_push_timeout_ms=20, max_frames_per_source=3)
    wait_queued(srcs[:1], 10)
    assert ids(mux.next_batch(timeout_s=10)) == [(0, 0), (0, 1), (0, 2)]
    assert ids(mux.next_batch(timeout_s=10)) == [(0, 3), (0, 4), (0, 5)]
    mux.stop()


def test_round_robin_is_fair_when_batches_are_smaller_than_the_source_count() -> None:
    srcs = [ManualSource(i).push(6) for i in range(6)]
    mux = mux_of(srcs, batch_size=4, batched_push_timeout_ms=10_000)
    wait_queued(srcs, 6)
    served = [f.source_id for _ in range(3) for f in mux.next_batch(timeout_s=10).frames]
    assert served == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    mux.stop()


def test_one_source_ending_does_not_end_the_others() -> None:
    a, b = ManualSource(0).push(2).end(), ManualSource(1).push(1)
    mux = mux_of([a, b], batch_size=2, batched_push_timeout_ms=10)
    with a._cond:
        a._cond.wait_for(lambda: a.ended, timeout=10)
    seen, eos = [], []
    while len(seen) < 3:
        batch = mux.next_batch(timeout_s=10)
        seen += ids(batch)
        eos += batch.meta["eos"]
    assert eos == [0] and not mux.done and b.state == "running"
    b.push(2).end()
    while not mux.done:
        batch = mux.next_batch(timeout_s=10)
        seen += ids(batch)
        eos += batch.meta["eos"]
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)] and eos == [0, 1]


def test_add_and_remove_while_running() -> None:
    a, b = ManualSource(0).push(1), ManualSource(1).push(1)
    mux = mux_of([a], batch_size=2, batched_push_timeout_ms=10)
    assert ids(mux.next_batch(timeout_s=10)) == [(0, 0)]
    mux.add_source(b)  # started at once: the muxer runs
    wait_queued([b])
    assert ids(mux.next_batch(timeout_s=10)) == [(1, 0)]
    a.push(5)
    mux.remove_source(0)
    assert a.state == "stopped" and not a._thread.is_alive() and list(mux.sources) == [1]
    batch = mux.next_batch(timeout_s=10)
    assert ids(batch) == [] and batch.meta["eos"] == [0]  # the removal is reported at once, without frames
    b.push(1)
    assert ids(mux.next_batch(timeout_s=10)) == [(1, 1)]  # and nothing more comes from the removed source
    b.end()
    while not mux.done:
        assert mux.next_batch(timeout_s=10) is not None
    with pytest.raises(UsageError, match="no source with id 0"):
        mux.remove_source(0)
    with pytest.raises(UsageError, match="already used"):
        mux.add_source(ManualSource(1))


def test_failed_source_is_reported_and_the_rest_finish(tmp_path: Path) -> None:
    good = open_source(SourceConfig(uri=str(write_video(tmp_path / "ok.mp4", frames=10))), 0)
    bad = FailedSource(SourceConfig(uri="bad.mp4"), 1, SourceError("cannot open: broken", where="source 1"))
    mux = mux_of([good, bad], batch_size=2, batched_push_timeout_ms=5)
    frames, failed = [], {}
    while not mux.done:
        batch = mux.next_batch(timeout_s=10)
        frames += batch.frames
        failed.update(batch.meta["failed"])
    assert [frame_number(f.image) for f in frames] == list(range(10)) and failed == {1: "source 1: cannot open: broken"}


@pytest.mark.parametrize("in_source", [True, False])
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_letterboxed_tensor_matches_to_network_input(in_source: bool, resize: str) -> None:
    spec = InputSpec(size_hw=(32, 96), resize=resize, mean=(1.0, 2.0, 3.0), std=(50.0, 60.0, 70.0))
    srcs = [ManualSource(i).push(1) for i in range(2)]
    mux = Muxer(MuxConfig(batch_size=2, preprocess_in_source=in_source), spec)
    for src in srcs:
        mux.add_source(src)
    mux.start()
    wait_queued(srcs)
    batch = mux.next_batch(timeout_s=10)
    expected, scales = to_network_input([f.image for f in batch.frames], spec)
    assert batch.tensor_nchw.shape == (2, 3, 32, 96) and np.array_equal(batch.tensor_nchw, expected)
    assert batch.meta["scales"] == scales
    assert scales == [(32 / 48, 32 / 48) if resize == "letterbox" else (96 / 64, 32 / 48)] * 2
    mux.stop()


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"batch_size": 0}, "mux.batch_size"),
        ({"max_frames_per_source": 0}, "mux.max_frames_per_source"),
        ({"batched_push_timeout_ms": -1}, "mux.batched_push_timeout_ms"),
    ],
)
def test_bad_mux_config(fields: dict, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        MuxConfig(**fields)
    assert str(info.value).startswith(where)


@pytest.mark.slow
def test_four_synthetic_videos_every_frame_exactly_once_in_order(tmp_path: Path) -> None:
    paths = generate_videos(
        VideoSynthConfig(cameras=4, seconds=1, fps=30, width=128, height=96, seed=5), tmp_path, workers=1
    )
    expected = {}
    for i, path in enumerate(paths):
        with av.open(str(path)) as container:
            expected[i] = [frame_to_bgr(f) for f in container.decode(video=0)]
    mux = Muxer(MuxConfig(batch_size=3, batched_push_timeout_ms=2, max_frames_per_source=2), InputSpec((64, 64)))
    for i, path in enumerate(paths):
        mux.add_source(open_source(SourceConfig(uri=str(path), queue_size=2), i))
    mux.start()
    got: dict[int, list] = {i: [] for i in range(4)}
    while not mux.done:
        batch = mux.next_batch(timeout_s=10)
        assert batch is not None and len(batch) <= 3
        assert max([batch.source_ids.count(s) for s in set(batch.source_ids)], default=0) <= 2
        for f in batch.frames:
            got[f.source_id].append(f)
    for i in range(4):
        assert [f.frame_idx for f in got[i]] == list(range(len(expected[i])))
        assert all(np.array_equal(f.image, e) for f, e in zip(got[i], expected[i], strict=True))
    assert all(s["dropped"] == 0 and s["state"] == "eos" for s in mux.stats().values())
