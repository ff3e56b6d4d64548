"""Run a detector over a video file: an annotated H.264 copy and one JSON line of detections per frame.

``lanner infer -i clip.mp4`` is the quick look before building a pipeline: frames are decoded with PyAV
(frame threading), predicted in batches, drawn with lanner's palette (``core.drawing``) and encoded again at
the source's frame rate (``<stem>_annotated.mp4``); ``<stem>.jsonl`` has one line per frame,
``{"frame": i, "time_s": t, "detections": [{"class", "class_id", "confidence", "xyxy"}, ...]}``.

A file that cannot be opened or has no video stream is a ``DataError`` before anything is written. A stream
that breaks part way (a truncated download, a cut recording) keeps every frame decoded before the break:
both outputs are finished and the report's ``error`` says where it stopped.

Example:
    >>> report = infer_video(load_model("det.onnx"), "clip.mp4", "preds/")  # doctest: +SKIP
    >>> report.frames, report.video.name  # doctest: +SKIP
    (300, 'clip_annotated.mp4')
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError
from lanner.core.progress import ProgressFn, advance
from lanner.train.predict import draw_detections, model_class_names, predict_detections

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".h264", ".264", ".h265", ".hevc", ".ts")


@dataclass(frozen=True)
class VideoReport:
    """What ``infer_video`` wrote: frame count, the two files, the frame rate, and why it stopped early (if)."""

    frames: int
    video: Path
    predictions: Path
    fps: float
    error: str | None = None
    interrupted: bool = False  # Ctrl-C: the frames before it are written, the video closed and playable


def frame_count(path: str | Path) -> int | None:
    """The frame count the container states (None when it does not say), for a progress bar."""
    container, stream = _open(Path(path))
    try:
        return int(stream.frames) or None
    finally:
        container.close()


def infer_video(
    model: Any,
    path: str | Path,
    out_dir: str | Path,
    *,
    conf: float = 0.25,
    iou: float = 0.45,
    batch_size: int = 8,
    device: str = "cpu",
    progress: ProgressFn | None = None,
) -> VideoReport:
    """Detect on every frame of ``path``; see the module docstring."""
    path, out_dir = Path(path), Path(out_dir)
    container, stream = _open(path)
    fps = float(stream.average_rate or stream.guessed_rate or 30)
    names = list(model_class_names(model))
    video, lines = out_dir / f"{path.stem}_annotated.mp4", out_dir / f"{path.stem}.jsonl"
    frames, writer, error, interrupted = 0, None, None, False
    out_dir.mkdir(parents=True, exist_ok=True)
    with lines.open("w", encoding="utf-8") as jsonl:
        try:
            for batch in _batches(_frames(container, stream), batch_size):
                images = [image for _, image in batch]
                for (time_s, image), dets in zip(
                    batch, predict_detections(model, images, conf, iou, batch_size, device)
                ):
                    writer = writer or _writer(video, image, fps)
                    writer.write(_even(draw_detections(image, dets, names)))
                    jsonl.write(json.dumps(_record(frames, time_s, dets, names)) + "\n")
                    frames += 1
                advance(progress, len(batch))
        except _BrokenStream as broken:
            error = f"the video stream breaks after frame {frames}: {broken}"
        except KeyboardInterrupt:  # keep what is done: the writer is closed below, so the video plays
            interrupted = True
        finally:
            container.close()
            if writer is not None:
                writer.close()
    if frames == 0 and not interrupted:
        raise DataError(error or "the video has no frames", where=str(path), fix="check that the file plays")
    return VideoReport(frames, video, lines, fps, error, interrupted)


class _BrokenStream(Exception):
    """FFmpeg failed part way through the file."""


def _open(path: Path) -> tuple[Any, Any]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"cannot open video: {exc}", where=str(path), fix="check that the file plays") from None
    if not container.streams.video:
        container.close()
        raise DataError("the file has no video stream", where=str(path), fix="give a video file")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame threading: decode overlaps the model
    return container, stream


def _frames(container: Any, stream: Any) -> Iterator[tuple[float, np.ndarray]]:
    """``(time in seconds, BGR frame)`` until the end or until FFmpeg fails (``_BrokenStream``)."""
    import av

    try:
        for frame in container.decode(stream):
            time_s = float(frame.pts * stream.time_base) if frame.pts is not None else float("nan")
            yield time_s, frame.to_ndarray(format="bgr24")
    except av.error.FFmpegError as exc:
        raise _BrokenStream(str(exc)) from None


def _batches(items: Iterator[tuple[float, np.ndarray]], size: int) -> Iterator[list[tuple[float, np.ndarray]]]:
    """Lists of up to ``size`` items; when the stream breaks, the frames already decoded still come out first."""
    batch: list[tuple[float, np.ndarray]] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
    except _BrokenStream:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _even(image: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even width and height: drop a last odd row or column."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]


def _writer(video: Path, first: np.ndarray, fps: float) -> Any:
    from lanner.data.synth.video import H264Writer  # the synthetic world's encoder (libx264, yuv420p)

    h, w = _even(first).shape[:2]
    return H264Writer(video, w, h, fps)


def _record(index: int, time_s: float, dets: Detections, names: Sequence[str]) -> dict[str, Any]:
    return {
        "frame": index,
        "time_s": None if np.isnan(time_s) else round(time_s, 4),
        "detections": [
            {
                "class": names[int(c)] if 0 <= int(c) < len(names) else str(int(c)),
                "class_id": int(c),
                "confidence": round(float(s), 5),
                "xyxy": [round(float(v), 2) for v in b],
            }
            for b, c, s in zip(dets.xyxy, dets.class_id, dets.confidence)
        ],
    }
