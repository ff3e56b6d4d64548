"""Synthetic multi-camera traffic videos with MOTChallenge ground truth and line-crossing counts.

Each camera is its own street (scene seed per camera, times of day mixed), simulated by ``Traffic``,
drawn by ``render`` and encoded as H.264. Per camera ``i`` the output folder holds::

    cam{i}.mp4                      H.264 (libx264, yuv420p), constant frame rate
    cam{i}/seqinfo.ini, gt/gt.txt   MOTChallenge sequence info and ground truth (see ``mot``)
    cam{i}/lines.json, counts.json  counting lines and their ground-truth crossing counts (see ``lines``)
    manifest.json                   the config and a summary of every camera

Same config, same bytes: every random draw comes from the seed, the encoder runs single-threaded (x264's
output depends on its thread count) with mbtree off (see ``H264Writer``), and the container carries no
creation time or encoder version (``+bitexact``). Cameras run in a process pool; each camera depends
only on ``(seed, index)``, so the worker count changes nothing but the time.

Example:
    >>> paths = generate_videos(VideoSynthConfig(cameras=2, seconds=2, width=320, height=192), tmp_path)
    >>> [p.name for p in paths]
    ['cam0.mp4', 'cam1.mp4']
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import model_validator

from lanner.core.config import Section
from lanner.core.detections import Detections
from lanner.core.errors import ConfigError
from lanner.core.progress import ProgressFn, advance
from lanner.data.synth.lines import auto_lines, count_crossings, write_lines
from lanner.data.synth.mot import IGNORE_BELOW_VISIBILITY, SeqInfo, interpolate_gaps, quantize, write_gt, write_seqinfo
from lanner.data.synth.render import render
from lanner.data.synth.traffic import Traffic
from lanner.data.synth.world import CLASSES, ActorBox, random_scene

MAX_WIDTH, MAX_HEIGHT = 1920, 1080
TIMES_OF_DAY_CYCLE = ("day", "dusk", "day", "night")  # camera i gets entry i % 4
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
MIN_BOX_PX = 1.0  # ground-truth boxes thinner than this (after clipping to the image) are dropped
PROGRESS_EVERY = 10  # frames between a worker's progress reports


class VideoSynthConfig(Section):
    """What to generate: how many cameras, how long, how big, how busy, and how to encode.

    ``density`` scales every spawn rate (1.0: about 20 vehicles a minute per lane, a steady trickle of
    people and bicycles). ``crf``/``preset`` are x264's quality and speed knobs: at 1280x720 one core
    encodes a frame in ~4 ms with "ultrafast" (the default, to keep render + encode above 60 frames/s)
    and ~11 ms with "veryfast", which makes files about half the size and uses B-frames (as most IP
    cameras do); pick it when that matters more than time. ``max_kbps`` caps the bitrate the way an IP
    camera's encoder does (capped CRF; 0 = auto: 4 Mbit/s at 1280x720 30 fps, scaled by pixels and frame
    rate): without it, night sensor noise alone made 30 s at 720p weigh 150 MB (40 Mbit/s).
    """

    cameras: int = 4
    seconds: float = 30.0
    fps: int = 30
    width: int = 1280
    height: int = 720
    seed: int = 0
    density: float = 1.0
    crf: int = 23
    preset: str = "ultrafast"
    max_kbps: int = 0

    @model_validator(mode="after")
    def _check(self) -> VideoSynthConfig:
        """One clear line per mistake, naming the field and the fix."""
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 64 or value % 2:
                raise ConfigError(f"{name}={value} must be an even number >= 64", where=f"video.{name}",
                                  fix=f"use {max(64, value + value % 2)} (H.264 yuv420p needs even sizes)")  # fmt: skip
        if self.width > MAX_WIDTH or self.height > MAX_HEIGHT:
            raise ConfigError(f"resolution {self.width}x{self.height} is above {MAX_WIDTH}x{MAX_HEIGHT}",
                              where="video.width/height", fix="use at most width=1920 height=1080")  # fmt: skip
        checks = (
            ("fps", 1 <= self.fps <= 60, "use a frame rate from 1 to 60"),
            ("cameras", 1 <= self.cameras <= 256, "use 1 to 256 cameras"),
            ("seconds", 0 < self.seconds <= 3600, "use a duration from a frame to 3600 s"),
            ("density", 0 <= self.density <= 10, "use a density from 0 (empty streets) to 10"),
            ("crf", 0 <= self.crf <= 51, "use an x264 CRF from 0 (lossless) to 51; 18-28 is typical"),
            ("preset", self.preset in X264_PRESETS, f"use one of {', '.join(X264_PRESETS)}"),
            ("max_kbps", 0 <= self.max_kbps <= 200_000, "use 0 (auto) or a cap in kbit/s, e.g. 4000"),
        )
        for name, ok, fix in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)!r} is out of range", where=f"video.{name}", fix=fix)
        return self

    @property
    def bitrate_cap_kbps(self) -> int:
        """The encoder's VBV cap: ``max_kbps``, or 4 Mbit/s for 720p30 scaled by pixels and frame rate."""
        if self.max_kbps:
            return self.max_kbps
        return max(500, round(4000 * self.width * self.height / (1280 * 720) * self.fps / 30))

    @property
    def frames(self) -> int:
        """Frames per camera (at least one)."""
        return max(1, round(self.seconds * self.fps))


