"""PyAV's own GPU routes: ``hwaccel: cuda`` (NVDEC through FFmpeg) and the ``h264_nvenc`` video sink.

Both need an NVIDIA GPU with its driver's NVDEC/NVENC libraries, so they are ``gpu`` tests: CI has no GPU and
skips them with the reason; `pytest -m gpu` on a GPU machine runs them (experiments/gpu_checks.sh)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from test_sources_nvdec import drain

from lanner.core.detections import Detections
from lanner.core.frame import Frame
from lanner.data.preprocess import InputSpec, resize_image
from lanner.pipeline.sinks import VideoSinkConfig, build_sink
from lanner.pipeline.sources import SourceConfig, open_source


def _has_cuda_device() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cuda_hwaccel_missing() -> str:
    """Why PyAV cannot decode on NVDEC here ('' when it can)."""
    if not _has_cuda_device():
        return "needs an NVIDIA GPU"
    from av.codec.hwaccel import hwdevices_available

    return "" if "cuda" in hwdevices_available() else "this PyAV build has no cuda hwaccel"


def nvenc_missing() -> str:
    """Why PyAV cannot encode on NVENC here ('' when it can).

    Data-centre GPUs (A100, H100, H200) have NVDEC but no NVENC engine: on the H200 the encoder does not
    open ("OpenEncodeSessionEx failed: unsupported device"), and the sink turns that into a ConfigError
    (tested on the CPU in test_sinks.py), so this test needs a GPU that encodes."""
    if not _has_cuda_device():
        return "needs an NVIDIA GPU"
    if "h264_nvenc" not in av.codecs_available:
        return "this PyAV build has no h264_nvenc"
    import tempfile

    from lanner.core.errors import ConfigError

    with tempfile.TemporaryDirectory() as folder:
        sink = build_sink(VideoSinkConfig(path=f"{folder}/probe.mp4", codec="h264_nvenc"))
        try:
            sink.write(Frame(0, 0, 0, np.zeros((256, 320, 3), np.uint8), Detections.empty(), []))
        except ConfigError as exc:
            return f"this GPU cannot encode with NVENC ({exc})"
        sink.close()
    return ""


def write_clip(path: Path, frames: int = 45) -> None:
    """A 320x240 H.264 clip of a smooth texture scrolling 4 px per frame."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (21, 21), 0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "18"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1)[:, :, ::-1].copy(), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


CUDA_HWACCEL_MISSING, NVENC_MISSING = cuda_hwaccel_missing(), nvenc_missing()  # probed once, at collection


@pytest.mark.gpu
@pytest.mark.skipif(bool(CUDA_HWACCEL_MISSING), reason=CUDA_HWACCEL_MISSING or "runs")
def test_pyav_cuda_hwaccel_decodes_a_file_like_the_cpu(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_clip(path)
    cpu = drain(open_source(SourceConfig(uri=str(path)), 0))
    gpu = drain(open_source(SourceConfig(uri=str(path), hwaccel="cuda"), 1))
    assert len(gpu) == len(cpu) == 45
    assert [f.pts_ns for f in gpu] == [f.pts_ns for f in cpu]
    spec = InputSpec(size_hw=(128, 160))  # the detector's input, from the frames as decoded (NV12 from the GPU)
    for a, b in zip(cpu, gpu, strict=True):
        small_a, small_b = resize_image(a.decoded, spec)[0], resize_image(b.decoded, spec)[0]
        assert np.abs(small_a.astype(int) - small_b.astype(int)).mean() < 2.0
    for a, b in zip(cpu, gpu, strict=True):
        assert a.image.shape == b.image.shape == (240, 320, 3)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 2.0


@pytest.mark.gpu
@pytest.mark.skipif(bool(NVENC_MISSING), reason=NVENC_MISSING or "runs")
def test_h264_nvenc_sink_writes_a_file_that_decodes_back(tmp_path: Path) -> None:
    path = tmp_path / "tiled.mp4"
    sink = build_sink(VideoSinkConfig(path=str(path), fps=15, codec="h264_nvenc"))
    for i in range(30):
        image = np.zeros((256, 320, 3), np.uint8)
        image[:, : 10 * (i + 1)] = (0, 0, 255)  # a red bar growing frame by frame
        sink.write(Frame(0, i, i * 66_666_667, image, Detections.empty(), []))
    sink.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 320, 256)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 30
    assert np.abs(frames[20][128, 100].astype(int) - (0, 0, 255)).max() < 40  # inside the bar at frame 20
    assert frames[20][128, 300].max() < 40  # beyond it
