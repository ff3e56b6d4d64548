"""``FileSource``: MP4 / MKV / raw .h264 / .h265 files decoded by PyAV (FFmpeg) with frame threading.

With ``hwaccel: nvdec`` PyNvVideoCodec decodes the file on the GPU instead (``lanner.pipeline.sources.nvdec``).

``thread_type="AUTO"`` lets FFmpeg decode several frames at once (frame threading), which is what makes
software H.264 decode keep up at 720p on a small CPU. ``pts_ns`` comes from the stream's time base and
counts from the file's first frame (0); raw elementary streams (.h264/.h265) carry no timestamps and
play at the config's ``fps``. With ``loop: true`` the file restarts at its end and pts keeps
increasing, so downstream stages see one long stream.

A file that cannot be opened, has no video stream, fails to decode, or ends before the frame count its
container announces (a truncated copy) ends the source as ``failed`` with one line saying so.

Example:
    >>> src = FileSource(SourceConfig(uri="clips/cam0.mp4"), source_id=0)  # doctest: +SKIP
    >>> src.start()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from lanner.core.errors import SourceError
from lanner.pipeline.sources.base import Source, SourceInfo
from lanner.pipeline.sources.nvdec import NvdecReader
from lanner.pipeline.sources.picture import picture_of

log = logging.getLogger("lanner.pipeline.sources")

RAW_SUFFIXES = (".h264", ".264", ".avc", ".h265", ".265", ".hevc")  # elementary streams: no container, no timing
MAX_BAD_PACKETS = 30  # damaged packets in a row before a source is declared broken
HWACCEL_FIX = "set hwaccel: none to decode on the CPU, or check the GPU and its driver (nvidia-smi)"
FILE_FIX = "check that the file plays (ffprobe FILE); re-encode it as H.264/H.265 in MP4 or MKV if it does not"


def open_av(
    uri: str,
    where: str,
    options: dict[str, str] | None = None,
    timeout_s: float | None = None,
    hwaccel: tuple[str, int] | None = None,
) -> Any:
    """``av.open`` for reading with FFmpeg's error turned into one ``SourceError`` line.

    ``hwaccel=("cuda", gpu_id)`` decodes on that GPU's NVDEC (frames are downloaded to host memory).
    """
    import av

    accel = None
    if hwaccel is not None:
        from av.codec.hwaccel import HWAccel

        accel = HWAccel(device_type=hwaccel[0], device=str(hwaccel[1]), allow_software_fallback=False)
    try:
        return av.open(uri, mode="r", options=options or {}, timeout=timeout_s, hwaccel=accel)
    except (av.FFmpegError, OSError) as exc:
        if hwaccel is not None:
            raise SourceError(f"cannot start {hwaccel[0]} decode on GPU {hwaccel[1]}: {_av_reason(exc)}",
                              where=where, fix=HWACCEL_FIX) from None  # fmt: skip
        raise SourceError(f"cannot open: {_av_reason(exc)}", where=where, fix=FILE_FIX) from None


def hwaccel_of(config: Any) -> tuple[str, int] | None:
    """``(device_type, gpu_id)`` when PyAV decodes the source on a GPU, else ``None`` (``nvdec`` is not PyAV's)."""
    return None if config.hwaccel in ("none", "nvdec") else (config.hwaccel, config.gpu_id)


AUTO_SINGLE_THREAD_PIXELS = 1920 * 1088  # up to 1080p, ``decode_threads: 0`` decodes in the source's own thread


def decode_thread_count(threads: int, width: int, height: int) -> int:
    """FFmpeg threads for a stream: ``threads`` if set; for 0 (auto), 1 up to 1080p, else 0 (FFmpeg's choice).

    One core decodes 1080p H.264 at well over 100 frames/s, and every source already has its own thread,
    so frame threading only adds work: 720p took 2.0-2.4 ms of CPU per frame on one thread against
    2.4-2.7 ms with FFmpeg's frame threads (docs/benchmarks.md), and each extra thread adds a frame of
    latency. Larger pictures (4K) keep frame threading, which a single stream needs for real time.
    """
    if threads:
        return threads
    return 1 if 0 < width * height <= AUTO_SINGLE_THREAD_PIXELS else 0


def video_stream(container: Any, where: str, threads: int = 0) -> Any:
    """The first video stream, set up for frame-threaded decode (``decode_thread_count`` picks the threads)."""
    if not container.streams.video:
        container.close()
        raise SourceError("no video stream in the input", where=where, fix="give a file or URL that carries video")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    ctx = stream.codec_context
    count = decode_thread_count(threads, int(ctx.width or 0), int(ctx.height or 0))
    if count:
        ctx.thread_count = count
    return stream


def stream_info(stream: Any) -> SourceInfo:
    """Size, nominal frame rate and codec of a PyAV video stream."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    ctx = stream.codec_context
    return SourceInfo(int(ctx.width), int(ctx.height), float(rate) if rate else None, ctx.name)


def decode_frames(container: Any, stream: Any, where: str, fallback_fps: float) -> Iterator[tuple[int, Any]]:
    """Yield ``(pts_ns, image)`` for every frame of ``stream``; pts from the stream's time base. ``image`` is a
    ``Yuv420Picture`` (converted when a stage reads ``frame.image``) or a BGR array (``picture_of``).

    A frame without a pts, or with one not after the previous frame's (RTSP before the first RTCP
    report), gets the previous pts plus one frame period. A packet the decoder rejects (damaged or cut
    off) is skipped, as FFmpeg's own tools do, so the frames around it still come out;
    ``MAX_BAD_PACKETS`` in a row fail the source.
    """
    import av

    period_ns = 1e9 / fallback_fps
    count = bad_in_row = 0
    last_ns: int | None = None
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
                bad_in_row = 0
            except av.InvalidDataError as exc:
                bad_in_row += 1
                if bad_in_row >= MAX_BAD_PACKETS:
                    raise SourceError(
                        f"decode failed after {count} frames: {_av_reason(exc)}", where=where, fix=FILE_FIX
                    ) from None
                log.warning("%s: skipped a damaged packet: %s", where, _av_reason(exc))
                continue
            for frame in frames:
                pts_ns = frame_pts_ns(frame)
                if pts_ns is None or (last_ns is not None and pts_ns <= last_ns):  # missing or repeated (live)
                    pts_ns = round(count * period_ns) if last_ns is None else last_ns + round(period_ns)
                count, last_ns = count + 1, pts_ns
                yield pts_ns, picture_of(frame)  # BGR only if a stage reads frame.image
    except av.FFmpegError as exc:
        raise SourceError(f"read failed after {count} frames: {_av_reason(exc)}", where=where, fix=FILE_FIX) from None


def frame_pts_ns(frame: Any) -> int | None:
    """A PyAV frame's presentation time in nanoseconds (exact integer arithmetic), or ``None``."""
    if frame.pts is None or frame.time_base is None:
        return None
    tb = frame.time_base
    return int(frame.pts * tb.numerator * 1_000_000_000 // tb.denominator)


class FileSource(Source):
    """A video file decoded in its own thread; never drops a frame (the queue blocks the decoder)."""

    kind = "file"

    def __init__(self, config: Any, source_id: int) -> None:
        super().__init__(config, source_id)
        self.path = config.path
        if "://" not in self.path and not os.path.isfile(self.path):  # a URL (http://, ...) is FFmpeg's to open
            raise SourceError("file not found", where=self.where, fix="check the path (relative to where you run)")
        raw = self.path.lower().endswith(RAW_SUFFIXES)
        self.options = {"framerate": f"{config.fps:g}"} if raw else {}
        self._nvdec_probe: NvdecReader | None = None  # the probe's decoder runs the first pass
        if config.hwaccel == "nvdec":  # PyNvVideoCodec opens the file itself: probe it the same way
            probe = self._nvdec_probe = NvdecReader(self.path, config.gpu_id, self.where)
            self.info = SourceInfo(probe.width, probe.height, probe.fps, "nvdec")
            return
        container = open_av(self.path, self.where, self.options)  # probe now: a bad file fails at construction
        try:
            self.info = stream_info(video_stream(container, self.where))
        finally:
            container.close()
        if hwaccel_of(config) is not None:  # and so does a GPU decoder that cannot start
            open_av(self.path, self.where, self.options, hwaccel=hwaccel_of(config)).close()

    def _decode(self) -> Iterator[tuple[int, Any]]:
        offset_ns = 0
        while True:
            last_ns = yield from self._decode_once(offset_ns)
            if not self.config.loop or self._stop.is_set() or last_ns is None:
                return
            fps = self.info.fps if self.info and self.info.fps else self.config.fps
            offset_ns = last_ns + round(1e9 / fps)

    def _decode_once(self, offset_ns: int) -> Iterator[tuple[int, Any]]:
        """One pass over the file; returns the last pts (``None`` if it had no frame)."""
        if self.config.hwaccel == "nvdec":
            last, reader = None, self._nvdec_probe or NvdecReader(self.path, self.config.gpu_id, self.where)
            self._nvdec_probe = None  # a decoder is good for one pass
            for pts_ns, image in reader.frames(self.config.fps):
                last = offset_ns + pts_ns
                yield last, image
                if self._stop.is_set():
                    break
            return last
        container = open_av(self.path, self.where, self.options, hwaccel=hwaccel_of(self.config))
        try:
            stream = video_stream(container, self.where, self.config.decode_threads)
            fallback = self.info.fps if self.info and self.info.fps else self.config.fps
            announced, count, first, last = int(stream.frames or 0), 0, None, None
            for pts_ns, image in decode_frames(container, stream, self.where, fallback):
                first = pts_ns if first is None else first
                last = offset_ns + pts_ns - first
                count += 1
                yield last, image
                if self._stop.is_set():
                    return last
        finally:
            container.close()
        if announced and count < announced:
            raise SourceError(
                f"truncated: decoded {count} of the {announced} frames the container announces",
                where=self.where,
                fix="re-copy or re-encode the file",
            )
        return last


def _av_reason(exc: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (the source's ``where`` already names it)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".")
