"""``SourceConfig``: one video input of a pipeline (file, RTSP camera, V4L2 camera or image folder).

``type: auto`` picks the kind from the URI: ``rtsp://`` and ``rtsps://`` are RTSP, ``/dev/video*`` or a
bare camera index are V4L2, a folder is an image directory, anything else is a file (``file://`` is
stripped). ``live`` follows the kind unless given: live sources (RTSP, V4L2) drop their oldest frame when
the pipeline falls behind, so latency never grows; files block their decoder instead and never drop.

Reconnect keys mirror deepstream-app's ``rtsp-reconnect-interval-sec`` / ``rtsp-reconnect-attempts``,
with an exponential backoff on top (interval, interval*factor, ... capped at ``reconnect_max_interval_s``).

Example:
    >>> cfg = SourceConfig(uri="rtsp://10.0.0.5/stream1", max_fps=10)
    >>> cfg.kind, cfg.is_live
    ('rtsp', True)
    >>> SourceConfig(uri="clips/cam0.mp4").kind
    'file'
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import field_validator, model_validator

from lanner.core.config import Section
from lanner.core.errors import ConfigError

SOURCE_TYPES = ("auto", "file", "rtsp", "v4l2", "images")
LIVE_TYPES = ("rtsp", "v4l2")
_V4L2_URI = re.compile(r"^(/dev/video\d+|v4l2://.*|\d+)$")


class SourceConfig(Section):
    """One input: where it is, what kind it is, how fast to take frames and what to do when it drops.

    ``queue_size`` bounds the decoded frames waiting for the muxer (memory stays flat);
    ``max_fps`` keeps at most that many frames per second of stream time (by pts, so a file gives the
    same frames however fast it decodes); ``realtime`` paces a file to its pts like a camera would;
    ``loop`` restarts a file at its end; ``timeout_s`` is how long a live source may go without a
    frame before it is treated as dead and reconnected; ``fps`` is the frame rate given to an image folder
    and to raw .h264/.h265 streams (they carry no timestamps). ``hwaccel: cuda`` decodes files and RTSP
    on the GPU's NVDEC (``gpu_id``) through PyAV's FFmpeg (``lanner env`` lists its hwaccels; PyAV 18's
    wheels list ``cuda``; on an H200 it gave 120 frames/s of 1080p against 519 on 16 CPU cores, because FFmpeg
    downloads and converts every frame on the CPU); ``hwaccel: nvdec`` decodes files on NVDEC through
    PyNvVideoCodec (``pip install "lanner[nvdec]"``, 3.5x less CPU per frame than CPU decode on the H200), the
    GPU route to prefer. Either way frames are then copied to host memory. ``decode_threads``: FFmpeg
    threads per source; 0 (auto) decodes in the source's own thread up to 1080p (frame threading cost 25 %
    more CPU per 720p frame on 2 cores) and lets FFmpeg choose above it.
    """

    uri: str
    type: Literal["auto", "file", "rtsp", "v4l2", "images"] = "auto"
    name: str | None = None
    live: bool | None = None
    max_fps: float | None = None
    loop: bool = False
    realtime: bool = False
    queue_size: int = 4
    fps: float = 30.0
    timeout_s: float = 10.0
    reconnect_interval_s: float = 0.5
    reconnect_backoff: float = 2.0
    reconnect_max_interval_s: float = 30.0
    reconnect_attempts: int = -1
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    decode_threads: int = 0
    hwaccel: Literal["none", "cuda", "nvdec"] = "none"
    gpu_id: int = 0

    @field_validator("uri", mode="before")
    @classmethod
    def _camera_index(cls, value: object) -> object:
        """``uri: 0`` in YAML is an int: a bare camera index (V4L2), kept as its text."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        """One clear line per mistake, naming the field and the fix."""
        if not self.uri.strip():
            raise ConfigError(
                "empty uri", where="sources[].uri", fix="give a file path, rtsp:// URL, /dev/videoN or folder"
            )
        checks = [
            ("max_fps", self.max_fps is None or self.max_fps > 0, "a positive number, or leave it out for every frame"),
            ("queue_size", self.queue_size >= 1, "1 or more (4 is a good default)"),
            ("fps", self.fps > 0, "a positive frame rate"),
            ("timeout_s", self.timeout_s > 0, "a positive number of seconds"),
            ("reconnect_interval_s", self.reconnect_interval_s >= 0, "0 or more seconds"),
            ("reconnect_backoff", self.reconnect_backoff >= 1, "1 (fixed interval) or more"),
            (
                "reconnect_max_interval_s",
                self.reconnect_max_interval_s >= self.reconnect_interval_s,
                "at least reconnect_interval_s",
            ),
            ("reconnect_attempts", self.reconnect_attempts >= -1, "-1 (forever), 0 (never) or a count"),
            ("decode_threads", self.decode_threads >= 0, "0 (auto) or a thread count"),
            ("gpu_id", self.gpu_id >= 0, "a CUDA device index (0 for the first GPU)"),
        ]
        for field, ok, fix in checks:
            if not ok:
                raise ConfigError(
                    f"{field}={getattr(self, field)} is invalid", where=f"sources[].{field}", fix=f"use {fix}"
                )
        if self.hwaccel != "none" and self.kind not in ("file", "rtsp"):
            raise ConfigError(f"hwaccel applies to files and RTSP, not {self.kind}", where="sources[].hwaccel",
                              fix="remove hwaccel from this source")  # fmt: skip
        if self.hwaccel == "nvdec" and self.kind != "file":
            fix = "use hwaccel: cuda (NVDEC through PyAV's FFmpeg) or none for this source"
            raise ConfigError(f"hwaccel: nvdec decodes files, not {self.kind}", where="sources[].hwaccel", fix=fix)
        if self.kind in LIVE_TYPES and (self.loop or self.realtime):
            raise ConfigError(
                f"loop/realtime apply to files, not {self.kind}",
                where="sources[].loop",
                fix="remove loop/realtime from this source",
            )
        return self

    @property
    def kind(self) -> str:
        """The resolved source type (``type``, or what the URI looks like when ``type`` is ``auto``)."""
        return self.type if self.type != "auto" else guess_type(self.uri)

    @property
    def is_live(self) -> bool:
        """Whether the source drops its oldest frames when full (``live``, or RTSP/V4L2 by default)."""
        return self.live if self.live is not None else self.kind in LIVE_TYPES

    @property
    def path(self) -> str:
        """The URI without a ``file://`` or ``v4l2://`` prefix."""
        for prefix in ("file://", "v4l2://"):
            if self.uri.startswith(prefix):
                return self.uri[len(prefix) :]
        return self.uri


def guess_type(uri: str) -> str:
    """The source type a URI looks like: rtsp, v4l2, images (a folder) or file."""
    lower = uri.lower()
    if lower.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if _V4L2_URI.match(uri):
        return "v4l2"
    path = uri[len("file://") :] if lower.startswith("file://") else uri
    if os.path.isdir(path):
        return "images"
    return "file"
