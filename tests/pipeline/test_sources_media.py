"""Tiny test videos whose frames carry their own index, and the containers/codecs a FileSource reads.

``write_video`` draws frame ``i``'s index as 8 black/white blocks along the top row, so a test can read
back which frame it got (``frame_number``) however the codec and container shuffle things.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lanner.pipeline.sources import FileSource, SourceConfig, open_source

W, H, BLOCK = 64, 48, 8


def frame_image(index: int) -> np.ndarray:
    """A BGR frame whose top row of 8x8 blocks spells ``index`` in binary (most significant bit first)."""
    image = np.full((H, W, 3), 90, np.uint8)
    for bit in range(8):
        if (index >> (7 - bit)) & 1:
            image[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255
        else:
            image[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 0
    return image


def frame_number(image: np.ndarray) -> int:
    """Read back the index drawn by ``frame_image``."""
    bits = [image[2:6, b * BLOCK + 2 : (b + 1) * BLOCK - 2].mean() > 127 for b in range(8)]
    return sum(1 << (7 - i) for i, on in enumerate(bits) if on)


def write_video(
    path: Path, frames: int, fps: int = 30, codec: str = "libx264", fmt: str | None = None, faststart: bool = False
) -> Path:
    """Encode ``frames`` numbered frames at ``fps`` into ``path`` (container from the suffix or ``fmt``)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12", "g": "10"} if codec == "libx264" else {"x265-params": "log-level=error"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i)[:, :, ::-1].copy(), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def drain(source, timeout_s: float = 10.0) -> list:
    """Start ``source`` and take every frame until it ends; returns the frames."""
    source.start()
    frames = []
    while True:
        item = source.get(timeout_s)
        if item is None:
            assert source.ended, "source stalled"
            return frames
        frames.append(item.frame)


@pytest.mark.parametrize(
    ("name", "codec", "fmt"),
    [
        ("clip.mp4", "libx264", None),
        ("clip.mkv", "libx264", None),
        ("clip.h264", "libx264", "h264"),
        ("clip.h265", "libx265", "hevc"),
    ],
)
def test_every_container_and_codec_decodes_every_frame_in_order(tmp_path: Path, name: str, codec: str, fmt) -> None:
    path = write_video(tmp_path / name, frames=12, codec=codec, fmt=fmt)
    source = open_source(SourceConfig(uri=str(path)), source_id=0)
    assert isinstance(source, FileSource)
    assert (source.info.width, source.info.height) == (W, H)
    frames = drain(source)
    assert source.state == "eos" and source.error is None
    assert [frame_number(f.image) for f in frames] == list(range(12))
    assert [f.frame_idx for f in frames] == list(range(12))
    pts = np.array([f.pts_ns for f in frames])
    assert np.abs(pts - np.arange(12) * 1e9 / 30).max() < 1.5e6  # mkv keeps milliseconds
