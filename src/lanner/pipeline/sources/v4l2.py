"""``V4l2Source``: a USB / V4L2 camera (``/dev/videoN`` or a bare index) read through OpenCV.

This FFmpeg build (PyAV's wheels) ships without the ``video4linux2`` input device, so the camera is read
with OpenCV's V4L2 backend. A camera is live: when the pipeline falls behind the oldest frame is dropped.
``pts_ns`` is the capture time (monotonic clock) relative to the first frame.

Example:
    >>> src = V4l2Source(SourceConfig(uri="/dev/video0", max_fps=15), source_id=0)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from lanner.core.errors import SourceError
from lanner.pipeline.sources.base import Source, SourceInfo

CAMERA_FIX = "check the device exists (ls /dev/video*), is not used by another program, and you may read it"


class V4l2Source(Source):
    """A V4L2 camera decoded in its own thread (live: drops the oldest frame when full)."""

    kind = "v4l2"

    def __init__(self, config: Any, source_id: int) -> None:
        super().__init__(config, source_id)
        path = config.path
        self.device: int | str = int(path) if path.isdigit() else path
        capture = self._open()
        try:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.info = SourceInfo(
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                fps or None,
                "v4l2",
            )
        finally:
            capture.release()

    def _open(self) -> Any:
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceError("cannot open the camera", where=self.where, fix=CAMERA_FIX)
        return capture

    def _decode(self) -> Iterator[tuple[int, np.ndarray]]:
        capture = self._open()
        t0 = None
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok:
                    raise SourceError("the camera stopped delivering frames", where=self.where, fix=CAMERA_FIX)
                now = time.monotonic_ns()
                t0 = now if t0 is None else t0
                yield now - t0, image
        finally:
            capture.release()
