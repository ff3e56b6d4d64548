"""Sources: config checks, drop policies, max_fps by pts, EOS/failure per source, loop, stop, reconnect."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import pytest
from test_sources_media import drain, frame_image, frame_number, write_video

from lanner.core.errors import ConfigError, SourceError
from lanner.pipeline.sources import (
    FailedSource,
    FileSource,
    ImageDirSource,
    RtspSource,
    SourceConfig,
    V4l2Source,
    open_source,
)
from lanner.pipeline.sources.file import open_av


def wait_until(predicate, timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """30 numbered frames at 30 fps, 64x48 H.264 in MP4."""
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=30)


@pytest.mark.parametrize(
    ("uri", "kind", "live"),
    [
        ("rtsp://10.0.0.5/s1", "rtsp", True),
        ("RTSPS://cam/s", "rtsp", True),
        ("/dev/video0", "v4l2", True),
        ("2", "v4l2", True),
        ("v4l2:///dev/video1", "v4l2", True),
        ("clip.mp4", "file", False),
        ("file:///x/clip.mkv", "file", False),
    ],
)
def test_type_and_liveness_follow_the_uri(uri: str, kind: str, live: bool) -> None:
    cfg = SourceConfig(uri=uri)
    assert (cfg.kind, cfg.is_live) == (kind, live)


def test_a_folder_is_an_image_source_and_live_can_be_forced(tmp_path: Path) -> None:
    assert SourceConfig(uri=str(tmp_path)).kind == "images"
    assert SourceConfig(uri="clip.mp4", live=True).is_live


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"max_fps": 0}, "sources[].max_fps"),
        ({"queue_size": 0}, "sources[].queue_size"),
        ({"reconnect_backoff": 0.5}, "sources[].reconnect_backoff"),
        ({"reconnect_attempts": -2}, "sources[].reconnect_attempts"),
        ({"uri": " "}, "sources[].uri"),
        ({"uri": "rtsp://cam/s", "loop": True}, "sources[].loop"),
    ],
)
def test_bad_config_is_one_line_with_a_fix(fields: dict, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        SourceConfig(**{"uri": "clip.mp4", **fields})
    assert str(info.value).startswith(where) and "\n" not in str(info.value)
    assert info.value.fix


def test_open_source_picks_the_class(clip: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), frame_image(0))
    assert isinstance(open_source(SourceConfig(uri=str(clip)), 0), FileSource)
    assert isinstance(open_source(SourceConfig(uri=str(tmp_path)), 1), ImageDirSource)
    assert isinstance(open_source(SourceConfig(uri="rtsp://127.0.0.1:1/x"), 2), RtspSource)  # connects on start


def test_file_source_info_and_every_frame_once(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), name="cam0"), source_id=7)
    assert (source.info.width, source.info.height, source.info.fps, source.info.codec) == (64, 48, 30.0, "h264")
    frames = drain(source)
    assert [frame_number(f.image) for f in frames] == list(range(30))
    assert {f.source_id for f in frames} == {7} and source.state == "eos" and source.dropped == 0


def test_max_fps_keeps_frames_by_pts(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), max_fps=10), 0)
    frames = drain(source)
    assert [f.frame_idx for f in frames] == list(range(0, 30, 3))
    assert [frame_number(f.image) for f in frames] == list(range(0, 30, 3))
    assert source.skipped == 20 and source.dropped == 0


def test_realtime_paces_a_file_to_its_pts(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), realtime=True, max_fps=15), 0)
    t0 = time.monotonic()
    frames = drain(source)
    assert time.monotonic() - t0 >= frames[-1].pts_ns / 1e9  # never ahead of the stream clock (a lower bound)
    assert [f.frame_idx for f in frames] == list(range(0, 30, 2))


def test_file_blocks_when_full_and_never_drops(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), queue_size=2), 0)
    source.start()
    wait_until(lambda: source.queued == 2 and source.decoded == 3)  # the decoder is blocked on the full queue
    time.sleep(0.05)  # and stays blocked
    assert (source.queued, source.decoded, source.state) == (2, 3, "running")
    frames = [source.get(10).frame for _ in range(30)]
    assert [frame_number(f.image) for f in frames] == list(range(30)) and source.dropped == 0


def test_live_drops_the_oldest_and_counts(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), live=True, queue_size=3), 0)
    source.start()
    wait_until(lambda: source.ended)
    frames = [item.frame for item in iter(source.get_nowait, None)]
    assert [frame_number(f.image) for f in frames] == [27, 28, 29]
    assert source.dropped == 27 and source.state == "eos"


def test_stop_unblocks_a_waiting_decoder(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), queue_size=1), 0)
    source.start()
    source.get(10)
    source.stop()
    assert not source._thread.is_alive() and source.state == "stopped" and source.queued == 0


def test_loop_restarts_with_increasing_pts(clip: Path) -> None:
    source = open_source(SourceConfig(uri=str(clip), loop=True), 0)
    source.start()
    frames = [source.get(10).frame for _ in range(75)]
    source.stop()
    assert [frame_number(f.image) for f in frames] == [i % 30 for i in range(75)]
    assert [f.frame_idx for f in frames] == list(range(75))
    pts = [f.pts_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts)) and abs(pts[30] - 1e9) < 1e6


def test_garbage_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x13\x37 not a video at all " * 200)
    with pytest.raises(SourceError) as info:
        open_source(SourceConfig(uri=str(bad), name="gate"), 3)
    text = str(info.value)
    assert text.startswith("source 3 'gate'") and "cannot open" in text and "ffprobe" in text and "\n" not in text


def test_missing_file_and_deferred_errors(tmp_path: Path) -> None:
    cfg = SourceConfig(uri=str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="file not found"):
        open_source(cfg, 0)
    source = open_source(cfg, 0, defer_errors=True)
    assert isinstance(source, FailedSource)
    assert drain(source) == [] and source.state == "failed" and "file not found" in str(source.error)


def test_truncated_file_fails_after_delivering_what_it_has(tmp_path: Path, caplog) -> None:
    whole = write_video(tmp_path / "whole.mp4", frames=60, faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 85 // 100])
    source = open_source(SourceConfig(uri=str(cut), name="cut"), 1)
    frames = drain(source)
    numbers = [frame_number(f.image) for f in frames]
    # in order, each once; one-thread decode (the default up to 1080p) skips the damaged packet's frame and
    # may still deliver a later one that decodes, as FFmpeg's own tools do (frame threading stops earlier)
    assert 0 < len(frames) < 60 and numbers[0] == 0 and all(a < b for a, b in itertools.pairwise(numbers))
    assert numbers[-1] - len(numbers) <= 1  # at most the damaged packet's frame is missing
    assert source.state == "failed" and "truncated" in str(source.error) and "of the 60 frames" in str(source.error)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [str(source.error)]


def test_moov_at_the_end_truncated_fails_at_open(clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(SourceError, match="cannot open"):
        open_source(SourceConfig(uri=str(cut)), 0)


def test_image_folder_in_name_order(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), frame_image(i))
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(SourceConfig(uri=str(tmp_path), fps=10), 0)
    frames = drain(source)
    assert [frame_number(f.image) for f in frames] == [0, 1, 2]
    assert [f.pts_ns for f in frames] == [0, 100_000_000, 200_000_000] and source.info.codec == "image"


def test_unreadable_image_fails_the_source(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), frame_image(0))
    (tmp_path / "b.png").write_bytes(b"broken")
    source = open_source(SourceConfig(uri=str(tmp_path)), 0)
    assert len(drain(source)) == 1 and source.state == "failed" and "b.png" in str(source.error)


def test_missing_camera_is_one_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open the camera") as info:
        V4l2Source(SourceConfig(uri="/dev/video99"), 0)
    assert "ls /dev/video" in str(info.value)


class FlakyOpener:
    """Fails ``fail_first`` times, then opens ``path`` (whose end looks like the stream dying)."""

    def __init__(self, path: Path, fail_first: int, fail_after: int | None = None) -> None:
        self.path, self.fail_first, self.fail_after = path, fail_first, fail_after
        self.calls = 0
        self.opened = threading.Event()

    def __call__(self, uri: str, options: dict, timeout_s: float):
        self.calls += 1
        assert options == {"rtsp_transport": "tcp"} and uri.startswith("rtsp://")
        ok = self.calls > self.fail_first and (self.fail_after is None or self.calls <= self.fail_after)
        if not ok:
            raise SourceError("connection refused", where=uri)
        return open_av(str(self.path), where=uri)


def test_rtsp_reconnects_with_backoff_and_resumes(clip: Path) -> None:
    opener = FlakyOpener(clip, fail_first=2)
    cfg = SourceConfig(
        uri="rtsp://cam.test/s", reconnect_interval_s=0.001, reconnect_max_interval_s=0.004, queue_size=100
    )
    source = RtspSource(cfg, 0, opener=opener)
    source.start()
    frames = [source.get(10).frame for _ in range(70)]  # two full passes plus some: the stream "died" twice
    source.stop()
    assert opener.calls >= 5 and source.reconnects >= 2 and source.live
    assert [frame_number(f.image) for f in frames] == [i % 30 for i in range(70)]
    assert [f.frame_idx for f in frames] == list(range(70))
    pts = [f.pts_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))


def test_rtsp_gives_up_after_the_attempts(clip: Path, caplog) -> None:
    opener = FlakyOpener(clip, fail_first=0, fail_after=1)  # one good session, then the camera is gone
    cfg = SourceConfig(uri="rtsp://cam.test/s", reconnect_interval_s=0.001, reconnect_attempts=3, queue_size=100)
    source = RtspSource(cfg, 4, opener=opener)
    frames = drain(source)
    assert len(frames) == 30 and source.state == "failed" and opener.calls == 1 + 3
    text = str(source.error)
    assert text.startswith("source 4 'source4' (rtsp://cam.test/s)") and "gave up after 3 reconnect attempts" in text


@pytest.mark.parametrize(
    "name",
    [
        "lanner.pipeline.sources",
        "lanner.pipeline.sources.config",
        "lanner.pipeline.sources.base",
        "lanner.pipeline.sources.rtsp",
        "lanner.pipeline.mux",
        "lanner.pipeline.control",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS).failed == 0


def test_gpu_decode_that_cannot_start_is_one_clear_error(clip: Path) -> None:
    av = pytest.importorskip("av")
    from av.codec.hwaccel import hwdevices_available

    if "cuda" not in hwdevices_available():
        pytest.skip("this FFmpeg build has no CUDA decoder")
    try:  # on a machine with a working GPU, NVDEC must give the same frames
        source = open_source(SourceConfig(uri=str(clip), hwaccel="cuda"), 0)
    except SourceError as exc:
        text = str(exc)
        assert "cannot start cuda decode on GPU 0" in text and "hwaccel: none" in text and "\n" not in text
        return
    assert [frame_number(f.image) for f in drain(source)] == list(range(30)) and av


def test_hwaccel_only_for_files_and_rtsp(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hwaccel applies to files and RTSP, not images"):
        SourceConfig(uri=str(tmp_path), hwaccel="cuda")
