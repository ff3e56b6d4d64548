"""Video sink: H.264 MP4 through PyAV (libx264 on the CPU, h264_nvenc where FFmpeg has it).

Encodes ``frame.image`` as it arrives: the runner passes frames already drawn by the OSD (and, for
the mosaic, the tiler's image). With ``per_source`` every source gets its own file; otherwise every
frame goes into one file (the tiled output). Frames whose size differs from the first are resized.

Example:
    >>> import tempfile, numpy as np
    >>> from lanner.core.frame import Frame
    >>> path = Path(tempfile.mkdtemp()) / "out.mp4"
    >>> sink = VideoSink(VideoSinkConfig(path=str(path), fps=10, preset="ultrafast"))
    >>> for i in range(3):
    ...     sink.write(Frame(0, i, i * 100_000_000, np.full((64, 96, 3), 80, np.uint8)))
    >>> sink.close()
    >>> import av; av.open(str(path)).streams.video[0].frames
    3
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.errors import ConfigError
from lanner.core.frame import Frame
from lanner.pipeline.sinks.base import EndOfStream
from lanner.pipeline.sinks.config import VideoSinkConfig


class _Encoder:
    """One MP4 file: a libx264 (or NVENC) stream fed with BGR frames."""

    def __init__(self, path: Path, width: int, height: int, config: VideoSinkConfig) -> None:
        import av  # heavy (FFmpeg); only the video sink needs it

        self._av = av
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.container = av.open(str(path), mode="w", format="mp4")
            rate = Fraction(config.fps).limit_denominator(1001)
            stream = self.container.add_stream(config.codec, rate=rate)
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            fix = "check the path is writable and the codec is in this FFmpeg build"
            raise ConfigError(f"cannot open the video sink: {exc}", where=str(path), fix=fix) from None
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = 1 / rate
        stream.codec_context.gop_size = config.gop
        stream.codec_context.thread_count = config.threads
        stream.options = _codec_options(config)
        if config.bitrate_kbps is not None:
            stream.codec_context.bit_rate = config.bitrate_kbps * 1000
        self.stream, self.codec, self.where = stream, config.codec, str(path)
        self.frames = 0

    def write(self, image_bgr: np.ndarray) -> None:
        import cv2

        if image_bgr.shape[:2] != (self.height, self.width):
            image_bgr = cv2.resize(image_bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        yuv = cv2.cvtColor(np.ascontiguousarray(image_bgr), cv2.COLOR_BGR2YUV_I420)
        frame = self._av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self.frames
        packets = self._open_with(frame) if self.frames == 0 else self.stream.encode(frame)
        self.frames += 1
        self.container.mux(packets)

    def _open_with(self, frame: Any) -> Any:
        """Encode the first frame, which opens the encoder; if it cannot open, say why in one line.

        FFmpeg gives the reason only in its log (PyAV's exception says "Generic error in an external
        library"), so the log is captured, at error level, for this one call.
        """
        logging = self._av.logging
        level = logging.get_level()
        logging.set_level(logging.ERROR)
        try:
            with logging.Capture() as logs:
                return self.stream.encode(frame)
        except self._av.error.FFmpegError as exc:
            # e.g. "OpenEncodeSessionEx failed: unsupported device (2): (no details); No capable devices found"
            reason = "; ".join(dict.fromkeys(line[2].strip() for line in logs)) or str(exc)
            message, fix = _open_failure(self.codec, reason)
            raise ConfigError(message, where=self.where, fix=fix) from None
        finally:
            logging.set_level(level)

    def discard(self) -> None:
        """Remove the file of an encoder that never opened (it holds no frame)."""
        path = Path(self.container.name)
        with contextlib.suppress(self._av.error.FFmpegError):  # no header was written: the trailer may fail
            self.container.close()
        path.unlink(missing_ok=True)

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()


def _open_failure(codec: str, reason: str) -> tuple[str, str]:
    """(message, fix) for an encoder that would not open."""
    if codec == "h264_nvenc":
        # e.g. "OpenEncodeSessionEx failed: unsupported device": data-centre GPUs such as the H100 and H200
        # have NVDEC but no NVENC engine; a driver without libnvidia-encode fails here too.
        fix = "use codec: libx264, or a GPU with an NVENC engine (not A100/H100/H200) and its driver's encode library"
        return f"h264_nvenc cannot open on this machine: {reason}", fix
    return f"the {codec} encoder cannot open: {reason}", "use codec: libx264 with a standard PyAV wheel"


def _check_target(path: Path) -> None:
    """Fail at construction, as the JSONL sink does, when ``path`` cannot become a video file.

    Why: the encoder opens at the first frame, so a folder or unwritable path used to end the sink with
    "write failed" mid-run instead of a config error before it starts.
    """
    fix = "give a writable file path such as out/video.mp4"
    if path.is_dir():
        raise ConfigError("the video sink path is a folder", where=str(path), fix=fix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the video sink's folder: {exc.strerror}", where=str(path), fix=fix) from None


def _codec_options(config: VideoSinkConfig) -> dict[str, str]:
    if config.codec != "libx264":
        return {"preset": "p4"}
    options = {"preset": config.preset}
    if config.bitrate_kbps is None:
        options["crf"] = str(config.crf)
    return options


class VideoSink:
    """Encodes frames to H.264 MP4: one file, or one per source (``per_source``)."""

    def __init__(self, config: VideoSinkConfig, class_names: Any = ()) -> None:
        self.config = config
        self.name = config.name or f"video:{config.path}"
        self._encoders: dict[int | None, _Encoder] = {}
        _check_target(self.path_for(0 if config.per_source else None))  # files open at the first frame

    def path_for(self, source_id: int | None) -> Path:
        """The output file of a source (``per_source``) or of the single stream (``source_id`` None)."""
        path = self.config.path
        if source_id is None:
            return Path(path.replace("{source_id}", "all"))
        if "{source_id}" in path:
            return Path(path.format(source_id=source_id))
        p = Path(path)
        return p.with_name(f"{p.stem}_src{source_id}{p.suffix}")

    def write(self, frame: Frame) -> None:
        """Encode ``frame.image`` (HxWx3 uint8 BGR) into its file; the file opens at the first frame.

        An ``EndOfStream`` (events only, its picture a repeat of the last one) is not encoded.
        """
        if isinstance(frame, EndOfStream):
            return
        key = frame.source_id if self.config.per_source else None
        encoder = self._encoders.get(key)
        if encoder is None:
            height, width = frame.image.shape[:2]
            encoder = _Encoder(self.path_for(key), width, height, self.config)
            try:
                encoder.write(frame.image)  # opens the codec
            except ConfigError:
                encoder.discard()
                raise
            self._encoders[key] = encoder
            return
        encoder.write(frame.image)

    def frames_written(self) -> dict[int | None, int]:
        """Frames encoded per file key (source id, or None for the single file)."""
        return {key: enc.frames for key, enc in self._encoders.items()}

    def close(self) -> None:
        """Flush every encoder and finish the files."""
        encoders, self._encoders = self._encoders, {}
        for encoder in encoders.values():
            encoder.close()
