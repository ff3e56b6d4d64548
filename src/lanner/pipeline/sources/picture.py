"""``Yuv420Picture``: a PyAV frame kept as decoded (YUV 4:2:0) until a stage needs its BGR pixels.

Converting every 720p frame to BGR and then shrinking it for the detector cost 5.3 ms of CPU per frame
in a 2-core decode loop; resizing the three YUV planes to the detector's size and converting only that
costs 3.0 ms (1.5 with OpenCV's own thread pool off), and the full-size BGR is made only if the OSD, a
video sink or a secondary classifier reads ``frame.image`` (docs/benchmarks.md, Pipeline).

Only pictures whose colours OpenCV's YUV 4:2:0 conversion reproduces take this path: ``yuv420p`` (planar, as
CPU decoders give it) or ``nv12`` (U and V interleaved, as ``hwaccel: cuda`` frames arrive from the GPU) in
the BT.601 matrix (or unspecified, which FFmpeg also treats as BT.601) at limited range. Anything else
(BT.709 HD cameras, full-range ``yuvj420p``, 10-bit) is converted by FFmpeg at once, as before.

Example:
    >>> picture = picture_of(av_frame)  # doctest: +SKIP
    >>> picture.resized_bgr(796, 448).shape  # doctest: +SKIP
    (448, 796, 3)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from lanner.data.preprocess import shrink_to

BT601 = (2, 5, 6)  # AVColorSpace: unspecified, BT470BG, SMPTE170M (FFmpeg's swscale treats 2 as BT.601 too)
LIMITED_RANGE = (0, 1)  # AVColorRange: unspecified, MPEG (16-235)


LAYOUTS = ("yuv420p", "nv12")


def picture_of(frame: Any) -> Any:
    """A decoded PyAV frame as a ``Yuv420Picture`` when it qualifies (module docstring), else BGR now."""
    if frame.format.name in LAYOUTS and frame.colorspace in BT601 and frame.color_range in LIMITED_RANGE:
        return Yuv420Picture(frame)
    return frame_to_bgr(frame)


def frame_to_bgr(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as HxWx3 uint8 BGR (FFmpeg's swscale).

    OpenCV's YUV->BGR was tried instead: it costs more CPU per 720p frame here (0.96 vs 0.58 ms).
    """
    return frame.to_ndarray(format="bgr24")


class Yuv420Picture:
    """A ``lanner.core.frame.Picture`` over a PyAV ``yuv420p`` or ``nv12`` frame (BT.601, limited range)."""

    __slots__ = ("frame", "height", "nv12", "width")

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.width, self.height = int(frame.width), int(frame.height)
        self.nv12 = frame.format.name == "nv12"

    def to_bgr(self) -> np.ndarray:
        """The whole picture in BGR (FFmpeg's swscale)."""
        return frame_to_bgr(self.frame)

    def resized_bgr(self, width: int, height: int) -> np.ndarray:
        """Resize the luma and chroma planes to ``width x height`` (chroma at half), then convert to BGR."""
        if width % 2 or height % 2:  # 4:2:0 needs even sizes: resize the BGR picture instead
            return shrink_to(self.to_bgr(), width, height)
        out = np.empty(height * width * 3 // 2, np.uint8)  # luma, then chroma, each part contiguous
        luma, half = height * width, (height // 2, width // 2)
        _resize_into(self._plane(0), out[:luma].reshape(height, width))
        if self.nv12:  # one plane of interleaved U, V pairs: resized as a 2-channel image
            _resize_into(self._plane(1, channels=2), out[luma:].reshape(*half, 2))
            return cv2.cvtColor(out.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_NV12)
        chroma = half[0] * half[1]
        _resize_into(self._plane(1), out[luma : luma + chroma].reshape(half))
        _resize_into(self._plane(2), out[luma + chroma :].reshape(half))
        return cv2.cvtColor(out.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)

    def _plane(self, index: int, channels: int = 1) -> np.ndarray:
        """Plane ``index`` as an HxW (xC) uint8 view of the frame's buffer (its row padding cut off)."""
        plane = self.frame.planes[index]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        view = rows[: plane.height, : plane.width * channels]
        return view.reshape(plane.height, plane.width, channels) if channels > 1 else view


def _resize_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[:] = src`` resized to ``dst``'s size (bilinear; box-filtered first below half size)."""
    h, w = dst.shape[:2]
    resized = shrink_to(src, w, h)
    if not np.shares_memory(resized, dst):
        dst[:] = resized
