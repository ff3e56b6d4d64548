"""Decoded frames stay YUV until a stage reads ``frame.image``; decode threads and OpenCV threads by default."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from test_infer import known_detector_onnx
from test_sources_media import drain, frame_number, write_video

from lanner.pipeline.config import load_pipeline_config
from lanner.pipeline.runner import Pipeline
from lanner.pipeline.sources import SourceConfig, open_source
from lanner.pipeline.sources.file import decode_thread_count, open_av, video_stream
from lanner.pipeline.sources.picture import Yuv420Picture, picture_of

video = pytest.importorskip("lanner.data.synth.video")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=12)


def first_frame(path: Path):
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def test_yuv420p_frames_become_pictures_with_ffmpegs_colours(clip: Path) -> None:
    frame = first_frame(clip)
    picture = picture_of(frame)
    assert isinstance(picture, Yuv420Picture) and (picture.height, picture.width) == (48, 64)
    bgr = frame.to_ndarray(format="bgr24")
    assert np.array_equal(picture.to_bgr(), bgr)
    small = picture.resized_bgr(32, 24)  # planes resized, then converted: close to converting, then resizing
    expected = cv2.resize(bgr, (32, 24), interpolation=cv2.INTER_LINEAR)
    assert small.shape == (24, 32, 3) and np.abs(small.astype(np.int16) - expected).mean() < 4.0
    assert picture.resized_bgr(31, 23).shape == (23, 31, 3)  # odd sizes go through BGR
    assert frame_number(picture.to_bgr()) == 0


def test_nv12_frames_from_a_gpu_download_are_pictures_too(clip: Path) -> None:
    # hwaccel: cuda hands frames over as NV12 (U and V interleaved); the same colours as the planar layout
    planar = first_frame(clip)
    nv12 = planar.reformat(format="nv12")
    picture = picture_of(nv12)
    assert isinstance(picture, Yuv420Picture) and picture.nv12
    assert np.array_equal(picture.resized_bgr(32, 24), picture_of(planar).resized_bgr(32, 24))
    assert np.array_equal(picture.to_bgr(), nv12.to_ndarray(format="bgr24"))


@pytest.mark.parametrize(
    ("pix_fmt", "colorspace", "color_range"), [("yuvj420p", 2, 2), ("yuv420p", 1, 1), ("rgb24", 2, 1)]
)
def test_other_colour_setups_are_converted_by_ffmpeg_at_once(pix_fmt: str, colorspace: int, color_range: int) -> None:
    # OpenCV's I420 conversion is BT.601 at limited range; BT.709 (1), full range (2) and RGB frames are not
    frame = av.VideoFrame(64, 48, pix_fmt)
    frame.colorspace, frame.color_range = colorspace, color_range
    out = picture_of(frame)
    assert isinstance(out, np.ndarray) and out.shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("threads", "width", "height", "expected"),
    [(0, 1280, 720, 1), (0, 1920, 1080, 1), (0, 3840, 2160, 0), (0, 0, 0, 0), (3, 1280, 720, 3), (1, 3840, 2160, 1)],
)
def test_auto_decode_threads_are_one_up_to_1080p(threads: int, width: int, height: int, expected: int) -> None:
    assert decode_thread_count(threads, width, height) == expected


def test_a_small_file_decodes_in_the_sources_own_thread(clip: Path) -> None:
    container = open_av(str(clip), "test")
    try:
        assert video_stream(container, "test").codec_context.thread_count == 1
    finally:
        container.close()
    container = open_av(str(clip), "test")
    try:
        assert video_stream(container, "test", threads=2).codec_context.thread_count == 2
    finally:
        container.close()


def test_file_sources_hand_out_pictures_that_read_as_the_frames(clip: Path) -> None:
    frames = drain(open_source(SourceConfig(uri=str(clip)), 0))
    assert all(isinstance(f.decoded, Yuv420Picture) for f in frames)
    assert [frame_number(f.image) for f in frames] == list(range(12))


class CountConversions:
    """Counts ``Yuv420Picture.to_bgr`` calls and the OpenCV thread count seen by them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Yuv420Picture.to_bgr

        def counted(picture: Yuv420Picture) -> np.ndarray:
            self.calls += 1
            return original(picture)

        monkeypatch.setattr(Yuv420Picture, "to_bgr", counted)


class ThreadsSeen:
    name = "threads_seen"

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def write(self, frame) -> None:
        self.seen.add(cv2.getNumThreads())

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("scene")
    config = video.VideoSynthConfig(cameras=2, seconds=1.0, fps=10, width=160, height=96, seed=5)
    return video.generate_videos(config, root, workers=1), known_detector_onnx(root / "known.onnx", batch="n")


def run_pipeline(scene: tuple[list[Path], Path], **extra: object) -> Pipeline:
    clips, model = scene
    data = {
        "sources": [{"uri": str(p)} for p in clips],
        "mux": {"batch_size": 2},
        "primary": {"model": str(model)},
        "tracker": {"type": "bytetrack"},
        "telemetry": {"interval_s": 0, "summary_path": None},
    } | extra
    pipeline = Pipeline(load_pipeline_config(data=data))
    pipeline.run()
    return pipeline


def test_a_pipeline_without_pixel_readers_never_converts_a_frame(scene, monkeypatch) -> None:
    counted = CountConversions(monkeypatch)
    pipeline = run_pipeline(scene)
    assert pipeline.summary().frames == 20 and counted.calls == 0


def test_the_osd_converts_each_frame_once(scene, monkeypatch, tmp_path: Path) -> None:
    counted = CountConversions(monkeypatch)
    pipeline = run_pipeline(scene, osd={"enable": True}, sinks=[{"type": "video", "path": str(tmp_path / "o.mp4")}])
    assert pipeline.summary().frames == 20 and counted.calls == 20


def test_opencv_runs_single_threaded_during_a_run_and_is_restored(scene) -> None:
    before = cv2.getNumThreads()
    clips, model = scene
    data = {
        "sources": [{"uri": str(clips[0])}],
        "primary": {"model": str(model)},
        "telemetry": {"interval_s": 0, "summary_path": None},
    }
    seen = ThreadsSeen()
    Pipeline(load_pipeline_config(data=data), sinks=[seen]).run()
    assert seen.seen == {1} and cv2.getNumThreads() == before