def generate_videos(
    config: VideoSynthConfig, out_dir: str | Path, progress: ProgressFn | None = None, workers: int | None = None
) -> list[Path]:
    """Render, encode and label every camera; return the video paths (``cam{i}.mp4``, in camera order).

    ``progress(n)`` is called in this process with frames finished (``cameras * frames`` in all).
    ``workers`` defaults to ``min(cameras, os.cpu_count())``; 1 runs everything in this process.
    Workers are spawned (they re-import the caller's main module), so a script that uses more than
    one must call this under ``if __name__ == "__main__":``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(config.cameras, workers or os.cpu_count() or 1))
    if workers == 1:
        summaries = [render_camera(config, i, out, progress) for i in range(config.cameras)]
    else:
        summaries = _run_pool(config, out, progress, workers)
    manifest = {
        "generator": "lanner.data.synth.video",
        "config": config.model_dump(mode="json"),
        "classes": list(CLASSES),
        "cameras": summaries,
        "totals": _totals(summaries),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return [out / s["video"] for s in summaries]


def _run_pool(config: VideoSynthConfig, out: Path, progress: ProgressFn | None, workers: int) -> list[dict]:
    """One camera per task in a spawn-context pool; workers report frames done through a queue."""
    ctx = mp.get_context("spawn")  # fork is unsafe when the caller runs threads (a progress bar, a server)
    reports = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(reports,)) as pool:
        futures: list[Future] = [pool.submit(render_camera, config, i, out) for i in range(config.cameras)]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(reports, progress)
        summaries = [f.result() for f in futures]
    _drain(reports, progress)
    return summaries


_REPORTS: Any = None  # a worker's queue back to the parent, set by _init_worker


def _init_worker(reports: Any) -> None:
    global _REPORTS
    _REPORTS = reports


def _drain(reports: Any, progress: ProgressFn | None) -> None:
    while True:
        try:
            n = reports.get(timeout=0.05)
        except queue.Empty:
            return
        advance(progress, n)


def render_camera(config: VideoSynthConfig, index: int, out: Path, progress: ProgressFn | None = None) -> dict:
    """Simulate, render, encode and label camera ``index``; return its manifest entry."""
    report = progress if progress is not None else (_REPORTS.put if _REPORTS is not None else None)
    scene_seq, traffic_seq, render_seq = np.random.SeedSequence([config.seed, index]).spawn(3)
    tod = TIMES_OF_DAY_CYCLE[index % len(TIMES_OF_DAY_CYCLE)]
    scene = random_scene(np.random.default_rng(scene_seq), config.width, config.height, time_of_day=tod)
    traffic = Traffic(scene, np.random.default_rng(traffic_seq), density=config.density)
    render_rng = np.random.default_rng(render_seq)
    name = f"cam{index}"
    frames: list[Detections] = []
    with H264Writer(
        out / f"{name}.mp4", config.width, config.height, config.fps, config.crf, config.preset, config.bitrate_cap_kbps
    ) as video:
        done = 0
        for frame_idx, actors in enumerate(traffic.frames(config.frames, config.fps), start=1):
            image, boxes = render(scene, actors, render_rng)
            video.write(image)
            frames.append(boxes_to_detections(boxes))
            if frame_idx % PROGRESS_EVERY == 0 or frame_idx == config.frames:
                advance(report, frame_idx - done)
                done = frame_idx
    frames = quantize(interpolate_gaps(frames, max_gap=config.fps))
    seq = out / name
    write_gt(seq / "gt" / "gt.txt", frames)
    write_seqinfo(seq / "seqinfo.ini", SeqInfo(name, config.fps, config.frames, config.width, config.height,
                                               classes=CLASSES))  # fmt: skip
    lines = auto_lines(scene.camera, scene.layout, avoid_z_m=traffic.crosswalk_band_m())
    write_lines(seq / "lines.json", lines, (config.width, config.height))
    counts = count_crossings(frames, lines, CLASSES)
    (seq / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    return _summary(name, tod, config, frames, counts)


def boxes_to_detections(boxes: list[ActorBox]) -> Detections:
    """One frame's renderer labels as ground-truth ``Detections`` (MOT conf in ``confidence``).

    MOTChallenge's visibility counts both occlusion and cropping at the image border, so it is the
    renderer's ``visible_fraction`` (occlusion) times the share of the box inside the image. Boxes
    less than a pixel wide or tall after clipping (a sliver at the image edge) are dropped.
    """
    boxes = [b for b in boxes if b.xyxy[2] - b.xyxy[0] >= MIN_BOX_PX and b.xyxy[3] - b.xyxy[1] >= MIN_BOX_PX]
    if not boxes:
        return Detections.from_arrays(np.zeros((0, 4)), np.zeros(0, np.int64), tracker_id=np.zeros(0, np.int64),
                                      data={"visibility": np.zeros(0, np.float32)})  # fmt: skip
    vis = np.array([b.visible_fraction * (1.0 - b.truncated) for b in boxes], np.float32)
    return Detections.from_arrays(
        np.stack([b.xyxy for b in boxes]),
        np.array([CLASSES.index(b.cls) for b in boxes], np.int64),
        confidence=(vis >= IGNORE_BELOW_VISIBILITY).astype(np.float32),
        tracker_id=np.array([b.actor_id for b in boxes], np.int64),
        data={"visibility": vis},
    )


def _summary(name: str, tod: str, config: VideoSynthConfig, frames: list[Detections], counts: dict) -> dict:
    ids = np.concatenate([d.tracker_id for d in frames]) if frames else np.zeros(0, np.int64)
    classes = np.concatenate([d.class_id for d in frames]) if frames else np.zeros(0, np.int64)
    tracks = {c: len(np.unique(ids[classes == k])) for k, c in enumerate(CLASSES)}
    return {
        "name": name,
        "video": f"{name}.mp4",
        "gt": f"{name}/gt/gt.txt",
        "seqinfo": f"{name}/seqinfo.ini",
        "lines": f"{name}/lines.json",
        "counts_file": f"{name}/counts.json",
        "time_of_day": tod,
        "frames": config.frames,
        "fps": config.fps,
        "width": config.width,
        "height": config.height,
        "boxes": len(ids),
        "tracks": len(np.unique(ids)),
        "tracks_per_class": tracks,
        "counts": {line: {"in": c["in"], "out": c["out"]} for line, c in counts.items()},
    }


def _totals(summaries: list[dict]) -> dict:
    return {
        "cameras": len(summaries),
        "frames": sum(s["frames"] for s in summaries),
        "boxes": sum(s["boxes"] for s in summaries),
        "tracks": sum(s["tracks"] for s in summaries),
        "crossings": sum(c["in"] + c["out"] for s in summaries for c in s["counts"].values()),
    }


class H264Writer:
    """Encode BGR frames to an MP4 with libx264, deterministically (one thread, bitexact muxing).

    The BGR -> I420 conversion is OpenCV's (BT.601, limited range), cheaper than swscale through
    PyAV; the stream is tagged so that players convert back with the same matrix.

    x264's macroblock-tree rate control (``mbtree``) with B-frames gave different bytes for the same
    frames from one run to the next in one process (it depends on what was in memory before), so it
    is off; single-threaded, B-frames and ``aq`` on, the output is a pure function of the frames.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        preset: str = "ultrafast",
        max_kbps: int = 0,
    ):
        import av  # heavy (FFmpeg); only the video writer needs it

        self._av = av
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)  # FFmpeg only opens the file at the first packet
        self.container = av.open(str(self.path), mode="w", format="mp4", options={"fflags": "+bitexact"})
        rate = Fraction(fps).limit_denominator(1001)  # an int stays itself; 29.97 becomes 30000/1001
        stream = self.container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = 1 / rate
        ctx = stream.codec_context
        ctx.thread_count = 1  # x264's bitstream depends on its thread count: fix it for same-seed-same-bytes
        ctx.color_range, ctx.colorspace, ctx.color_primaries, ctx.color_trc = 1, 6, 6, 6  # MPEG range, SMPTE 170M
        params = "mbtree=0" + (f":vbv-maxrate={max_kbps}:vbv-bufsize={2 * max_kbps}" if max_kbps else "")
        stream.options = {"crf": str(crf), "preset": preset, "flags": "+bitexact", "x264-params": params}
        self.stream = stream
        self._pts = 0

    def write(self, image_bgr: np.ndarray) -> None:
        """Append one HxWx3 uint8 BGR frame."""
        import cv2

        frame = self._av.VideoFrame.from_ndarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        frame.pts = self._pts
        self._pts += 1
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self.container.mux(self.stream.encode(None))
        self.container.close()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # do not flush over the original error; just release the file
            self.container.close()
