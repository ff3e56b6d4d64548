"""``Yuv420Picture``: a PyAV frame kept as decoded (YUV 4:2:0) until a stage needs its BGR pixels.

Converting every 720p frame to BGR and then shrinking it for the detector cost 5.3 ms of CPU per frame
in a 2-core decode loop; resizing the three YUV planes to the detector's size and converting only that
costs 3.0 ms (1.5 with OpenCV's own thread pool off), and the full-size BGR is made only if the OSD, a
video sink or a secondary classifier reads ``frame.image`` (docs/benchmarks.md, Pipeline).

Only pictures whose colours OpenCV's I420 conversion reproduces take this path: ``yuv420p`` in the BT.601
matrix (or unspecified, which FFmpeg also treats as BT.601) at limited range. Anything else (BT.709 HD
cameras, full-range ``yuvj420p``, 10-bit, NV12 from a GPU) is converted by FFmpeg at once, as before.

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


def picture_of(frame: Any) -> Any:
    """A decoded PyAV frame as a ``Yuv420Picture`` when it qualifies (module docstring), else BGR now."""
    if frame.format.name == "yuv420p" and frame.colorspace in BT601 and frame.color_range in LIMITED_RANGE:
        return Yuv420Picture(frame)
    return frame.to_ndarray(format="bgr24")


class Yuv420Picture:
    """A ``lanner.core.frame.Picture`` over a PyAV ``yuv420p`` frame (BT.601, limited range)."""

    __slots__ = ("frame", "height", "width")

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.width, self.height = int(frame.width), int(frame.height)

    def to_bgr(self) -> np.ndarray:
        """The whole picture in BGR (FFmpeg's swscale, as ``frame_to_bgr``)."""
        return self.frame.to_ndarray(format="bgr24")

    def resized_bgr(self, width: int, height: int) -> np.ndarray:
        """Resize Y, U and V to ``width x height`` (chroma at half), then convert that I420 to BGR."""
        if width % 2 or height % 2:  # I420 needs even sizes: resize the BGR picture instead
            return shrink_to(self.to_bgr(), width, height)
        y, u, v = (self._plane(i) for i in range(3))
        i420 = np.empty(height * width * 3 // 2, np.uint8)  # Y, then U, then V, each plane contiguous
        luma, chroma = height * width, (height // 2) * (width // 2)
        _resize_into(y, i420[:luma].reshape(height, width))
        _resize_into(u, i420[luma : luma + chroma].reshape(height // 2, width // 2))
        _resize_into(v, i420[luma + chroma :].reshape(height // 2, width // 2))
        return cv2.cvtColor(i420.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)

    def _plane(self, index: int) -> np.ndarray:
        """Plane ``index`` as an HxW uint8 view of the frame's buffer (its row padding cut off)."""
        plane = self.frame.planes[index]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return rows[: plane.height, : plane.width]


def _resize_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[:] = src`` resized to ``dst``'s size (bilinear; box-filtered first below half size)."""
    h, w = dst.shape
    resized = shrink_to(src, w, h)
    if not np.shares_memory(resized, dst):
        dst[:] = resized
