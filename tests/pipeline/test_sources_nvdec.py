"""``hwaccel: nvdec``: files decoded by PyNvVideoCodec on NVDEC.

On the CPU a stand-in ``PyNvVideoCodec`` module (demuxer, decoder, frames handed over by DLPack as the real
one does) checks the source's own logic: frame order and pts, looping, padded decoder rows and every error.
The ``gpu`` test decodes a real H.264 file on NVDEC and compares it with PyAV's frames.
"""

from __future__ import annotations

import sys
import types
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lanner.core.errors import ConfigError, SourceError
from lanner.pipeline.sources import SourceConfig, nvdec, open_source
from lanner.pipeline.sources.nvdec import nv12_to_bgr

W, H = 32, 24


def bgr_to_nv12(image: np.ndarray) -> np.ndarray:
    """OpenCV's I420 with the U and V planes interleaved (what NVDEC writes)."""
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    u = i420[h : h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4 :].reshape(h // 2, w // 2)
    return np.concatenate([i420[:h], np.stack([u, v], -1).reshape(h // 2, w)])


def numbered(i: int) -> np.ndarray:
    """A flat grey frame whose level says its index (flat: chroma subsampling changes nothing)."""
    return np.full((H, W, 3), 20 + 10 * i, np.uint8)


def fake_nvc(frames: list[np.ndarray], fps: float = 25.0, pad_rows: int = 0, fail: str = "") -> types.ModuleType:
    """A stand-in PyNvVideoCodec: one packet per frame, the decoder gives each back one packet late."""
    module = types.ModuleType("PyNvVideoCodec")
    module.decoders = []  # every decoder created, for tests that count them

    class Demuxer:
        def __init__(self, filename: str) -> None:
            self.filename = filename

        def GetNvCodecId(self) -> int:
            return 4

        def Width(self) -> int:
            return W

        def Height(self) -> int:
            return H

        def FrameRate(self) -> float:
            return fps

        def __iter__(self):
            yield from range(len(frames))
            yield None  # the flush packet at the end

    class Decoder:
        def __init__(self, gpuid: int, codec: int, usedevicememory: bool) -> None:
            if fail:
                raise RuntimeError(fail)
            self.held: int | None = None
            module.decoders.append(self)

        def Decode(self, packet: int | None) -> list[torch.Tensor]:
            out = [] if self.held is None else [self.surface(self.held)]
            self.held = packet
            return out

        def surface(self, index: int) -> torch.Tensor:
            nv12 = bgr_to_nv12(frames[index])
            if pad_rows:  # luma and chroma planes each padded, as a decoder aligning to 16 rows does
                luma = np.vstack([nv12[:H], np.zeros((pad_rows, W), np.uint8)])
                chroma = np.vstack([nv12[H:], np.zeros((pad_rows // 2, W), np.uint8)])
                nv12 = np.vstack([luma, chroma])
            return torch.from_numpy(nv12)

    module.CreateDemuxer = Demuxer
    module.CreateDecoder = Decoder
    return module


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "cam.mp4"
    path.write_bytes(b"the stand-in demuxer never reads this")
    return path


def use(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None, gpus: int = 1) -> None:
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", module)
    monkeypatch.setattr(nvdec, "cuda_devices", lambda: gpus)


def drain(source, timeout_s: float = 10.0) -> list:
    source.start()
    frames = []
    while (item := source.get(timeout_s)) is not None:
        frames.append(item.frame)
    assert source.ended, "source stalled"
    return frames


@pytest.mark.parametrize(("height", "width"), [(8, 8), (24, 32), (720, 1280)])
def test_nv12_to_bgr_equals_opencv(height: int, width: int) -> None:
    nv12 = np.random.default_rng(height).integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    expected = cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
    np.testing.assert_array_equal(nv12_to_bgr(torch.from_numpy(nv12), height).numpy(), expected)


@pytest.mark.parametrize("pad_rows", [0, 8])
def test_every_frame_comes_out_in_order_with_pts_from_the_frame_rate(
    monkeypatch: pytest.MonkeyPatch, clip: Path, pad_rows: int
) -> None:
    use(monkeypatch, fake_nvc([numbered(i) for i in range(6)], fps=25.0, pad_rows=pad_rows))
    source = open_source(SourceConfig(uri=str(clip), hwaccel="nvdec"), 0)
    assert (source.info.width, source.info.height, source.info.fps) == (W, H, 25.0)
    frames = drain(source)
    assert [f.pts_ns for f in frames] == [i * 40_000_000 for i in range(6)]
    for i, frame in enumerate(frames):
        assert frame.image.shape == (H, W, 3)
        assert np.abs(frame.image.astype(int) - numbered(i)).max() <= 1, f"frame {i}"
    assert source.state == "eos"


def test_a_looping_file_restarts_with_rising_pts(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    use(monkeypatch, fake_nvc([numbered(i) for i in range(3)], fps=10.0))
    source = open_source(SourceConfig(uri=str(clip), hwaccel="nvdec", loop=True), 0)
    source.start()
    frames = [source.get(5.0).frame for _ in range(7)]
    source.stop()
    assert [f.pts_ns for f in frames] == [i * 100_000_000 for i in range(7)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [20, 30, 40, 20, 30, 40, 20]


def test_the_decoder_opened_to_probe_the_file_decodes_its_first_pass(
    monkeypatch: pytest.MonkeyPatch, clip: Path
) -> None:
    module = fake_nvc([numbered(i) for i in range(3)])
    use(monkeypatch, module)
    source = open_source(SourceConfig(uri=str(clip), hwaccel="nvdec"), 0)
    assert len(module.decoders) == 1  # the probe at construction
    assert len(drain(source)) == 3
    assert len(module.decoders) == 1  # no second decoder for the same pass


def test_without_pynvvideocodec_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    use(monkeypatch, None)  # a None entry in sys.modules makes the import fail
    with pytest.raises(SourceError, match=r"hwaccel: nvdec needs PyNvVideoCodec.*pip install \"lanner\[nvdec\]\""):
        open_source(SourceConfig(uri=str(clip), hwaccel="nvdec"), 0)


def test_a_gpu_that_is_not_there_is_named(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    use(monkeypatch, fake_nvc([numbered(0)]), gpus=1)
    with pytest.raises(SourceError, match=r"GPU 2, but 1 CUDA GPU\(s\) are visible.*gpu_id below 1"):
        open_source(SourceConfig(uri=str(clip), hwaccel="nvdec", gpu_id=2), 0)
    use(monkeypatch, fake_nvc([numbered(0)]), gpus=0)
    with pytest.raises(SourceError, match=r"0 CUDA GPU\(s\).*hwaccel: none"):
        open_source(SourceConfig(uri=str(clip), hwaccel="nvdec"), 0)


def test_a_decoder_that_cannot_start_is_one_line_and_deferred_errors_fail_the_source(
    monkeypatch: pytest.MonkeyPatch, clip: Path
) -> None:
    use(monkeypatch, fake_nvc([numbered(0)], fail="codec not supported by NVDEC"))
    config = SourceConfig(uri=str(clip), hwaccel="nvdec")
    with pytest.raises(SourceError, match=r"cannot start NVDEC decode on GPU 0: codec not supported") as info:
        open_source(config, 0)
    assert "\n" not in str(info.value)
    failed = open_source(config, 0, defer_errors=True)
    assert drain(failed) == [] and failed.state == "failed"


def test_nvdec_is_for_files_and_a_missing_file_is_still_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hwaccel: nvdec decodes files, not rtsp"):
        SourceConfig(uri="rtsp://cam.local/1", hwaccel="nvdec")
    use(monkeypatch, fake_nvc([numbered(0)]))
    with pytest.raises(SourceError, match="file not found"):
        open_source(SourceConfig(uri=str(tmp_path / "nope.mp4"), hwaccel="nvdec"), 0)


def gpu_ready() -> str:
    """Why the NVDEC test cannot run here ('' when it can)."""
    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return 'needs PyNvVideoCodec (pip install "lanner[nvdec]")'
    return ""


@pytest.mark.gpu
@pytest.mark.skipif(bool(gpu_ready()), reason=gpu_ready() or "runs")
def test_nvdec_decodes_a_real_file_like_pyav(tmp_path: Path) -> None:
    import av

    path, rng = tmp_path / "clip.mp4", np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (21, 21), 0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "18"}
        for i in range(45):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1)[:, :, ::-1].copy(), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    cpu = drain(open_source(SourceConfig(uri=str(path)), 0))
    gpu = drain(open_source(SourceConfig(uri=str(path), hwaccel="nvdec"), 1))
    assert len(gpu) == len(cpu) == 45
    assert max(abs(a.pts_ns - b.pts_ns) for a, b in zip(cpu, gpu, strict=True)) <= 1  # rounding only
    for a, b in zip(cpu, gpu, strict=True):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 2.0
